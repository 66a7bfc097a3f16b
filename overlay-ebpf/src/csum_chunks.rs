//! One's-complement sum of a run of packet bytes in 64-byte chunks: each
//! chunk is read with the program type's load helper into the per-CPU
//! `CSUM_CHUNK` buffer (not the stack: a callback's frame adds to the
//! program's, 512 bytes in all) and added with `bpf_csum_diff`, one chunk
//! per `bpf_loop` iteration, so the verifier checks one chunk however long
//! the run. Used by the outer UDP checksum in TC (`udp_csum`) and XDP
//! (`xdp_csum`).

use aya_ebpf::{
    bindings::xdp_md,
    cty::c_void,
    helpers::{bpf_csum_diff, bpf_loop, bpf_skb_load_bytes, bpf_xdp_load_bytes},
};
use overlay_common::maps::CSUM_CHUNK_LEN as CHUNK;

use crate::maps::CSUM_CHUNK;

/// The load helper of a program type.
pub trait LoadBytes {
    /// # Safety
    /// `ctx` is the program's context, `buf` has room for `n` bytes.
    unsafe fn load(ctx: *mut c_void, off: u32, buf: *mut c_void, n: u32) -> i64;
}

/// TC: `bpf_skb_load_bytes` (paged data included).
pub struct Skb;
/// XDP: `bpf_xdp_load_bytes`.
pub struct Xdp;

impl LoadBytes for Skb {
    #[inline(always)]
    unsafe fn load(ctx: *mut c_void, off: u32, buf: *mut c_void, n: u32) -> i64 {
        // SAFETY: as the trait says.
        unsafe { bpf_skb_load_bytes(ctx as *const c_void, off, buf, n) }
    }
}

impl LoadBytes for Xdp {
    #[inline(always)]
    unsafe fn load(ctx: *mut c_void, off: u32, buf: *mut c_void, n: u32) -> i64 {
        // SAFETY: as the trait says.
        unsafe { bpf_xdp_load_bytes(ctx as *mut xdp_md, off, buf, n) }
    }
}

/// A run of bytes to sum, on the caller's stack.
#[repr(C)]
pub struct Chunks {
    /// The program's context.
    pub ctx: *mut c_void,
    /// Where the run starts in the frame, and its length.
    pub off: u32,
    pub len: u32,
    /// The running sum (start with the seed), not folded.
    pub sum: u32,
    pub failed: u32,
}

extern "C" fn sum_chunk<L: LoadBytes>(index: u64, data: *mut c_void) -> i64 {
    // SAFETY: `data` is the Chunks on the caller's stack.
    let c = unsafe { &mut *(data as *mut Chunks) };
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
    // 1..=CHUNK by construction, in a form the verifier keeps (a range check
    // alone gets reordered away from the helper call by LLVM).
    let n = ((n.wrapping_sub(1)) & (CHUNK as u32 - 1)) + 1;
    // Zero padding up to a multiple of four does not change the sum: clear
    // the last word, which the load may fill only in part.
    buf[((n - 1) >> 2) as usize & (CHUNK / 4 - 1)] = 0;
    // SAFETY: `n` (1..=CHUNK) bytes into a CHUNK-byte buffer.
    if unsafe { L::load(c.ctx, c.off + start, buf.as_mut_ptr() as *mut c_void, n) } != 0 {
        c.failed = 1;
        return 1;
    }
    // n rounded up to a multiple of 4, 4..=CHUNK by construction.
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

/// Adds the run's bytes to `c.sum`; false when a load or sum failed.
#[inline(always)]
pub fn sum<L: LoadBytes>(c: &mut Chunks) -> bool {
    let chunks = c.len.div_ceil(CHUNK as u32);
    let cb = sum_chunk::<L> as *mut c_void;
    // SAFETY: callback and context as bpf_loop expects.
    unsafe { bpf_loop(chunks, cb, c as *mut Chunks as *mut c_void, 0) };
    c.failed == 0
}

/// Folds a one's-complement sum to 16 bits.
#[inline(always)]
pub fn fold(mut s: u64) -> u16 {
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    s as u16
}

/// A pseudo-header's protocol and length as one word in memory order (the
/// same 16-bit sum for IPv4's and IPv6's layouts).
#[inline(always)]
pub fn proto_len_word(proto: u8, len: u32) -> u32 {
    ((proto as u32) << 16 | (len & 0xffff)).to_be()
}
