//! Property tests of the parsers (proptest): arbitrary bytes and mutated
//! valid frames never panic, and whatever is accepted is consistent.

use proptest::prelude::*;
use std::vec::Vec;

use super::*;
use crate::encap::{EncapParams, build_outer};
use crate::pktbuild::{as_bytes, eth, mutate, udp4};

const LOCAL_BE: u32 = u32::from_ne_bytes([192, 0, 2, 1]);
const PORT_BE: u16 = 4789u16.to_be();

fn all_cfg() -> GlobalConfig {
    GlobalConfig { flags: CFG_F_GRE | CFG_F_GENEVE, ..cfg() }
}

fn tunnel_frame(encap: u8, vni: u32, src: [u8; 4], inner: &[u8]) -> Vec<u8> {
    crate::pktbuild::tunnel_from(
        encap,
        ([2, 0, 0, 0, 0xaa, 1], [2, 0, 0, 0, 0xaa, 2]),
        src,
        [192, 0, 2, 1],
        vni,
        inner,
    )
}

fn vxlan_frame(vni: u32, src: [u8; 4], inner: &[u8]) -> Vec<u8> {
    let p = EncapParams {
        src_be: crate::vtep::vtep_v4(u32::from_ne_bytes(src)),
        dst_be: crate::vtep::vtep_v4(LOCAL_BE),
        vni,
        ttl: 64,
        src_port: 50000,
        dst_port_be: PORT_BE,
        encap: crate::ENCAP_VXLAN,
    };
    let mut v = eth([2, 0, 0, 0, 0xaa, 1], [2, 0, 0, 0, 0xaa, 2], ETH_P_IPV4);
    v.extend_from_slice(as_bytes(&build_outer(&p, inner.len() as u32)));
    v.extend_from_slice(inner);
    v
}

fn cfg() -> GlobalConfig {
    GlobalConfig { local_vtep_be: crate::vtep::vtep_v4(LOCAL_BE), udp_port_be: PORT_BE, ..Default::default() }
}

/// What an accepted VXLAN frame must satisfy.
fn check_accepted(f: &[u8], rx: &TunnelRx) {
    assert!(rx.inner_off + ETH_HLEN <= f.len(), "inner header inside the frame");
    let ip: Ipv4Hdr = f.read(ETH_HLEN).unwrap();
    assert_eq!(ip.daddr_be, LOCAL_BE);
    assert!(!ip.is_fragment());
    assert!(ip.header_len() >= 20);
    assert!(u16::from_be(ip.tot_len_be) as usize + ETH_HLEN <= f.len(), "IP length within the frame");
    assert!(rx.inner_off + rx.inner_len <= f.len(), "inner frame within the frame");
    assert!(rx.inner_len >= ETH_HLEN, "inner frame holds an Ethernet header");
    let l4 = ETH_HLEN + ip.header_len();
    match rx.encap {
        ENCAP_VXLAN => {
            assert_eq!(ip.protocol, IPPROTO_UDP);
            let vx: VxlanHdr = f.read(rx.inner_off - 8).unwrap();
            assert_ne!(vx.flags & VXLAN_FLAG_I, 0);
            assert_eq!(rx.vni, vx.vni());
        }
        ENCAP_GENEVE => {
            assert_eq!(ip.protocol, IPPROTO_UDP);
            let g: GeneveHdr = f.read(l4 + UDP_HLEN).unwrap();
            assert_eq!((g.version(), g.flags & (GENEVE_F_CRITICAL | GENEVE_F_OAM)), (0, 0));
            assert_eq!(g.protocol_be, ETH_P_TEB.to_be());
            assert_eq!(rx.inner_off, l4 + UDP_HLEN + GENEVE_HLEN + g.options_len(), "options skipped");
            assert_eq!(rx.vni, g.vni());
        }
        ENCAP_GRE => {
            assert_eq!(ip.protocol, IPPROTO_GRE);
            let g: GreHdr = f.read(l4).unwrap();
            assert_eq!(u16::from_be(g.flags_be) & !(GRE_F_SEQ), GRE_F_KEY);
            assert_eq!(rx.vni, u32::from_be(f.read(l4 + 4).unwrap()));
        }
        e => panic!("encap {e}"),
    }
    let inner: EthHdr = f.read(rx.inner_off).unwrap();
    assert_eq!(inner, rx.inner);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn underlay_arbitrary_bytes(f in proptest::collection::vec(any::<u8>(), 0..160)) {
        if let Ok(rx) = parse_underlay(&f[..], &all_cfg(), false) {
            check_accepted(&f, &rx);
        }
    }

    #[test]
    fn encap_then_parse_round_trips(
        vni in 0u32..(1 << 24),
        src in any::<[u8; 4]>(),
        inner in proptest::collection::vec(any::<u8>(), 14..1500),
    ) {
        let f = vxlan_frame(vni, src, &inner);
        let rx = parse_underlay(&f[..], &cfg(), false).expect("own encapsulation parses");
        prop_assert_eq!(rx.vni, vni);
        prop_assert_eq!(rx.src_vtep_be, crate::vtep::vtep_v4(u32::from_ne_bytes(src)));
        prop_assert_eq!(rx.inner_off, 50);
        prop_assert_eq!(&f[50..], &inner[..]);
    }

    #[test]
    fn underlay_mutations(seed in any::<u64>()) {
        let inner = udp4([2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 9], [203, 0, 113, 9], [203, 0, 113, 2], 1, 2, 40);
        let f = mutate(&vxlan_frame(100, [192, 0, 2, 2], &inner), seed);
        match parse_underlay(&f[..], &cfg(), false) {
            Ok(rx) => check_accepted(&f, &rx),
            Err(Reject::Pass(c)) => prop_assert!(matches!(c, Counter::PassHost | Counter::PassFragment)),
            Err(Reject::Drop(c)) => prop_assert!(c.is_drop()),
        }
    }

    #[test]
    fn every_encap_round_trips_and_survives_mutation(
        encap in 0u8..3,
        vni in 1u32..(1 << 24),
        seed in any::<u64>(),
    ) {
        let inner = udp4([2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 9], [203, 0, 113, 9], [203, 0, 113, 2], 1, 2, 40);
        let f = tunnel_frame(encap, vni, [192, 0, 2, 2], &inner);
        let rx = parse_underlay(&f[..], &all_cfg(), false).expect("own encapsulation parses");
        prop_assert_eq!((rx.encap, rx.vni), (encap, vni));
        prop_assert_eq!(&f[rx.inner_off..rx.inner_off + rx.inner_len], &inner[..]);
        // Not claimed: GRE and GENEVE are the host's.
        let r = parse_underlay(&f[..], &cfg(), false);
        prop_assert_eq!(r.is_ok(), encap == ENCAP_VXLAN);
        let m = mutate(&f, seed);
        match parse_underlay(&m[..], &all_cfg(), false) {
            Ok(rx) => check_accepted(&m, &rx),
            Err(Reject::Pass(c)) => prop_assert!(matches!(c, Counter::PassHost | Counter::PassFragment)),
            Err(Reject::Drop(c)) => prop_assert!(c.is_drop()),
        }
    }

    #[test]
    fn payload_bytes_never_change_the_verdict(at in 64usize..90, val in any::<u8>()) {
        let inner = udp4([2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 9], [203, 0, 113, 9], [203, 0, 113, 2], 1, 2, 40);
        let mut f = vxlan_frame(100, [192, 0, 2, 2], &inner);
        let want = parse_underlay(&f[..], &cfg(), false);
        f[at] = val;
        prop_assert_eq!(parse_underlay(&f[..], &cfg(), false), want);
    }

    #[test]
    fn l2_arbitrary_bytes(f in proptest::collection::vec(any::<u8>(), 0..40), prio_ok in any::<bool>()) {
        if let Ok(l2) = parse_l2(&f[..], None, prio_ok) {
            prop_assert!(!crate::is_group_mac(&l2.eth.src) && !crate::is_zero_mac(&l2.eth.src));
            prop_assert!(l2.vid == NO_VLAN || (1..4095).contains(&l2.vid));
            prop_assert_eq!(l2.has_tag, u16::from_be(l2.eth.ethertype_be) == ETH_P_8021Q);
        }
    }
}

#[test]
fn mutate_is_deterministic() {
    let base = eth([1; 6], [2; 6], 0x0800);
    assert_eq!(mutate(&base, 7), mutate(&base, 7));
    assert!((0..100).any(|s| mutate(&base, s) != base));
}
