//! Sending frames to local ports, with the 802.1Q tag the port needs.

use aya_ebpf::{
    EbpfContext,
    bindings::TC_ACT_REDIRECT,
    helpers::{bpf_redirect, bpf_skb_vlan_pop, bpf_skb_vlan_push},
    programs::TcContext,
};
use overlay_common::{
    ETH_P_8021Q, MAX_FLOOD_PORTS, NO_VLAN,
    counters::Counter,
    maps::{NetConfig, PORT_MODE_TRUNK},
};

use crate::{
    maps::{FLOOD, port},
    stats::{Drop, add},
};

/// The VID a frame of `net_id` carries when leaving `ifindex`
/// ([`NO_VLAN`] = untagged), or `None` if the port is not in the network.
#[inline(always)]
pub fn egress_vid(ifindex: u32, net_id: u32, net: &NetConfig) -> Option<u16> {
    let p = port(ifindex)?;
    if p.net_id == net_id {
        Some(NO_VLAN)
    } else if p.mode == PORT_MODE_TRUNK && net.vlan != NO_VLAN {
        Some(net.vlan)
    } else {
        None
    }
}

#[inline(always)]
fn push(ctx: &TcContext, vid: u16) -> Result<(), ()> {
    if vid == NO_VLAN {
        return Ok(());
    }
    // SAFETY: helper call on our own context.
    let r = unsafe { bpf_skb_vlan_push(ctx.as_ptr() as *mut _, ETH_P_8021Q.to_be(), vid) };
    if r == 0 { Ok(()) } else { Err(()) }
}

#[inline(always)]
pub fn pop(ctx: &TcContext) -> Result<(), ()> {
    // SAFETY: helper call on our own context.
    let r = unsafe { bpf_skb_vlan_pop(ctx.as_ptr() as *mut _) };
    if r == 0 { Ok(()) } else { Err(()) }
}

/// Sends a copy to `ifindex`, tagged with `vid`; the frame itself is left
/// untagged for the next copy.
#[inline(always)]
fn clone_to(ctx: &TcContext, ifindex: u32, vid: u16) -> Result<(), ()> {
    push(ctx, vid)?;
    let r = ctx.clone_redirect(ifindex, 0);
    if vid != NO_VLAN {
        pop(ctx)?;
    }
    r.map_err(|_| ())
}

/// Hands the frame itself to `ifindex` (the program's last action).
#[inline(always)]
pub fn redirect_to(ctx: &TcContext, ifindex: u32, vid: u16, row: u32) -> Result<i32, Drop> {
    push(ctx, vid).map_err(|_| Drop::new(row, Counter::DropHelper))?;
    // SAFETY: plain helper call.
    let r = unsafe { bpf_redirect(ifindex, 0) };
    if r == TC_ACT_REDIRECT as i64 { Ok(TC_ACT_REDIRECT) } else { Err(Drop::new(row, Counter::DropHelper)) }
}

/// Copies the frame to every local port of the network except `skip`.
/// All but one copy are clones; the last target is returned (with its VID)
/// for the caller to send the frame itself there, or to clone it as well.
#[inline(always)]
pub fn flood_local(ctx: &TcContext, net_id: u32, net: &NetConfig, skip: u32, row: u32) -> Option<(u32, u16)> {
    let fs = FLOOD.get(net_id)?;
    let n = fs.n_ports as usize;
    let mut pending: Option<(u32, u16)> = None;
    let mut copies = 0u64;
    let mut i = 0usize;
    while i < MAX_FLOOD_PORTS {
        if i >= n {
            break;
        }
        let p = fs.ports[i];
        i += 1;
        if p == skip {
            continue;
        }
        let Some(vid) = egress_vid(p, net_id, net) else {
            continue;
        };
        if let Some((pp, pv)) = pending {
            if clone_to(ctx, pp, pv).is_ok() {
                copies += 1;
            } else {
                add(row, Counter::DropHelper, 1);
            }
        }
        pending = Some((p, vid));
    }
    add(row, Counter::FloodLocal, copies);
    pending
}

/// Sends the pending flood target a clone (when more copies follow).
#[inline(always)]
pub fn clone_pending(ctx: &TcContext, pending: Option<(u32, u16)>, row: u32) {
    if let Some((p, vid)) = pending {
        if clone_to(ctx, p, vid).is_ok() {
            add(row, Counter::FloodLocal, 1);
        } else {
            add(row, Counter::DropHelper, 1);
        }
    }
}
