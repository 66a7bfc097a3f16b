//! `overlayctl fdb`: listing and run-time changes of the forwarding table.

use overlay_common::vtep::vtep_to_ip;

use serde::Serialize;

use overlay_common::maps::{FDB_KIND_PORT, FDB_KIND_REMOTE, FdbKey, MAP_FDB};

use crate::{
    error::{Error, Result},
    instance::State,
    maps::Maps,
};

/// One row of `fdb show`, like `ovs-appctl fdb/show`.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct FdbRow {
    pub network: String,
    pub vni: Option<u32>,
    pub vlan: Option<u16>,
    pub mac: crate::mac::MacAddr,
    /// `port:IFACE` or `remote:IP`.
    pub location: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Seconds since last seen (learned entries).
    pub age: Option<u64>,
}

fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: valid out pointer.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// CLOCK_MONOTONIC (`bpf_ktime_get_ns`): the monitor's clock.
pub fn monotonic_ns() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC)
}

/// CLOCK_MONOTONIC_COARSE (`bpf_ktime_get_coarse_ns`): the clock of the
/// FDB's, the neighbour table's and the caches' timestamps. Compared with
/// the finer clock, which runs up to a tick ahead, an entry would age here
/// before it ages in the datapath, and the agent would withdraw a MAC the
/// datapath then refreshes without an event. (The datapath keeps one
/// reading per jiffy and CPU, which in the instant of a tick can stay a
/// tick behind: README, Known limits.)
pub fn datapath_now_ns() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC_COARSE)
}

pub fn show(state: &State, maps: &Maps, network: Option<&str>) -> Result<Vec<FdbRow>> {
    let ageing_ns = state.config.ageing as u64 * 1_000_000_000;
    let now = datapath_now_ns();
    let by_id: std::collections::BTreeMap<u32, &String> =
        state.net_ids.iter().map(|(n, i)| (*i, n)).collect();
    let by_ifindex: std::collections::BTreeMap<u32, &String> =
        state.attached.iter().map(|(n, i)| (*i, n)).collect();
    let mut rows = Vec::new();
    for r in maps.fdb.iter() {
        let (k, e) = r.map_err(Error::map(MAP_FDB))?;
        let Some(name) = by_id.get(&k.net_id) else {
            continue;
        };
        if network.is_some_and(|n| n != name.as_str()) || e.expired(now, ageing_ns) {
            continue;
        }
        let net = state.config.network(name);
        let location = match e.kind {
            FDB_KIND_PORT => {
                format!("port:{}", by_ifindex.get(&e.ifindex).map(|s| s.as_str()).unwrap_or("?"))
            }
            FDB_KIND_REMOTE => format!("remote:{}", vtep_to_ip(&e.remote_be)),
            _ => "?".into(),
        };
        rows.push(FdbRow {
            network: (*name).clone(),
            vni: net.and_then(|n| n.vni),
            vlan: net.and_then(|n| n.vlan),
            mac: crate::mac::MacAddr(k.mac),
            location,
            kind: if e.is_control() {
                "control"
            } else if e.is_static() {
                "static"
            } else {
                "learned"
            },
            age: (!e.is_static()).then(|| now.saturating_sub(e.seen_ns) / 1_000_000_000),
        });
    }
    rows.sort_by(|a, b| (&a.network, &a.mac).cmp(&(&b.network, &b.mac)));
    Ok(rows)
}

/// Removes every learned entry (of one network, or all).
pub fn flush(state: &State, maps: &mut Maps, network: Option<&str>) -> Result<usize> {
    let id = match network {
        Some(n) => {
            Some(*state.net_ids.get(n).ok_or_else(|| crate::changes::Refusal::UnknownNetwork(n.into()))?)
        }
        None => None,
    };
    let victims: Vec<FdbKey> = maps
        .fdb
        .iter()
        .filter_map(|r| r.ok())
        .filter(|(k, e)| !e.is_static() && id.is_none_or(|i| i == k.net_id))
        .map(|(k, _)| k)
        .collect();
    for k in &victims {
        let _ = maps.fdb.remove(k);
    }
    crate::apply::recount_learned(maps)?;
    Ok(victims.len())
}
