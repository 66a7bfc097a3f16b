//! XDP on the underlay: the fast path for known-unicast VXLAN.
//!
//! Only frames this program can finish are handled here: VXLAN for a known
//! VNI from a peer, an untagged inner frame with a valid source, whose
//! destination is a learned or static local port that takes it untagged and
//! is marked as an XDP target (its far end runs NAPI, so a redirected frame
//! is never dropped by the kernel unseen).
//! Those are decapsulated by moving the packet start past the outer headers
//! (`bpf_xdp_adjust_head`, nothing is copied) and redirected to the port.
//! Everything else, including every frame that is dropped, goes on to the TC
//! program with XDP_PASS, which decides and counts: nothing is counted twice.

use aya_ebpf::{
    bindings::xdp_action::{XDP_PASS, XDP_REDIRECT},
    helpers::{bpf_redirect, bpf_xdp_adjust_head},
    macros::xdp,
    programs::XdpContext,
};
use overlay_common::{
    ETH_P_8021AD, ETH_P_8021Q, NO_VLAN,
    counters::{Counter, net_row},
    is_group_mac, is_zero_mac,
    maps::{NET_F_LEARN_UNKNOWN_PEERS, NET_F_VXLAN, PORT_F_XDP_TARGET, PeerKey},
    parse::parse_underlay,
};

use crate::{
    access::XdpFrame,
    deliver::egress_vid,
    fdb::{Hit, at_remote, learn, lookup},
    maps::{PEERS, VNI_TO_NET, config, network, port},
    stats::count,
};

#[xdp]
pub fn vtep_xdp(ctx: XdpContext) -> u32 {
    // Every refusal is a pass to TC, which counts it.
    try_vtep_xdp(&ctx).unwrap_or(XDP_PASS)
}

#[inline(always)]
fn try_vtep_xdp(ctx: &XdpContext) -> Option<u32> {
    let cfg = config()?;
    let rx = parse_underlay(&XdpFrame(ctx), cfg.local_vtep_be, cfg.udp_port_be, false).ok()?;
    // SAFETY: plain u32 value.
    let net_id = unsafe { VNI_TO_NET.get(rx.vni) }.copied()?;
    let net = network(net_id)?;
    if net.flags & NET_F_VXLAN == 0 {
        return None;
    }
    let peer = PeerKey { net_id, vtep_be: rx.src_vtep_be };
    // SAFETY: plain u32 value.
    if unsafe { PEERS.get(peer) }.is_none() && net.flags & NET_F_LEARN_UNKNOWN_PEERS == 0 {
        return None;
    }
    let inner_type = u16::from_be(rx.inner.ethertype_be);
    if inner_type == ETH_P_8021Q || inner_type == ETH_P_8021AD {
        return None;
    }
    let (src, dst) = (rx.inner.src, rx.inner.dst);
    if is_group_mac(&src) || is_zero_mac(&src) || is_group_mac(&dst) {
        return None;
    }
    let row = net_row(net_id);
    let Hit::Port(out) = lookup(row, net_id, dst, cfg.ageing_ns) else { return None };
    if egress_vid(out, net_id, net)? != NO_VLAN || port(out)?.flags & PORT_F_XDP_TARGET == 0 {
        return None;
    }
    learn(row, net_id, src, at_remote(rx.src_vtep_be)).ok()?;
    let off = rx.inner_off as i32;
    // SAFETY: helper on our own context; the verifier re-checks pointers.
    if unsafe { bpf_xdp_adjust_head(ctx.ctx, off) } != 0 {
        return None;
    }
    // SAFETY: plain helper call.
    if unsafe { bpf_redirect(out, 0) } != XDP_REDIRECT as i64 {
        // Put the outer headers back and let TC deal with it.
        // SAFETY: as above; restores the original start.
        let _ = unsafe { bpf_xdp_adjust_head(ctx.ctx, -off) };
        return None;
    }
    count(0, Counter::RxUnderlay);
    count(row, Counter::Decap);
    count(row, Counter::TxLocal);
    count(row, Counter::XdpRedirect);
    Some(XDP_REDIRECT)
}
