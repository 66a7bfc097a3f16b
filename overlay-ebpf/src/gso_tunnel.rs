//! GSO super-packets over an IPv6 underlay with outer UDP checksums.
//!
//! RFC 8200 wants the outer UDP checksum, and Linux's vxlan at its
//! defaults drops frames without one. A single frame gets it from
//! `udp_csum`. A GSO super-packet's segments get theirs from segmentation
//! only when the skb is marked `SKB_GSO_UDP_TUNNEL_CSUM`, which no BPF
//! helper can set (`bpf_skb_adjust_room` marks `SKB_GSO_UDP_TUNNEL`: every
//! segment would carry the super-packet's checksum field). So such a frame
//! goes, still unencapsulated, to the kernel's VXLAN device in `external`
//! mode with its tunnel key (VNI, peer, source, TTL, flow label): the
//! device encapsulates, marks the checksum and routes it, and the
//! segmentation (or the NIC) fills each segment's checksum. Single frames
//! keep the BPF path, which skips the device.

use core::mem::size_of;

use aya_ebpf::{
    EbpfContext,
    bindings::{BPF_F_TUNINFO_IPV6, bpf_tunnel_key},
    helpers::{bpf_redirect, bpf_skb_set_tunnel_key},
    programs::TcContext,
};
use overlay_common::{
    VtepAddr,
    maps::{CFG_F_IPV6, CFG_F_UDP6_ZERO_CSUM, GlobalConfig},
};

/// Whether `ctx` must take the device: a GSO super-packet over IPv6 with
/// checksums.
#[inline(always)]
pub fn wanted(ctx: &TcContext, cfg: &GlobalConfig) -> bool {
    // SAFETY: reading a context field.
    let gso = unsafe { (*ctx.skb.skb).gso_size != 0 };
    gso && cfg.flags & (CFG_F_IPV6 | CFG_F_UDP6_ZERO_CSUM) == CFG_F_IPV6
}

/// Sets the frame's tunnel key: VNI `vni` to `dst_be`, from the local
/// VTEP, with the instance's TTL and flow label `label`. Not inlined: the
/// 44-byte key stays out of the program's frame.
#[inline(never)]
pub fn set_key(ctx: &TcContext, cfg: &GlobalConfig, vni: u32, dst_be: &VtepAddr, label: u32) -> bool {
    // SAFETY: all-zero is a valid bpf_tunnel_key.
    let mut k: bpf_tunnel_key = unsafe { core::mem::zeroed() };
    k.tunnel_id = vni;
    k.__bindgen_anon_1.remote_ipv6 = *dst_be;
    k.__bindgen_anon_3.local_ipv6 = cfg.local_vtep_be;
    k.tunnel_ttl = cfg.ttl;
    // Host order: the helper converts and masks it to 20 bits.
    k.tunnel_label = label & 0x000f_ffff;
    // SAFETY: helper on our context with a key of the declared size.
    let r = unsafe {
        bpf_skb_set_tunnel_key(
            ctx.as_ptr() as *mut _,
            &mut k,
            size_of::<bpf_tunnel_key>() as u32,
            BPF_F_TUNINFO_IPV6 as u64,
        )
    };
    r == 0
}

/// Hands the frame to the device (the program's last action).
#[inline(always)]
pub fn redirect(cfg: &GlobalConfig) -> i64 {
    // SAFETY: plain helper call.
    unsafe { bpf_redirect(cfg.gso_tunnel_ifindex, 0) }
}
