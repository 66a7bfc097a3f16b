//! The one bounds-checked way to read packet bytes.
//!
//! The BPF programs implement [`Frame`] over their context (checking against
//! `data_end`, which the verifier understands); host code and tests use the
//! slice implementation. The parsers in [`crate::parse`] are generic over it,
//! so the host and the kernel run the same parsing logic.

use core::mem::size_of;

pub trait Frame {
    /// Length of the whole frame on the wire (may exceed the readable part).
    fn wire_len(&self) -> usize;
    /// Reads a `T` at byte offset `off`, or `None` if it does not fit.
    fn read<T: Copy>(&self, off: usize) -> Option<T>;

    /// The ones'-complement sum of the big-endian 16-bit words of the `N`
    /// bytes at `off` (`N` a multiple of 4), folded to 16 bits; `None` if
    /// they do not fit. (The programs override this with `bpf_csum_diff`.)
    #[inline(always)]
    fn sum16<const N: usize>(&self, off: usize) -> Option<u16> {
        let b: [u8; N] = self.read(off)?;
        let mut acc = 0u32;
        let mut i = 0;
        while i + 1 < N {
            acc += ((b[i] as u32) << 8) | b[i + 1] as u32;
            i += 2;
        }
        Some(fold16(acc))
    }
}

/// Folds a 32-bit ones'-complement sum to 16 bits.
#[inline(always)]
pub const fn fold16(mut acc: u32) -> u16 {
    acc = (acc & 0xffff) + (acc >> 16);
    acc = (acc & 0xffff) + (acc >> 16);
    acc as u16
}

impl Frame for [u8] {
    #[inline]
    fn wire_len(&self) -> usize {
        self.len()
    }

    #[inline]
    fn read<T: Copy>(&self, off: usize) -> Option<T> {
        let end = off.checked_add(size_of::<T>())?;
        if end > self.len() {
            return None;
        }
        // SAFETY: bounds checked above; read_unaligned has no alignment needs
        // and `T` is a plain-bytes header type.
        Some(unsafe { core::ptr::read_unaligned(self.as_ptr().add(off) as *const T) })
    }
}
