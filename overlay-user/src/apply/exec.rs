//! Reading the maps into a [`Snapshot`] and carrying out a plan.

use std::collections::{BTreeMap, BTreeSet};

use overlay_common::{MAX_NETWORKS, VtepAddr, counters::net_row, maps::*};

use super::plan::{Op, Snapshot};
use crate::{
    error::{Error, Result},
    maps::{Maps, ignore_missing},
};

impl Snapshot {
    /// Reads what the maps hold; flood sets of the active networks and of
    /// `also` (the networks about to be written).
    pub fn read(m: &Maps, also: impl IntoIterator<Item = u32>) -> Result<Snapshot> {
        let mut s =
            Snapshot { global: m.config.get(&0, 0).map_err(Error::map(MAP_CONFIG))?, ..Default::default() };
        for id in 0..MAX_NETWORKS {
            let n = m.networks.get(&id, 0).map_err(Error::map(MAP_NETWORKS))?;
            if n.flags != 0 {
                s.networks.insert(id, n);
            }
        }
        let ids: BTreeSet<u32> = s.networks.keys().copied().chain(also).collect();
        for id in ids {
            s.flood.insert(id, m.flood.get(&id, 0).map_err(Error::map(MAP_FLOOD))?);
        }
        s.vni = m.vnis()?;
        s.peers = m.peers.keys().filter_map(|r| r.ok()).collect();
        s.ports = m.ports()?;
        s.trunk = m.trunk.iter().filter_map(|r| r.ok()).collect();
        s.fdb = m.fdb.iter().filter_map(|r| r.ok()).collect();
        s.neigh = m.neigh.iter().filter_map(|r| r.ok()).collect();
        Ok(s)
    }
}

/// `bpf_map_update_elem` flag: only an existing entry is rewritten.
const BPF_EXIST: u64 = 2;

/// Carries out `ops` in order. A failure stops at that op: what was
/// written before it is a safe state (see `plan`), and the next `up`
/// completes it.
pub fn execute(m: &mut Maps, ops: &[Op]) -> Result<()> {
    // Learned entries evicted to make room for static ones, per network.
    let mut evicted: BTreeMap<u32, u64> = BTreeMap::new();
    for op in ops {
        match op {
            Op::Network(id, n) => m.networks.set(*id, n, 0).map_err(Error::map(MAP_NETWORKS))?,
            Op::Flood(id, fs) => m.flood.set(*id, **fs, 0).map_err(Error::map(MAP_FLOOD))?,
            Op::DelVni(v) => m.remove_vni(*v)?,
            Op::Vni(v, id) => m.set_vni(*v, *id)?,
            Op::DelPeer(k) => ignore_missing(m.peers.remove(k), MAP_PEERS)?,
            Op::Peer(k) => m.peers.insert(k, PeerState::default(), 0).map_err(Error::map(MAP_PEERS))?,
            Op::DelPort(p) => m.remove_port(*p)?,
            Op::Port(p, c) => m.set_port(*p, c)?,
            Op::DelTrunk(k) => ignore_missing(m.trunk.remove(k), MAP_TRUNK_VLANS)?,
            Op::Trunk(k, id) => m.trunk.insert(k, id, 0).map_err(Error::map(MAP_TRUNK_VLANS))?,
            Op::DelFdb(k) => ignore_missing(m.fdb.remove(k), MAP_FDB)?,
            Op::Statics(entries) => install_statics(m, entries, &mut evicted)?,
            Op::DelNeigh(k) => ignore_missing(m.neigh.remove(k), MAP_NEIGH)?,
            Op::Neigh(k, e) => m.neigh.insert(k, e, 0).map_err(Error::map(MAP_NEIGH))?,
            Op::Learned(id, n) => {
                let want = n.saturating_sub(evicted.get(id).copied().unwrap_or(0));
                let mut st = m.net_fdb.get(id, 0).map_err(Error::map(MAP_NET_FDB))?;
                if st.learned != want {
                    st.learned = want;
                    m.net_fdb.set(*id, st, 0).map_err(Error::map(MAP_NET_FDB))?;
                }
            }
            Op::ResetStats(id) => crate::stats::reset_row(m, net_row(*id))?,
            Op::Global(g) => m.config.set(0, g, 0).map_err(Error::map(MAP_CONFIG))?,
            Op::ClearCaches => {
                // A peer's cache is in its entry: zeroed only while the
                // entry exists (a peer removed meanwhile stays removed).
                let peers: Vec<PeerKey> = m
                    .peers
                    .iter()
                    .filter_map(|r| r.ok())
                    .filter(|(_, v)| *v != PeerState::default())
                    .map(|(k, _)| k)
                    .collect();
                for k in peers {
                    let _ = m.peers.insert(k, PeerState::default(), BPF_EXIST);
                }
                let cached: Vec<VtepAddr> = m.next_hop.keys().filter_map(|k| k.ok()).collect();
                for k in cached {
                    let _ = m.next_hop.remove(&k);
                }
                let cached: Vec<VtepAddr> = m.rp_cache.keys().filter_map(|k| k.ok()).collect();
                for k in cached {
                    let _ = m.rp_cache.remove(&k);
                }
            }
        }
    }
    Ok(())
}

/// Static entries in batches; when the FDB is full, learned entries make
/// room (static entries must always install).
fn install_statics(
    m: &mut Maps,
    entries: &[(FdbKey, FdbEntry)],
    evicted: &mut BTreeMap<u32, u64>,
) -> Result<()> {
    let (keys, values): (Vec<FdbKey>, Vec<FdbEntry>) = entries.iter().copied().unzip();
    let mut start = 0;
    while start < keys.len() {
        let (n, err) = crate::batch::update(&m.fdb_raw, &keys[start..], &values[start..]);
        start += n;
        let Some(err) = err else { break };
        let victims: Vec<FdbKey> = m
            .fdb
            .iter()
            .filter_map(|r| r.ok())
            .filter(|(_, v)| !v.is_static())
            .map(|(k, _)| k)
            .take(keys.len() - start)
            .collect();
        if victims.is_empty() {
            return Err(Error::FdbFull { count: keys.len() - start, source: err });
        }
        for k in victims {
            if m.fdb.remove(&k).is_ok() {
                *evicted.entry(k.net_id).or_default() += 1;
            }
        }
    }
    Ok(())
}
