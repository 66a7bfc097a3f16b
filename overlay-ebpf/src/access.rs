//! The bounds-checked packet accessor for TC programs.

use core::mem::size_of;

use aya_ebpf::{helpers::bpf_csum_diff, programs::TcContext};
use overlay_common::frame::{Frame, fold16};

/// Headers we may need to read from the linear part: outer Ethernet, IPv4
/// with options, UDP, VXLAN or GENEVE with up to 252 bytes of options,
/// inner Ethernet and a tag.
pub const PULL_LEN: u32 = 14 + 60 + 8 + 8 + 252 + 14 + 4;

pub struct SkbFrame<'a>(pub &'a TcContext);

impl Frame for SkbFrame<'_> {
    #[inline(always)]
    fn wire_len(&self) -> usize {
        self.0.len() as usize
    }

    #[inline(always)]
    fn read<T: Copy>(&self, off: usize) -> Option<T> {
        let start = self.0.data();
        let end = self.0.data_end();
        if off > 0xffff || start + off + size_of::<T>() > end {
            return None;
        }
        // SAFETY: the range was checked against data_end just above.
        Some(unsafe { core::ptr::read_unaligned((start + off) as *const T) })
    }

    #[inline(always)]
    fn sum16<const N: usize>(&self, off: usize) -> Option<u16> {
        packet_sum16::<N>(self.0, off)
    }
}

impl SkbFrame<'_> {
    /// Writes `v` at `off` of the linear data, directly (no helper call;
    /// the verifier's prologue makes a cloned head private first). Data
    /// pointers are read afresh, so this is right after `adjust_room` too.
    #[inline(always)]
    pub fn write<T: Copy>(&self, off: usize, v: &T) -> Option<()> {
        let start = self.0.data();
        let end = self.0.data_end();
        if off > 0xffff || start + off + size_of::<T>() > end {
            return None;
        }
        // SAFETY: the range was checked against data_end just above.
        unsafe { core::ptr::write_unaligned((start + off) as *mut T, *v) };
        Some(())
    }
}

/// [`Frame::sum16`] of the linear packet data, by `bpf_csum_diff`.
#[inline(always)]
fn packet_sum16<const N: usize>(ctx: &TcContext, off: usize) -> Option<u16> {
    // The helper adds the words as they lie in memory, little-endian here:
    // the folded sum is the big-endian one byte-swapped (RFC 1071).
    packet_csum::<N>(ctx, off, 0).map(|s| fold16(s).swap_bytes())
}

/// `seed` plus the one's-complement sum of `N` (a multiple of four) bytes
/// of linear packet data at `off`, in memory order, not folded.
#[inline(always)]
pub fn packet_csum<const N: usize>(ctx: &TcContext, off: usize, seed: u32) -> Option<u32> {
    let (start, end) = (ctx.data(), ctx.data_end());
    if off > 0xffff || start + off + N > end {
        return None;
    }
    // SAFETY: N bytes of packet data, checked against data_end just above;
    // the helper only reads them.
    let s = unsafe { bpf_csum_diff(core::ptr::null_mut(), 0, (start + off) as *mut u32, N as u32, seed) };
    if s < 0 { None } else { Some(s as u32) }
}

/// The same accessor copying through `bpf_skb_load_bytes`: each read lands
/// whole on the stack, where direct access would assemble unaligned
/// fields byte by byte in registers (and spill them: the ND parser needs
/// this to fit the stack).
pub struct SkbCopyFrame<'a>(pub &'a TcContext);

impl Frame for SkbCopyFrame<'_> {
    #[inline(always)]
    fn wire_len(&self) -> usize {
        self.0.len() as usize
    }

    #[inline(always)]
    fn read<T: Copy>(&self, off: usize) -> Option<T> {
        if off > 0xffff {
            return None;
        }
        self.0.load::<T>(off).ok()
    }

    #[inline(always)]
    fn sum16<const N: usize>(&self, off: usize) -> Option<u16> {
        packet_sum16::<N>(self.0, off)
    }
}

/// Makes sure the headers are in the linear area (data pointers are
/// invalidated: read through [`SkbFrame`] afterwards).
#[inline(always)]
pub fn pull_headers(ctx: &TcContext) {
    let want = if ctx.len() < PULL_LEN { ctx.len() } else { PULL_LEN };
    if ctx.data_end() - ctx.data() < want as usize {
        let _ = ctx.pull_data(want);
    }
}

/// The same accessor over an XDP buffer. Reads copy through
/// `bpf_xdp_load_bytes`: with header offsets that depend on IHL, LLVM turns
/// a direct bounds check into a scalar comparison the verifier cannot use.
pub struct XdpFrame<'a>(pub &'a aya_ebpf::programs::XdpContext);

impl Frame for XdpFrame<'_> {
    #[inline(always)]
    fn wire_len(&self) -> usize {
        self.0.data_end() - self.0.data()
    }

    #[inline(always)]
    fn read<T: Copy>(&self, off: usize) -> Option<T> {
        if off > 0xffff {
            return None;
        }
        let mut v = core::mem::MaybeUninit::<T>::uninit();
        // SAFETY: the helper writes exactly size_of::<T>() bytes into `v`
        // or fails; T is a plain-bytes header type.
        let r = unsafe {
            aya_ebpf::helpers::bpf_xdp_load_bytes(
                self.0.ctx,
                off as u32,
                v.as_mut_ptr() as *mut core::ffi::c_void,
                size_of::<T>() as u32,
            )
        };
        // SAFETY: initialised by the successful helper call.
        if r == 0 { Some(unsafe { v.assume_init() }) } else { None }
    }
}

/// Makes `v` (a helper's parameter block) all zero with 4-byte stores, in
/// place. `mem::zeroed` becomes a call to a byte-wise `memset` loop that
/// the verifier walks byte by byte wherever it is called: 64 iterations
/// for each FIB lookup, multiplied over the flood loop.
///
/// # Safety
/// All-zero bytes must be a valid `T`.
#[inline(always)]
pub unsafe fn zero<T>(v: &mut core::mem::MaybeUninit<T>) -> &mut T {
    const { assert!(core::mem::size_of::<T>().is_multiple_of(4) && core::mem::align_of::<T>() >= 4) };
    let w = v.as_mut_ptr() as *mut u32;
    let mut i = 0;
    while i < core::mem::size_of::<T>() / 4 {
        // SAFETY: within `v`, 4-aligned (asserted above).
        unsafe { core::ptr::write_volatile(w.add(i), 0) };
        i += 1;
    }
    // SAFETY: every byte is written; all-zero is valid (the caller's promise).
    unsafe { v.assume_init_mut() }
}
