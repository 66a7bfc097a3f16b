//! The outer UDP checksum of an encapsulated single frame (optional over
//! IPv4, RFC 7348; required over IPv6, RFC 8200), written on transmit and
//! verified on receive over IPv6. Computed over the pseudo-header and the
//! UDP datagram in 64-byte chunks (`csum_chunks`). The inner TCP/UDP segment is not read
//! at all: local checksum offload (see [`lco`]) stands in for it, which also
//! keeps the sum right when the inner checksum is left to offload.
//!
//! Stack: a callback's frame adds to the calling program's (512 bytes in
//! all), so the callbacks are siblings (never nested) and keep no array on
//! the stack: addresses are summed where they lie in the packet, and the
//! chunk buffer is a per-CPU map value.

use aya_ebpf::{EbpfContext, bindings::__sk_buff, cty::c_void, helpers::bpf_loop, programs::TcContext};
use core::mem::offset_of;
use overlay_common::{
    ETH_P_IPV4, ETH_P_IPV6, IPPROTO_TCP, IPPROTO_UDP, IPV4_HLEN, IPV6_HLEN,
    frame::Frame,
    headers::{Ipv4Hdr, Ipv6Hdr, UdpHdr},
    offsets as off,
};

use crate::{
    access::{SkbFrame, packet_csum},
    csum_chunks::{self, Chunks, Skb, fold, proto_len_word},
};

/// The folded sum of a pseudo-header whose addresses lie in the packet at
/// `addrs` (source then destination), IPv4 or IPv6.
#[inline(always)]
fn pseudo_sum(ctx: &TcContext, v6: bool, addrs: usize, proto: u8, len: u32) -> Option<u16> {
    let word = proto_len_word(proto, len);
    let s = if v6 { packet_csum::<32>(ctx, addrs, word)? } else { packet_csum::<8>(ctx, addrs, word)? };
    Some(fold(s as u64))
}

/// Local checksum offload (as the kernel's `lco_csum`): where the inner
/// frame is IPv4 or IPv6 (no extension headers) carrying TCP, or UDP with a
/// checksum, its L4 segment sums to the complement of the inner
/// pseudo-header sum once the inner checksum is final, whether the tenant
/// filled it in or left it to offload. Returns the offset (from the UDP
/// header) where byte summing stops, and that complement; `None` when the
/// inner bytes must be summed as they are. `shift` is how much further
/// the inner frame is than over IPv4.
#[inline(always)]
fn lco(ctx: &TcContext, shift: usize) -> Option<(u32, u32)> {
    let f = SkbFrame(ctx);
    let ethertype = u16::from_be(f.read::<u16>(off::INNER_ETH_TYPE + shift)?);
    let l3 = off::INNER_L3 + shift;
    let (l4_off, proto, l4_len, addrs, v6) = if ethertype == ETH_P_IPV4 {
        let vihl: u8 = f.read(l3)?;
        let ihl = ((vihl & 0x0f) as u32) * 4;
        let tot = u16::from_be(f.read::<u16>(l3 + offset_of!(Ipv4Hdr, tot_len_be))?) as u32;
        let frag = u16::from_be(f.read::<u16>(l3 + offset_of!(Ipv4Hdr, frag_off_be))?);
        if vihl >> 4 != 4 || ihl < IPV4_HLEN as u32 || tot < ihl || frag & 0x3fff != 0 {
            return None;
        }
        let proto: u8 = f.read(l3 + offset_of!(Ipv4Hdr, protocol))?;
        (l3 as u32 + ihl, proto, tot - ihl, l3 + offset_of!(Ipv4Hdr, saddr_be), false)
    } else if ethertype == ETH_P_IPV6 {
        let payload = u16::from_be(f.read::<u16>(l3 + offset_of!(Ipv6Hdr, payload_len_be))?) as u32;
        let proto: u8 = f.read(l3 + offset_of!(Ipv6Hdr, next_header))?;
        (l3 as u32 + IPV6_HLEN as u32, proto, payload, l3 + offset_of!(Ipv6Hdr, saddr_be), true)
    } else {
        return None;
    };
    match proto {
        IPPROTO_TCP => {}
        IPPROTO_UDP => {
            let check: u16 = f.read(l4_off as usize + offset_of!(UdpHdr, check_be))?;
            if check == 0 {
                return None;
            }
        }
        _ => return None,
    }
    let p = pseudo_sum(ctx, v6, addrs, proto, l4_len)?;
    Some((l4_off - (off::UDP + shift) as u32, !(p as u32) & 0xffff))
}

/// What the checksum's steps share, on the program's stack.
#[repr(C)]
struct CsumCtx {
    skb: *mut __sk_buff,
    /// The outer UDP length, and 1 over IPv6.
    udp_len: u32,
    v6: u32,
    /// Set by [`prepare`]: where the UDP header is and how many bytes of
    /// the datagram to sum (local checksum offload stops early), the
    /// running sum (the pseudo-header's, first), local checksum offload's
    /// stand-in for the rest, and the pseudo-header's folded sum.
    sum: Chunks,
    tail: u32,
    pseudo: u32,
}

/// `bpf_loop` callback (one iteration), the first step: the pseudo-header
/// and local checksum offload. A frame of its own, so its branches do not
/// multiply the states of the program after it, and a sibling of the
/// chunk callback, not its caller, so their frames never add up.
extern "C" fn prepare(_index: u64, data: *mut c_void) -> i64 {
    // SAFETY: `data` is the CsumCtx on the caller's stack.
    let c = unsafe { &mut *(data as *mut CsumCtx) };
    let ctx = TcContext::new(c.skb);
    let v6 = c.v6 != 0;
    let addrs = if v6 { off::IP6_SRC } else { off::IP_SRC };
    let Some(seed) = pseudo_sum(&ctx, v6, addrs, IPPROTO_UDP, c.udp_len) else { return 1 };
    let shift = if v6 { off::V6_SHIFT } else { 0 };
    let (len, tail) = lco(&ctx, shift).unwrap_or((c.udp_len, 0));
    c.sum.off = udp_off(v6) as u32;
    c.sum.len = len;
    c.sum.sum = seed as u32;
    c.sum.failed = 0;
    c.tail = tail;
    c.pseudo = seed as u32;
    1
}

#[inline(always)]
fn udp_off(v6: bool) -> usize {
    if v6 { off::UDP6 } else { off::UDP }
}

/// The folded sum of the pseudo-header and the UDP datagram (with local
/// checksum offload's stand-in for an inner TCP/UDP segment), and the
/// folded sum of the pseudo-header alone.
#[inline(always)]
fn sum(ctx: &TcContext, udp_len: u32, v6: bool) -> Result<(u16, u16), ()> {
    let skb = ctx.as_ptr() as *mut __sk_buff;
    let mut c = CsumCtx {
        skb,
        udp_len,
        v6: v6 as u32,
        sum: Chunks { ctx: skb as *mut c_void, off: 0, len: 0, sum: 0, failed: 1 },
        tail: 0,
        pseudo: 0,
    };
    let data = &mut c as *mut CsumCtx as *mut c_void;
    // SAFETY: callback and context as bpf_loop expects.
    unsafe { bpf_loop(1, prepare as *mut c_void, data, 0) };
    if c.sum.failed != 0 {
        return Err(());
    }
    if !csum_chunks::sum::<Skb>(&mut c.sum) {
        return Err(());
    }
    // `tail` is in the same memory-order domain as the chunk sums.
    Ok((fold(c.sum.sum as u64 + c.tail as u64), c.pseudo as u16))
}

/// Writes the outer UDP checksum of the frame just encapsulated (outer
/// headers in place, IPv4 without options). The checksum field must be
/// zero when this runs.
#[inline(always)]
pub fn write(ctx: &TcContext, udp_len: u32, v6: bool) -> Result<(), ()> {
    let s = sum(ctx, udp_len, v6)?.0;
    let mut check = !s;
    if check == 0 {
        check = 0xffff; // zero means "no checksum"
    }
    // The sum ran over memory in network order: store it as computed.
    let at = if v6 { off::UDP6_CHECK } else { off::UDP_CHECK };
    ctx.store(at, &check, 0).map_err(|_| ())
}

/// Whether the outer UDP checksum of a received IPv6 frame (no extension
/// headers: UDP header at [`off::UDP6`], `udp_len` bytes) is right: the
/// datagram, checksum included, sums to all ones; or the checksum field
/// holds just the pseudo-header's sum: a sender on this machine left it to
/// offload (CHECKSUM_PARTIAL across a veth), which never reaches a wire.
/// Local checksum offload's rule applies to the inner TCP/UDP segment (it
/// sums to the complement of its pseudo-header when its own checksum is
/// right, which its receiver checks).
#[inline(always)]
pub fn verify6(ctx: &TcContext, udp_len: u32) -> bool {
    let Ok((s, pseudo)) = sum(ctx, udp_len, true) else { return false };
    let check: Option<u16> = SkbFrame(ctx).read(off::UDP6 + offset_of!(UdpHdr, check_be));
    s == 0xffff || check == Some(pseudo)
}
