//! Per-CPU counters.

use overlay_common::counters::{Counter, stats_index};

use crate::maps::STATS;

#[inline(always)]
pub fn count(row: u32, c: Counter) {
    add(row, c, 1);
}

#[inline(always)]
pub fn add(row: u32, c: Counter, n: u64) {
    if let Some(p) = STATS.get_ptr_mut(stats_index(row, c)) {
        // SAFETY: per-CPU slot, no concurrent writer on this CPU.
        unsafe { *p += n };
    }
}

/// A counted drop: the row (network) and the reason.
#[derive(Clone, Copy)]
pub struct Drop {
    pub row: u32,
    pub reason: Counter,
}

impl Drop {
    #[inline(always)]
    pub const fn new(row: u32, reason: Counter) -> Self {
        Self { row, reason }
    }
}

/// Counts a drop and returns the TC verdict for it.
#[inline(always)]
pub fn count_drop(d: Drop) -> i32 {
    count(d.row, d.reason);
    aya_ebpf::bindings::TC_ACT_SHOT
}
