//! The outer UDP checksum of an encapsulated single frame (optional; RFC
//! 7348 allows zero over IPv4). Computed over the pseudo-header and the UDP
//! datagram in 64-byte chunks (the stack of three nested frames is limited) read with `bpf_skb_load_bytes` and summed
//! with `bpf_csum_diff`, in a `bpf_loop` callback so the verifier checks one
//! chunk, not a loop over frame sizes. The inner TCP/UDP segment is not read
//! at all: local checksum offload (see [`lco`]) stands in for it, which also
//! keeps the sum right when the inner checksum is left to offload.

use aya_ebpf::{
    EbpfContext,
    bindings::__sk_buff,
    cty::c_void,
    helpers::{bpf_csum_diff, bpf_loop, bpf_skb_load_bytes},
    programs::TcContext,
};
use core::mem::offset_of;
use overlay_common::{
    ETH_P_IPV4, ETH_P_IPV6, IPPROTO_TCP, IPPROTO_UDP, IPV4_HLEN, IPV6_HLEN,
    headers::{Ipv4Hdr, UdpHdr},
    offsets as off,
};

const CHUNK: usize = 64;
/// UDP header offset in the encapsulated frame.
const OFF_UDP: u32 = off::UDP as u32;

#[repr(C)]
struct SumCtx {
    skb: *mut __sk_buff,
    /// Bytes to sum from the UDP header on.
    len: u32,
    sum: u32,
    failed: u32,
}

extern "C" fn sum_chunk(index: u64, data: *mut c_void) -> i64 {
    // SAFETY: `data` is the SumCtx on the caller's stack.
    let c = unsafe { &mut *(data as *mut SumCtx) };
    let start = index as u32 * CHUNK as u32;
    if start >= c.len || start > 0xffff {
        return 1;
    }
    let left = c.len - start;
    let n = if left > CHUNK as u32 { CHUNK as u32 } else { left };
    // 1..=CHUNK by construction, in a form the verifier keeps (a range check
    // alone gets reordered away from the helper call by LLVM).
    let n = ((n.wrapping_sub(1)) & (CHUNK as u32 - 1)) + 1;
    let mut buf = [0u32; CHUNK / 4];
    // SAFETY: `n` (1..=CHUNK) bytes into a zeroed CHUNK-byte buffer.
    let r = unsafe {
        bpf_skb_load_bytes(c.skb as *const c_void, OFF_UDP + start, buf.as_mut_ptr() as *mut c_void, n)
    };
    if r != 0 {
        c.failed = 1;
        return 1;
    }
    // Zero padding up to a multiple of four does not change the sum.
    // n rounded up to a multiple of 4, 4..=CHUNK by construction.
    let padded = ((((n - 1) >> 2) & (CHUNK as u32 / 4 - 1)) + 1) << 2;
    // SAFETY: `padded` bytes of `buf` are initialised (zeroed or loaded).
    let s = unsafe { bpf_csum_diff(core::ptr::null_mut(), 0, buf.as_mut_ptr(), padded, c.sum) };
    if s < 0 {
        c.failed = 1;
        return 1;
    }
    c.sum = s as u32;
    0
}

#[inline(always)]
fn fold(mut s: u64) -> u16 {
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    s as u16
}

/// One's-complement sum (not folded, not complemented) of `words`.
#[inline(always)]
fn sum_words(words: &mut [u32], seed: u32) -> Result<u32, ()> {
    let n = words.len() as u32 * 4;
    // SAFETY: `n` bytes of initialised words.
    let s = unsafe { bpf_csum_diff(core::ptr::null_mut(), 0, words.as_mut_ptr(), n, seed) };
    if s < 0 { Err(()) } else { Ok(s as u32) }
}

/// Local checksum offload (as the kernel's `lco_csum`): where the inner
/// frame is IPv4 or IPv6 (no extension headers) carrying TCP, or UDP with a
/// checksum, its L4 segment sums to the complement of the inner
/// pseudo-header sum once the inner checksum is final, whether the tenant
/// filled it in or left it to offload. Returns the offset (from the UDP
/// header) where byte summing stops, and that complement; `None` when the
/// inner bytes must be summed as they are.
#[inline(always)]
fn lco(ctx: &TcContext) -> Option<(u32, u32)> {
    use overlay_common::frame::Frame;
    let f = crate::access::SkbFrame(ctx);
    let ethertype = u16::from_be(f.read::<u16>(off::INNER_ETH_TYPE)?);
    let l3 = off::INNER_L3 as u32;
    let (l4_off, proto, l4_len, mut pseudo) = if ethertype == ETH_P_IPV4 {
        let ip: Ipv4Hdr = f.read(off::INNER_L3)?;
        let ihl = ip.header_len() as u32;
        let tot = u16::from_be(ip.tot_len_be) as u32;
        if ip.version() != 4 || ihl < IPV4_HLEN as u32 || tot < ihl || ip.is_fragment() {
            return None;
        }
        let mut w = [0u32; 10];
        w[0] = ip.saddr_be;
        w[1] = ip.daddr_be;
        (l3 + ihl, ip.protocol, tot - ihl, w)
    } else if ethertype == ETH_P_IPV6 {
        let hdr: [u32; 10] = f.read(off::INNER_L3)?;
        let b = hdr[1].to_ne_bytes(); // payload length (2), next header, hop limit
        let payload = u16::from_be_bytes([b[0], b[1]]) as u32;
        let mut w = [0u32; 10];
        w[..8].copy_from_slice(&hdr[2..10]); // source and destination
        (l3 + IPV6_HLEN as u32, b[2], payload, w)
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
    let at = if ethertype == ETH_P_IPV4 { 2 } else { 8 };
    pseudo[at] = ((proto as u32) << 16 | (l4_len & 0xffff)).to_be();
    let p = sum_words(&mut pseudo, 0).ok()?;
    Some((l4_off - OFF_UDP, !(fold(p as u64) as u32) & 0xffff))
}

#[repr(C)]
struct WriteCtx {
    skb: *mut __sk_buff,
    src_be: u32,
    dst_be: u32,
    udp_len: u32,
    failed: u32,
}

/// `bpf_loop` callback (one iteration): the whole computation runs in its
/// own verifier frame, so its branches do not multiply the states of the
/// program after it; the caller only sees the `failed` flag.
extern "C" fn write_cb(_index: u64, data: *mut c_void) -> i64 {
    // SAFETY: `data` is the WriteCtx on the caller's stack.
    let w = unsafe { &mut *(data as *mut WriteCtx) };
    let ctx = TcContext::new(w.skb);
    w.failed = compute(&ctx, w.src_be, w.dst_be, w.udp_len).is_err() as u32;
    1
}

/// Writes the outer UDP checksum of the frame just encapsulated. The
/// checksum field must be zero when this runs.
#[inline(always)]
pub fn write(ctx: &TcContext, src_be: u32, dst_be: u32, udp_len: u32) -> Result<(), ()> {
    let mut w = WriteCtx { skb: ctx.as_ptr() as *mut __sk_buff, src_be, dst_be, udp_len, failed: 1 };
    // SAFETY: callback and context as bpf_loop expects.
    unsafe { bpf_loop(1, write_cb as *mut c_void, &mut w as *mut WriteCtx as *mut c_void, 0) };
    if w.failed == 0 { Ok(()) } else { Err(()) }
}

#[inline(always)]
fn compute(ctx: &TcContext, src_be: u32, dst_be: u32, udp_len: u32) -> Result<(), ()> {
    // Pseudo-header: addresses, zero, protocol, UDP length (network order).
    let mut pseudo = [src_be, dst_be, (((IPPROTO_UDP as u32) << 16) | (udp_len & 0xffff)).to_be()];
    // SAFETY: 12 initialised bytes.
    let seed = unsafe { bpf_csum_diff(core::ptr::null_mut(), 0, pseudo.as_mut_ptr(), 12, 0) };
    if seed < 0 {
        return Err(());
    }
    let (len, tail) = lco(ctx).unwrap_or((udp_len, 0));
    let mut c = SumCtx { skb: ctx.as_ptr() as *mut __sk_buff, len, sum: seed as u32, failed: 0 };
    let chunks = len.div_ceil(CHUNK as u32);
    // SAFETY: callback and context as bpf_loop expects.
    unsafe { bpf_loop(chunks, sum_chunk as *mut c_void, &mut c as *mut SumCtx as *mut c_void, 0) };
    if c.failed != 0 {
        return Err(());
    }
    // `tail` is in the same memory-order domain as the chunk sums.
    let mut check = !fold(c.sum as u64 + tail as u64);
    if check == 0 {
        check = 0xffff; // zero means "no checksum" in UDP over IPv4
    }
    // The sum ran over memory in network order: store it as computed.
    ctx.store(off::UDP_CHECK, &check, 0).map_err(|_| ())
}
