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
