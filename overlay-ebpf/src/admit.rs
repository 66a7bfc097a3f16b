//! Who may send VXLAN into a network: the admission rules shared by the
//! TC and XDP underlay programs, so both enforce exactly the same policy.

use aya_ebpf::bindings::BPF_EXIST;
use overlay_common::{
    ETH_P_8021AD, ETH_P_8021Q, VtepAddr,
    counters::{Counter, net_row},
    is_group_mac, is_unicast_vtep, is_zero_mac,
    maps::{NET_F_ALLOW_INNER_TAG, NET_F_LEARN_UNKNOWN_PEERS, NET_F_VXLAN, NetConfig, PeerKey, PeerState},
    parse::TunnelRx,
    vtep::vtep_eq,
};

use crate::{
    maps::{PEERS, net_of_vni, network},
    stats::Drop,
};

/// A VXLAN packet this host accepts: its network and stats row.
pub struct Admitted {
    pub net_id: u32,
    pub net: &'static NetConfig,
    pub row: u32,
    pub sender: Member,
}

/// How a VTEP belongs to a network: a configured peer (or static FDB
/// remote) with its `PEERS` entry (what the datapath caches about it), or
/// a VTEP the network accepts because it learns unknown peers (its caches
/// are `NEXT_HOP` and `RP_CACHE`).
#[derive(Clone, Copy)]
pub enum Member {
    Peer(&'static PeerState),
    Unknown,
}

/// `vtep_be` as a peer of `net_id` if it is one, else [`Member::Unknown`].
#[inline(always)]
pub fn member_of(net_id: u32, vtep_be: &VtepAddr) -> Member {
    let peer = PeerKey { net_id, vtep_be: *vtep_be };
    // SAFETY: plain-bytes value; the datapath replaces the whole entry.
    match unsafe { PEERS.get(peer) } {
        Some(p) => Member::Peer(p),
        None => Member::Unknown,
    }
}

/// `vtep_be` as a VTEP of network `net_id` right now, if it is one: a
/// configured peer (or static FDB remote), or any VTEP when the network
/// learns unknown peers.
#[inline(always)]
pub fn member(net_id: u32, net: &NetConfig, vtep_be: &VtepAddr) -> Option<Member> {
    match member_of(net_id, vtep_be) {
        Member::Unknown if net.flags & NET_F_LEARN_UNKNOWN_PEERS == 0 => None,
        m => Some(m),
    }
}

/// Rewrites the `PEERS` entry of `vtep_be` in `net_id`, only while it
/// exists (a peer removed meanwhile stays removed).
#[inline(always)]
pub fn update_peer(net_id: u32, vtep_be: &VtepAddr, state: &PeerState) {
    let peer = PeerKey { net_id, vtep_be: *vtep_be };
    let _ = PEERS.insert(peer, *state, BPF_EXIST as u64);
}

/// Outer source a VTEP can have (not this host's own address), known VNI
/// (or GRE key) of a network with that encapsulation, sent by a VTEP of that network, inner frame
/// untagged unless allowed, inner source a unicast MAC.
#[inline(always)]
pub fn admit(rx: &TunnelRx, local_vtep_be: &VtepAddr) -> Result<Admitted, Drop> {
    if !is_unicast_vtep(&rx.src_vtep_be) || vtep_eq(&rx.src_vtep_be, local_vtep_be) {
        return Err(Drop::new(0, Counter::DropVtepSrcInvalid));
    }
    let net_id = net_of_vni(rx.vni).ok_or(Drop::new(0, Counter::DropUnknownVni))?;
    let net = network(net_id).ok_or(Drop::new(0, Counter::DropUnknownVni))?;
    // A VNI is unique among an instance's networks whatever their
    // encapsulation: arriving in another one, it is none of ours.
    if net.flags & NET_F_VXLAN == 0 || net.encap() != rx.encap {
        return Err(Drop::new(0, Counter::DropUnknownVni));
    }
    let row = net_row(net_id);
    let Some(sender) = member(net_id, net, &rx.src_vtep_be) else {
        return Err(Drop::new(row, Counter::DropNotPeer));
    };
    let inner_type = u16::from_be(rx.inner.ethertype_be);
    if (inner_type == ETH_P_8021Q || inner_type == ETH_P_8021AD) && net.flags & NET_F_ALLOW_INNER_TAG == 0 {
        return Err(Drop::new(row, Counter::DropInnerTagged));
    }
    if is_group_mac(&rx.inner.src) || is_zero_mac(&rx.inner.src) {
        return Err(Drop::new(row, Counter::DropSrcMacInvalid));
    }
    Ok(Admitted { net_id, net, row, sender })
}
