//! Who may send VXLAN into a network: the admission rules shared by the
//! TC and XDP underlay programs, so both enforce exactly the same policy.

use overlay_common::{
    ETH_P_8021AD, ETH_P_8021Q, VtepAddr,
    counters::{Counter, net_row},
    is_group_mac, is_unicast_vtep, is_zero_mac,
    maps::{NET_F_ALLOW_INNER_TAG, NET_F_LEARN_UNKNOWN_PEERS, NET_F_VXLAN, NetConfig, PeerKey},
    parse::TunnelRx,
    vtep::vtep_eq,
};

use crate::{
    maps::{PEERS, VNI_TO_NET, network},
    stats::Drop,
};

/// A VXLAN packet this host accepts: its network and stats row.
pub struct Admitted {
    pub net_id: u32,
    pub net: &'static NetConfig,
    pub row: u32,
}

/// Whether `vtep_be` is a VTEP of network `net_id` right now: a
/// configured peer (or static FDB remote), or any VTEP when the network
/// learns unknown peers.
#[inline(always)]
pub fn is_vtep_of(net_id: u32, net: &NetConfig, vtep_be: &VtepAddr) -> bool {
    let peer = PeerKey { net_id, vtep_be: *vtep_be };
    // SAFETY: plain u32 value.
    net.flags & NET_F_LEARN_UNKNOWN_PEERS != 0 || unsafe { PEERS.get(peer) }.is_some()
}

/// Outer source a VTEP can have (not this host's own address), known VNI
/// (or GRE key) of a network with that encapsulation, sent by a VTEP of that network, inner frame
/// untagged unless allowed, inner source a unicast MAC.
#[inline(always)]
pub fn admit(rx: &TunnelRx, local_vtep_be: &VtepAddr) -> Result<Admitted, Drop> {
    if !is_unicast_vtep(&rx.src_vtep_be) || vtep_eq(&rx.src_vtep_be, local_vtep_be) {
        return Err(Drop::new(0, Counter::DropVtepSrcInvalid));
    }
    // SAFETY: plain u32 value.
    let net_id = unsafe { VNI_TO_NET.get(rx.vni) }.copied().ok_or(Drop::new(0, Counter::DropUnknownVni))?;
    let net = network(net_id).ok_or(Drop::new(0, Counter::DropUnknownVni))?;
    // A VNI is unique among an instance's networks whatever their
    // encapsulation: arriving in another one, it is none of ours.
    if net.flags & NET_F_VXLAN == 0 || net.encap() != rx.encap {
        return Err(Drop::new(0, Counter::DropUnknownVni));
    }
    let row = net_row(net_id);
    if !is_vtep_of(net_id, net, &rx.src_vtep_be) {
        return Err(Drop::new(row, Counter::DropNotPeer));
    }
    let inner_type = u16::from_be(rx.inner.ethertype_be);
    if (inner_type == ETH_P_8021Q || inner_type == ETH_P_8021AD) && net.flags & NET_F_ALLOW_INNER_TAG == 0 {
        return Err(Drop::new(row, Counter::DropInnerTagged));
    }
    if is_group_mac(&rx.inner.src) || is_zero_mac(&rx.inner.src) {
        return Err(Drop::new(row, Counter::DropSrcMacInvalid));
    }
    Ok(Admitted { net_id, net, row })
}
