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
