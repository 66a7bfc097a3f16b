//! The outer UDP checksum of an encapsulated single frame (optional; RFC
//! 7348 allows zero over IPv4). Computed over the pseudo-header and the
//! whole UDP datagram in 256-byte chunks read with `bpf_skb_load_bytes`
//! and summed with `bpf_csum_diff`, in a `bpf_loop` callback so the
//! verifier checks one chunk, not a loop over frame sizes.

use aya_ebpf::{
    EbpfContext,
    bindings::__sk_buff,
    cty::c_void,
    helpers::{bpf_csum_diff, bpf_loop, bpf_skb_load_bytes},
    programs::TcContext,
};

const CHUNK: usize = 256;
/// UDP header offset in the encapsulated frame.
const OFF_UDP: u32 = 14 + 20;

#[repr(C)]
struct SumCtx {
    skb: *mut __sk_buff,
    udp_len: u32,
    sum: u32,
    failed: u32,
}

extern "C" fn sum_chunk(index: u64, data: *mut c_void) -> i64 {
    // SAFETY: `data` is the SumCtx on the caller's stack.
    let c = unsafe { &mut *(data as *mut SumCtx) };
    let start = index as u32 * CHUNK as u32;
    if start >= c.udp_len || start > 0xffff {
        return 1;
    }
    let left = c.udp_len - start;
    let n = if left > CHUNK as u32 { CHUNK as u32 } else { left };
    // 1..=256 by construction, in a form the verifier keeps (a range check
    // alone gets reordered away from the helper call by LLVM).
    let n = ((n.wrapping_sub(1)) & (CHUNK as u32 - 1)) + 1;
    let mut buf = [0u32; CHUNK / 4];
    // SAFETY: `n` (1..=256) bytes into a zeroed 256-byte buffer.
    let r = unsafe {
        bpf_skb_load_bytes(c.skb as *const c_void, OFF_UDP + start, buf.as_mut_ptr() as *mut c_void, n)
    };
    if r != 0 {
        c.failed = 1;
        return 1;
    }
    // Zero padding up to a multiple of four does not change the sum.
    // n rounded up to a multiple of 4, 4..=256 by construction.
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

/// Writes the outer UDP checksum of the frame just encapsulated. The
/// checksum field must be zero when this runs.
#[inline(always)]
pub fn write(ctx: &TcContext, src_be: u32, dst_be: u32, udp_len: u32) -> Result<(), ()> {
    // Pseudo-header: addresses, zero, protocol, UDP length (network order).
    let mut pseudo = [src_be, dst_be, ((17u32 << 16) | (udp_len & 0xffff)).to_be()];
    // SAFETY: 12 initialised bytes.
    let seed = unsafe { bpf_csum_diff(core::ptr::null_mut(), 0, pseudo.as_mut_ptr(), 12, 0) };
    if seed < 0 {
        return Err(());
    }
    let mut c = SumCtx { skb: ctx.as_ptr() as *mut __sk_buff, udp_len, sum: seed as u32, failed: 0 };
    let chunks = udp_len.div_ceil(CHUNK as u32);
    // SAFETY: callback and context as bpf_loop expects.
    unsafe { bpf_loop(chunks, sum_chunk as *mut c_void, &mut c as *mut SumCtx as *mut c_void, 0) };
    if c.failed != 0 {
        return Err(());
    }
    let mut check = !fold(c.sum as u64);
    if check == 0 {
        check = 0xffff; // zero means "no checksum" in UDP over IPv4
    }
    // The sum ran over memory in network order: store it as computed.
    ctx.store(40, &check, 0).map_err(|_| ())
}
