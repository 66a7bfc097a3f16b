//! The neighbour table's configuration: `[[fdb]] ip` (one address or a
//! list) and `[[neigh]]` pairs, checked like the rest of the config.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::{IpAddr, Ipv6Addr},
};

use serde::{Deserialize, Deserializer, Serialize};

use super::{Config, MacAddr, bad};
use crate::error::Result;
use overlay_common::maps::MAX_NEIGH_ENTRIES;

/// `[[neigh]]` and `overlayctl neigh add`: an address of network
/// `network` owned by `mac` (the datapath answers ARP and NS for it).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(deny_unknown_fields)]
pub struct StaticNeigh {
    pub network: String,
    pub ip: IpAddr,
    pub mac: MacAddr,
}

/// `ip = "203.0.113.5"` or `ip = ["203.0.113.5", "2001:db8::5"]`.
pub fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Vec<IpAddr>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(IpAddr),
        Many(Vec<IpAddr>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(a) => vec![a],
        OneOrMany::Many(v) => v,
    })
}

/// Whether `ip` can be a tenant's own address (what the datapath answers
/// and learns for): not unspecified, loopback, multicast or broadcast.
pub fn is_host_address(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => overlay_common::neigh::is_host_ipv4(a.octets()),
        IpAddr::V6(a) => overlay_common::neigh::Ip6::from_octets(a.octets()).is_host(),
    }
}

impl Config {
    /// Every configured neighbour pair: `[[fdb]]` addresses, then `[[neigh]]`.
    pub fn neighbours(&self) -> Vec<StaticNeigh> {
        let from_fdb = self.fdb.iter().flat_map(|f| {
            f.ip.iter().map(|ip| StaticNeigh { network: f.network.clone(), ip: *ip, mac: f.mac })
        });
        from_fdb.chain(self.neigh.iter().cloned()).collect()
    }

    /// The networks whose addresses the datapath answers for: `suppress`,
    /// by default those with a neighbour entry or `learn_ip`. (One pass
    /// over the pairs, however many networks.)
    pub fn suppressing(&self) -> BTreeSet<&str> {
        let from_fdb = self.fdb.iter().filter(|f| !f.ip.is_empty()).map(|f| f.network.as_str());
        let with_pairs: BTreeSet<&str> =
            from_fdb.chain(self.neigh.iter().map(|p| p.network.as_str())).collect();
        // The control plane registers endpoints' addresses: on by default there.
        let control = |n: &super::Network| self.control.is_some() && n.vni.is_some();
        let on = |n: &&super::Network| {
            n.suppress.unwrap_or(n.learn_ip || with_pairs.contains(n.name.as_str()) || control(n))
        };
        self.networks.iter().filter(on).map(|n| n.name.as_str()).collect()
    }

    pub(super) fn validate_neighbours(&self) -> Result<()> {
        let all = self.neighbours();
        if all.len() > MAX_NEIGH_ENTRIES as usize {
            return Err(bad(format!("at most {MAX_NEIGH_ENTRIES} neighbour entries")));
        }
        let mut owners: BTreeMap<(&str, IpAddr), MacAddr> = BTreeMap::new();
        for p in &all {
            let at = format!("neighbour {} in {:?}", p.ip, p.network);
            if self.network(&p.network).is_none() {
                return Err(bad(format!("{at}: unknown network {:?}", p.network)));
            }
            if !is_host_address(&p.ip) || is_v4_mapped(&p.ip) {
                return Err(bad(format!("{at}: not a host address")));
            }
            if !p.mac.is_unicast() {
                return Err(bad(format!("{at}: {} must be a unicast MAC", p.mac)));
            }
            if let Some(other) = owners.insert((&p.network, p.ip), p.mac)
                && other != p.mac
            {
                return Err(bad(format!("{at}: given to both {other} and {}", p.mac)));
            }
        }
        Ok(())
    }
}

/// `::ffff:a.b.c.d`: an IPv4 address written as IPv6; never on the wire
/// in ND, so refused rather than silently never answered.
pub fn is_v4_mapped(ip: &IpAddr) -> bool {
    matches!(ip, IpAddr::V6(a) if a.to_ipv4_mapped().is_some() && *a != Ipv6Addr::UNSPECIFIED)
}
