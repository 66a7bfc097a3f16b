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
    let a = assign_net_ids(&cfg(&["blue", "red", "green"]), &BTreeMap::new()).unwrap();
    assert_eq!((a["blue"], a["red"], a["green"]), (0, 1, 2));
    let b = assign_net_ids(&cfg(&["green", "new", "blue"]), &a).unwrap();
    assert_eq!((b["blue"], b["green"], b["new"]), (0, 2, 3), "red's id is not reused in the same up");
    assert_eq!(fresh_ids(&a, &b), [3].into());
    let c = assign_net_ids(&cfg(&["green", "blue", "new", "newer"]), &b).unwrap();
    assert_eq!(c["newer"], 1, "a later up reuses it");
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
    let ids = assign_net_ids(&c, &BTreeMap::new()).unwrap();
    let r = Resolved {
        underlay_ifindex: 1,
        underlay_mtu: 1500,
        underlay_mac: [2, 0, 0, 0, 0, 1],
        ports: [("t1".into(), 7), ("p1".into(), 8)].into(),
        peer_elsewhere: Default::default(),
    };
    let d = desired(&c, &ids, &r, &Default::default()).unwrap().maps;
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

/// Registered VTEPs join the configured peers; past a flood set's
/// capacity they are still peers (unicast, accepted) and the overflow is
/// reported, never silently cut. Registered MACs become control entries
/// (the config's own entry wins) with their addresses as neighbour pairs.
#[test]
fn remote_vteps_and_macs_are_installed_and_flood_overflow_is_reported() {
    use crate::remote::{Remote, RemoteMac};
    let mut c = cfg(&["blue"]);
    c.networks[0].peers = vec!["198.51.100.1".parse().unwrap()];
    let mut f = c.networks[0].clone();
    f.name = "vlanonly".into();
    f.vni = None;
    f.vlan = Some(7);
    f.peers.clear();
    c.networks.push(f);
    c.fdb.push(crate::config::StaticFdb {
        mac: "02:00:00:00:00:01".parse().unwrap(),
        network: "blue".into(),
        remote: Some("198.51.100.1".parse().unwrap()),
        port: None,
        ip: vec![],
    });
    let ids = assign_net_ids(&c, &BTreeMap::new()).unwrap();
    let r = Resolved {
        underlay_ifindex: 1,
        underlay_mtu: 1500,
        underlay_mac: [2, 0, 0, 0, 0, 1],
        ports: BTreeMap::new(),
        peer_elsewhere: Default::default(),
    };
    let mut remote = Remote::default();
    let vteps: std::collections::BTreeSet<std::net::IpAddr> =
        (0..200u32).map(|i| std::net::IpAddr::from(std::net::Ipv4Addr::from(0xc000_0200 + 10 + i))).collect();
    remote.vteps.insert("blue".into(), vteps.clone());
    remote.vteps.insert("vlanonly".into(), vteps.clone());
    let vtep = *vteps.iter().next().unwrap();
    let m = |ips: &[&str]| RemoteMac { vtep, ips: ips.iter().map(|i| i.parse().unwrap()).collect() };
    remote.macs.insert(
        "blue".into(),
        [
            ("02:00:00:00:00:01".parse().unwrap(), m(&[])),
            ("02:00:00:00:00:02".parse().unwrap(), m(&["203.0.113.2"])),
            (
                "02:00:00:00:00:03".parse().unwrap(),
                RemoteMac { vtep: "198.51.100.77".parse().unwrap(), ips: vec![] },
            ),
        ]
        .into(),
    );
    let want = desired(&c, &ids, &r, &remote).unwrap();
    let (d, blue) = (&want.maps, ids["blue"]);
    assert_eq!(d.networks[&blue].flags & NET_F_EVENTS, 0, "no [control]: no FDB events");
    let mut with_control = c.clone();
    with_control.control = Some(
        crate::config::Config::parse(
            "name = \"t\"\n[underlay]\ninterface = \"u\"\naddress = \"192.0.2.1\"\n\
             [control]\netcd = [\"http://192.0.2.250:2379\"]\n",
        )
        .unwrap()
        .control
        .unwrap(),
    );
    let nets = desired(&with_control, &ids, &r, &remote).unwrap().maps.networks;
    assert_ne!(nets[&blue].flags & NET_F_EVENTS, 0, "a VXLAN network with [control] reports");
    assert_eq!(nets[&ids["vlanonly"]].flags & NET_F_EVENTS, 0, "a VLAN-only network is never published");
    let fs = &d.flood[&blue];
    assert_eq!(fs.n_peers as usize, overlay_common::MAX_FLOOD_PEERS);
    assert_eq!(
        fs.peers_be[0],
        be("198.51.100.1".parse::<std::net::Ipv4Addr>().unwrap()),
        "configured peers first"
    );
    assert_eq!(want.flood_overflow["blue"], 201 - overlay_common::MAX_FLOOD_PEERS);
    assert_eq!(d.peers.iter().filter(|k| k.net_id == blue).count(), 201, "every VTEP is a peer");
    assert_eq!(d.flood[&ids["vlanonly"]].n_peers, 0, "no VXLAN, no VTEPs");
    assert!(!want.flood_overflow.contains_key("vlanonly"));
    let e = |mac: [u8; 6]| d.fdb.get(&FdbKey::new(blue, mac)).copied();
    assert_eq!(e([2, 0, 0, 0, 0, 1]).unwrap().flags, FDB_F_STATIC, "the config's entry wins");
    let two = e([2, 0, 0, 0, 0, 2]).unwrap();
    assert_eq!((two.flags, two.remote_be), (FDB_F_STATIC | FDB_F_CONTROL, be(vtep)));
    assert!(e([2, 0, 0, 0, 0, 3]).is_none(), "behind a VTEP nobody registered");
    let pair = d.neigh[&crate::neigh::key(blue, "203.0.113.2".parse().unwrap())];
    assert_eq!(pair.mac, [2, 0, 0, 0, 0, 2]);
}

/// Every intermediate state of a plan is safe, over random transitions.
mod transitions {
    use std::collections::{BTreeMap, HashMap};

    use overlay_common::pktbuild::Rng;

    use super::*;

    const NETS: usize = 5;
    const PORTS: u32 = 6;
    const VTEPS: [&str; 3] = ["192.0.2.2", "192.0.2.3", "192.0.2.4"];

    fn pick(rng: &mut Rng, p: usize) -> bool {
        rng.below(100) < p
    }

    /// A random valid config: networks n0..n4 (VNI from a range of their
    /// own, so a VNI never changes hands; VLAN 10+i or 30+i), ports p0..p5
    /// access, trunk (with or without native) or absent, a few statics.
    fn random_config(rng: &mut Rng) -> Config {
        let mut t = String::from("name = \"t\"\n[underlay]\ninterface = \"u\"\naddress = \"192.0.2.1\"\n");
        let present: Vec<usize> = (0..NETS).filter(|_| pick(rng, 70)).collect();
        for &i in &present {
            let peers: Vec<String> =
                VTEPS.iter().filter(|_| pick(rng, 50)).map(|p| format!("\"{p}\"")).collect();
            t += &format!(
                "[[network]]\nname = \"n{i}\"\nvni = {}\nvlan = {}\npeers = [{}]\nlearn_unknown_peers = {}\n",
                100 * (i + 1) + rng.below(3),
                if pick(rng, 80) { 10 + i } else { 30 + i },
                peers.join(", "),
                pick(rng, 20)
            );
        }
        let mut port_nets: Vec<(u32, Vec<usize>)> = Vec::new();
        for p in 0..PORTS {
            if present.is_empty() || pick(rng, 25) {
                continue;
            }
            let one = present[rng.below(present.len())];
            if pick(rng, 50) {
                t += &format!("[[port]]\ninterface = \"p{p}\"\nnetwork = \"n{one}\"\n");
                port_nets.push((p, vec![one]));
            } else {
                let list: Vec<usize> = present.iter().copied().filter(|_| pick(rng, 50)).collect();
                let native = present.iter().copied().find(|n| !list.contains(n) && pick(rng, 40));
                if list.is_empty() && native.is_none() {
                    continue;
                }
                let names: Vec<String> = list.iter().map(|n| format!("\"n{n}\"")).collect();
                t += &format!("[[port]]\ninterface = \"p{p}\"\ntrunk = [{}]\n", names.join(", "));
                if let Some(n) = native {
                    t += &format!("native = \"n{n}\"\n");
                }
                port_nets.push((p, list.into_iter().chain(native).collect()));
            }
        }
        for m in 0..3u8 {
            if pick(rng, 30) && !port_nets.is_empty() {
                let (p, nets) = &port_nets[rng.below(port_nets.len())];
                let n = nets[rng.below(nets.len())];
                t += &format!(
                    "[[fdb]]\nmac = \"02:00:00:00:01:{m:02x}\"\nnetwork = \"n{n}\"\nport = \"p{p}\"\n"
                );
                if pick(rng, 50) {
                    t += &format!("ip = [\"203.0.113.{m}\", \"2001:db8::{m}\"]\n");
                }
            } else if pick(rng, 30) && !present.is_empty() {
                let n = present[rng.below(present.len())];
                let r = VTEPS[rng.below(VTEPS.len())];
                t += &format!(
                    "[[fdb]]\nmac = \"02:00:00:00:02:{m:02x}\"\nnetwork = \"n{n}\"\nremote = \"{r}\"\n"
                );
            }
        }
        Config::parse(&t).unwrap_or_else(|e| panic!("generated config invalid: {e}\n{t}"))
    }

    fn resolved() -> Resolved {
        Resolved {
            underlay_ifindex: 1,
            underlay_mtu: 1500,
            underlay_mac: [2, 0, 0, 0, 0, 1],
            ports: (0..PORTS).map(|p| (format!("p{p}"), 10 + p)).collect(),
            peer_elsewhere: Default::default(),
        }
    }

    fn run(s: &mut Snapshot, op: &Op) {
        match op {
            Op::Network(id, n) if n.flags == 0 => drop(s.networks.remove(id)),
            Op::Network(id, n) => drop(s.networks.insert(*id, *n)),
            Op::Flood(id, fs) => drop(s.flood.insert(*id, **fs)),
            Op::DelVni(v) => drop(s.vni.remove(v)),
            Op::Vni(v, id) => drop(s.vni.insert(*v, *id)),
            Op::DelPeer(k) => drop(s.peers.remove(k)),
            Op::Peer(k) => drop(s.peers.insert(*k)),
            Op::DelPort(p) => drop(s.ports.remove(p)),
            Op::Port(p, c) => drop(s.ports.insert(*p, *c)),
            Op::DelTrunk(k) => drop(s.trunk.remove(k)),
            Op::Trunk(k, id) => drop(s.trunk.insert(*k, *id)),
            Op::DelFdb(k) => drop(s.fdb.remove(k)),
            Op::Statics(v) => s.fdb.extend(v.iter().copied()),
            Op::DelNeigh(k) => drop(s.neigh.remove(k)),
            Op::Neigh(k, e) => drop(s.neigh.insert(*k, *e)),
            Op::Global(g) => s.global = *g,
            Op::Learned(..) | Op::ResetStats(_) | Op::ClearCaches => {}
        }
    }

    /// One side of a transition: its desired state and id -> name.
    struct Side<'a> {
        d: &'a Snapshot,
        names: BTreeMap<u32, &'a str>,
    }

    impl Side<'_> {
        fn untagged(&self, p: u32) -> Option<&str> {
            let c = self.d.ports.get(&p)?;
            self.names.get(&c.net_id).copied()
        }
        fn tagged(&self, k: &TrunkKey) -> Option<&str> {
            self.d.trunk.get(k).and_then(|id| self.names.get(id).copied())
        }
        fn by_vni(&self, v: u32) -> Option<&str> {
            self.d.vni.get(&v).and_then(|id| self.names.get(id).copied())
        }
    }

    /// The safety invariant of a state `s` between `a` (before) and `b`
    /// (after): whatever classifies a frame into an active network id (a
    /// port, a trunk VID, a VNI) does so as `a` or `b` would; a reachable
    /// id's settings, flood set and peers are those of `a` or `b`; an id
    /// new to its network is reachable only with an empty FDB slice and
    /// its final flood set.
    fn check(s: &Snapshot, a: &Side, b: &Side, fresh: &BTreeSet<u32>, at: &str) {
        let name = |id: u32| -> &str {
            match (a.names.get(&id), b.names.get(&id)) {
                (Some(x), Some(y)) => {
                    assert_eq!(x, y, "{at}: id {id} reused for another network in one up");
                    x
                }
                (Some(x), None) | (None, Some(x)) => x,
                (None, None) => panic!("{at}: active id {id} belongs to no network"),
            }
        };
        let active = |id: u32| s.networks.contains_key(&id);
        let mut reachable = BTreeSet::new();
        for (p, c) in &s.ports {
            if active(c.net_id) {
                let n = name(c.net_id);
                assert!(
                    a.untagged(*p) == Some(n) || b.untagged(*p) == Some(n),
                    "{at}: port {p} untagged in {n}"
                );
                reachable.insert(c.net_id);
            }
        }
        for (k, id) in &s.trunk {
            if active(*id) {
                let n = name(*id);
                assert!(a.tagged(k) == Some(n) || b.tagged(k) == Some(n), "{at}: trunk {k:?} in {n}");
                reachable.insert(*id);
            }
        }
        for (v, id) in &s.vni {
            if active(*id) {
                let n = name(*id);
                assert!(a.by_vni(*v) == Some(n) || b.by_vni(*v) == Some(n), "{at}: vni {v} -> {n}");
                reachable.insert(*id);
            }
        }
        for (id, n) in &s.networks {
            name(*id);
            assert!(
                a.d.networks.get(id) == Some(n) || b.d.networks.get(id) == Some(n),
                "{at}: settings of {id}"
            );
        }
        for k in &s.peers {
            if active(k.net_id) {
                assert!(a.d.peers.contains(k) || b.d.peers.contains(k), "{at}: peer {k:?}");
            }
        }
        for id in reachable {
            let fs = s.flood.get(&id);
            let new = !a.d.networks.contains_key(&id) || fresh.contains(&id);
            if new {
                assert_eq!(
                    fs,
                    b.d.flood.get(&id),
                    "{at}: new id {id} reachable before its flood set is final"
                );
                let left = s.fdb.iter().filter(|(k, e)| k.net_id == id && !e.is_static()).count();
                assert_eq!(
                    left, 0,
                    "{at}: new id {id} reachable with {left} learned entries of another network"
                );
                let pairs =
                    s.neigh.iter().filter(|(k, e)| k.net_id == id && b.d.neigh.get(k) != Some(e)).count();
                assert_eq!(
                    pairs, 0,
                    "{at}: new id {id} reachable with {pairs} neighbour pairs of another network"
                );
            } else {
                assert!(fs == a.d.flood.get(&id) || fs == b.d.flood.get(&id), "{at}: flood set of {id}");
            }
        }
    }

    /// Learned entries of every kind, on any id (also ones not in use).
    fn add_learned(s: &mut Snapshot, rng: &mut Rng) {
        for i in 0..20u8 {
            let net_id = rng.below(10) as u32;
            let mac = [2, 0, 0, 0, 3, i];
            let e = if pick(rng, 50) {
                FdbEntry {
                    kind: FDB_KIND_PORT,
                    ifindex: 10 + rng.below(PORTS as usize) as u32,
                    ..Default::default()
                }
            } else {
                let ip: std::net::IpAddr = VTEPS[rng.below(VTEPS.len())].parse().unwrap();
                FdbEntry { kind: FDB_KIND_REMOTE, remote_be: be(ip), ..Default::default() }
            };
            s.fdb.entry(FdbKey::new(net_id, mac)).or_insert(e);
            let pair = NeighEntry { mac, updated_ns: 1, ..Default::default() };
            s.neigh.entry(NeighKey::v4(rng.below(10) as u32, [203, 0, 113, 100 + i])).or_insert(pair);
        }
    }

    #[test]
    fn every_intermediate_state_of_a_plan_is_safe() {
        let seed = 12;
        let mut rng = Rng::new(seed);
        let r = resolved();
        let mut cfg = random_config(&mut rng);
        let mut ids = assign_net_ids(&cfg, &BTreeMap::new()).unwrap();
        let mut d = desired(&cfg, &ids, &r, &Default::default()).unwrap();
        let mut s = d.maps.clone();
        for step in 0..1500 {
            add_learned(&mut s, &mut rng);
            let next_cfg = random_config(&mut rng);
            let next_ids = assign_net_ids(&next_cfg, &ids).unwrap();
            let mut next = desired(&next_cfg, &next_ids, &r, &Default::default()).unwrap();
            next.fresh = fresh_ids(&ids, &next_ids);
            let a = Side { d: &d.maps, names: ids.iter().map(|(n, id)| (*id, n.as_str())).collect() };
            let b = Side { d: &next.maps, names: next_ids.iter().map(|(n, id)| (*id, n.as_str())).collect() };
            let ops = plan::plan(&s, &next);
            let at =
                |i: usize| format!("seed {seed} step {step} after op {i} {:?}", ops.get(i.wrapping_sub(1)));
            check(&s, &a, &b, &next.fresh, &at(0));
            for (i, op) in ops.iter().enumerate() {
                run(&mut s, op);
                check(&s, &a, &b, &next.fresh, &at(i + 1));
            }
            // The end state is exactly the new config, and every learned
            // entry left is valid under it.
            let want = next.maps.clone();
            assert_eq!(
                (&s.networks, &s.vni, &s.peers, &s.ports, &s.trunk),
                (&want.networks, &want.vni, &want.peers, &want.ports, &want.trunk),
                "step {step}"
            );
            for (id, fs) in &want.flood {
                assert_eq!(s.flood.get(id), Some(fs), "step {step}: flood set of {id}");
            }
            let statics: HashMap<FdbKey, FdbEntry> =
                s.fdb.iter().filter(|(_, e)| e.is_static()).map(|(k, e)| (*k, *e)).collect();
            assert_eq!(statics, want.fdb, "step {step}: static entries");
            let pairs: HashMap<NeighKey, NeighEntry> =
                s.neigh.iter().filter(|(_, e)| e.is_static()).map(|(k, e)| (*k, *e)).collect();
            assert_eq!(pairs, want.neigh, "step {step}: configured neighbour pairs");
            for k in s.neigh.iter().filter(|(_, e)| !e.is_static()).map(|(k, _)| k) {
                let kept = next.maps.networks.contains_key(&k.net_id) && !next.fresh.contains(&k.net_id);
                assert!(kept, "step {step}: learned pair {k:?} left in a network that is gone or new");
            }
            for (k, e) in s.fdb.iter().filter(|(_, e)| !e.is_static()) {
                let ok = match e.kind {
                    FDB_KIND_PORT => plan::is_member(&next.maps, e.ifindex, k.net_id),
                    _ => next.maps.networks.get(&k.net_id).is_some_and(|n| {
                        n.flags & NET_F_LEARN_UNKNOWN_PEERS != 0
                            || next.maps.peers.contains(&PeerKey { net_id: k.net_id, vtep_be: e.remote_be })
                    }),
                };
                assert!(ok, "step {step}: learned entry {k:?} -> {e:?} left behind");
            }
            (cfg, ids, d) = (next_cfg, next_ids, next);
        }
        let _ = cfg;
    }
}
