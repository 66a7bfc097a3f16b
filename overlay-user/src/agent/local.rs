//! The MACs local to this host: read from the FDB once (at start, and when
//! the instance's config changes), then kept up to date from the events the
//! datapath writes to `FDB_EVENTS` when it learns, moves or ages a MAC.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
};

use overlay_common::maps::{FDB_EV_AGED, FDB_KIND_PORT, FdbEvent, MAP_FDB, MAP_NEIGH};

use super::view::Local;
use crate::{
    error::{Error, Result},
    instance::State,
    mac::MacAddr,
    maps::Maps,
};

/// Networks of `state` that have a VNI: net id -> name.
fn vxlan_nets(state: &State) -> BTreeMap<u32, String> {
    state
        .config
        .networks
        .iter()
        .filter(|n| n.vni.is_some())
        .filter_map(|n| state.net_ids.get(&n.name).map(|id| (*id, n.name.clone())))
        .collect()
}

/// Addresses per (net id, MAC) in the neighbour table (configured and
/// learned pairs), for the MACs in `want` (all when `None`).
fn addresses(
    maps: &Maps,
    want: Option<&BTreeSet<(u32, MacAddr)>>,
) -> Result<BTreeMap<(u32, MacAddr), Vec<IpAddr>>> {
    let mut out: BTreeMap<(u32, MacAddr), Vec<IpAddr>> = BTreeMap::new();
    for r in maps.neigh.iter() {
        let (k, e) = r.map_err(Error::map(MAP_NEIGH))?;
        let key = (k.net_id, MacAddr(e.mac));
        if want.is_none_or(|w| w.contains(&key)) {
            out.entry(key).or_default().push(crate::neigh::key_ip(&k));
        }
    }
    for ips in out.values_mut() {
        ips.sort();
    }
    Ok(out)
}

/// Every MAC on a local port of a VXLAN network, with its addresses.
pub fn scan(state: &State, maps: &Maps) -> Result<Local> {
    let nets = vxlan_nets(state);
    let ageing_ns = state.config.ageing as u64 * 1_000_000_000;
    let now = crate::fdb::datapath_now_ns();
    let ips = addresses(maps, None)?;
    let mut local = Local::new();
    for n in nets.values() {
        local.insert(n.clone(), BTreeMap::new());
    }
    for r in maps.fdb.iter() {
        let (k, e) = r.map_err(Error::map(MAP_FDB))?;
        let Some(net) = nets.get(&k.net_id) else { continue };
        if e.kind == FDB_KIND_PORT && !e.expired(now, ageing_ns) {
            let mac = MacAddr(k.mac);
            let a = ips.get(&(k.net_id, mac)).cloned().unwrap_or_default();
            local.get_mut(net).expect("network listed").insert(mac, a);
        }
    }
    Ok(local)
}

/// Applies a batch of datapath events to `local`; returns whether it changed.
pub fn apply_events(
    state: &State,
    maps: &Maps,
    local: &mut Local,
    ageing: &mut Ageing,
    events: &[FdbEvent],
) -> Result<bool> {
    let nets = vxlan_nets(state);
    let ageing_ns = state.config.ageing as u64 * 1_000_000_000;
    let now = crate::fdb::datapath_now_ns();
    let mut arrived = BTreeSet::new();
    let mut changed = false;
    for ev in events {
        let Some(net) = nets.get(&ev.net_id) else { continue };
        let mac = MacAddr(ev.mac);
        let here = ev.event != FDB_EV_AGED && ev.kind == FDB_KIND_PORT;
        let macs = local.entry(net.clone()).or_default();
        if here {
            if ageing_ns != 0 {
                ageing.watch(now.saturating_add(ageing_ns), ev.net_id, ev.mac);
            }
            if let std::collections::btree_map::Entry::Vacant(v) = macs.entry(mac) {
                v.insert(Vec::new());
                changed = true;
            }
            arrived.insert((ev.net_id, mac));
        } else if macs.remove(&mac).is_some() {
            arrived.remove(&(ev.net_id, mac));
            changed = true;
        }
    }
    if !arrived.is_empty() {
        let ips = addresses(maps, Some(&arrived))?;
        for (id, mac) in &arrived {
            let a = ips.get(&(*id, *mac)).cloned().unwrap_or_default();
            if let Some(slot) = local.get_mut(&nets[id]).and_then(|m| m.get_mut(mac))
                && *slot != a
            {
                *slot = a;
                changed = true;
            }
        }
    }
    Ok(changed)
}

/// When a learned local MAC must be looked at again: the datapath ages
/// entries lazily (when looked up), so an idle MAC gets no event; the agent
/// checks each learned MAC once per ageing time (one lookup, never a scan).
#[derive(Default)]
pub struct Ageing {
    due: std::collections::BinaryHeap<std::cmp::Reverse<(u64, u32, [u8; 6])>>,
}

impl Ageing {
    /// Looks at (net_id, mac) again at `at_ns` (the datapath's clock).
    pub fn watch(&mut self, at_ns: u64, net_id: u32, mac: [u8; 6]) {
        self.due.push(std::cmp::Reverse((at_ns, net_id, mac)));
    }

    /// Every learned local MAC of `state`'s VXLAN networks, from the FDB.
    pub fn watch_all(&mut self, state: &State, maps: &Maps) -> Result<()> {
        let ageing_ns = state.config.ageing as u64 * 1_000_000_000;
        self.due.clear();
        if ageing_ns == 0 {
            return Ok(());
        }
        let nets = vxlan_nets(state);
        for r in maps.fdb.iter() {
            let (k, e) = r.map_err(Error::map(MAP_FDB))?;
            if nets.contains_key(&k.net_id) && e.kind == FDB_KIND_PORT && !e.is_static() {
                self.watch(e.seen_ns.saturating_add(ageing_ns), k.net_id, k.mac);
            }
        }
        Ok(())
    }

    /// Removes from `local` the MACs whose entries aged out by now; returns
    /// whether any did. Entries still fresh are looked at again later.
    pub fn expire(&mut self, state: &State, maps: &Maps, local: &mut Local) -> bool {
        let ageing_ns = state.config.ageing as u64 * 1_000_000_000;
        let now = crate::fdb::datapath_now_ns();
        let nets = vxlan_nets(state);
        let mut changed = false;
        while let Some(std::cmp::Reverse((at, net_id, mac))) = self.due.peek().copied() {
            if at > now {
                break;
            }
            self.due.pop();
            let Some(net) = nets.get(&net_id) else { continue };
            let key = overlay_common::maps::FdbKey::new(net_id, mac);
            match maps.fdb.get(&key, 0) {
                Ok(e) if e.kind == FDB_KIND_PORT && !e.is_static() && !e.expired(now, ageing_ns) => {
                    self.watch(e.seen_ns.saturating_add(ageing_ns).saturating_add(1), net_id, mac);
                }
                Ok(e) if e.kind == FDB_KIND_PORT && e.is_static() => {}
                // Aged out, gone, or moved away (that one also came as an event).
                _ => changed |= local.get_mut(net).and_then(|m| m.remove(&MacAddr(mac))).is_some(),
            }
        }
        changed
    }
}
