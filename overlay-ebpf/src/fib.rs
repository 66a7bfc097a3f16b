//! FIB lookups between VTEP addresses, in the instance's underlay family.

use aya_ebpf::bindings::bpf_fib_lookup as FibParams;
use overlay_common::{
    VtepAddr,
    maps::{CFG_F_IPV6, GlobalConfig},
    vtep::{vtep_v4, vtep_v4_be},
};

pub const AF_INET: u8 = 2;
pub const AF_INET6: u8 = 10;

/// The address family of the underlay (`AF_INET` or `AF_INET6`).
#[inline(always)]
pub fn family(cfg: &GlobalConfig) -> u8 {
    if cfg.flags & CFG_F_IPV6 != 0 { AF_INET6 } else { AF_INET }
}

/// Sets family, source and destination of a zeroed parameter block.
#[inline(always)]
pub fn set_addrs(p: &mut FibParams, cfg: &GlobalConfig, src: &VtepAddr, dst: &VtepAddr) {
    p.family = family(cfg);
    if p.family == AF_INET6 {
        p.__bindgen_anon_3.ipv6_src = *src;
        p.__bindgen_anon_4.ipv6_dst = *dst;
    } else {
        p.__bindgen_anon_3.ipv4_src = vtep_v4_be(src);
        p.__bindgen_anon_4.ipv4_dst = vtep_v4_be(dst);
    }
}

/// The destination field after a lookup: the gateway (or the destination
/// itself when directly connected).
#[inline(always)]
pub fn gateway(p: &FibParams) -> VtepAddr {
    // SAFETY: the union member of the family the lookup used.
    unsafe {
        if p.family == AF_INET6 { p.__bindgen_anon_4.ipv6_dst } else { vtep_v4(p.__bindgen_anon_4.ipv4_dst) }
    }
}
