//! Per-CPU counters.

use overlay_common::{
    counters::{Counter, stats_index},
    trace::{STEP_COUNT, TraceStep},
};

use crate::{
    maps::STATS,
    trace::{Live, Mode, push},
};

/// Adds one to counter `c` of `row` (a trace records it instead).
#[inline(always)]
pub fn count<M: Mode>(row: u32, c: Counter) {
    if M::TRACE {
        push(TraceStep { kind: STEP_COUNT, counter: c as u8, vid: 0, a: row, b: 0, c: 0, addr: [0; 4] });
    } else {
        add(row, c, 1);
    }
}

/// [`count`] of the live programs (XDP, the monitor).
#[inline(always)]
pub fn count_live(row: u32, c: Counter) {
    count::<Live>(row, c);
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

/// A kernel helper's failure as a counted `drop_helper_failed` of `row`.
pub trait OrDrop<T> {
    fn or_drop(self, row: u32) -> Result<T, Drop>;
}

impl<T, E> OrDrop<T> for Result<T, E> {
    #[inline(always)]
    fn or_drop(self, row: u32) -> Result<T, Drop> {
        self.map_err(|_| Drop::new(row, Counter::DropHelperFailed))
    }
}

/// A helper's return code (0 = success) as a result.
#[inline(always)]
pub fn helper_ok(r: i64, row: u32) -> Result<(), Drop> {
    if r == 0 { Ok(()) } else { Err(Drop::new(row, Counter::DropHelperFailed)) }
}

/// The verdict of a `bpf_redirect*` helper: `TC_ACT_REDIRECT`, or a
/// counted failure.
#[inline(always)]
pub fn redirect_verdict(r: i64, row: u32) -> Result<i32, Drop> {
    let redirect = aya_ebpf::bindings::TC_ACT_REDIRECT;
    if r == redirect as i64 { Ok(redirect) } else { Err(Drop::new(row, Counter::DropHelperFailed)) }
}

/// The end of a TC entry point: the verdict, or a counted drop (with a
/// monitor event, from the live programs).
#[inline(always)]
pub fn verdict<M: Mode>(ctx: &aya_ebpf::programs::TcContext, hook: u8, r: Result<i32, Drop>) -> i32 {
    match r {
        Ok(v) => v,
        Err(d) => {
            if !M::TRACE {
                crate::monitor::on_drop(ctx, hook, d);
            }
            count_drop::<M>(d)
        }
    }
}

/// Counts a drop and returns the TC verdict for it.
#[inline(always)]
pub fn count_drop<M: Mode>(d: Drop) -> i32 {
    count::<M>(d.row, d.reason);
    aya_ebpf::bindings::TC_ACT_SHOT
}
