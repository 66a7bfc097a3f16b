//! The outer UDP checksum of VXLAN over IPv6 in the XDP fast path.
//!
//! XDP sees no checksum state (what a NIC verified), so the datagram is
//! summed here: the source and destination addresses and the UDP datagram
//! lie next to each other in the frame (no extension headers: the parser
//! passes those to the host), so one run of chunks (`csum_chunks`) covers
//! the pseudo-header's addresses and the datagram; its length and next
//! header are added as one word. A frame that does not sum right is not
//! dropped here: it goes on to TC, which knows the other rules (a checksum
//! the kernel verified, local checksum offload) and counts the drop.

use aya_ebpf::{cty::c_void, programs::XdpContext};
use overlay_common::{IPPROTO_UDP, offsets as off};

use crate::csum_chunks::{self, Chunks, Xdp, fold, proto_len_word};

/// Whether the UDP datagram (`udp_len` bytes at [`off::UDP6`]) of an IPv6
/// frame sums to all ones with its pseudo-header.
#[inline(always)]
pub fn udp6_ok(ctx: &XdpContext, udp_len: u32) -> bool {
    let mut c = Chunks {
        ctx: ctx.ctx as *mut c_void,
        off: off::IP6_SRC as u32,
        len: (off::UDP6 - off::IP6_SRC) as u32 + udp_len,
        sum: proto_len_word(IPPROTO_UDP, udp_len),
        failed: 0,
    };
    csum_chunks::sum::<Xdp>(&mut c) && fold(c.sum as u64) == 0xffff
}
