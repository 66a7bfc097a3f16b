//! Turning a validated config into map contents, and writing only the
//! difference to the kernel, in a safe order ([`plan`]), so traffic that is
//! not concerned is undisturbed and no frame crosses between networks while
//! the change is under way.

mod exec;
pub mod plan;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashSet};

use overlay_common::{NO_NET, NO_VLAN, maps::*};

pub use self::{
    exec::execute,
    plan::{Op, Snapshot},
};
use crate::{
    config::{Config, Encap, RpFilter},
    error::{Error, Result},
    maps::Maps,
    remote::Remote,
};

/// Interfaces resolved in this network namespace.
pub struct Resolved {
    pub underlay_ifindex: u32,
    pub underlay_mtu: u32,
    pub underlay_mac: [u8; 6],
    /// Port interface name -> ifindex.
    pub ports: BTreeMap<String, u32>,
    /// Ports that are veths with their peer in another namespace.
    pub peer_elsewhere: BTreeSet<u32>,
}

/// Everything the maps should hold (learned FDB entries aside: `maps.fdb`
/// holds the static entries).
#[derive(Default)]
pub struct Desired {
    pub maps: Snapshot,
    /// Ids given to a network that did not have them before this `up`:
    /// their FDB slice, learned count and counters start empty.
    pub fresh: BTreeSet<u32>,
    /// Networks with more VTEPs (configured and registered) than a flood
    /// set holds: network -> VTEPs left out of flooding (they still get
    /// known unicast and are accepted as peers).
    pub flood_overflow: BTreeMap<String, usize>,
}

/// Keeps the net ids of networks that already had one (learned FDB entries
/// are keyed by it) and gives new networks the lowest ids that were not in
/// use before this `up`: an id freed now is handed out again only by a
/// later `up`, after this one has emptied it.
pub fn assign_net_ids(cfg: &Config, old: &BTreeMap<String, u32>) -> Result<BTreeMap<String, u32>> {
    let mut ids = BTreeMap::new();
    let mut used: HashSet<u32> = old.values().copied().collect();
    for n in &cfg.networks {
        if let Some(&id) = old.get(&n.name) {
            ids.insert(n.name.clone(), id);
        }
    }
    let mut next = 0u32;
    for n in &cfg.networks {
        if ids.contains_key(&n.name) {
            continue;
        }
        while used.contains(&next) {
            next += 1;
        }
        if next >= overlay_common::MAX_NETWORKS {
            return Err(Error::Config(format!(
                "network {:?}: no network id free: this change removes and adds too many networks at \
                 once (at most {} in all); apply the removals first, then the additions",
                n.name,
                overlay_common::MAX_NETWORKS
            )));
        }
        ids.insert(n.name.clone(), next);
        used.insert(next);
    }
    Ok(ids)
}

/// Ids in `new` that were not the same network's in `old`.
pub fn fresh_ids(old: &BTreeMap<String, u32>, new: &BTreeMap<String, u32>) -> BTreeSet<u32> {
    new.iter().filter(|(name, id)| old.get(*name) != Some(id)).map(|(_, id)| *id).collect()
}

fn be(ip: impl Into<std::net::IpAddr>) -> overlay_common::VtepAddr {
    overlay_common::vtep::vtep_from_ip(ip)
}

/// The maps for `cfg` plus what the control plane installed (`remote`):
/// registered VTEPs join the network's peers and flood set (after the
/// configured ones), registered MACs become `control` FDB entries and their
/// addresses neighbour pairs, unless the config has its own for them.
/// `CFG_F_GRE` and `CFG_F_GENEVE` for the encapsulations the instance's
/// networks use: the datapath takes those protocols only then.
fn claimed(cfg: &Config) -> u8 {
    let uses = |e: Encap| cfg.networks.iter().any(|n| n.vni.is_some() && n.encap == e);
    (if uses(Encap::Gre) { CFG_F_GRE } else { 0 }) | (if uses(Encap::Geneve) { CFG_F_GENEVE } else { 0 })
}

/// `CFG_F_IPV6` for an IPv6 underlay, with `CFG_F_UDP6_ZERO_CSUM` when
/// zero UDP checksums are sent and accepted.
fn family_flags(u: &crate::config::Underlay) -> u8 {
    match (u.address.is_ipv6(), u.udp6_zero_checksum) {
        (false, _) => 0,
        (true, false) => CFG_F_IPV6,
        (true, true) => CFG_F_IPV6 | CFG_F_UDP6_ZERO_CSUM,
    }
}

pub fn desired(cfg: &Config, ids: &BTreeMap<String, u32>, r: &Resolved, remote: &Remote) -> Result<Desired> {
    let mut d = Snapshot {
        global: GlobalConfig {
            layout_version: overlay_common::LAYOUT_VERSION,
            local_vtep_be: be(cfg.underlay.address),
            underlay_ifindex: r.underlay_ifindex,
            underlay_mtu: r.underlay_mtu,
            udp_port_be: cfg.underlay.port.to_be(),
            ttl: cfg.underlay.ttl,
            flags: if cfg.underlay.udp_checksum { CFG_F_UDP_CSUM } else { 0 }
                | match cfg.underlay.rp_filter {
                    RpFilter::Strict => CFG_F_RP_STRICT,
                    RpFilter::Loose => CFG_F_RP_LOOSE,
                    RpFilter::Off => 0,
                }
                | claimed(cfg)
                | family_flags(&cfg.underlay),
            ageing_ns: cfg.ageing as u64 * 1_000_000_000,
            underlay_mac: r.underlay_mac,
            _pad2: [0; 2],
            gso_tunnel_ifindex: 0,
            _pad3: 0,
        },
        ..Default::default()
    };
    let suppressing = cfg.suppressing();
    let mut overflow = BTreeMap::new();
    for n in &cfg.networks {
        let id = ids[&n.name];
        let mut flags = NET_F_ACTIVE;
        if n.vni.is_some() {
            flags |= NET_F_VXLAN | net_encap_flags(n.encap.code());
        }
        if n.learn_unknown_peers {
            flags |= NET_F_LEARN_UNKNOWN_PEERS;
        }
        if n.allow_inner_vlan {
            flags |= NET_F_ALLOW_INNER_TAG;
        }
        if suppressing.contains(n.name.as_str()) {
            flags |= NET_F_SUPPRESS;
        }
        if n.learn_ip {
            flags |= NET_F_LEARN_IP;
        }
        if !n.flood_unknown {
            flags |= NET_F_NO_FLOOD_UNKNOWN;
        }
        if cfg.control.is_some() && n.vni.is_some() {
            flags |= NET_F_EVENTS;
        }
        d.networks.insert(
            id,
            NetConfig {
                vni: n.vni.unwrap_or(0),
                vlan: n.vlan.unwrap_or(NO_VLAN),
                flags,
                max_learned: n.learn_limit(cfg.fdb_size),
            },
        );
        if let Some(v) = n.vni {
            d.vni.insert(v, id);
        }
        let mut fs = FloodSet::default();
        let mut vteps = n.peers.clone();
        if n.vni.is_some()
            && let Some(reg) = remote.vteps.get(&n.name)
        {
            vteps.extend(reg.iter().filter(|v| !n.peers.contains(v)));
        }
        for p in &vteps {
            d.peers.insert(PeerKey { net_id: id, vtep_be: be(*p) });
        }
        let flooded = vteps.len().min(overlay_common::MAX_FLOOD_PEERS);
        for (i, p) in vteps[..flooded].iter().enumerate() {
            fs.peers_be[i] = be(*p);
        }
        fs.n_peers = flooded as u32;
        if vteps.len() > flooded {
            overflow.insert(n.name.clone(), vteps.len() - flooded);
        }
        d.flood.insert(id, fs);
    }
    for p in &cfg.ports {
        let ifindex = r.ports[&p.interface];
        let nets = cfg.port_networks(p)?;
        let mut pc = PortConfig {
            mode: if p.trunk.is_some() { PORT_MODE_TRUNK } else { PORT_MODE_ACCESS },
            flags: if p.priority_tagged { PORT_F_PRIO_TAGGED } else { 0 }
                | if p.xdp_target { PORT_F_XDP_TARGET } else { 0 }
                | if r.peer_elsewhere.contains(&ifindex) { PORT_F_PEER_ELSEWHERE } else { 0 },
            _pad: 0,
            net_id: NO_NET,
        };
        for (net, tagged) in nets {
            let id = ids[net];
            if tagged {
                let vid = cfg
                    .network(net)
                    .and_then(|n| n.vlan)
                    .ok_or_else(|| Error::Config(format!("{net} has no vlan")))?;
                d.trunk.insert(TrunkKey { ifindex, vid, _pad: 0 }, id);
            } else {
                pc.net_id = id;
            }
            let fs = d.flood.get_mut(&id).expect("network flood set");
            if tagged {
                fs.tagged[fs.n_tagged as usize] = ifindex;
                fs.n_tagged += 1;
            } else {
                fs.untagged[fs.n_untagged as usize] = ifindex;
                fs.n_untagged += 1;
            }
        }
        d.ports.insert(ifindex, pc);
    }
    for f in &cfg.fdb {
        let key = FdbKey::new(ids[&f.network], f.mac.0);
        let mut e = FdbEntry { flags: FDB_F_STATIC, ..Default::default() };
        if let Some(r_ip) = f.remote {
            e.kind = FDB_KIND_REMOTE;
            e.remote_be = be(r_ip);
            // A VTEP the config names is one of the network's: frames go
            // to it and are accepted from it.
            d.peers.insert(PeerKey { net_id: key.net_id, vtep_be: e.remote_be });
        } else if let Some(port) = &f.port {
            e.kind = FDB_KIND_PORT;
            e.ifindex = r.ports[port];
        }
        d.fdb.insert(key, e);
    }
    for p in cfg.neighbours() {
        let key = crate::neigh::key(ids[&p.network], p.ip);
        d.neigh.insert(key, NeighEntry { mac: p.mac.0, flags: NEIGH_F_STATIC, _pad: 0, updated_ns: 0 });
    }
    for (net, macs) in &remote.macs {
        let (Some(&id), Some(n)) = (ids.get(net), cfg.network(net)) else { continue };
        let registered = remote.vteps.get(net);
        for (mac, m) in macs {
            let key = FdbKey::new(id, mac.0);
            if n.vni.is_none() || d.fdb.contains_key(&key) || !registered.is_some_and(|r| r.contains(&m.vtep))
            {
                continue;
            }
            let e = FdbEntry {
                kind: FDB_KIND_REMOTE,
                flags: FDB_F_STATIC | FDB_F_CONTROL,
                remote_be: be(m.vtep),
                ..Default::default()
            };
            d.fdb.insert(key, e);
            for ip in &m.ips {
                let k = crate::neigh::key(id, *ip);
                d.neigh.entry(k).or_insert(NeighEntry {
                    mac: mac.0,
                    flags: NEIGH_F_STATIC,
                    _pad: 0,
                    updated_ns: 0,
                });
            }
        }
    }
    Ok(Desired { maps: d, fresh: BTreeSet::new(), flood_overflow: overflow })
}

/// Writes `d` into the maps: reads what they hold, then carries out the
/// ordered writes of [`plan::plan`]. Learned FDB entries survive unless
/// they became invalid (network, port membership or VTEP gone).
pub fn apply(m: &mut Maps, d: &Desired) -> Result<()> {
    let s = Snapshot::read(m, d.maps.networks.keys().copied())?;
    exec::execute(m, &plan::plan(&s, d))
}

/// Learned entries per network among `entries`.
fn count_learned<'a>(entries: impl Iterator<Item = (&'a FdbKey, &'a FdbEntry)>) -> BTreeMap<u32, u64> {
    let mut n = BTreeMap::new();
    for (k, e) in entries {
        if !e.is_static() {
            *n.entry(k.net_id).or_insert(0) += 1;
        }
    }
    n
}

/// Learned entries per network, counted in the FDB.
pub fn learned_per_network(m: &Maps) -> BTreeMap<u32, u64> {
    let all: Vec<(FdbKey, FdbEntry)> = m.fdb.iter().filter_map(|r| r.ok()).collect();
    count_learned(all.iter().map(|(k, e)| (k, e)))
}

/// Writes the true number of learned entries of every network to
/// `NET_FDB`, after userspace deleted learned entries (the datapath keeps
/// the count itself as it learns and ages). An entry learned while this
/// runs may be missed, letting a network go one entry over its limit until
/// the next recount.
pub fn recount_learned(m: &mut Maps) -> Result<()> {
    let counts = learned_per_network(m);
    write_learned(m, &counts)
}

/// Sets each network's learned count in `NET_FDB` (absent = 0).
fn write_learned(m: &mut Maps, counts: &BTreeMap<u32, u64>) -> Result<()> {
    for id in 0..overlay_common::MAX_NETWORKS {
        let want = counts.get(&id).copied().unwrap_or(0);
        let mut st = m.net_fdb.get(&id, 0).map_err(Error::map(MAP_NET_FDB))?;
        if st.learned != want {
            st.learned = want;
            m.net_fdb.set(id, st, 0).map_err(Error::map(MAP_NET_FDB))?;
        }
    }
    Ok(())
}
