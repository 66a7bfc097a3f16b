//! VXLAN over an IPv6 underlay: exact encapsulation and decapsulation
//! bytes, the outer UDP checksum (checked against scapy's), flooding to
//! IPv6 peers, and the receive rules.
//! The real programs run on crafted frames through BPF_PROG_TEST_RUN:
//! verdict, exact output bytes and exact counters.

use overlay_common::{encap::EncapParams, vtep::vtep_from_ip};
use overlay_tests::{prelude::*, scapy};

const LOCAL6: &str = "2001:db8::1";
const PEER6: &str = "2001:db8::2";
const PEER6B: &str = "2001:db8::3";

/// dp_config over IPv6: u0 at 2001:db8::1, peers 2001:db8::3 and ::2
/// (permanent neighbours 02:..:aa:03 and 02:..:aa:02), REMOTE_VM behind ::2.
fn with_fixture6(test: impl FnOnce(Fixture) + Send + 'static) {
    in_private_netns(move || {
        let mut c = dp_config();
        c.underlay.address = LOCAL6.parse().unwrap();
        c.networks[0].peers = vec![PEER6B.parse().unwrap(), PEER6.parse().unwrap()];
        c.fdb[1].remote = Some(PEER6.parse().unwrap());
        let f = Fixture::new(&c);
        sh("ip -6 addr add 2001:db8::1/64 dev u0 nodad; sysctl -qw net.ipv6.conf.u0.forwarding=1; \
            ip -6 neigh add 2001:db8::2 lladdr 02:00:00:00:aa:02 dev u0 nud permanent; \
            ip -6 neigh add 2001:db8::3 lladdr 02:00:00:00:aa:03 dev u0 nud permanent");
        test(f)
    });
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn mac_s(m: [u8; 6]) -> String {
    m.iter().map(|x| format!("{x:02x}")).collect::<Vec<_>>().join(":")
}

/// What scapy sends for `inner` from `src` to `dst` over VXLAN VNI 100:
/// flow label `fl`, UDP source port `sport`, checksum computed by scapy.
fn scapy_vxlan6(
    dmac: [u8; 6],
    smac: [u8; 6],
    src: &str,
    dst: &str,
    fl: u32,
    sport: u16,
    inner: &[u8],
) -> Vec<u8> {
    scapy::bytes(&format!(
        "Ether(dst='{}', src='{}')/IPv6(src='{src}', dst='{dst}', hlim=64, fl={fl})/\
         UDP(sport={sport}, dport=4789)/VXLAN(vni=100, flags=0x08)/Raw(bytes.fromhex('{}'))",
        mac_s(dmac),
        mac_s(smac),
        hex(inner)
    ))
}

fn flow_label(out: &[u8]) -> u32 {
    u32::from_be_bytes([out[14], out[15], out[16], out[17]]) & 0x000f_ffff
}

#[test]
fn encapsulation_over_ipv6_is_exact_with_scapys_checksum() {
    with_fixture6(|f| {
        for size in [64usize, 1000, 1401] {
            let inner = udp4(REMOTE_VM, VM1, [203, 0, 113, 1], [203, 0, 113, 2], 1, 2, size - 42);
            let (v, out) = f.tenant("p1", &inner);
            assert_eq!(v, TC_ACT_REDIRECT);
            assert_eq!(out.len(), inner.len() + 70, "IPv6 outer headers: 70 bytes");
            let sport = u16::from_be_bytes([out[54], out[55]]);
            assert!(sport >= 49152, "source port {sport} in the dynamic range");
            let want = scapy_vxlan6(PEER_MAC, U0_MAC, LOCAL6, PEER6, flow_label(&out), sport, &inner);
            assert_eq!(hex(&out), hex(&want), "{size}-byte frame: exactly scapy's, checksum included");
            assert_ne!(&out[60..62], &[0, 0], "a checksum is sent (RFC 8200)");
            assert!(udp6_checksum_valid(&out));
        }
        // A non-IP frame takes the change_head path: checksum right too.
        let mut arp = eth(REMOTE_VM, VM1, 0x0806);
        arp.extend_from_slice(&[0x5a; 28]);
        let (v, out) = f.tenant("p1", &arp);
        assert_eq!(v, TC_ACT_REDIRECT);
        let want = scapy_vxlan6(
            PEER_MAC,
            U0_MAC,
            LOCAL6,
            PEER6,
            flow_label(&out),
            u16::from_be_bytes([out[54], out[55]]),
            &arp,
        );
        assert_eq!(hex(&out), hex(&want), "ARP over IPv6");
        assert_eq!(f.count(Encap), 4);
    });
}

#[test]
fn decapsulation_over_ipv6_is_exact_and_checks_the_checksum() {
    with_fixture6(|f| {
        let p = |src: &str| EncapParams {
            src_be: vtep_from_ip(src.parse::<std::net::IpAddr>().unwrap()),
            dst_be: vtep_from_ip(LOCAL6.parse::<std::net::IpAddr>().unwrap()),
            vni: 100,
            ttl: 64,
            src_port: 50000,
            dst_port_be: 4789u16.to_be(),
            encap: ENCAP_VXLAN,
        };
        let src = [2, 0, 0, 0, 0, 0x33];
        let inner = tenant_frame(VM2, src);
        let good = vxlan(U0_MAC, PEER_MAC, &p(PEER6), &inner);
        assert!(udp6_checksum_valid(&good));
        let (v, out) = f.underlay(&good);
        assert_eq!((v, out), (TC_ACT_REDIRECT, inner.clone()), "exactly the inner frame");
        let e = fdb_get(&f, "blue", src).expect("learned");
        assert_eq!((e.kind, e.remote_be), (FDB_KIND_REMOTE, p(PEER6).src_be), "behind the IPv6 peer");
        // The same from scapy (its checksum, not ours).
        let s = scapy_vxlan6(U0_MAC, PEER_MAC, PEER6, LOCAL6, 0, 50000, &inner);
        let (v, out) = f.underlay(&s);
        assert_eq!((v, out), (TC_ACT_REDIRECT, inner.clone()), "scapy's frame decapsulated");
        // An unpadded 42-byte ARP reply (what Linux's vxlan sends): fewer
        // bytes after the outer headers than an IPv6 header.
        let mut arp = eth(VM2, src, 0x0806);
        arp.extend_from_slice(&[0x5a; 28]);
        let (v, out) = f.underlay(&vxlan(U0_MAC, PEER_MAC, &p(PEER6), &arp));
        assert_eq!((v, out), (TC_ACT_REDIRECT, arp), "a 42-byte inner frame decapsulated");
        // A wrong checksum, and a zero one (not allowed by default).
        let mut bad = good.clone();
        bad[61] ^= 0x5a;
        let mut zero = good.clone();
        zero[60..62].copy_from_slice(&[0, 0]);
        for frame in [&bad, &zero] {
            let (v, _) = f.underlay(frame);
            assert_eq!(v, TC_ACT_SHOT);
        }
        assert_eq!(f.count(DropUdpChecksum), 2);
        // Not a peer; an unknown VNI.
        let (v, _) = f.underlay(&vxlan(U0_MAC, PEER_MAC, &p("2001:db8::66"), &inner));
        assert_eq!(v, TC_ACT_SHOT);
        assert_eq!(f.count(DropNotPeer), 1);
        let other_vni = EncapParams { vni: 999, ..p(PEER6) };
        let (v, _) = f.underlay(&vxlan(U0_MAC, PEER_MAC, &other_vni, &inner));
        assert_eq!(v, TC_ACT_SHOT);
        assert_eq!(f.count(DropUnknownVni), 1);
        assert_eq!(f.count(Decap), 3);
    });
}

#[test]
fn zero_checksums_only_when_configured() {
    in_private_netns(|| {
        let mut c = dp_config();
        c.underlay.address = LOCAL6.parse().unwrap();
        c.underlay.udp6_zero_checksum = true;
        c.networks[0].peers = vec![PEER6.parse().unwrap()];
        c.fdb[1].remote = Some(PEER6.parse().unwrap());
        let f = Fixture::new(&c);
        sh("ip -6 addr add 2001:db8::1/64 dev u0 nodad; sysctl -qw net.ipv6.conf.u0.forwarding=1; \
            ip -6 neigh add 2001:db8::2 lladdr 02:00:00:00:aa:02 dev u0 nud permanent");
        let inner = tenant_frame(REMOTE_VM, VM1);
        let (v, out) = f.tenant("p1", &inner);
        assert_eq!(v, TC_ACT_REDIRECT);
        assert_eq!(&out[60..62], &[0, 0], "zero checksum sent (RFC 6935)");
        let mut zero = scapy_vxlan6(U0_MAC, PEER_MAC, PEER6, LOCAL6, 0, 50000, &tenant_frame(VM2, REMOTE_VM));
        zero[60..62].copy_from_slice(&[0, 0]);
        let (v, _) = f.underlay(&zero);
        assert_eq!(v, TC_ACT_REDIRECT, "zero checksum accepted");
        assert_eq!(f.count(DropUdpChecksum), 0);
    });
}

#[test]
fn flooding_reaches_each_ipv6_peer_with_a_valid_checksum() {
    with_fixture6(|f| {
        let (v, out) = f.tenant("p1", &tenant_frame([0xff; 6], VM1));
        assert_eq!(v, TC_ACT_REDIRECT, "the frame itself goes to the last peer");
        let dst: [u8; 16] = out[38..54].try_into().unwrap();
        assert_eq!(std::net::Ipv6Addr::from(dst).to_string(), PEER6, "last peer");
        assert!(udp6_checksum_valid(&out), "checksum follows the retargeted destination");
        assert_eq!(f.count(FloodRemoteCopies), 2, "a clone to ::3, the frame to ::2");
    });
}
