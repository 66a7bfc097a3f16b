//! TC ingress of a tenant port: frames a VM or container sends.
//!
//! TC, not XDP: frames leaving a veth from a namespace are skbs that may be
//! GSO super-packets; XDP on the veth would force them to be segmented.

use aya_ebpf::{
    bindings::{TC_ACT_OK, TC_ACT_STOLEN},
    macros::classifier,
    programs::TcContext,
};
use overlay_common::{
    NO_NET, NO_VLAN,
    counters::{Counter, net_row},
    is_group_mac,
    maps::{
        FloodSet, GlobalConfig, NET_F_LEARN_IP, NET_F_NO_FLOOD_UNKNOWN, NET_F_SUPPRESS, NET_F_VXLAN,
        NetConfig, PORT_F_PRIO_TAGGED, PORT_MODE_ACCESS, PortConfig, TAIL_FLOOD_REMOTE, TrunkKey,
    },
    monitor::HOOK_TENANT_TC,
    parse::{Reject, parse_l2},
    trace::STEP_NETWORK,
};

use crate::{
    access::{SkbFrame, pull_headers},
    admit::member,
    clock::Ageing,
    deliver::{egress, flood_local, flood_set, pop, redirect_to},
    fdb::{Hit, at_port, learn, lookup_dst},
    maps::{TAIL, TRUNK_VLANS, config, network, port},
    neigh::{TenantFrame, on_tenant_frame},
    stats::{Drop, count, verdict},
    trace::{self, Live, Mode, Trace, step},
    vxlan_tx::{Encapped, encapsulate, flood_remote, lookup_hop, send_final, send_via_device},
};

#[classifier]
pub fn tenant_ingress(ctx: TcContext) -> i32 {
    run::<Live>(&ctx)
}

/// The copies of a flood to peer VTEPs, tail-called by `tenant_ingress`
/// (`TAIL[TAIL_FLOOD_REMOTE]`) with the network id and stats row in
/// `skb->cb[0..2]`. A program of its own: its `bpf_loop` callback is
/// walked by the verifier once for every state that reaches the loop, and
/// inside `tenant_ingress` that was once for every path to it (98.7% of
/// the verifier's 1M-instruction limit); here it is reached in few states.
#[classifier]
pub fn tenant_flood(ctx: TcContext) -> i32 {
    verdict::<Live>(&ctx, HOOK_TENANT_TC, try_tenant_flood(&ctx))
}

fn try_tenant_flood(ctx: &TcContext) -> Result<i32, Drop> {
    // SAFETY: reading context fields.
    let (net_id, row) = unsafe { ((*ctx.skb.skb).cb[0], (*ctx.skb.skb).cb[1]) };
    let no_network = Drop::new(row, Counter::DropNoNetwork);
    let (Some(cfg), Some(net)) = (config(), network(net_id)) else { return Err(no_network) };
    let fs = flood_set(net_id, row)?;
    flood_remote::<Live>(ctx, cfg, fs, net_id, net, row, Ageing::now(cfg.ageing_ns).now_ns)
}

/// The flood to peer VTEPs: in the `tenant_flood` program (a tail call;
/// the frame does not come back), inline in a trace.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn to_peers<M: Mode>(
    ctx: &TcContext,
    cfg: &GlobalConfig,
    fs: &FloodSet,
    net_id: u32,
    net: &NetConfig,
    row: u32,
    now: u64,
) -> Result<i32, Drop> {
    if M::TRACE {
        return flood_remote::<M>(ctx, cfg, fs, net_id, net, row, now);
    }
    // SAFETY: writing context fields the program owns (`cb`); the tail
    // call returns only when it failed.
    unsafe {
        (*ctx.skb.skb).cb[0] = net_id;
        (*ctx.skb.skb).cb[1] = row;
        TAIL.tail_call(ctx, TAIL_FLOOD_REMOTE);
    }
    Err(Drop::new(row, Counter::DropHelperFailed))
}

/// `tenant_ingress` with the trace flag, for `overlayctl trace`.
#[classifier]
pub fn tenant_trace(ctx: TcContext) -> i32 {
    run::<Trace>(&ctx)
}

#[inline(always)]
fn run<M: Mode>(ctx: &TcContext) -> i32 {
    trace::start::<M>(ctx);
    verdict::<M>(ctx, HOOK_TENANT_TC, try_tenant_ingress::<M>(ctx))
}

#[inline(always)]
fn reject(row: u32, r: Reject) -> Drop {
    match r {
        Reject::Pass(c) | Reject::Drop(c) => Drop::new(row, c),
    }
}

/// The network a frame belongs to, from the port and its VLAN tag.
#[inline(always)]
fn ingress_network(ifindex: u32, p: &PortConfig, vid: u16) -> Result<u32, Drop> {
    let not_allowed = Drop::new(0, Counter::DropVlanNotAllowed);
    if vid == NO_VLAN {
        return if p.net_id != NO_NET { Ok(p.net_id) } else { Err(not_allowed) };
    }
    if p.mode == PORT_MODE_ACCESS {
        return Err(not_allowed);
    }
    let k = TrunkKey { ifindex, vid, _pad: 0 };
    // SAFETY: plain u32 value.
    unsafe { TRUNK_VLANS.get(k) }.copied().ok_or(not_allowed)
}

fn try_tenant_ingress<M: Mode>(ctx: &TcContext) -> Result<i32, Drop> {
    let Some(cfg) = config() else {
        return Ok(TC_ACT_OK);
    };
    // SAFETY: reading context fields.
    let (ifindex, vlan_present, vlan_proto, vlan_tci) = unsafe {
        let s = &*ctx.skb.skb;
        (s.ifindex, s.vlan_present, s.vlan_proto, s.vlan_tci)
    };
    let p = port(ifindex).ok_or(Drop::new(0, Counter::DropNotAPort))?;
    pull_headers(ctx);
    let hw_tag =
        if vlan_present != 0 { Some((u16::from_be(vlan_proto as u16), vlan_tci as u16)) } else { None };
    let l2 = parse_l2(&SkbFrame(ctx), hw_tag, p.flags & PORT_F_PRIO_TAGGED != 0).map_err(|r| reject(0, r))?;
    let net_id = ingress_network(ifindex, p, l2.vid)?;
    step::<M>(STEP_NETWORK, l2.vid, net_id, ifindex, 0);
    let net = network(net_id).ok_or(Drop::new(0, Counter::DropNoNetwork))?;
    let row = net_row(net_id);
    count::<M>(row, Counter::RxTenant);
    if l2.has_tag {
        pop::<M>(ctx, l2.vid, row)?;
    }
    let t = Ageing::now(cfg.ageing_ns);
    learn::<M>(row, net_id, net, t, l2.eth.src, at_port(ifindex))?;
    if net.flags & (NET_F_SUPPRESS | NET_F_LEARN_IP) != 0 {
        let t = TenantFrame { ctx, cfg, ifindex, net_id, net, row, eth: l2.eth };
        let v = on_tenant_frame::<M>(&t);
        if v >= 0 {
            return Ok(v);
        }
    }

    let dst = l2.eth.dst;
    match lookup_dst::<M>(net_id, dst, t) {
        Hit::Port(out) if out == ifindex => Err(Drop::new(row, Counter::DropHairpin)),
        Hit::Port(out) => {
            let e = egress(out, net_id, net, row)?;
            let v = redirect_to::<M>(ctx, out, e, row)?;
            count::<M>(row, Counter::TxLocal);
            Ok(v)
        }
        Hit::Remote(vtep) if net.flags & NET_F_VXLAN != 0 => {
            let Some(member) = member(net_id, net, &vtep) else {
                return Err(Drop::new(row, Counter::DropNotMember));
            };
            // The next hop from the peer's entry (or `NEXT_HOP`).
            let hop = lookup_hop::<M>(ctx, cfg, net_id, &vtep, member, t.now_ns);
            let v = match encapsulate::<M>(ctx, cfg, net, &vtep, hop, row)? {
                Encapped::Outer(hop) => send_final::<M>(ctx, cfg, &vtep, hop, row)?,
                Encapped::ViaDevice => send_via_device::<M>(cfg, &vtep, row)?,
            };
            count::<M>(row, Counter::Encap);
            Ok(v)
        }
        Hit::Remote(_) => Err(Drop::new(row, Counter::DropNoNetwork)),
        Hit::Miss if net.flags & NET_F_NO_FLOOD_UNKNOWN != 0 && !is_group_mac(&dst) => {
            Err(Drop::new(row, Counter::DropUnknownUnicast))
        }
        Hit::Miss => {
            let fs = flood_set(net_id, row)?;
            let targets = flood_local::<M>(ctx, fs, net_id, net, ifindex, row)?;
            if net.flags & NET_F_VXLAN != 0 && fs.n_peers != 0 {
                return to_peers::<M>(ctx, cfg, fs, net_id, net, row, t.now_ns);
            }
            // Every copy was a clone; the frame itself is consumed.
            if targets == 0 { Err(Drop::new(row, Counter::DropFloodNoTarget)) } else { Ok(TC_ACT_STOLEN) }
        }
    }
}
