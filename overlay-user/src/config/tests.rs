use super::*;

const GOOD: &str = r#"
name = "host1"
[underlay]
interface = "eth0"
address = "192.0.2.1"
[[network]]
name = "blue"
vni = 100
vlan = 10
peers = ["192.0.2.2", "192.0.2.3"]
[[network]]
name = "red"
vlan = 20
[[port]]
interface = "vm1"
network = "blue"
[[port]]
interface = "eth1"
trunk = ["blue", "red"]
[[fdb]]
mac = "02:00:00:00:00:02"
network = "blue"
remote = "192.0.2.2"
[[fdb]]
mac = "02:00:00:00:00:03"
network = "blue"
port = "vm1"
"#;

fn err_of(text: &str) -> String {
    Config::parse(text).expect_err("must be refused").to_string()
}

#[test]
fn example_parses_with_defaults() {
    let c = Config::parse(GOOD).unwrap();
    assert_eq!(c.underlay.port, 4789);
    assert_eq!(c.underlay.ttl, 64);
    assert_eq!(c.ageing, 300);
    assert_eq!(c.networks.len(), 2);
    assert_eq!(c.fdb.len(), 2);
}

#[test]
fn errors_name_the_field() {
    let cases = [
        (GOOD.replace("vni = 100", "vni = 0"), "network[0] \"blue\": vni 0 out of range"),
        (GOOD.replace("vni = 100", "vni = 16777216"), "vni 16777216 out of range"),
        (GOOD.replace("vlan = 20", "vlan = 4095"), "network[1] \"red\": vlan 4095 out of range"),
        (GOOD.replace("vlan = 20", "vlan = 10"), "vlan 10 already used by network \"blue\""),
        (GOOD.replace("\"192.0.2.3\"", "\"192.0.2.1\""), "peer 192.0.2.1 is the local VTEP"),
        (GOOD.replace("\"192.0.2.3\"", "\"192.0.2.2\""), "peer 192.0.2.2 listed twice"),
        (
            GOOD.replace("network = \"blue\"\n[[port]]", "network = \"green\"\n[[port]]"),
            "port[0] \"vm1\": unknown network \"green\"",
        ),
        (GOOD.replace("02:00:00:00:00:02", "01:00:00:00:00:02"), "must be a unicast MAC"),
        (GOOD.replace("02:00:00:00:00:02", "02:00:00:00:02"), "not a MAC address"),
        (GOOD.replace("address = \"192.0.2.1\"", "address = \"192.0.2.300\""), "address"),
        (GOOD.replace("name = \"host1\"", "name = \"../etc\""), "name \"../etc\""),
        (GOOD.replace("interface = \"eth1\"", "interface = \"vm1\""), "interface used twice"),
        (
            GOOD.replace("[[port]]\ninterface = \"vm1\"", "[[port]]\nbogus = 1\ninterface = \"vm1\""),
            "unknown field `bogus`",
        ),
        (
            GOOD.replace("remote = \"192.0.2.2\"", "remote = \"192.0.2.2\"\nport = \"vm1\""),
            "exactly one of remote or port",
        ),
        (GOOD.replace("name = \"red\"\nvlan = 20", "name = \"red\""), "needs a vni, a vlan, or both"),
        (
            GOOD.replace("trunk = [\"blue\", \"red\"]", "trunk = [\"blue\", \"red\"]\nnative = \"red\""),
            "also in trunk",
        ),
    ];
    for (text, want) in cases {
        let e = err_of(&text);
        assert!(e.contains(want), "error {e:?} should contain {want:?}");
    }
}

#[test]
fn trunk_networks_need_a_vlan() {
    let t = GOOD.replace("name = \"red\"\nvlan = 20", "name = \"red\"\nvni = 200");
    assert!(err_of(&t).contains("has no vlan, so it cannot be tagged"));
}

#[test]
fn inner_tags_never_leave_a_trunk_untagged() {
    let t = GOOD
        .replace("vlan = 10\n", "vlan = 10\nallow_inner_vlan = true\n")
        .replace("trunk = [\"blue\", \"red\"]", "trunk = [\"red\"]\nnative = \"blue\"");
    let e = err_of(&t);
    assert!(e.contains("port[1] \"eth1\": native = \"blue\"") && e.contains("allow_inner_vlan"), "{e}");
    // Tagged on the trunk (inside the network's own tag) is fine.
    Config::parse(&GOOD.replace("vlan = 10\n", "vlan = 10\nallow_inner_vlan = true\n")).unwrap();
}

#[test]
fn rp_filter_modes() {
    assert_eq!(Config::parse(GOOD).unwrap().underlay.rp_filter, RpFilter::Strict, "strict by default");
    for (v, want) in [("strict", RpFilter::Strict), ("loose", RpFilter::Loose), ("off", RpFilter::Off)] {
        let t =
            GOOD.replace("address = \"192.0.2.1\"", &format!("address = \"192.0.2.1\"\nrp_filter = \"{v}\""));
        assert_eq!(Config::parse(&t).unwrap().underlay.rp_filter, want);
    }
    let t = GOOD.replace("address = \"192.0.2.1\"", "address = \"192.0.2.1\"\nrp_filter = \"on\"");
    assert!(err_of(&t).contains("unknown variant `on`"), "{}", err_of(&t));
}

#[test]
fn xdp_modes() {
    for ok in ["off", "native", "generic"] {
        let t = GOOD.replace("address = \"192.0.2.1\"", &format!("address = \"192.0.2.1\"\nxdp = \"{ok}\""));
        Config::parse(&t).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    let t = GOOD.replace("address = \"192.0.2.1\"", "address = \"192.0.2.1\"\nxdp = \"offload\"");
    let e = err_of(&t);
    assert!(
        e.contains("xdp = \"offload\"")
            && e.contains("unknown variant `offload`, expected one of `off`, `native`, `generic`"),
        "{e}"
    );
}

#[test]
fn shipped_examples_are_valid() {
    for f in ["host1.toml", "host2.toml", "host1-ipv6.toml"] {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples").join(f);
        Config::load(&p).unwrap_or_else(|e| panic!("{f}: {e}"));
    }
}

/// What the tests' typed configs are written with reads back unchanged.
#[test]
fn to_toml_round_trips() {
    let mut c = Config::parse(GOOD).unwrap();
    c.networks[1].max_learned = Some(7);
    c.underlay.xdp = XdpMode::Generic;
    c.underlay.rp_filter = RpFilter::Loose;
    assert_eq!(Config::parse(&c.to_toml()).unwrap(), c, "{}", c.to_toml());
}

/// `suppress` defaults to on where a network has pairs or learns them.
#[test]
fn suppression_default() {
    let mut c = Config::parse(GOOD).unwrap();
    assert!(c.suppressing().is_empty(), "no pairs, no learn_ip");
    c.fdb[0].ip = vec!["203.0.113.2".parse().unwrap()];
    c.networks[1].learn_ip = true;
    assert_eq!(c.suppressing(), ["blue", "red"].into());
    c.networks[0].suppress = Some(false);
    assert_eq!(c.suppressing(), ["red"].into());
    c.validate().unwrap();
    c.neigh.push(StaticNeigh {
        network: "red".into(),
        ip: "203.0.113.2".parse().unwrap(),
        mac: c.fdb[1].mac,
    });
    c.validate().unwrap();
    c.neigh.push(StaticNeigh {
        network: "blue".into(),
        ip: "203.0.113.2".parse().unwrap(),
        mac: c.fdb[1].mac,
    });
    let e = c.validate().unwrap_err().to_string();
    assert!(e.contains("given to both"), "{e}");
}

#[test]
fn control_table_defaults_and_errors() {
    let base = "name = \"h\"\n[underlay]\ninterface = \"u\"\naddress = \"192.0.2.1\"\n\
                [[network]]\nname = \"blue\"\nvni = 100\n";
    let c = Config::parse(&format!("{base}[control]\netcd = [\"http://192.0.2.250:2379\"]\n")).unwrap();
    let ctl = c.control.as_ref().unwrap();
    assert_eq!((ctl.prefix.as_str(), ctl.lease_ttl), ("/overlay", 10));
    assert!(c.network("blue").unwrap().flood_unknown, "flooding stays the default");
    assert!(c.suppressing().contains("blue"), "with a control plane, suppression is on by default");
    assert_eq!(Config::parse(&c.to_toml()).unwrap(), c);
    for (extra, want) in [
        ("[control]\netcd = []\n", "control.etcd"),
        ("[control]\netcd = [\"192.0.2.250:2379\"]\n", "http://"),
        ("[control]\netcd = [\"http://192.0.2.250\"]\n", "HOST:PORT"),
        ("[control]\netcd = [\"http://192.0.2.250:2379/x\"]\n", "no path"),
        ("[control]\netcd = [\"http://a:1\"]\nprefix = \"overlay\"\n", "control.prefix"),
        ("[control]\netcd = [\"http://a:1\"]\nprefix = \"/o/\"\n", "control.prefix"),
        ("[control]\netcd = [\"http://a:1\"]\nlease_ttl = 1\n", "lease_ttl"),
        ("[control]\netcd = [\"https://a:1\"]\ncert = \"/c\"\n", "cert, key"),
        ("[control]\netcd = [\"http://a:1\"]\nusername = \"u\"\n", "password_file"),
        ("[control]\netcd = [\"http://a:1\"]\nca = \"/ca\"\n", "https://"),
        ("[control]\netcd = [\"http://a:1\"]\nendpoints = 1\n", "unknown field"),
    ] {
        let e = Config::parse(&format!("{base}{extra}")).unwrap_err().to_string();
        assert!(e.contains(want), "{extra:?}: {e}");
    }
    let no_flood = base.replace("vni = 100\n", "vni = 100\nflood_unknown = false\n");
    let e = Config::parse(&no_flood).unwrap_err().to_string();
    assert!(e.contains("flood_unknown = false needs [control]"), "{e}");
    let ok = format!("{no_flood}[control]\netcd = [\"https://etcd.example:2379\"]\nca = \"/ca\"\n");
    assert!(!Config::parse(&ok).unwrap().network("blue").unwrap().flood_unknown);
}

#[test]
fn encap_picks_the_wire_format_and_its_id_range() {
    let c = Config::parse(GOOD).unwrap();
    assert_eq!(c.networks[0].encap, Encap::Vxlan, "default");
    assert!(!c.to_toml().contains("encap"), "the default is not written out");
    let gre = GOOD.replace("vni = 100", "vni = 4294967295\nencap = \"gre\"");
    let c = Config::parse(&gre).unwrap();
    assert_eq!(
        (c.networks[0].encap, c.networks[0].vni),
        (Encap::Gre, Some(u32::MAX)),
        "GRE keys are 32 bits"
    );
    assert_eq!(Config::parse(&c.to_toml()).unwrap(), c);
    for (text, want) in [
        (
            GOOD.replace("vni = 100", "vni = 16777216\nencap = \"geneve\""),
            "vni 16777216 out of range 1..=16777215",
        ),
        (GOOD.replace("vni = 100", "vni = 100\nencap = \"stt\""), "unknown variant `stt`"),
        (
            GOOD.replace("name = \"red\"\nvlan = 20", "name = \"red\"\nvlan = 20\nencap = \"gre\""),
            "needs a vni",
        ),
        (
            GOOD.replace("name = \"red\"\nvlan = 20", "name = \"red\"\nvni = 100\nencap = \"gre\""),
            "vni 100 already used by network \"blue\"",
        ),
    ] {
        let e = err_of(&text);
        assert!(e.contains(want), "{e:?} lacks {want:?}");
    }
}

#[test]
fn port_mtu_default_leaves_room_for_the_largest_encap() {
    let text = GOOD.replace("vni = 100", "vni = 100\nencap = \"gre\"");
    let c = Config::parse(&text).unwrap();
    let (vm1, eth1) = (&c.ports[0], &c.ports[1]);
    assert_eq!(c.default_port_mtu(vm1, 1500), 1458, "GRE with key: 42 bytes");
    assert_eq!(c.default_port_mtu(eth1, 1500), 1458, "red has no vni: blue's GRE decides");
    let c = Config::parse(&GOOD.replace("vni = 100", "vni = 100\nencap = \"geneve\"")).unwrap();
    assert_eq!(c.default_port_mtu(&c.ports[0], 1500), 1450);
    let c = Config::parse(GOOD).unwrap();
    assert_eq!(c.default_port_mtu(&c.ports[0], 9000), 8950);
}

/// GOOD over an IPv6 underlay: every VTEP address of the family.
fn good6() -> String {
    GOOD.replace("\"192.0.2.1\"", "\"2001:db8::1\"")
        .replace("\"192.0.2.2\"", "\"2001:db8::2\"")
        .replace("\"192.0.2.3\"", "\"2001:db8::3\"")
}

#[test]
fn an_ipv6_underlay_takes_ipv6_peers_and_leaves_70_bytes() {
    let c = Config::parse(&good6()).unwrap();
    assert_eq!(c.underlay.address, "2001:db8::1".parse::<IpAddr>().unwrap());
    assert_eq!(c.networks[0].peers[1], "2001:db8::3".parse::<IpAddr>().unwrap());
    assert_eq!(c.default_port_mtu(&c.ports[0], 1500), 1430, "underlay MTU - 70");
    assert_eq!(c.default_port_mtu(&c.ports[0], 9000), 8930);
    assert!(!c.underlay.udp6_zero_checksum, "checksums by default (RFC 8200)");
    let c = Config::parse(
        &good6().replace("address = \"2001:db8::1\"", "address = \"2001:db8::1\"\nudp6_zero_checksum = true"),
    );
    assert!(c.unwrap().underlay.udp6_zero_checksum);
}

#[test]
fn one_family_per_instance_and_ipv6_rules() {
    let six = good6();
    let cases = [
        (
            six.replace("\"2001:db8::3\"", "\"192.0.2.3\""),
            "network[0] \"blue\": peer 192.0.2.3 is IPv4 but underlay.address 2001:db8::1 is IPv6 (an instance's underlay is one family)",
        ),
        (
            six.replace("remote = \"2001:db8::2\"", "remote = \"192.0.2.2\""),
            "remote 192.0.2.2 is IPv4 but underlay.address 2001:db8::1 is IPv6",
        ),
        (
            GOOD.replace("\"192.0.2.3\"", "\"2001:db8::3\""),
            "peer 2001:db8::3 is IPv6 but underlay.address 192.0.2.1 is IPv4",
        ),
        (
            six.replace("\"2001:db8::3\"", "\"fe80::3\""),
            "peer fe80::3: not a unicast address a VTEP can have",
        ),
        (six.replace("\"2001:db8::3\"", "\"ff02::1\""), "peer ff02::1: not a unicast address"),
        (six.replace("\"2001:db8::1\"", "\"::1\""), "underlay.address ::1: not a unicast address"),
        (
            six.replace("\"2001:db8::1\"", "\"::ffff:192.0.2.1\""),
            "an IPv4-mapped IPv6 address: write it as IPv4",
        ),
        (
            six.replace("address = \"2001:db8::1\"", "address = \"2001:db8::1\"\nudp_checksum = true"),
            "underlay.udp_checksum: over IPv6 the outer UDP checksum is always computed",
        ),
        (
            GOOD.replace("address = \"192.0.2.1\"", "address = \"192.0.2.1\"\nudp6_zero_checksum = true"),
            "underlay.udp6_zero_checksum: only for an IPv6 underlay address",
        ),
        (
            six.replace("vni = 100", "vni = 100\nencap = \"gre\""),
            "network[0] \"blue\": encap = \"gre\" is not supported over an IPv6 underlay (VXLAN is)",
        ),
        (
            six.replace("vni = 100", "vni = 100\nencap = \"geneve\""),
            "encap = \"geneve\" is not supported over an IPv6",
        ),
    ];
    for (text, want) in cases {
        let e = err_of(&text);
        assert!(e.contains(want), "expected {want:?} in {e:?}");
    }
}
