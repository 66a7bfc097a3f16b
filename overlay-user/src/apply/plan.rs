//! The writes that take the maps from what they hold to what is desired,
//! in an order that keeps every intermediate state safe: `plan` is pure,
//! so that order is tested without a kernel (see the tests).
//!
//! 1. Withdraw: VNIs, peers, trunk VIDs and ports that are no longer
//!    configured go; networks that are gone are deactivated.
//! 2. Clean: FDB entries and neighbour pairs that are no longer valid are
//!    deleted, and the slice of every network id taken by a new network is
//!    emptied (ids are never handed to a new network in the `up` that freed
//!    them).
//! 3. Grant: network settings and flood sets, static FDB entries and
//!    neighbour pairs, peers, trunk VIDs, ports, and last the VNIs, so a
//!    network id becomes reachable only once everything behind it is final.
//!
//! Entries whose value changes are overwritten in place (one atomic map
//! update). The datapath also checks membership per packet at egress, so a
//! stale FDB or flood entry never carries a frame into another network.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use overlay_common::maps::*;

use super::Desired;

/// One write to the maps.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// `NETWORKS[id]` (the default value deactivates the id).
    Network(u32, NetConfig),
    Flood(u32, Box<FloodSet>),
    DelVni(u32),
    Vni(u32, u32),
    DelPeer(PeerKey),
    Peer(PeerKey),
    DelPort(u32),
    Port(u32, PortConfig),
    DelTrunk(TrunkKey),
    Trunk(TrunkKey, u32),
    DelFdb(FdbKey),
    /// Static entries, batched (learned entries make room when the FDB is full).
    Statics(Vec<(FdbKey, FdbEntry)>),
    DelNeigh(NeighKey),
    /// A configured neighbour pair (replacing a learned one for the address).
    Neigh(NeighKey, NeighEntry),
    /// `NET_FDB[id].learned`: learned entries of the network after the clean-up.
    Learned(u32, u64),
    /// Zero the stats row of an id that a new network takes.
    ResetStats(u32),
    Global(GlobalConfig),
    /// Forget every cached next hop and reverse-path verdict, peers' (in
    /// their `PEERS` entries) too (the underlay or its routes may have
    /// changed).
    ClearCaches,
}

/// What the maps hold, or should hold (active networks only).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    pub global: GlobalConfig,
    pub networks: BTreeMap<u32, NetConfig>,
    pub vni: HashMap<u32, u32>,
    pub peers: HashSet<PeerKey>,
    /// Flood sets of the active (read) or desired networks.
    pub flood: BTreeMap<u32, FloodSet>,
    pub ports: HashMap<u32, PortConfig>,
    pub trunk: HashMap<TrunkKey, u32>,
    pub fdb: HashMap<FdbKey, FdbEntry>,
    /// Neighbour pairs (desired: the configured ones).
    pub neigh: HashMap<NeighKey, NeighEntry>,
}

/// Whether port `ifindex` is a member of network `id` in `d`.
pub fn is_member(d: &Snapshot, ifindex: u32, id: u32) -> bool {
    let Some(p) = d.ports.get(&ifindex) else { return false };
    if p.net_id == id {
        return true;
    }
    let vlan = d.networks.get(&id).map(|n| n.vlan).unwrap_or(overlay_common::NO_VLAN);
    d.trunk.get(&TrunkKey { ifindex, vid: vlan, _pad: 0 }) == Some(&id)
}

/// Whether a learned entry can stay under `d`: its network exists and is
/// not new, its port is a member of it, its VTEP is one of the network's
/// (under the VNI it was learned with).
fn learned_entry_valid(s: &Snapshot, d: &Snapshot, fresh: &BTreeSet<u32>, k: &FdbKey, e: &FdbEntry) -> bool {
    let Some(n) = d.networks.get(&k.net_id) else { return false };
    if fresh.contains(&k.net_id) {
        return false;
    }
    match e.kind {
        FDB_KIND_PORT => is_member(d, e.ifindex, k.net_id),
        FDB_KIND_REMOTE => {
            let vni_kept = s.networks.get(&k.net_id).is_some_and(|o| o.vni == n.vni);
            let vtep = n.flags & NET_F_LEARN_UNKNOWN_PEERS != 0
                || d.peers.contains(&PeerKey { net_id: k.net_id, vtep_be: e.remote_be });
            vni_kept && vtep
        }
        _ => false,
    }
}

/// The ordered writes from `s` to `d`.
pub fn plan(s: &Snapshot, want: &Desired) -> Vec<Op> {
    let d = &want.maps;
    let mut ops = Vec::new();
    let retired: BTreeSet<u32> =
        s.networks.keys().filter(|id| !d.networks.contains_key(id)).copied().collect();
    // Ids whose slice must start empty: taken by a new network, or not
    // active in the kernel (whatever an earlier run left there).
    let fresh: BTreeSet<u32> = d
        .networks
        .keys()
        .filter(|id| want.fresh.contains(id) || !s.networks.contains_key(id))
        .copied()
        .collect();

    // 1. Withdraw.
    let mut del_vni: Vec<u32> = s.vni.keys().filter(|v| !d.vni.contains_key(v)).copied().collect();
    del_vni.sort_unstable();
    ops.extend(del_vni.into_iter().map(Op::DelVni));
    let mut del_peers: Vec<PeerKey> = s.peers.iter().filter(|k| !d.peers.contains(k)).copied().collect();
    del_peers.sort_unstable_by_key(|k| (k.net_id, k.vtep_be));
    ops.extend(del_peers.into_iter().map(Op::DelPeer));
    let mut del_trunk: Vec<TrunkKey> = s.trunk.keys().filter(|k| !d.trunk.contains_key(k)).copied().collect();
    del_trunk.sort_unstable_by_key(|k| (k.ifindex, k.vid));
    ops.extend(del_trunk.into_iter().map(Op::DelTrunk));
    let mut del_ports: Vec<u32> = s.ports.keys().filter(|p| !d.ports.contains_key(p)).copied().collect();
    del_ports.sort_unstable();
    ops.extend(del_ports.into_iter().map(Op::DelPort));
    for id in &retired {
        ops.push(Op::Network(*id, NetConfig::default()));
        ops.push(Op::Flood(*id, Box::default()));
    }

    // 2. Clean.
    let mut learned: BTreeMap<u32, u64> = BTreeMap::new();
    let mut del_fdb = Vec::new();
    for (k, e) in &s.fdb {
        let keep = if d.fdb.contains_key(k) {
            true // overwritten below
        } else if e.is_static() {
            false
        } else {
            learned_entry_valid(s, d, &fresh, k, e)
        };
        if !keep {
            del_fdb.push(*k);
        } else if !e.is_static() && !d.fdb.contains_key(k) {
            *learned.entry(k.net_id).or_default() += 1;
        }
    }
    del_fdb.sort_unstable_by_key(|k| (k.net_id, k.mac));
    ops.extend(del_fdb.into_iter().map(Op::DelFdb));
    // Learned pairs stay with their network (not a new one); configured
    // pairs that are no longer configured go.
    let mut del_neigh: Vec<NeighKey> = s
        .neigh
        .iter()
        .filter(|(k, e)| {
            !d.neigh.contains_key(k)
                && (e.is_static() || !d.networks.contains_key(&k.net_id) || fresh.contains(&k.net_id))
        })
        .map(|(k, _)| *k)
        .collect();
    del_neigh.sort_unstable();
    ops.extend(del_neigh.into_iter().map(Op::DelNeigh));
    ops.extend(fresh.iter().map(|id| Op::ResetStats(*id)));

    // 3. Grant.
    for (id, n) in &d.networks {
        if s.networks.get(id) != Some(n) {
            ops.push(Op::Network(*id, *n));
        }
    }
    for (id, fs) in &d.flood {
        if s.flood.get(id) != Some(fs) {
            ops.push(Op::Flood(*id, Box::new(*fs)));
        }
    }
    let mut statics: Vec<(FdbKey, FdbEntry)> =
        d.fdb.iter().filter(|(k, e)| s.fdb.get(k) != Some(e)).map(|(k, e)| (*k, *e)).collect();
    if !statics.is_empty() {
        statics.sort_unstable_by_key(|(k, _)| (k.net_id, k.mac));
        ops.push(Op::Statics(statics));
    }
    let mut neigh: Vec<(NeighKey, NeighEntry)> =
        d.neigh.iter().filter(|(k, e)| s.neigh.get(k) != Some(e)).map(|(k, e)| (*k, *e)).collect();
    neigh.sort_unstable_by_key(|(k, _)| *k);
    ops.extend(neigh.into_iter().map(|(k, e)| Op::Neigh(k, e)));
    let mut add_peers: Vec<PeerKey> = d.peers.iter().filter(|k| !s.peers.contains(k)).copied().collect();
    add_peers.sort_unstable_by_key(|k| (k.net_id, k.vtep_be));
    ops.extend(add_peers.into_iter().map(Op::Peer));
    let mut trunk: Vec<(TrunkKey, u32)> =
        d.trunk.iter().filter(|(k, id)| s.trunk.get(k) != Some(id)).map(|(k, id)| (*k, *id)).collect();
    trunk.sort_unstable_by_key(|(k, _)| (k.ifindex, k.vid));
    ops.extend(trunk.into_iter().map(|(k, id)| Op::Trunk(k, id)));
    let mut ports: Vec<(u32, PortConfig)> =
        d.ports.iter().filter(|(p, c)| s.ports.get(p) != Some(c)).map(|(p, c)| (*p, *c)).collect();
    ports.sort_unstable_by_key(|(p, _)| *p);
    ops.extend(ports.into_iter().map(|(p, c)| Op::Port(p, c)));
    let mut vni: Vec<(u32, u32)> =
        d.vni.iter().filter(|(v, id)| s.vni.get(v) != Some(id)).map(|(v, id)| (*v, *id)).collect();
    vni.sort_unstable();
    ops.extend(vni.into_iter().map(|(v, id)| Op::Vni(v, id)));

    // Counts: every id that is, was, or holds entries.
    let mut ids: BTreeSet<u32> = s.networks.keys().chain(d.networks.keys()).copied().collect();
    ids.extend(s.fdb.keys().map(|k| k.net_id).filter(|id| *id < overlay_common::MAX_NETWORKS));
    ops.extend(ids.into_iter().map(|id| Op::Learned(id, learned.get(&id).copied().unwrap_or(0))));
    if s.global != d.global {
        ops.push(Op::Global(d.global));
    }
    ops.push(Op::ClearCaches);
    ops
}
