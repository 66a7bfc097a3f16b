//! TC ingress of the underlay interface: VXLAN, GENEVE and GRE arriving
//! from peer VTEPs.

use aya_ebpf::{
    EbpfContext,
    bindings::{
        BPF_CSUM_LEVEL_QUERY, BPF_F_ADJ_ROOM_DECAP_L3_IPV4, BPF_F_ADJ_ROOM_DECAP_L3_IPV6,
        BPF_F_ADJ_ROOM_FIXED_GSO, TC_ACT_OK, TC_ACT_STOLEN, bpf_adj_room_mode::BPF_ADJ_ROOM_MAC,
    },
    helpers::{bpf_csum_level, bpf_skb_change_tail},
    macros::classifier,
    programs::TcContext,
};
use overlay_common::{
    ETH_P_IPV4, ETH_P_IPV6, NO_VLAN, PACKET_OTHERHOST,
    counters::Counter,
    is_group_mac,
    maps::{CFG_F_IPV6, NET_F_NO_FLOOD_UNKNOWN},
    monitor::HOOK_VTEP_TC,
    parse::{Reject, TunnelRx, parse_underlay},
    trace::{STEP_DECAP, STEP_NETWORK},
};

use crate::{
    access::{SkbFrame, pull_headers},
    admit::{Admitted, admit},
    clock::Ageing,
    deliver::{egress, flood_local, flood_set, redirect_to},
    fdb::{Hit, at_remote, learn, lookup_dst},
    maps::config,
    rpf::source_ok,
    stats::{Drop, OrDrop, count, helper_ok, verdict},
    trace::{self, Live, Mode, Trace, step},
};

#[classifier]
pub fn vtep_ingress(ctx: TcContext) -> i32 {
    run::<Live>(&ctx)
}

/// `vtep_ingress` with the trace flag, for `overlayctl trace --underlay`.
#[classifier]
pub fn vtep_trace(ctx: TcContext) -> i32 {
    run::<Trace>(&ctx)
}

#[inline(always)]
fn run<M: Mode>(ctx: &TcContext) -> i32 {
    trace::start::<M>(ctx);
    verdict::<M>(ctx, HOOK_VTEP_TC, try_vtep_ingress::<M>(ctx))
}

/// Removes outer IPv4/UDP/VXLAN (or GENEVE with its options, or GRE) and
/// puts the inner Ethernet header first:
/// `[outer eth][ip udp vxlan][inner eth][payload]` loses the bytes between
/// the start of the frame and the inner Ethernet header (the outer MAC
/// header stays in place and is overwritten by the inner one). Bytes past
/// the inner frame's length (from the UDP length) are cut off.
#[inline(always)]
fn decapsulate<M: Mode>(ctx: &TcContext, rx: &TunnelRx, row: u32) -> Result<(), Drop> {
    step::<M>(STEP_DECAP, 0, 0, 0, 0);
    let room = rx.inner_off as i32;
    // DECAP_L3_* names the L3 protocol the frame carries once the outer
    // headers are gone (skb->protocol follows it), and the helper refuses
    // to leave fewer bytes than that header's (without the flag: than the
    // outer protocol's, 40 over IPv6). The inner frame's: IPv4 or IPv6; a
    // non-IP inner frame (an ARP reply can be 42 bytes) takes IPv4's 20,
    // and its skb->protocol is set again when the veth it goes to
    // receives it.
    let l3 = if rx.inner.ethertype_be == ETH_P_IPV6.to_be() {
        BPF_F_ADJ_ROOM_DECAP_L3_IPV6
    } else {
        BPF_F_ADJ_ROOM_DECAP_L3_IPV4
    } as u64;
    let flags = BPF_F_ADJ_ROOM_FIXED_GSO as u64 | l3;
    ctx.adjust_room(-room, BPF_ADJ_ROOM_MAC, flags).or_drop(row)?;
    // The inner Ethernet header over the outer one: written directly
    // (the adjusted head is linear: the parser pulled the inner header).
    SkbFrame(ctx).write(0, &rx.inner).ok_or(Drop::new(row, Counter::DropHelperFailed))?;
    if ctx.len() as usize > rx.inner_len {
        // SAFETY: helper on our own context (never a GSO frame: the parser
        // refuses super-packets with trailing bytes).
        helper_ok(unsafe { bpf_skb_change_tail(ctx.as_ptr() as *mut _, rx.inner_len as u32, 0) }, row)?;
    }
    count::<M>(row, Counter::Decap);
    Ok(())
}

/// The outer UDP checksum of a frame over IPv6 (the parser refused a zero
/// one unless `udp6_zero_checksum` allows it). Trusted without summing
/// when zero is allowed and sent, when the kernel verified it
/// (CHECKSUM_UNNECESSARY, as a NIC or GRO reports it), and for GSO
/// super-packets (built by GRO, which verified every segment, or by a
/// sender on this machine); otherwise summed here.
#[inline(always)]
fn udp6_checksum_ok(ctx: &TcContext, rx: &TunnelRx, gso: bool) -> bool {
    use overlay_common::{frame::Frame, headers::UdpHdr};
    // The checksum code sums the addresses and datagram at fixed offsets.
    if rx.l4_off != overlay_common::offsets::UDP6 {
        return false;
    }
    let Some(udp) = SkbFrame(ctx).read::<UdpHdr>(rx.l4_off) else { return false };
    if udp.check_be == 0 || gso {
        return true;
    }
    // SAFETY: helper on our context; QUERY changes nothing.
    if unsafe { bpf_csum_level(ctx.as_ptr() as *mut _, BPF_CSUM_LEVEL_QUERY as u64) } >= 0 {
        return true;
    }
    let udp_len = u16::from_be(udp.len_be) as u32;
    crate::udp_csum::verify6(ctx, udp_len)
}

fn try_vtep_ingress<M: Mode>(ctx: &TcContext) -> Result<i32, Drop> {
    let Some(cfg) = config() else {
        return Ok(TC_ACT_OK);
    };
    pull_headers(ctx);
    count::<M>(0, Counter::RxUnderlay);
    // SAFETY: reading a context field.
    let gso = unsafe { (*ctx.skb.skb).gso_size != 0 };
    let rx = match parse_underlay(&SkbFrame(ctx), cfg, gso) {
        Ok(rx) => rx,
        Err(Reject::Pass(c)) => {
            count::<M>(0, c);
            return Ok(TC_ACT_OK);
        }
        Err(Reject::Drop(c)) => return Err(Drop::new(0, c)),
    };
    // SAFETY: reading a context field.
    if unsafe { (*ctx.skb.skb).pkt_type } == PACKET_OTHERHOST {
        return Err(Drop::new(0, Counter::DropOtherHost));
    }
    let v6 = cfg.flags & CFG_F_IPV6 != 0;
    if v6 && !udp6_checksum_ok(ctx, &rx, gso) {
        return Err(Drop::new(0, Counter::DropUdpChecksum));
    }
    let Admitted { net_id, net, row, sender } = admit(&rx, &cfg.local_vtep_be)?;
    step::<M>(STEP_NETWORK, NO_VLAN, net_id, cfg.underlay_ifindex, rx.vni);
    let t = Ageing::now(cfg.ageing_ns);
    let (underlay, src, local) = (cfg.underlay_ifindex, &rx.src_vtep_be, &cfg.local_vtep_be);
    if !source_ok::<M>(ctx.as_ptr(), cfg, underlay, net_id, sender, src, local, t.now_ns) {
        return Err(Drop::new(row, Counter::DropRpFilter));
    }
    learn::<M>(row, net_id, net, t, rx.inner.src, at_remote(rx.src_vtep_be))?;

    let dst = rx.inner.dst;
    match lookup_dst::<M>(net_id, dst, t) {
        Hit::Port(out) => {
            let mut e = egress(out, net_id, net, row)?;
            // Straight to a namespace only when the inner frame is IPv4:
            // no receive path runs again to set skb->protocol, which still
            // says IPv4 (the outer header's) after decapsulation.
            e.peer &= rx.inner.ethertype_be == ETH_P_IPV4.to_be();
            decapsulate::<M>(ctx, &rx, row)?;
            let v = redirect_to::<M>(ctx, out, e, row)?;
            count::<M>(row, Counter::TxLocal);
            Ok(v)
        }
        // Split horizon: what came from the overlay never goes back into it.
        Hit::Remote(_) => Err(Drop::new(row, Counter::DropSplitHorizon)),
        Hit::Miss if net.flags & NET_F_NO_FLOOD_UNKNOWN != 0 && !is_group_mac(&dst) => {
            Err(Drop::new(row, Counter::DropUnknownUnicast))
        }
        Hit::Miss => {
            decapsulate::<M>(ctx, &rx, row)?;
            // Split horizon: local ports only, never other VTEPs.
            let targets = flood_local::<M>(ctx, flood_set(net_id, row)?, net_id, net, 0, row)?;
            if targets == 0 { Err(Drop::new(row, Counter::DropFloodNoTarget)) } else { Ok(TC_ACT_STOLEN) }
        }
    }
}
