//! `overlayctl trace` (#18): the trace programs run on a frame against the
//! live maps change nothing (counters, FDB with its timestamps, neighbour
//! table, caches), and the live program then does exactly what the trace
//! said: the same verdict, the same output bytes, the same counters per
//! network, and learns when the trace said it would. Covers local and
//! remote hits, flooding, VLAN pop and push, decapsulation, an expired
//! entry, ARP suppression and each drop reason the fixture can provoke.

use std::collections::BTreeMap;

use overlay_common::{NO_VLAN, trace::*};
use overlay_tests::prelude::*;
use overlay_user::trace::Raw;

/// Traces `frame` on `dev`, checks that nothing changed, then runs the
/// live program on it and checks that it did what the trace said.
fn traced(f: &Fixture, dev: &str, frame: &[u8]) -> Raw {
    let before = f.snapshot();
    let t = f.trace(dev, frame);
    assert_eq!(f.snapshot(), before, "tracing on {dev} changed the datapath's state");
    assert_eq!(t.lost, 0, "every step recorded");
    let (v, out) = f.live(dev, frame);
    let after = f.snapshot();
    assert_eq!(v, t.verdict, "verdict on {dev}: live {v}, traced {} ({:?})", t.verdict, t.steps);
    assert_eq!(out, t.frame_out, "the frame as it leaves {dev}");
    let mut traced_counts: BTreeMap<(u32, &'static str), u64> = BTreeMap::new();
    for s in t.steps.iter().filter(|s| s.kind == STEP_COUNT) {
        let c = Counter::ALL.iter().find(|c| **c as u8 == s.counter).expect("a counter");
        *traced_counts.entry((s.a, c.name())).or_default() += 1;
    }
    assert_eq!(after.counter_delta(&before), traced_counts, "counters on {dev}");
    let writes = t.steps.iter().any(|s| {
        (s.kind == STEP_LEARN && matches!(s.a, LEARN_NEW | LEARN_MOVE | LEARN_REFRESH))
            || (s.kind == STEP_FDB && s.a == FDB_EXPIRED)
    });
    assert_eq!(after.fdb != before.fdb, writes, "the FDB changed as traced ({:?})", t.steps);
    t
}

fn drop_reason(t: &Raw) -> Option<&'static str> {
    let c = t.steps.iter().rev().find(|s| s.kind == STEP_COUNT)?;
    Counter::ALL.iter().find(|x| **x as u8 == c.counter && x.is_drop()).map(|x| x.name())
}

fn steps(t: &Raw, kind: u8) -> Vec<TraceStep> {
    t.steps.iter().filter(|s| s.kind == kind).copied().collect()
}

#[test]
fn unicast_paths_are_traced_as_the_datapath_takes_them() {
    with_fixture(|mut f| {
        f.load_trace();
        let (p1, p2, p3, u0) = (f.ifindex["p1"], f.ifindex["p2"], f.ifindex["p3"], f.ifindex["u0"]);
        // Local hit: VM1 on p1 to VM2 (static on p2); VM1 is new.
        let t = traced(&f, "p1", &tenant_frame(VM2, VM1));
        assert_eq!(t.verdict, TC_ACT_REDIRECT);
        assert_eq!(steps(&t, STEP_NETWORK)[0].a, f.net("blue"));
        assert_eq!(steps(&t, STEP_LEARN)[0].a, LEARN_NEW);
        assert_eq!((steps(&t, STEP_FDB)[0].a, steps(&t, STEP_FDB)[0].b), (FDB_HIT_PORT, p2));
        assert_eq!(steps(&t, STEP_EGRESS)[0].a, p2);
        // Again: VM1 is known now.
        let t = traced(&f, "p1", &tenant_frame(VM2, VM1));
        assert_eq!(steps(&t, STEP_LEARN)[0].a, LEARN_KNOWN);
        // Remote hit: encapsulated to 192.0.2.2, out of u0.
        let t = traced(&f, "p1", &tenant_frame(REMOTE_VM, VM1));
        assert_eq!(t.verdict, TC_ACT_REDIRECT);
        assert_eq!(steps(&t, STEP_ENCAP)[0].addr, vtep4(PEER));
        let hop = steps(&t, STEP_NEXT_HOP)[0];
        assert_eq!((hop.a, hop.b), (u0, HOP_FIB));
        // The live run cached the next hop: the trace says so now.
        let t = traced(&f, "p1", &tenant_frame(REMOTE_VM, VM1));
        assert_eq!(steps(&t, STEP_NEXT_HOP)[0].b, HOP_CACHED);
        // VLAN pop: tagged 10 on trunk p3 to VM2.
        let x = [2, 0, 0, 0, 0, 0x33];
        let t = traced(&f, "p3", &push_tag(&tenant_frame(VM2, x), 0x8100, 10));
        assert_eq!(steps(&t, STEP_POP)[0].vid, 10);
        assert_eq!((steps(&t, STEP_EGRESS)[0].a, steps(&t, STEP_EGRESS)[0].vid), (p2, NO_VLAN));
        // VLAN push: to x, now learned on the trunk.
        let t = traced(&f, "p1", &tenant_frame(x, VM1));
        assert_eq!((steps(&t, STEP_EGRESS)[0].a, steps(&t, STEP_EGRESS)[0].vid), (p3, 10));
        // Decapsulation to a local port.
        let t = traced(&f, "u0", &from_vtep(PEER, 100, &tenant_frame(VM2, REMOTE_VM)));
        assert_eq!(t.verdict, TC_ACT_REDIRECT);
        assert_eq!(steps(&t, STEP_DECAP).len(), 1);
        assert_eq!(steps(&t, STEP_EGRESS)[0].a, p2);
        let _ = p1;
    });
}

#[test]
fn flooding_lists_every_copy_the_datapath_sends() {
    with_fixture(|mut f| {
        f.load_trace();
        let (p2, p3) = (f.ifindex["p2"], f.ifindex["p3"]);
        let t = traced(&f, "p1", &tenant_frame([0xff; 6], VM1));
        let local: Vec<(u32, u16)> = steps(&t, STEP_FLOOD_LOCAL).iter().map(|s| (s.a, s.vid)).collect();
        assert_eq!(local, vec![(p2, NO_VLAN), (p3, 10)], "untagged p2, tagged p3, not p1 itself");
        let remote: Vec<VtepAddr> = steps(&t, STEP_FLOOD_REMOTE).iter().map(|s| s.addr).collect();
        assert_eq!(remote, vec![vtep4(PEER)], "the peer VTEP");
        assert_eq!(t.verdict, TC_ACT_REDIRECT, "the frame itself goes to the last peer");
        // From the underlay: local copies only (split horizon).
        let t = traced(&f, "u0", &from_vtep(PEER, 100, &tenant_frame([0xff; 6], REMOTE_VM)));
        assert_eq!(steps(&t, STEP_FLOOD_LOCAL).len(), 3, "p1, p2 and p3");
        assert!(steps(&t, STEP_FLOOD_REMOTE).is_empty());
        assert_eq!(t.verdict, TC_ACT_STOLEN);
        // An unknown unicast destination floods too.
        let t = traced(&f, "p2", &tenant_frame([2, 0, 0, 0, 0, 0x77], [2, 0, 0, 0, 0, 0x44]));
        assert_eq!(steps(&t, STEP_FDB)[0].a, FDB_MISS);
        assert_eq!(steps(&t, STEP_FLOOD_LOCAL).len(), 2, "p1 and p3");
    });
}

#[test]
fn each_drop_is_traced_with_its_reason() {
    with_fixture(|mut f| {
        f.load_trace();
        let plain = tenant_frame(VM2, [2, 0, 0, 0, 0, 0x55]);
        let mut big = tenant_frame(REMOTE_VM, VM1);
        big.resize(1480, 0);
        let ip_len = (big.len() - 14) as u16;
        big[16..18].copy_from_slice(&ip_len.to_be_bytes());
        fix_ipv4_checksum(&mut big);
        let mut no_i_flag = from_vtep(PEER, 100, &plain);
        no_i_flag[42] = 0;
        let mut bad_checksum = from_vtep(PEER, 100, &plain);
        bad_checksum[24] ^= 0xff;
        // A veth end that is not a port.
        let p1b = overlay_user::netlink::link_info("p1b").expect("p1b").index;
        f.ifindex.insert("p1b".into(), p1b);
        let cases: Vec<(&str, Vec<u8>, Counter)> = vec![
            ("p2", tenant_frame(VM2, [2, 0, 0, 0, 0, 5]), DropHairpin),
            ("p1", push_tag(&plain, 0x8100, 10), DropVlanNotAllowed),
            ("p3", push_tag(&plain, 0x8100, 0x0fff), DropVlan4095),
            ("p3", push_tag(&push_tag(&plain, 0x8100, 10), 0x8100, 20), DropVlanQinq),
            ("p1", tenant_frame(VM1, VM2), DropSrcMacStatic),
            ("p1", big, DropMtu),
            ("u0", from_vtep(PEER, 999, &plain), DropUnknownVni),
            ("u0", from_vtep(STRANGER, 100, &plain), DropNotPeer),
            ("u0", from_vtep(PEER, 100, &tenant_frame(REMOTE_VM, [2, 0, 0, 0, 0, 0x66])), DropSplitHorizon),
            ("u0", from_vtep(PEER, 100, &push_tag(&plain, 0x8100, 10)), DropInnerTagged),
            ("u0", from_vtep(PEER, 100, &tenant_frame(VM2, [0xff; 6])), DropSrcMacInvalid),
            ("u0", from_vtep(LOCAL, 100, &plain), DropVtepSrcInvalid),
            ("p3", push_tag(&plain, 0x8100, 0), DropVlanPriorityTagged),
            ("p3", push_tag(&plain, 0x8100, 10)[..16].to_vec(), DropMalformed),
            ("p1b", plain.clone(), DropNotAPort),
            ("u0", no_i_flag, DropVxlanNoIFlag),
            ("u0", bad_checksum, DropBadIpChecksum),
            ("u0", vxlan_from([2, 0, 0, 0, 0, 0x99], PEER_MAC, PEER, LOCAL, 100, &plain), DropOtherHost),
        ];
        for (dev, frame, reason) in cases {
            let t = traced(&f, dev, &frame);
            assert_eq!(t.verdict, TC_ACT_SHOT, "{reason:?} on {dev}");
            assert_eq!(drop_reason(&t), Some(reason.name()), "{reason:?} on {dev}: {:?}", t.steps);
        }
        // Not VXLAN for us: left to the host stack.
        let other = udp4(U0_MAC, PEER_MAC, PEER, LOCAL, 1000, 53, 8);
        let t = traced(&f, "u0", &other);
        assert_eq!(t.verdict, TC_ACT_OK);
        assert_eq!(steps(&t, STEP_COUNT).len(), 2, "rx_underlay and pass_host: {:?}", t.steps);
    });
}

#[test]
fn an_expired_entry_is_reported_not_deleted() {
    with_fixture(|mut f| {
        f.load_trace();
        let x = [2, 0, 0, 0, 0, 0x21];
        traced(&f, "p3", &push_tag(&tenant_frame([0xff; 6], x), 0x8100, 10));
        // Make x's entry older than the ageing time.
        let k = FdbKey::new(f.net("blue"), x);
        let mut e = f.maps.fdb.get(&k, 0).expect("learned");
        e.seen_ns = 1;
        f.maps.fdb.insert(k, e, 0).expect("age it");
        let t = traced(&f, "p1", &tenant_frame(x, VM1));
        assert_eq!(steps(&t, STEP_FDB)[0].a, FDB_EXPIRED);
        assert!(t.steps.iter().any(|s| s.kind == STEP_COUNT && s.counter == AgedOut as u8));
        assert!(fdb_get(&f, "blue", x).is_none(), "the live run deleted it");
    });
}

/// An ARP request from VM1 (203.0.113.1) for `target`, broadcast.
fn arp_from_vm1(target: [u8; 4]) -> Vec<u8> {
    let mut f = eth([0xff; 6], VM1, 0x0806);
    f.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&VM1);
    f.extend_from_slice(&[203, 0, 113, 1, 0, 0, 0, 0, 0, 0]);
    f.extend_from_slice(&target);
    f.resize(60, 0);
    f
}

#[test]
fn arp_suppression_and_ip_learning_are_traced_without_writing_the_table() {
    let mut c = dp_config();
    c.networks[0].learn_ip = true;
    c.neigh = vec![overlay_tests::conf::neigh("blue", "203.0.113.2", "02:00:00:00:00:02")];
    in_private_netns(move || {
        let mut f = Fixture::new(&c);
        f.load_trace();
        // A gratuitous ARP: VM1 announces 203.0.113.1 (learned by the live run only).
        let t = traced(&f, "p1", &arp_from_vm1([203, 0, 113, 1]));
        let counted: Vec<u8> = t.steps.iter().filter(|s| s.kind == STEP_COUNT).map(|s| s.counter).collect();
        assert!(counted.contains(&(NeighLearned as u8)), "the pair would be learned: {counted:?}");
        assert_eq!(f.maps.neigh.keys().count(), 2, "the live run learned it");
        // A request the table answers: the reply goes back out of p1.
        let t = traced(&f, "p1", &arp_from_vm1([203, 0, 113, 2]));
        assert_eq!(steps(&t, STEP_NEIGH_REPLY).len(), 1);
        assert_eq!(steps(&t, STEP_EGRESS)[0].a, f.ifindex["p1"], "back out of the asking port");
        assert_eq!(drop_reason(&t), None);
        assert!(t.steps.iter().any(|s| s.kind == STEP_COUNT && s.counter == ArpSuppressed as u8));
    });
}

#[test]
fn a_flood_to_128_peers_lists_every_copy() {
    in_private_netns(|| {
        let n = overlay_common::MAX_FLOOD_PEERS;
        let mut f = Fixture::new(&many_peers(n));
        f.load_trace();
        let t = traced(&f, "p1", &tenant_frame([0xff; 6], VM1));
        let peers: Vec<VtepAddr> = steps(&t, STEP_FLOOD_REMOTE).iter().map(|s| s.addr).collect();
        let want: Vec<VtepAddr> = (0..n).map(|i| vtep4([198, 51, 100, i as u8 + 2])).collect();
        assert_eq!(peers, want, "one copy per peer, in order");
        let copies = steps(&t, STEP_FLOOD_REMOTE).iter().filter(|s| s.b == FLOOD_COPY).count();
        assert_eq!(copies, n - 1, "clones, then the frame itself");
        let hops: Vec<u32> = steps(&t, STEP_NEXT_HOP).iter().map(|s| s.b).collect();
        assert_eq!(hops, vec![HOP_FIB; n], "each peer's next hop from the FIB, none cached yet");
        // The live run cached them all: a second flood uses the cache.
        let t = traced(&f, "p1", &tenant_frame([0xff; 6], VM1));
        let hops: Vec<u32> = steps(&t, STEP_NEXT_HOP).iter().map(|s| s.b).collect();
        assert_eq!(hops, vec![HOP_CACHED; n], "every copy's next hop from the cache");
    });
}

#[test]
fn drops_on_the_next_hop_the_reverse_path_and_when_nothing_floods() {
    let mut c = dp_config();
    // Behind a VTEP with no route to it, and one on the underlay's subnet
    // whose neighbour is unknown (a non-IP frame cannot have it resolved).
    c.fdb.push(overlay_tests::conf::fdb_remote("02:00:00:00:00:0a", "blue", "198.51.100.99"));
    c.fdb.push(overlay_tests::conf::fdb_remote("02:00:00:00:00:0b", "blue", "192.0.2.77"));
    // VXLAN from any VTEP (then the reverse-path check decides), and a
    // network whose only port is p4 (a flood has no target).
    c.networks[0].learn_unknown_peers = true;
    // Unknown unicast is not flooded (a control plane knows every MAC; no
    // agent runs here, the maps are what matters).
    c.networks[0].flood_unknown = false;
    c.control = Some(overlay_tests::etcd::control(10));
    c.networks.push(vlan("green", 30));
    c.ports[3] = access("p4", "green");
    in_private_netns(move || {
        let mut f = Fixture::new(&c);
        f.load_trace();
        let t = traced(&f, "p1", &tenant_frame([2, 0, 0, 0, 0, 0x0a], VM1));
        assert_eq!(drop_reason(&t), Some("drop_no_route"));
        assert_eq!(steps(&t, STEP_NEXT_HOP)[0].b, HOP_UNREACHABLE);
        let mut arp = eth([2, 0, 0, 0, 0, 0x0b], VM1, 0x0806);
        arp.resize(60, 0);
        let t = traced(&f, "p1", &arp);
        assert_eq!(drop_reason(&t), Some("drop_no_neighbour"));
        assert_eq!(steps(&t, STEP_NEXT_HOP)[0].b, HOP_UNRESOLVED);
        // No route back to the outer source.
        let t = traced(&f, "u0", &from_vtep([198, 51, 100, 5], 100, &tenant_frame(VM2, REMOTE_VM)));
        assert_eq!(drop_reason(&t), Some("drop_rp_filter"));
        assert_eq!(steps(&t, STEP_RPF)[0].a, 0, "the check failed");
        let t = traced(&f, "p4", &tenant_frame([0xff; 6], VM1));
        assert_eq!(drop_reason(&t), Some("drop_flood_no_target"));
        let t = traced(&f, "p1", &tenant_frame([2, 0, 0, 0, 0, 0x77], VM1));
        assert_eq!(drop_reason(&t), Some("drop_unknown_unicast"));
        assert_eq!(steps(&t, STEP_FDB)[0].a, FDB_MISS);
    });
}
