//! The datapath's clock.

use aya_ebpf::helpers::bpf_ktime_get_coarse_ns;

/// CLOCK_MONOTONIC_COARSE (`bpf_ktime_get_coarse_ns`: the time of the last
/// tick, a few ms fine, cheaper than reading the clock source), read once
/// per frame ([`Ageing`]). Every interval the datapath keeps is 0.5 s or
/// more. Userspace compares against these timestamps with the same clock
/// (`overlay_user::fdb::datapath_now_ns`). The monitor keeps the precise
/// clock for its event times.
#[inline(always)]
pub fn now_ns() -> u64 {
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
