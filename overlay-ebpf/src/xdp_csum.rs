//! The outer UDP checksum of VXLAN over IPv6 in the XDP fast path.
//!
//! XDP sees no checksum state (what a NIC verified), so the datagram is
//! summed here: the source and destination addresses and the UDP datagram
//! lie next to each other in the frame (no extension headers: the parser
//! passes those to the host), so one run of 64-byte chunks, read with
//! `bpf_xdp_load_bytes` into the per-CPU chunk buffer by a `bpf_loop`
//! callback, covers the pseudo-header's addresses and the datagram; its
//! length and next header are added as one word. A frame that does not sum
//! right is not dropped here: it goes on to TC, which knows the other
//! rules (a checksum the kernel verified, local checksum offload) and
//! counts the drop.

use aya_ebpf::{cty::c_void, helpers::bpf_csum_diff, helpers::bpf_loop, helpers::bpf_xdp_load_bytes};
use overlay_common::{IPPROTO_UDP, maps::CSUM_CHUNK_LEN as CHUNK, offsets as off};

use crate::maps::CSUM_CHUNK;

#[repr(C)]
struct XdpSum {
    ctx: *mut aya_ebpf::bindings::xdp_md,
    /// Bytes from the source address on: addresses and the datagram.
    len: u32,
    sum: u32,
    failed: u32,
}

extern "C" fn sum_chunk(index: u64, data: *mut c_void) -> i64 {
    // SAFETY: `data` is the XdpSum on the caller's stack.
    let c = unsafe { &mut *(data as *mut XdpSum) };
    let start = index as u32 * CHUNK as u32;
    if start >= c.len || start > 0xffff {
        return 1;
    }
    let Some(buf) = CSUM_CHUNK.get_ptr_mut(0) else {
        c.failed = 1;
        return 1;
    };
    // SAFETY: this CPU's buffer; one program runs at a time on a CPU.
    let buf = unsafe { &mut *buf };
    let left = c.len - start;
    let n = if left > CHUNK as u32 { CHUNK as u32 } else { left };
    // 1..=CHUNK in a form the verifier keeps (see udp_csum).
    let n = ((n.wrapping_sub(1)) & (CHUNK as u32 - 1)) + 1;
    buf[((n - 1) >> 2) as usize & (CHUNK / 4 - 1)] = 0;
    // SAFETY: `n` (1..=CHUNK) bytes into a CHUNK-byte buffer.
    let r =
        unsafe { bpf_xdp_load_bytes(c.ctx, off::IP6_SRC as u32 + start, buf.as_mut_ptr() as *mut c_void, n) };
    if r != 0 {
        c.failed = 1;
        return 1;
    }
    let padded = ((((n - 1) >> 2) & (CHUNK as u32 / 4 - 1)) + 1) << 2;
    // SAFETY: `padded` bytes of `buf` are initialised (loaded or cleared).
    let s = unsafe { bpf_csum_diff(core::ptr::null_mut(), 0, buf.as_mut_ptr(), padded, c.sum) };
    if s < 0 {
        c.failed = 1;
        return 1;
    }
    c.sum = s as u32;
    0
}

/// Whether the UDP datagram (`udp_len` bytes at [`off::UDP6`]) of an IPv6
/// frame sums to all ones with its pseudo-header.
#[inline(always)]
pub fn udp6_ok(ctx: &aya_ebpf::programs::XdpContext, udp_len: u32) -> bool {
    let word = ((IPPROTO_UDP as u32) << 16 | (udp_len & 0xffff)).to_be();
    let len = (off::UDP6 - off::IP6_SRC) as u32 + udp_len;
    let mut c = XdpSum { ctx: ctx.ctx, len, sum: word, failed: 0 };
    let chunks = len.div_ceil(CHUNK as u32);
    // SAFETY: callback and context as bpf_loop expects.
    unsafe { bpf_loop(chunks, sum_chunk as *mut c_void, &mut c as *mut XdpSum as *mut c_void, 0) };
    let mut s = c.sum as u64;
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    c.failed == 0 && s == 0xffff
}
