//! Turning a validated config into map contents, and writing only the
//! difference to the kernel so traffic that is not concerned is undisturbed.

use std::collections::{BTreeMap, HashMap, HashSet};

use overlay_common::{NO_NET, NO_VLAN, maps::*};

use crate::{
    config::{Config, parse_mac},
    error::{Error, Result},
    maps::Maps,
};

/// Interfaces resolved in this network namespace.
pub struct Resolved {
    pub underlay_ifindex: u32,
    pub underlay_mtu: u32,
    /// Port interface name -> ifindex.
    pub ports: BTreeMap<String, u32>,
}

/// Everything the maps should hold (learned FDB entries aside).
#[derive(Default)]
pub struct Desired {
    pub global: GlobalConfig,
    pub networks: BTreeMap<u32, NetConfig>,
    pub vni: HashMap<u32, u32>,
    pub peers: HashSet<PeerKey>,
    pub flood: BTreeMap<u32, FloodSet>,
    pub ports: HashMap<u32, PortConfig>,
    pub trunk: HashMap<TrunkKey, u32>,
    pub static_fdb: HashMap<FdbKey, FdbEntry>,
}

/// Keeps the net ids of networks that already had one (learned FDB entries
/// are keyed by it) and gives new networks the lowest free ids.
pub fn assign_net_ids(cfg: &Config, old: &BTreeMap<String, u32>) -> BTreeMap<String, u32> {
    let mut ids = BTreeMap::new();
    let mut used = HashSet::new();
    for n in &cfg.networks {
        if let Some(&id) = old.get(&n.name) {
            ids.insert(n.name.clone(), id);
            used.insert(id);
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
        ids.insert(n.name.clone(), next);
        used.insert(next);
    }
    ids
}

fn be(ip: std::net::Ipv4Addr) -> u32 {
    u32::from_ne_bytes(ip.octets())
}

pub fn desired(cfg: &Config, ids: &BTreeMap<String, u32>, r: &Resolved) -> Result<Desired> {
    let mut d = Desired {
        global: GlobalConfig {
            layout_version: overlay_common::LAYOUT_VERSION,
            local_vtep_be: be(cfg.underlay.address),
            underlay_ifindex: r.underlay_ifindex,
            underlay_mtu: r.underlay_mtu,
            udp_port_be: cfg.underlay.port.to_be(),
            ttl: cfg.underlay.ttl,
            flags: if cfg.underlay.udp_checksum { CFG_F_UDP_CSUM } else { 0 },
            _pad: 0,
            ageing_ns: cfg.ageing as u64 * 1_000_000_000,
        },
        ..Default::default()
    };
    for n in &cfg.networks {
        let id = ids[&n.name];
        let mut flags = NET_F_ACTIVE;
        if n.vni.is_some() {
            flags |= NET_F_VXLAN;
        }
        if n.learn_unknown_peers {
            flags |= NET_F_LEARN_UNKNOWN_PEERS;
        }
        if n.allow_inner_vlan {
            flags |= NET_F_ALLOW_INNER_TAG;
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
        for (i, p) in n.peers.iter().enumerate() {
            d.peers.insert(PeerKey { net_id: id, vtep_be: be(*p) });
            fs.peers_be[i] = be(*p);
        }
        fs.n_peers = n.peers.len() as u32;
        d.flood.insert(id, fs);
    }
    for p in &cfg.ports {
        let ifindex = r.ports[&p.interface];
        let nets = cfg.port_networks(p)?;
        let mut pc = PortConfig {
            mode: if p.trunk.is_some() { PORT_MODE_TRUNK } else { PORT_MODE_ACCESS },
            flags: if p.priority_tagged { PORT_F_PRIO_TAGGED } else { 0 }
                | if p.xdp_target { PORT_F_XDP_TARGET } else { 0 },
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
        let mac = parse_mac(&f.mac).ok_or_else(|| Error::Config(format!("fdb {}: bad MAC", f.mac)))?;
        let key = FdbKey { net_id: ids[&f.network], mac, _pad: [0; 2] };
        let mut e = FdbEntry { flags: FDB_F_STATIC, ..Default::default() };
        if let Some(r_ip) = f.remote {
            e.kind = FDB_KIND_REMOTE;
            e.remote_be = be(r_ip);
        } else if let Some(port) = &f.port {
            e.kind = FDB_KIND_PORT;
            e.ifindex = r.ports[port];
        }
        d.static_fdb.insert(key, e);
    }
    Ok(d)
}

macro_rules! sync_hash {
    ($map:expr, $name:expr, $want:expr) => {{
        let have: Vec<_> = $map.iter().filter_map(|r| r.ok()).collect();
        for (k, v) in $want.iter() {
            if !have.iter().any(|(hk, hv)| hk == k && hv == v) {
                $map.insert(k, v, 0).map_err(Error::map($name))?;
            }
        }
        for (k, _) in have {
            if !$want.contains_key(&k) {
                let _ = $map.remove(&k);
            }
        }
    }};
}

/// Writes `d` into the maps: additions and changes first, removals last.
/// Learned FDB entries survive unless their network or port went away.
pub fn apply(m: &mut Maps, d: &Desired) -> Result<()> {
    for (id, n) in &d.networks {
        if m.networks.get(id, 0).ok().as_ref() != Some(n) {
            m.networks.set(*id, n, 0).map_err(Error::map(MAP_NETWORKS))?;
        }
    }
    sync_hash!(m.vni, MAP_VNI, d.vni);
    let peers: HashMap<PeerKey, u32> = d.peers.iter().map(|k| (*k, 1u32)).collect();
    sync_hash!(m.peers, MAP_PEERS, peers);
    sync_hash!(m.ports, MAP_PORTS, d.ports);
    sync_hash!(m.trunk, MAP_TRUNK, d.trunk);
    for (id, fs) in &d.flood {
        if m.flood.get(id, 0).ok().as_ref() != Some(fs) {
            m.flood.set(*id, fs, 0).map_err(Error::map(MAP_FLOOD))?;
        }
    }
    // Static entries: installed in batches; when the map is full, learned
    // entries make room (static entries must always install). Then statics
    // no longer configured and learned entries that point at a removed
    // network or port are dropped.
    let current: HashMap<FdbKey, FdbEntry> = m.fdb.iter().filter_map(|r| r.ok()).collect();
    // Learned entries per network, from the same snapshot, less what is
    // deleted below (written to NET_FDB at the end).
    let mut learned = count_learned(current.iter());
    let (keys, values): (Vec<FdbKey>, Vec<FdbEntry>) =
        d.static_fdb.iter().filter(|(k, e)| current.get(k) != Some(e)).map(|(k, e)| (*k, *e)).unzip();
    let mut start = 0;
    while start < keys.len() {
        let (n, err) = crate::batch::update(&m.fdb_raw, &keys[start..], &values[start..]);
        start += n;
        let Some(err) = err else { break };
        let evict: Vec<FdbKey> = m
            .fdb
            .iter()
            .filter_map(|r| r.ok())
            .filter(|(_, v)| !v.is_static())
            .map(|(k, _)| k)
            .take(keys.len() - start)
            .collect();
        if evict.is_empty() {
            return Err(Error::Config(format!(
                "FDB full: {} static entries do not fit fdb_size ({err})",
                keys.len() - start
            )));
        }
        for k in evict {
            if m.fdb.remove(&k).is_ok() {
                forget(&mut learned, k.net_id);
            }
        }
    }
    let stale: Vec<(FdbKey, FdbEntry)> = current
        .into_iter()
        .filter(|(k, e)| {
            // A key configured as static now holds that entry, whatever the
            // snapshot said.
            !d.static_fdb.contains_key(k)
                && (e.is_static()
                    || !d.networks.contains_key(&k.net_id)
                    || (e.kind == FDB_KIND_PORT && !d.ports.contains_key(&e.ifindex)))
        })
        .collect();
    for (k, e) in stale {
        if m.fdb.remove(&k).is_ok() && !e.is_static() {
            forget(&mut learned, k.net_id);
        }
    }
    // Networks that are gone: clear their slots last.
    for id in 0..overlay_common::MAX_NETWORKS {
        if d.networks.contains_key(&id) {
            continue;
        }
        if m.networks.get(&id, 0).map(|n| n.flags != 0).unwrap_or(false) {
            m.networks.set(id, NetConfig::default(), 0).map_err(Error::map(MAP_NETWORKS))?;
            m.flood.set(id, FloodSet::default(), 0).map_err(Error::map(MAP_FLOOD))?;
        }
    }
    write_learned(m, &learned)?;
    if m.global().ok().as_ref() != Some(&d.global) {
        m.config.set(0, d.global, 0).map_err(Error::map(MAP_CONFIG))?;
    }
    // Next hops cached by the datapath are looked up again after any `up`
    // (the underlay or its routes may have changed with it).
    let cached: Vec<u32> = m.next_hop.keys().filter_map(|k| k.ok()).collect();
    for k in cached {
        let _ = m.next_hop.remove(&k);
    }
    Ok(())
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

fn forget(counts: &mut BTreeMap<u32, u64>, net_id: u32) {
    if let Some(c) = counts.get_mut(&net_id) {
        *c = c.saturating_sub(1);
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(nets: &[&str]) -> Config {
        let mut t = String::from("name = \"t\"\n[underlay]\ninterface = \"u\"\naddress = \"192.0.2.1\"\n");
        for (i, n) in nets.iter().enumerate() {
            t += &format!("[[network]]\nname = \"{n}\"\nvni = {}\n", 100 + i);
        }
        Config::parse(&t).unwrap()
    }

    #[test]
    fn net_ids_are_stable_and_reused() {
        let a = assign_net_ids(&cfg(&["blue", "red", "green"]), &BTreeMap::new());
        assert_eq!((a["blue"], a["red"], a["green"]), (0, 1, 2));
        let b = assign_net_ids(&cfg(&["green", "new", "blue"]), &a);
        assert_eq!((b["blue"], b["green"], b["new"]), (0, 2, 1), "red's id is reused, others kept");
    }

    #[test]
    fn desired_state_of_a_trunk() {
        let c = Config::parse(
            "name = \"t\"\n[underlay]\ninterface = \"u\"\naddress = \"192.0.2.1\"\n\
             [[network]]\nname = \"a\"\nvlan = 10\nvni = 5\npeers = [\"192.0.2.9\"]\n\
             [[network]]\nname = \"b\"\nvlan = 20\n\
             [[port]]\ninterface = \"t1\"\ntrunk = [\"a\"]\nnative = \"b\"\n\
             [[port]]\ninterface = \"p1\"\nnetwork = \"a\"\n",
        )
        .unwrap();
        let ids = assign_net_ids(&c, &BTreeMap::new());
        let r = Resolved {
            underlay_ifindex: 1,
            underlay_mtu: 1500,
            ports: [("t1".into(), 7), ("p1".into(), 8)].into(),
        };
        let d = desired(&c, &ids, &r).unwrap();
        assert_eq!(d.ports[&7].mode, PORT_MODE_TRUNK);
        assert_eq!(d.ports[&7].net_id, ids["b"], "native network");
        assert_eq!(d.trunk[&TrunkKey { ifindex: 7, vid: 10, _pad: 0 }], ids["a"]);
        assert_eq!(d.ports[&8].net_id, ids["a"]);
        let fa = &d.flood[&ids["a"]];
        assert_eq!(&fa.tagged[..fa.n_tagged as usize], &[7], "trunk member: tagged");
        assert_eq!(&fa.untagged[..fa.n_untagged as usize], &[8], "access member: untagged");
        let fb = &d.flood[&ids["b"]];
        assert_eq!((&fb.untagged[..fb.n_untagged as usize], fb.n_tagged), (&[7][..], 0), "native: untagged");
        assert_eq!(fa.n_peers, 1);
        assert_eq!(d.vni[&5], ids["a"]);
        assert_eq!(d.networks[&ids["b"]].flags & NET_F_VXLAN, 0);
    }
}
