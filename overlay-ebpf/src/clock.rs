//! The datapath's clock.

use aya_ebpf::helpers::bpf_ktime_get_ns;

/// CLOCK_MONOTONIC (`bpf_ktime_get_ns`, the clock userspace reads), read
/// once per frame ([`Ageing`]). The tick-resolution clock
/// (`bpf_ktime_get_coarse_ns`) was cheaper but made
/// `cni_e2e::a_container_is_published_to_the_control_plane` fail about one
/// run in four (cause not yet found): not used until it is.
#[inline(always)]
pub fn now_ns() -> u64 {
    // SAFETY: plain helper call.
    unsafe { bpf_ktime_get_ns() }
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
