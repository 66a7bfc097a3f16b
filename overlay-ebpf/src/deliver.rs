//! Sending frames to local ports, with the 802.1Q tag the port needs.

use aya_ebpf::{
    EbpfContext,
    bindings::__sk_buff,
    cty::c_void,
    helpers::{
        bpf_clone_redirect, bpf_loop, bpf_redirect, bpf_redirect_peer, bpf_skb_change_type, bpf_skb_vlan_pop,
        bpf_skb_vlan_push,
    },
    programs::TcContext,
};
use overlay_common::{
    ETH_P_8021Q, MAX_FLOOD_PORTS, NO_VLAN, PACKET_HOST,
    counters::Counter,
    maps::{FloodSet, NetConfig, PORT_F_PEER_ELSEWHERE, PORT_MODE_TRUNK, TrunkKey},
};

use overlay_common::trace::{STEP_EGRESS, STEP_FLOOD_LOCAL, STEP_POP};

use crate::{
    maps::{TRUNK_VLANS, port},
    stats::{Drop, count, helper_ok, redirect_verdict},
    trace::{Mode, step},
};

/// Whether trunk port `ifindex` carries network `net_id` tagged `vid`
/// right now.
#[inline(always)]
fn trunk_carries(ifindex: u32, vid: u16, net_id: u32) -> bool {
    let k = TrunkKey { ifindex, vid, _pad: 0 };
    // SAFETY: plain u32 value.
    unsafe { TRUNK_VLANS.get(k) }.is_some_and(|n| *n == net_id)
}

/// How a frame leaves a port.
#[derive(Clone, Copy)]
pub struct Egress {
    /// The VID it carries ([`NO_VLAN`] = untagged).
    pub vid: u16,
    /// Handed to the veth peer's ingress (`bpf_redirect_peer`).
    pub peer: bool,
}

/// How a frame of `net_id` leaves `ifindex`, checked against the port's
/// membership as it is now (access network, native network, or trunk
/// list), whatever the FDB says: a stale entry never sends a frame into
/// another network.
#[inline(always)]
pub fn egress(ifindex: u32, net_id: u32, net: &NetConfig, row: u32) -> Result<Egress, Drop> {
    let not_member = Drop::new(row, Counter::DropNotMember);
    let p = port(ifindex).ok_or(not_member)?;
    let peer = p.flags & PORT_F_PEER_ELSEWHERE != 0;
    if p.net_id == net_id {
        Ok(Egress { vid: NO_VLAN, peer })
    } else if p.mode == PORT_MODE_TRUNK && net.vlan != NO_VLAN && trunk_carries(ifindex, net.vlan, net_id) {
        Ok(Egress { vid: net.vlan, peer })
    } else {
        Err(not_member)
    }
}

#[inline(always)]
fn push(ctx: &TcContext, vid: u16, row: u32) -> Result<(), Drop> {
    if vid == NO_VLAN {
        return Ok(());
    }
    // SAFETY: helper call on our own context.
    helper_ok(unsafe { bpf_skb_vlan_push(ctx.as_ptr() as *mut _, ETH_P_8021Q.to_be(), vid) }, row)
}

/// Removes the frame's tag (`vid`, recorded by a trace).
#[inline(always)]
pub fn pop<M: Mode>(ctx: &TcContext, vid: u16, row: u32) -> Result<(), Drop> {
    step::<M>(STEP_POP, vid, 0, 0, 0);
    // SAFETY: helper call on our own context.
    helper_ok(unsafe { bpf_skb_vlan_pop(ctx.as_ptr() as *mut _) }, row)
}

/// Hands a unicast frame to `ifindex` (the program's last action). To a
/// veth whose peer is in another namespace it goes straight to the peer's
/// ingress, as Cilium delivers to pods: no veth transmit, no backlog queue.
/// The frame is for the MAC that lives there, so it is `PACKET_HOST`, as
/// the veth's own receive path would have marked it.
#[inline(always)]
pub fn redirect_to<M: Mode>(ctx: &TcContext, ifindex: u32, e: Egress, row: u32) -> Result<i32, Drop> {
    step::<M>(STEP_EGRESS, e.vid, ifindex, e.peer as u32, 0);
    push(ctx, e.vid, row)?;
    if e.peer {
        // SAFETY: reading a context field; helper calls on our own context.
        unsafe {
            // A decapsulated frame came to this host's own MAC: already so.
            if (*ctx.skb.skb).pkt_type != PACKET_HOST {
                helper_ok(bpf_skb_change_type(ctx.as_ptr() as *mut _, PACKET_HOST), row)?;
            }
            return redirect_verdict(bpf_redirect_peer(ifindex, 0), row);
        }
    }
    // SAFETY: plain helper call.
    redirect_verdict(unsafe { bpf_redirect(ifindex, 0) }, row)
}

/// What the `bpf_loop` callback needs to send one flood copy.
#[repr(C)]
struct FloodCtx {
    skb: *mut __sk_buff,
    fs: *const FloodSet,
    tagged: u32,
    skip: u32,
    row: u32,
    net_id: u32,
    /// The network's VID (tagged members).
    vid: u32,
    /// Copies sent so far.
    sent: u32,
}

/// `bpf_loop` callback: clones the frame to member `index` of the list.
/// Verified once, however many paths reach the loop and however long the
/// list (a plain loop multiplied the verifier's work past its limit).
/// Each copy goes only to a port that is a member of the network right
/// now (the flood set may be older than a membership change).
/// A trace records each copy instead of sending it.
extern "C" fn flood_one<M: Mode>(index: u64, data: *mut c_void) -> i64 {
    // SAFETY: `data` is the FloodCtx on the caller's stack.
    let c = unsafe { &mut *(data as *mut FloodCtx) };
    let i = index as usize;
    if i >= MAX_FLOOD_PORTS {
        return 1;
    }
    // SAFETY: a pointer to the FLOOD map value, valid during the program.
    let fs = unsafe { &*c.fs };
    let p = if c.tagged != 0 { fs.tagged[i] } else { fs.untagged[i] };
    if p == c.skip {
        return 0;
    }
    let member = if c.tagged != 0 {
        trunk_carries(p, c.vid as u16, c.net_id)
    } else {
        port(p).is_some_and(|pc| pc.net_id == c.net_id)
    };
    let vid = if c.tagged != 0 { c.vid as u16 } else { NO_VLAN };
    step::<M>(STEP_FLOOD_LOCAL, vid, p, member as u32, 0);
    if !member {
        count::<M>(c.row, Counter::DropNotMember);
        return 0;
    }
    // SAFETY: helper on the program's own context.
    let r = if M::TRACE { 0 } else { unsafe { bpf_clone_redirect(c.skb, p, 0) } };
    if r == 0 {
        c.sent += 1;
        count::<M>(c.row, Counter::FloodLocalCopies);
    } else {
        count::<M>(c.row, Counter::DropHelperFailed);
    }
    0
}

/// Clones the frame to the untagged or tagged members; returns how many
/// copies went out.
#[inline(always)]
fn clone_all<M: Mode>(
    ctx: &TcContext,
    fs: &FloodSet,
    net_id: u32,
    vid: u16,
    tagged: bool,
    skip: u32,
    row: u32,
) -> u32 {
    let n = if tagged { fs.n_tagged } else { fs.n_untagged } as u32;
    let mut c =
        FloodCtx { skb: ctx.skb.skb, fs, tagged: tagged as u32, skip, row, net_id, vid: vid as u32, sent: 0 };
    // SAFETY: callback and context as bpf_loop expects.
    unsafe { bpf_loop(n, flood_one::<M> as *mut c_void, &mut c as *mut FloodCtx as *mut c_void, 0) };
    c.sent
}

/// The flood set of a network (looked up once per flooded frame).
#[inline(always)]
pub fn flood_set(net_id: u32, row: u32) -> Result<&'static FloodSet, Drop> {
    crate::maps::FLOOD.get(net_id).ok_or(Drop::new(row, Counter::DropNoNetwork))
}

/// Copies the frame to every local port of network `net_id` except `skip`
/// (the port it came in on, or 0): untagged members first, then tagged
/// members with one tag push for all. The frame itself is left as it
/// came. Returns how many copies went out.
#[inline(always)]
pub fn flood_local<M: Mode>(
    ctx: &TcContext,
    fs: &FloodSet,
    net_id: u32,
    net: &NetConfig,
    skip: u32,
    row: u32,
) -> Result<u32, Drop> {
    let mut sent = clone_all::<M>(ctx, fs, net_id, net.vlan, false, skip, row);
    if fs.n_tagged != 0 && net.vlan != NO_VLAN {
        push(ctx, net.vlan, row)?;
        sent += clone_all::<M>(ctx, fs, net_id, net.vlan, true, skip, row);
        // SAFETY: helper call on our own context (the tag pushed above).
        helper_ok(unsafe { bpf_skb_vlan_pop(ctx.as_ptr() as *mut _) }, row)?;
    }
    Ok(sent)
}
