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
    ETH_HLEN,
    counters::Counter,
    is_group_mac,
    parse::{Reject, VxlanRx, parse_underlay},
};

use crate::{
    access::{SkbFrame, pull_headers},
    admit::{Admitted, admit},
    deliver::{egress_vid, flood_local, flood_set, redirect_to},
    fdb::{Hit, at_remote, learn, lookup},
    maps::config,
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
    let Admitted { net_id, net, row } = admit(&rx)?;
    learn(row, net_id, net, cfg.ageing_ns, rx.inner.src, at_remote(rx.src_vtep_be))?;

    let dst = rx.inner.dst;
    let hit = if is_group_mac(&dst) { Hit::Miss } else { lookup(net_id, dst, cfg.ageing_ns) };
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
            let targets = flood_local(ctx, flood_set(net_id, row)?, net, 0, row)?;
            if targets == 0 { Err(Drop::new(row, Counter::DropFloodEmpty)) } else { Ok(TC_ACT_STOLEN) }
        }
    }
}
