//! `overlayctl neigh`: the neighbour table the datapath answers ARP and
//! neighbour solicitations from.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::Serialize;

use overlay_common::maps::{MAP_NEIGH, NeighKey};

use crate::{
    error::{Error, Result},
    fdb::datapath_now_ns,
    instance::State,
    mac::MacAddr,
    maps::Maps,
};

/// One row of `neigh show`, like `ip neigh show`.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct NeighRow {
    pub network: String,
    pub ip: IpAddr,
    pub mac: MacAddr,
    /// `static` (configured) or `learned` (`learn_ip`).
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Seconds since learned or last announced (learned pairs).
    pub age: Option<u64>,
}

/// The address of a key.
pub fn key_ip(k: &NeighKey) -> IpAddr {
    if k.family == 4 {
        IpAddr::V4(Ipv4Addr::new(k.addr[0], k.addr[1], k.addr[2], k.addr[3]))
    } else {
        IpAddr::V6(Ipv6Addr::from(k.addr))
    }
}

/// The key of `ip` in network `net_id`.
pub fn key(net_id: u32, ip: IpAddr) -> NeighKey {
    match ip {
        IpAddr::V4(a) => NeighKey::v4(net_id, a.octets()),
        IpAddr::V6(a) => NeighKey::v6(net_id, a.octets()),
    }
}

/// The pairs of one network or all, sorted; learned pairs past the ageing
/// time (which the datapath no longer answers for) are left out.
pub fn show(state: &State, maps: &Maps, network: Option<&str>) -> Result<Vec<NeighRow>> {
    let ageing_ns = state.config.ageing as u64 * 1_000_000_000;
    let now = datapath_now_ns();
    let by_id: std::collections::BTreeMap<u32, &String> =
        state.net_ids.iter().map(|(n, i)| (*i, n)).collect();
    let mut rows = Vec::new();
    for r in maps.neigh.iter() {
        let (k, e) = r.map_err(Error::map(MAP_NEIGH))?;
        let Some(name) = by_id.get(&k.net_id) else { continue };
        if network.is_some_and(|n| n != name.as_str()) || e.expired(now, ageing_ns) {
            continue;
        }
        rows.push(NeighRow {
            network: (*name).clone(),
            ip: key_ip(&k),
            mac: MacAddr(e.mac),
            kind: if e.is_static() { "static" } else { "learned" },
            age: (!e.is_static()).then(|| now.saturating_sub(e.updated_ns) / 1_000_000_000),
        });
    }
    rows.sort_by(|a, b| (&a.network, &a.ip).cmp(&(&b.network, &b.ip)));
    Ok(rows)
}
