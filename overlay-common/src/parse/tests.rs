use super::*;
use crate::encap::EncapParams;
use crate::pktbuild::*;
use std::vec::Vec;

const LOCAL: [u8; 4] = [192, 0, 2, 1];
const PEER: [u8; 4] = [192, 0, 2, 2];
const M1: [u8; 6] = [2, 0, 0, 0, 0, 1];
const M2: [u8; 6] = [2, 0, 0, 0, 0, 2];
const BCAST: [u8; 6] = [0xff; 6];

fn params(vni: u32) -> EncapParams {
    EncapParams {
        src_be: crate::vtep::vtep_v4(ip_be(PEER)),
        dst_be: crate::vtep::vtep_v4(ip_be(LOCAL)),
        vni,
        ttl: 64,
        src_port: 50000,
        dst_port_be: 4789u16.to_be(),
        encap: crate::ENCAP_VXLAN,
    }
}

fn inner() -> Vec<u8> {
    udp4(M1, M2, [203, 0, 113, 2], [203, 0, 113, 1], 1, 2, 10)
}

fn under(f: &[u8]) -> Result<TunnelRx, Reject> {
    parse_underlay(f, &rx_config(LOCAL, 0), false)
}

#[test]
fn valid_vxlan_parses() {
    let f = vxlan(M1, M2, &params(100), &inner());
    let rx = under(&f).expect("valid");
    assert_eq!(rx.vni, 100);
    assert_eq!(rx.src_vtep_be, crate::vtep::vtep_v4(ip_be(PEER)));
    assert_eq!(rx.l4_off, 34);
    assert_eq!(rx.inner_off, 50);
    assert_eq!(rx.inner.dst, M1);
    assert_eq!(rx.inner.src, M2);
}

#[test]
fn every_truncation_is_pass_or_drop_never_accept() {
    let f = vxlan(M1, M2, &params(100), &inner());
    for n in 0..f.len() {
        let r = under(&f[..n]);
        // Until the IPv4 header is complete nothing says "ours"; UDP to our
        // address that is cut short is malformed.
        let expect_pass = n < 14 + 20;
        match r {
            Err(Reject::Pass(_)) => assert!(expect_pass, "len {n} passed"),
            Err(Reject::Drop(Counter::DropMalformed)) => assert!(!expect_pass, "len {n} dropped"),
            other => panic!("len {n}: {other:?}"),
        }
    }
}

#[test]
fn ihl_with_options_still_decapsulates() {
    let mut f = vxlan(M1, M2, &params(7), &inner());
    // Grow IHL to 6 with a 4-byte NOP option.
    f[14] = 0x46;
    f.splice(34..34, [1u8, 1, 1, 1]);
    let tot = u16::from_be_bytes([f[16], f[17]]) + 4;
    f[16..18].copy_from_slice(&tot.to_be_bytes());
    fix_ipv4_checksum(&mut f);
    let rx = under(&f).expect("options are fine");
    assert_eq!(rx.inner_off, 54);
    assert_eq!(rx.vni, 7);
    // The options are part of the checksum.
    f[34] = 0x94;
    assert_eq!(under(&f), Err(Reject::Drop(Counter::DropBadIpChecksum)));
}

#[test]
fn outer_ip_checksum_is_verified() {
    let good = vxlan(M1, M2, &params(7), &inner());
    for (at, val) in [(15usize, 0x10u8), (22, 1), (24, 0), (25, 0), (26, 10)] {
        let mut f = good.clone();
        f[at] ^= val | 1;
        assert_eq!(under(&f), Err(Reject::Drop(Counter::DropBadIpChecksum)), "byte {at} changed");
    }
    // Not ours (another port): left to the host, which checks it itself.
    let mut f = good;
    f[36..38].copy_from_slice(&4790u16.to_be_bytes());
    f[24] ^= 0xff;
    assert_eq!(under(&f), Err(Reject::Pass(Counter::PassHost)));
}

#[test]
fn ihl_below_five_is_malformed() {
    let mut f = vxlan(M1, M2, &params(7), &inner());
    for ihl in 0..5u8 {
        f[14] = 0x40 | ihl;
        assert_eq!(under(&f), Err(Reject::Drop(Counter::DropMalformed)), "ihl {ihl}");
    }
}

#[test]
fn lengths_must_be_consistent() {
    let good = vxlan(M1, M2, &params(7), &inner());
    let edit = |at: usize, v: u16| {
        let mut f = good.clone();
        f[at..at + 2].copy_from_slice(&v.to_be_bytes());
        fix_ipv4_checksum(&mut f);
        f
    };
    let malformed = Err(Reject::Drop(Counter::DropMalformed));
    assert_eq!(under(&edit(16, 2000)), malformed, "IP longer than the frame");
    assert_eq!(under(&edit(16, 40)), malformed, "IP too short for VXLAN");
    assert_eq!(under(&edit(38, 9)), malformed, "UDP length too short");
    assert_eq!(under(&edit(38, 60000)), malformed, "UDP longer than IP");
    // The inner frame ends where UDP says: trailing bytes (padding, junk)
    // are not the tenant's.
    let mut f = good.clone();
    f.extend_from_slice(&[0xee; 6]);
    assert_eq!(under(&f).map(|r| r.inner_len), Ok(inner().len()));
    let udp_len = u16::from_be_bytes([good[38], good[39]]);
    let f = edit(38, udp_len - 4);
    assert_eq!(under(&f).map(|r| r.inner_len), Ok(inner().len() - 4), "UDP shorter than IP");
    // A GSO super-packet is checked the same way and may carry nothing
    // past the UDP payload (it cannot be trimmed).
    let gso = |f: &[u8]| parse_underlay(f, &rx_config(LOCAL, 0), true);
    assert!(gso(&good).is_ok());
    assert_eq!(gso(&edit(16, 2000)), malformed);
    assert_eq!(gso(&edit(38, udp_len - 4)), malformed);
    let mut f = good;
    f.extend_from_slice(&[0; 6]);
    assert_eq!(gso(&f), malformed);
}

#[test]
fn flags_and_reserved_bits() {
    let good = vxlan(M1, M2, &params(7), &inner());
    let mut f = good.clone();
    f[42] = 0;
    assert_eq!(under(&f), Err(Reject::Drop(Counter::DropVxlanNoIFlag)));
    let mut f = good.clone();
    f[42] = 0xff;
    f[43..46].copy_from_slice(&[0xff; 3]);
    f[49] = 0xff;
    assert_eq!(under(&f).map(|r| r.vni), Ok(7), "reserved bits are ignored");
    // Non-zero UDP checksum is not verified (documented policy).
    let mut f = good;
    f[40..42].copy_from_slice(&[0xde, 0xad]);
    assert!(under(&f).is_ok());
}

#[test]
fn foreign_traffic_passes() {
    let good = vxlan(M1, M2, &params(7), &inner());
    let mut f = good.clone();
    f[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
    assert_eq!(under(&f), Err(Reject::Pass(Counter::PassHost)), "ARP");
    let mut f = good.clone();
    f[23] = 47; // GRE
    assert_eq!(under(&f), Err(Reject::Pass(Counter::PassHost)));
    let mut f = good.clone();
    f[36..38].copy_from_slice(&4790u16.to_be_bytes());
    assert_eq!(under(&f), Err(Reject::Pass(Counter::PassHost)), "other port");
    let mut f = good.clone();
    f[33] = 9; // other destination address
    assert_eq!(under(&f), Err(Reject::Pass(Counter::PassHost)));
    let mut f = good.clone();
    f[14] = 0x65; // IPv6 version nibble in an IPv4 ethertype
    assert_eq!(under(&f), Err(Reject::Pass(Counter::PassHost)));
    for frag in [0x2000u16, 0x0001, 0x20ff] {
        let mut f = good.clone();
        f[20..22].copy_from_slice(&frag.to_be_bytes());
        assert_eq!(under(&f), Err(Reject::Pass(Counter::PassFragment)), "frag {frag:#x}");
    }
    let mut f = good;
    f[20..22].copy_from_slice(&0x4000u16.to_be_bytes()); // DF only
    assert!(under(&f).is_ok());
}

#[test]
fn l2_untagged_and_tagged() {
    let f = inner();
    let r = parse_l2(&f[..], None, false).unwrap();
    assert_eq!((r.vid, r.has_tag), (NO_VLAN, false));
    let t = push_tag(&f, 0x8100, 0x2000 | 10);
    let r = parse_l2(&t[..], None, false).unwrap();
    assert_eq!((r.vid, r.has_tag), (10, true));
    let r = parse_l2(&f[..], Some((0x8100, 20)), false).unwrap();
    assert_eq!((r.vid, r.has_tag), (20, true));
}

#[test]
fn l2_bad_tags() {
    let f = inner();
    let t0 = push_tag(&f, 0x8100, 0xe000);
    assert_eq!(parse_l2(&t0[..], None, false), Err(Reject::Drop(Counter::DropVlanPriorityTagged)));
    assert_eq!(parse_l2(&t0[..], None, true).map(|r| (r.vid, r.has_tag)), Ok((NO_VLAN, true)));
    let t4095 = push_tag(&f, 0x8100, 0x0fff);
    assert_eq!(parse_l2(&t4095[..], None, false), Err(Reject::Drop(Counter::DropVlan4095)));
    let qinq = push_tag(&push_tag(&f, 0x8100, 10), 0x8100, 20);
    assert_eq!(parse_l2(&qinq[..], None, false), Err(Reject::Drop(Counter::DropVlanQinq)));
    let ad = push_tag(&f, 0x88a8, 10);
    assert_eq!(parse_l2(&ad[..], None, false), Err(Reject::Drop(Counter::DropVlanQinq)));
    assert_eq!(parse_l2(&f[..], Some((0x88a8, 10)), false), Err(Reject::Drop(Counter::DropVlanQinq)));
    let t = push_tag(&f, 0x8100, 10);
    assert_eq!(parse_l2(&t[..], Some((0x8100, 10)), false), Err(Reject::Drop(Counter::DropVlanQinq)));
    assert_eq!(parse_l2(&t[..16], None, false), Err(Reject::Drop(Counter::DropMalformed)));
    for n in 0..14 {
        assert_eq!(parse_l2(&f[..n], None, false), Err(Reject::Drop(Counter::DropMalformed)));
    }
}

#[test]
fn l2_source_mac_rules() {
    let f = udp4(M1, BCAST, [0; 4], [0; 4], 1, 2, 0);
    assert_eq!(parse_l2(&f[..], None, false), Err(Reject::Drop(Counter::DropSrcMacInvalid)));
    let f = udp4(M1, [1, 0, 0x5e, 0, 0, 1], [0; 4], [0; 4], 1, 2, 0);
    assert_eq!(parse_l2(&f[..], None, false), Err(Reject::Drop(Counter::DropSrcMacInvalid)));
    let f = udp4(M1, [0; 6], [0; 4], [0; 4], 1, 2, 0);
    assert_eq!(parse_l2(&f[..], None, false), Err(Reject::Drop(Counter::DropSrcMacInvalid)));
    let f = udp4(BCAST, M2, [0; 4], [0; 4], 1, 2, 0);
    assert!(parse_l2(&f[..], None, false).is_ok(), "broadcast destination is fine");
}

fn all(f: &[u8]) -> Result<TunnelRx, Reject> {
    parse_underlay(f, &rx_config(LOCAL, crate::maps::CFG_F_GRE | crate::maps::CFG_F_GENEVE), false)
}

fn geneve(vni: u32) -> Vec<u8> {
    tunnel_from(crate::ENCAP_GENEVE, (M1, M2), PEER, LOCAL, vni, &inner())
}

fn gre(key: u32) -> Vec<u8> {
    tunnel_from(crate::ENCAP_GRE, (M1, M2), PEER, LOCAL, key, &inner())
}

/// Inserts `n` bytes at `at` into the IPv4 payload, fixing the IPv4 and
/// (when `udp`) UDP lengths.
fn grow(f: &mut Vec<u8>, at: usize, bytes: &[u8], udp: bool) {
    f.splice(at..at, bytes.iter().copied());
    let n = bytes.len() as u16;
    let tot = u16::from_be_bytes([f[16], f[17]]) + n;
    f[16..18].copy_from_slice(&tot.to_be_bytes());
    if udp {
        let l = u16::from_be_bytes([f[38], f[39]]) + n;
        f[38..40].copy_from_slice(&l.to_be_bytes());
    }
    fix_ipv4_checksum(f);
}

#[test]
fn geneve_parses_and_skips_options() {
    let f = geneve(0xabcdef);
    let rx = all(&f).expect("valid");
    assert_eq!(
        (rx.encap, rx.vni, rx.inner_off, rx.inner_len),
        (crate::ENCAP_GENEVE, 0xabcdef, 50, inner().len())
    );
    // Two option words (class, type, length 1, 4 bytes of data): skipped
    // within the option length, their content never read.
    let mut o = f.clone();
    o[42] = 2;
    grow(&mut o, 50, &[0xff; 8], true);
    let rx = all(&o).expect("options skipped");
    assert_eq!((rx.inner_off, rx.inner_len, rx.inner.dst), (58, inner().len(), M1));
    // An option length past the frame is malformed.
    let mut o = f.clone();
    o[42] = 0x3f;
    assert_eq!(all(&o), Err(Reject::Drop(Counter::DropMalformed)));
}

#[test]
fn geneve_critical_oam_version_and_protocol_are_dropped() {
    let cases: [(usize, u8, Counter); 4] = [
        (43, 0x40, Counter::DropGeneveCritical),
        (43, 0x80, Counter::DropGeneveOam),
        (42, 0x40, Counter::DropTunnelHeader), // version 1
        (44, 0x08, Counter::DropTunnelHeader), // protocol 0x0858
    ];
    for (at, v, want) in cases {
        let mut f = geneve(5);
        f[at] = v;
        assert_eq!(all(&f), Err(Reject::Drop(want)), "byte {at} = {v:#x}");
    }
}

#[test]
fn gre_parses_with_key_and_sequence_number() {
    let f = gre(0xdead_beef);
    let rx = all(&f).expect("valid");
    assert_eq!(
        (rx.encap, rx.vni, rx.inner_off, rx.inner_len),
        (crate::ENCAP_GRE, 0xdead_beef, 42, inner().len())
    );
    let mut s = f.clone();
    s[34] |= 0x10; // S: a sequence number follows the key
    grow(&mut s, 42, &[0, 0, 0, 7], false);
    let rx = all(&s).expect("sequence number skipped");
    assert_eq!((rx.inner_off, rx.inner_len), (46, inner().len()));
    // Ethernet padding after the IPv4 payload is not the tenant's.
    let mut p = f.clone();
    p.extend_from_slice(&[0; 6]);
    assert_eq!(all(&p).unwrap().inner_len, inner().len());
}

#[test]
fn gre_that_is_not_ours_passes_and_bad_gre_is_dropped() {
    for (at, v, want) in [
        (34, 0x00, Reject::Pass(Counter::PassHost)),         // no key
        (36, 0x08, Reject::Pass(Counter::PassHost)),         // IP in GRE, not Ethernet
        (34, 0xa0, Reject::Drop(Counter::DropTunnelHeader)), // checksum present
        (34, 0x60, Reject::Drop(Counter::DropTunnelHeader)), // routing present
        (35, 0x01, Reject::Drop(Counter::DropTunnelHeader)), // version 1
    ] {
        let mut f = gre(9);
        f[at] = v;
        assert_eq!(all(&f), Err(want), "byte {at} = {v:#x}");
    }
}

#[test]
fn unclaimed_gre_and_geneve_are_the_hosts() {
    assert_eq!(under(&gre(9)), Err(Reject::Pass(Counter::PassHost)));
    assert_eq!(under(&geneve(9)), Err(Reject::Pass(Counter::PassHost)));
    let mut bad = gre(9);
    bad[24] ^= 1; // broken IPv4 checksum: still the host's, never ours to count
    assert_eq!(under(&bad), Err(Reject::Pass(Counter::PassHost)));
    assert_eq!(all(&bad), Err(Reject::Drop(Counter::DropBadIpChecksum)));
}
