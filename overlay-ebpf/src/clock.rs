//! The datapath's clock.

use aya_ebpf::helpers::{bpf_jiffies64, bpf_ktime_get_coarse_ns};

use crate::maps::CLOCK;

/// CLOCK_MONOTONIC_COARSE (the time of the last tick, a few ms fine), read
/// once per frame ([`Ageing`]). Every interval the datapath keeps is 0.5 s
/// or more. Userspace compares against these timestamps with the same
/// clock (`overlay_user::fdb::datapath_now_ns`). The monitor keeps the
/// precise clock for its event times.
///
/// The coarse clock only moves at a tick, together with `jiffies`: the
/// per-CPU `CLOCK` entry keeps the reading of the current jiffy, and
/// `bpf_jiffies64` (one load once the verifier inlines it) says whether it
/// still is. The helper, `bpf_ktime_get_coarse_ns`, runs once per jiffy
/// and CPU. (In the instant between a tick's jiffies update and its clock
/// update, a reading can be kept for the new jiffy a tick behind.) The
/// trace programs write the entry too: it holds nothing but the clock's
/// own reading, so a trace still changes nothing a frame would see.
#[inline(always)]
pub fn now_ns() -> u64 {
    // SAFETY: plain helper call (inlined by the verifier).
    let j = unsafe { bpf_jiffies64() };
    let Some(c) = CLOCK.get_ptr_mut(0) else {
        return read_ns();
    };
    // SAFETY: this CPU's entry of a per-CPU array. The reading is stored
    // before its jiffy: a program that ran in between on this CPU (under
    // PREEMPT_RT) finds the old jiffy and reads the clock itself.
    let c = unsafe { &mut *c };
    if c.jiffies != j {
        c.now_ns = read_ns();
        c.jiffies = j;
    }
    c.now_ns
}

/// The same clock read with the helper: for the frames off the hot path
/// (ARP, neighbour discovery), whose BPF functions' frames stack on the
/// programs' (the per-CPU entry's pointer would take a stack slot there).
#[inline(always)]
pub fn read_ns() -> u64 {
    // SAFETY: plain helper call.
    unsafe { bpf_ktime_get_coarse_ns() }
}

/// The time a frame is handled at (read once per frame) and the
/// instance's ageing time: what FDB lookups and learning compare.
#[derive(Clone, Copy)]
pub struct Ageing {
    pub now_ns: u64,
    pub ageing_ns: u64,
}

impl Ageing {
    #[inline(always)]
    pub fn now(ageing_ns: u64) -> Self {
        Self { now_ns: now_ns(), ageing_ns }
    }
}
