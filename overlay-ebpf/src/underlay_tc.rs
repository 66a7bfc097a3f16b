//! TC ingress of the underlay interface: VXLAN arriving from peer VTEPs.

use aya_ebpf::{
    bindings::{
        BPF_F_ADJ_ROOM_DECAP_L3_IPV4, BPF_F_ADJ_ROOM_FIXED_GSO, TC_ACT_OK, TC_ACT_STOLEN,
        bpf_adj_room_mode::BPF_ADJ_ROOM_MAC,
    },
    macros::classifier,
    programs::TcContext,
};
use overlay_common::{
    ETH_HLEN, ETH_P_8021AD, ETH_P_8021Q,
    counters::{Counter, net_row},
    is_group_mac, is_zero_mac,
    maps::{NET_F_ALLOW_INNER_TAG, NET_F_LEARN_UNKNOWN_PEERS, NET_F_VXLAN, PeerKey},
    parse::{Reject, VxlanRx, parse_underlay},
};

use crate::{
    access::{SkbFrame, pull_headers},
    deliver::{egress_vid, flood_local, redirect_to},
    fdb::{Hit, at_remote, learn, lookup},
    maps::{PEERS, VNI_TO_NET, config, network},
    stats::{Drop, count, count_drop},
};

#[classifier]
pub fn vtep_ingress(ctx: TcContext) -> i32 {
    match try_vtep_ingress(&ctx) {
        Ok(v) => v,
        Err(d) => count_drop(d),
    }
}

/// Removes outer IPv4/UDP/VXLAN and puts the inner Ethernet header first:
/// `[outer eth][ip udp vxlan][inner eth][payload]` loses everything after
/// the outer MAC header up to the end of the inner one, then the inner
/// Ethernet header is written over the outer.
#[inline(always)]
fn decapsulate(ctx: &TcContext, rx: &VxlanRx, row: u32) -> Result<(), Drop> {
    let helper = Drop::new(row, Counter::DropHelper);
    let room = (rx.inner_off - ETH_HLEN + ETH_HLEN) as i32;
    // DECAP_L3_IPV4 also clears the skb's tunnel state (encapsulation bit,
    // tunnel GSO type), so the frame can be encapsulated again later, e.g.
    // after a router namespace forwards it into another network.
    let flags = BPF_F_ADJ_ROOM_FIXED_GSO as u64 | BPF_F_ADJ_ROOM_DECAP_L3_IPV4 as u64;
    ctx.adjust_room(-room, BPF_ADJ_ROOM_MAC, flags).map_err(|_| helper)?;
    ctx.store(0, &rx.inner, 0).map_err(|_| helper)?;
    count(row, Counter::Decap);
    Ok(())
}

fn try_vtep_ingress(ctx: &TcContext) -> Result<i32, Drop> {
    let Some(cfg) = config() else {
        return Ok(TC_ACT_OK);
    };
    pull_headers(ctx);
    count(0, Counter::RxUnderlay);
    // SAFETY: reading a context field.
    let gso = unsafe { (*ctx.skb.skb).gso_size != 0 };
    let rx = match parse_underlay(&SkbFrame(ctx), cfg.local_vtep_be, cfg.udp_port_be, gso) {
        Ok(rx) => rx,
        Err(Reject::Pass(c)) => {
            count(0, c);
            return Ok(TC_ACT_OK);
        }
        Err(Reject::Drop(c)) => return Err(Drop::new(0, c)),
    };
    // SAFETY: plain u32 value.
    let net_id = unsafe { VNI_TO_NET.get(rx.vni) }.copied().ok_or(Drop::new(0, Counter::DropUnknownVni))?;
    let net = network(net_id).ok_or(Drop::new(0, Counter::DropUnknownVni))?;
    if net.flags & NET_F_VXLAN == 0 {
        return Err(Drop::new(0, Counter::DropUnknownVni));
    }
    let row = net_row(net_id);
    let peer = PeerKey { net_id, vtep_be: rx.src_vtep_be };
    // SAFETY: plain u32 value.
    if unsafe { PEERS.get(peer) }.is_none() && net.flags & NET_F_LEARN_UNKNOWN_PEERS == 0 {
        return Err(Drop::new(row, Counter::DropNotPeer));
    }
    let inner_type = u16::from_be(rx.inner.ethertype_be);
    if (inner_type == ETH_P_8021Q || inner_type == ETH_P_8021AD) && net.flags & NET_F_ALLOW_INNER_TAG == 0 {
        return Err(Drop::new(row, Counter::DropInnerTagged));
    }
    if is_group_mac(&rx.inner.src) || is_zero_mac(&rx.inner.src) {
        return Err(Drop::new(row, Counter::DropSrcMac));
    }
    learn(row, net_id, rx.inner.src, at_remote(rx.src_vtep_be))?;

    let dst = rx.inner.dst;
    let hit = if is_group_mac(&dst) { Hit::Miss } else { lookup(row, net_id, dst, cfg.ageing_ns) };
    match hit {
        Hit::Port(out) => {
            let vid = egress_vid(out, net_id, net).ok_or(Drop::new(row, Counter::DropNoNetwork))?;
            decapsulate(ctx, &rx, row)?;
            let v = redirect_to(ctx, out, vid, row)?;
            count(row, Counter::TxLocal);
            Ok(v)
        }
        // Split horizon: what came from the overlay never goes back into it.
        Hit::Remote(_) => Err(Drop::new(row, Counter::DropSplitHorizon)),
        Hit::Miss => {
            decapsulate(ctx, &rx, row)?;
            // Split horizon: local ports only, never other VTEPs.
            let targets = flood_local(ctx, net_id, net, 0, row)?;
            if targets == 0 { Err(Drop::new(row, Counter::DropFloodEmpty)) } else { Ok(TC_ACT_STOLEN) }
        }
    }
}
