//! GRE and GENEVE networks next to a VXLAN one: what the datapath sends,
//! byte for byte and as Wireshark's dissectors read it; frames built by
//! scapy accepted and delivered; the header rules of RFC 2784/2890 and
//! RFC 8926; the same admission rules as VXLAN; exact counters.

use overlay_tests::{
    conf::{self, Encap, tunnel},
    prelude::*,
    scapy, tshark,
};

const GRE_KEY: u32 = 0xdead_beef;
const GENEVE_VNI: u32 = 300;
/// Static remote MACs behind PEER in the GRE and GENEVE networks.
const GRE_VM: [u8; 6] = [2, 0, 0, 0, 0, 0x19];
const GENEVE_VM: [u8; 6] = [2, 0, 0, 0, 0, 0x29];

/// blue: VXLAN 100 (p1); green: GRE key 0xdeadbeef (p2, p4); orange:
/// GENEVE 300 (p3). PEER is a VTEP of each.
fn tunnels() -> Config {
    Config {
        networks: vec![
            conf::vxlan("blue", 100, &["192.0.2.2"]),
            tunnel("green", Encap::Gre, GRE_KEY, &["192.0.2.2"]),
            tunnel("orange", Encap::Geneve, GENEVE_VNI, &["192.0.2.2"]),
        ],
        ports: vec![
            access("p1", "blue"),
            access("p2", "green"),
            access("p3", "orange"),
            access("p4", "green"),
        ],
        fdb: vec![
            fdb_remote("02:00:00:00:00:19", "green", "192.0.2.2"),
            fdb_remote("02:00:00:00:00:29", "orange", "192.0.2.2"),
        ],
        ..config("192.0.2.1")
    }
}

fn with_tunnels(test: impl FnOnce(Fixture) + Send + 'static) {
    in_private_netns(move || test(Fixture::new(&tunnels())));
}

fn from_peer(encap: u8, vni: u32, inner: &[u8]) -> Vec<u8> {
    tunnel_from(encap, (U0_MAC, PEER_MAC), PEER, LOCAL, vni, inner)
}

#[test]
fn gre_encapsulation_is_exact_and_dissected_as_gre_with_key() {
    with_tunnels(|f| {
        let inner = tenant_frame(GRE_VM, VM1);
        let (v, out) = f.tenant("p2", &inner);
        assert_eq!(v, TC_ACT_REDIRECT);
        assert_eq!(out.len(), inner.len() + 42, "GRE with key: 42 bytes of overhead");
        assert_eq!((&out[0..6], &out[6..12], &out[12..14]), (&PEER_MAC[..], &U0_MAC[..], &[8u8, 0][..]));
        let ip: Ipv4Hdr = out.read(14).unwrap();
        assert_eq!((ip.version_ihl, ip.protocol, ip.ttl), (0x45, 47, 64));
        assert_eq!(u16::from_be(ip.tot_len_be) as usize, inner.len() + 28);
        assert_eq!(u16::from_be(ip.frag_off_be), 0x4000, "DF");
        assert_eq!((ip.saddr_be, ip.daddr_be), (ip_be(LOCAL), ip_be(PEER)));
        assert_eq!(ipv4_checksum(&ip), 0);
        assert_eq!(&out[34..42], &[0x20, 0, 0x65, 0x58, 0xde, 0xad, 0xbe, 0xef], "K flag, TEB, the key");
        assert_eq!(&out[42..], &inner[..]);
        assert_eq!(f.nonzero(), counts(&[(RxTenant, 1), (Encap, 1), (Learned, 1)]));
        let d = &tshark::fields(
            &[out],
            &[
                "frame.protocols",
                "gre.key",
                "gre.proto",
                "gre.flags.checksum",
                "gre.flags.sequence_number",
                "eth.dst",
            ],
        )[0];
        assert_eq!(d[0], "eth:ethertype:ip:gre:eth:ethertype:ip:udp:data", "{d:?}");
        assert_eq!((d[1].as_str(), d[2].as_str()), ("0xdeadbeef", "0x6558"), "{d:?}");
        assert_eq!((d[3].as_str(), d[4].as_str()), ("0", "0"), "no checksum, no sequence number: {d:?}");
        assert_eq!(d[5], "02:00:00:00:aa:02,02:00:00:00:00:19", "outer and inner destination: {d:?}");
    });
}

#[test]
fn geneve_encapsulation_is_exact_and_dissected_as_geneve() {
    with_tunnels(|f| {
        let inner = tenant_frame(GENEVE_VM, VM1);
        let (v, out) = f.tenant("p3", &inner);
        assert_eq!(v, TC_ACT_REDIRECT);
        assert_eq!(out.len(), inner.len() + 50);
        let ip: Ipv4Hdr = out.read(14).unwrap();
        assert_eq!((ip.protocol, u16::from_be(ip.tot_len_be) as usize), (17, inner.len() + 36));
        assert_eq!(ipv4_checksum(&ip), 0);
        let sport = u16::from_be_bytes([out[34], out[35]]);
        assert!(sport >= 49152, "source port {sport} carries the flow's entropy");
        assert_eq!(&out[36..38], &6081u16.to_be_bytes());
        assert_eq!(u16::from_be_bytes([out[38], out[39]]) as usize, inner.len() + 16);
        assert_eq!(&out[42..50], &[0, 0, 0x65, 0x58, 0, 0x01, 0x2c, 0], "version 0, no options, VNI 300");
        assert_eq!(&out[50..], &inner[..]);
        let d = &tshark::fields(
            &[out],
            &[
                "frame.protocols",
                "geneve.version",
                "geneve.vni",
                "geneve.proto_type",
                "geneve.flags.critical",
                "eth.src",
            ],
        )[0];
        assert_eq!(d[0], "eth:ethertype:ip:udp:geneve:eth:ethertype:ip:udp:data", "{d:?}");
        assert_eq!(
            (d[1].as_str(), d[2].as_str(), d[3].as_str(), d[4].as_str()),
            ("0", "0x00012c", "0x6558", "0"),
            "{d:?}"
        );
        assert_eq!(d[5], "02:00:00:00:aa:01,02:00:00:00:00:01", "{d:?}");
    });
}

#[test]
fn scapy_built_gre_and_geneve_are_delivered_and_learned() {
    with_tunnels(|f| {
        let outer =
            "Ether(dst='02:00:00:00:aa:01', src='02:00:00:00:aa:02')/IP(src='192.0.2.2', dst='192.0.2.1')";
        let inner = |dst: &str, src: &str| {
            format!(
                "Ether(dst='{dst}', src='{src}')/IP(src='203.0.113.9', dst='203.0.113.1')/UDP(sport=1, dport=2)/Raw(b'x'*20)"
            )
        };
        let gre_inner = scapy::bytes(&inner("02:00:00:00:00:01", "02:00:00:00:00:31"));
        let gre = scapy::bytes(&format!(
            "{outer}/GRE(key_present=1, key={GRE_KEY}, proto=0x6558)/{}",
            inner("02:00:00:00:00:01", "02:00:00:00:00:31")
        ));
        // GENEVE with an option (class 0x0102, type 3, 4 bytes): skipped.
        let gnv_inner = scapy::bytes(&inner("02:00:00:00:00:01", "02:00:00:00:00:32"));
        let gnv = scapy::bytes(&format!(
            "{outer}/UDP(sport=50000, dport=6081)/GENEVE(vni={GENEVE_VNI}, proto=0x6558, \
             options=b'\\x01\\x02\\x03\\x01abcd')/{}",
            inner("02:00:00:00:00:01", "02:00:00:00:00:32")
        ));
        assert_eq!(gnv[42] & 0x3f, 2, "scapy wrote two option words");
        // VM1 must be known on a port of each network to be delivered.
        for (port, net) in [("p2", "green"), ("p3", "orange")] {
            learn_vm1(&f, net, port);
        }
        let (v, out) = f.underlay(&gre);
        assert_eq!((v, out), (TC_ACT_REDIRECT, gre_inner), "GRE decapsulated exactly");
        let (v, out) = f.underlay(&gnv);
        assert_eq!((v, out), (TC_ACT_REDIRECT, gnv_inner), "GENEVE decapsulated exactly");
        for (net, mac) in [("green", [2, 0, 0, 0, 0, 0x31]), ("orange", [2, 0, 0, 0, 0, 0x32])] {
            let e = fdb_get(&f, net, mac).unwrap_or_else(|| panic!("{net}: source learned"));
            assert_eq!((e.kind, e.remote_be), (FDB_KIND_REMOTE, vtep4(PEER)), "{net}");
        }
        assert_eq!(f.net_count("green", Decap), 1);
        assert_eq!(f.net_count("orange", Decap), 1);
        assert_eq!(f.count(Counter::Learned), 4, "two ports primed, two remote sources");
    });
}

/// Learns VM1 on `port` in `net` by a frame from it (the frame goes out
/// to the peer: flooded or not, it is not what is tested here).
fn learn_vm1(f: &Fixture, net: &str, port: &str) {
    let _ = f.tenant(port, &tenant_frame([0xff; 6], VM1));
    assert!(fdb_get(f, net, VM1).is_some(), "VM1 learned on {port}");
}

#[test]
fn geneve_header_rules_are_enforced_and_counted() {
    with_tunnels(|f| {
        let inner = tenant_frame([0xff; 6], [2, 0, 0, 0, 0, 0x41]);
        let frame = from_peer(ENCAP_GENEVE, GENEVE_VNI, &inner);
        let mut cases = Vec::new();
        for (at, val) in [(43, 0x40u8), (43, 0x80), (42, 0x40), (44, 0x08)] {
            let mut b = frame.clone();
            b[at] = val;
            cases.push(b);
        }
        for b in &cases {
            assert_eq!(f.underlay(b).0, TC_ACT_SHOT);
        }
        assert_eq!(
            f.nonzero(),
            counts(&[(RxUnderlay, 4), (DropGeneveCritical, 1), (DropGeneveOam, 1), (DropTunnelHeader, 2)])
        );
        assert!(
            fdb_get(&f, "orange", [2, 0, 0, 0, 0, 0x41]).is_none(),
            "nothing learned from refused frames"
        );
    });
}

#[test]
fn gre_header_rules_are_enforced_and_counted() {
    with_tunnels(|f| {
        let inner = tenant_frame([0xff; 6], [2, 0, 0, 0, 0, 0x42]);
        let frame = from_peer(ENCAP_GRE, GRE_KEY, &inner);
        let with = |at: usize, val: u8| {
            let mut b = frame.clone();
            b[at] = val;
            b
        };
        // Keyless or IP-in-GRE: the host's, untouched.
        for b in [with(34, 0), with(36, 0x08)] {
            let (v, out) = f.underlay(&b);
            assert_eq!((v, &out), (TC_ACT_OK, &b));
        }
        // Checksum or routing present, version 1: dropped.
        for b in [with(34, 0xa0), with(34, 0x60), with(35, 1)] {
            assert_eq!(f.underlay(&b).0, TC_ACT_SHOT);
        }
        assert_eq!(f.nonzero(), counts(&[(RxUnderlay, 5), (PassHost, 2), (DropTunnelHeader, 3)]));
    });
}

#[test]
fn a_vni_arriving_in_another_encapsulation_is_unknown() {
    with_tunnels(|f| {
        let src = [2, 0, 0, 0, 0, 0x43];
        let inner = tenant_frame([0xff; 6], src);
        // blue's VNI over GENEVE, orange's over VXLAN and GRE, green's key
        // (beyond 24 bits) over GENEVE: none of them is a network here.
        for b in [
            from_peer(ENCAP_GENEVE, 100, &inner),
            from_peer(ENCAP_VXLAN, GENEVE_VNI, &inner),
            from_peer(ENCAP_GRE, GENEVE_VNI, &inner),
            from_peer(ENCAP_GRE, 100, &inner),
        ] {
            assert_eq!(f.underlay(&b).0, TC_ACT_SHOT);
        }
        // A stranger in the right encapsulation: not a peer.
        let stranger = tunnel_from(ENCAP_GRE, (U0_MAC, PEER_MAC), STRANGER, LOCAL, GRE_KEY, &inner);
        assert_eq!(f.underlay(&stranger).0, TC_ACT_SHOT);
        assert_eq!(f.nonzero(), counts(&[(RxUnderlay, 5), (DropUnknownVni, 4), (DropNotPeer, 1)]));
        for net in ["blue", "green", "orange"] {
            assert!(fdb_get(&f, net, src).is_none(), "{net}: nothing learned");
        }
    });
}

#[test]
fn an_instance_without_gre_or_geneve_leaves_them_to_the_host() {
    in_private_netns(|| {
        let f = Fixture::new(&dp_config());
        let inner = tenant_frame(VM2, REMOTE_VM);
        for b in [from_peer(ENCAP_GRE, 100, &inner), from_peer(ENCAP_GENEVE, 100, &inner)] {
            let (v, out) = f.underlay(&b);
            assert_eq!((v, &out), (TC_ACT_OK, &b), "passed untouched");
        }
        assert_eq!(f.nonzero(), counts(&[(RxUnderlay, 2), (PassHost, 2)]));
    });
}

#[test]
fn flooding_reaches_every_peer_in_each_encapsulation() {
    in_private_netns(|| {
        let mut cfg = tunnels();
        for n in &mut cfg.networks {
            n.peers = vec![
                "192.0.2.2".parse().unwrap(),
                "192.0.2.3".parse().unwrap(),
                "192.0.2.4".parse().unwrap(),
            ];
        }
        let f = Fixture::new(&cfg);
        sh("ip neigh add 192.0.2.3 lladdr 02:00:00:00:aa:03 dev u0 nud permanent; \
            ip neigh add 192.0.2.4 lladdr 02:00:00:00:aa:04 dev u0 nud permanent");
        for (port, net) in [("p2", "green"), ("p3", "orange")] {
            let (v, out) = f.tenant(port, &tenant_frame([0xff; 6], VM2));
            assert_eq!(v, TC_ACT_REDIRECT, "{net}: the frame itself to the last peer");
            let ip: Ipv4Hdr = out.read(14).unwrap();
            assert_eq!(ip.daddr_be, ip_be([192, 0, 2, 4]), "{net}");
            assert_eq!(ipv4_checksum(&ip), 0, "{net}: checksum fixed after retargeting");
            if net == "green" {
                assert_eq!(&out[38..42], &GRE_KEY.to_be_bytes(), "the key is untouched by retargeting");
            }
            assert_eq!(f.net_count(net, FloodRemoteCopies), 3, "{net}");
            // p4 is green's other local port: one local copy there.
            let local = if net == "green" { 1 } else { 0 };
            assert_eq!(f.net_count(net, FloodLocalCopies), local, "{net}");
        }
    });
}

/// Every truncation and a few corruptions of GRE and GENEVE frames get the
/// kernel verdict the host parser predicts.
#[test]
fn kernel_and_host_parsers_agree_on_gre_and_geneve() {
    with_tunnels(|mut f| {
        let claims = overlay_common::maps::CFG_F_GRE | overlay_common::maps::CFG_F_GENEVE;
        let mut frames = Vec::new();
        for (encap, vni) in [(ENCAP_GRE, GRE_KEY), (ENCAP_GENEVE, GENEVE_VNI)] {
            let full = from_peer(encap, vni, &tenant_frame(VM2, [2, 0, 0, 0, 0, 0x44]));
            frames.extend((34..full.len()).map(|n| full[..n].to_vec()));
            for (off, val) in
                [(14usize, 0x46u8), (16, 0xff), (34, 0xff), (35, 0xff), (38, 0xff), (42, 0x3f), (43, 0xff)]
            {
                let mut v = full.clone();
                v[off] = val;
                frames.push(v);
            }
        }
        f.reset();
        let mut passes = 0u64;
        for fr in &frames {
            let (v, out) = f.underlay(fr);
            match parse_underlay(&fr[..], &rx_config(LOCAL, claims), false) {
                Err(Reject::Pass(_)) => {
                    assert_eq!((v, &out), (TC_ACT_OK, fr), "host says pass for {fr:02x?}");
                    passes += 1;
                }
                Err(Reject::Drop(c)) => assert_eq!(v, TC_ACT_SHOT, "host says {c:?} for {fr:02x?}"),
                Ok(_) => assert_ne!(v, TC_ACT_OK, "host accepts {fr:02x?}; kernel must not pass it"),
            }
        }
        let c = f.nonzero();
        assert_eq!(c.get("pass_host").copied().unwrap_or(0), passes);
        assert_eq!(c["rx_underlay"], frames.len() as u64);
    });
}

/// `overlayctl trace` follows GRE and GENEVE frames as the datapath
/// takes them: the encap step names the encapsulation, and the traced
/// output is byte for byte what the live program sends.
#[test]
fn gre_and_geneve_are_traced_as_sent() {
    use overlay_common::trace::{STEP_DECAP, STEP_ENCAP};
    with_tunnels(|mut f| {
        f.load_trace();
        for (port, dst, encap) in [("p2", GRE_VM, ENCAP_GRE), ("p3", GENEVE_VM, ENCAP_GENEVE)] {
            let frame = tenant_frame(dst, VM1);
            let t = f.trace(port, &frame);
            let e = t.steps.iter().find(|s| s.kind == STEP_ENCAP).expect("an encap step");
            assert_eq!((e.c, e.addr), (encap as u32, vtep4(PEER)), "{port}");
            let (v, out) = f.live(port, &frame);
            assert_eq!((v, out), (t.verdict, t.frame_out), "{port}: live as traced");
        }
        learn_vm1(&f, "green", "p2");
        let t = f.trace("u0", &from_peer(ENCAP_GRE, GRE_KEY, &tenant_frame(VM1, [2, 0, 0, 0, 0, 0x45])));
        assert!(t.steps.iter().any(|s| s.kind == STEP_DECAP), "{:?}", t.steps);
        assert_eq!(t.verdict, TC_ACT_REDIRECT);
        assert_eq!(t.frame_out, tenant_frame(VM1, [2, 0, 0, 0, 0, 0x45]));
    });
}
