//! Local switching on access and trunk ports: the tag rules, hairpin, VLAN-only networks, and what tenants may not send.
//! The real programs run on crafted frames through BPF_PROG_TEST_RUN:
//! verdict, exact output bytes and exact counters.

use overlay_tests::prelude::*;

#[test]
fn local_switching_between_access_ports() {
    with_fixture(|f| {
        let frame = tenant_frame(VM2, VM1);
        let (v, out) = f.tenant("p1", &frame);
        assert_eq!(v, TC_ACT_REDIRECT, "known local MAC is redirected");
        assert_eq!(out, frame, "access to access: frame untouched");
        assert_eq!(f.nonzero(), counts(&[(RxTenant, 1), (TxLocal, 1), (Learned, 1)]));
        let e = fdb_get(&f, "blue", VM1).expect("source learned");
        assert_eq!((e.kind, e.ifindex, e.is_static()), (FDB_KIND_PORT, f.ifindex["p1"], false));
    });
}

#[test]
fn hairpin_is_dropped() {
    with_fixture(|f| {
        let (v, _) = f.tenant("p2", &tenant_frame(VM2, [2, 0, 0, 0, 0, 5]));
        assert_eq!(v, TC_ACT_SHOT);
        assert_eq!(f.count(DropHairpin), 1);
    });
}

#[test]
fn trunk_tags_are_checked_and_popped() {
    with_fixture(|f| {
        let plain = tenant_frame(VM2, [2, 0, 0, 0, 0, 0x55]);
        // Allowed VID 10 (blue) on the trunk, to VM2 on access port p2: popped.
        let (v, out) = f.tenant("p3", &push_tag(&plain, 0x8100, 10));
        assert_eq!(v, TC_ACT_REDIRECT);
        assert_eq!(out, plain, "tag removed towards the access port");
        let bad: [(Vec<u8>, &str, Counter); 6] = [
            (push_tag(&plain, 0x8100, 30), "p3", DropVlanNotAllowed),
            (plain.clone(), "p3", DropVlanNotAllowed), // no native network
            (push_tag(&plain, 0x8100, 0x0fff), "p3", DropVlan4095),
            (push_tag(&plain, 0x8100, 0), "p3", DropVlanPriorityTagged),
            (push_tag(&push_tag(&plain, 0x8100, 10), 0x8100, 20), "p3", DropVlanQinq),
            (push_tag(&plain, 0x8100, 10), "p1", DropVlanNotAllowed), // tagged on access
        ];
        for (frame, dev, reason) in &bad {
            assert_eq!(f.tenant(dev, frame).0, TC_ACT_SHOT, "{reason:?}");
        }
        assert_eq!(f.count(DropVlanNotAllowed), 3);
        assert_eq!(f.count(DropVlan4095), 1);
        assert_eq!(f.count(DropVlanPriorityTagged), 1);
        assert_eq!(f.count(DropVlanQinq), 1);
        let ad = push_tag(&plain, 0x88a8, 10);
        assert_eq!(f.tenant("p3", &ad).0, TC_ACT_SHOT);
        assert_eq!(f.count(DropVlanQinq), 2);
    });
}

#[test]
fn vlan_only_network_never_reaches_vxlan() {
    with_fixture(|f| {
        // Unknown destination in red (VLAN only): p4 is the sender, so one
        // tagged clone goes to the trunk p3 and the frame itself is consumed.
        let frame = tenant_frame([2, 0, 0, 0, 0, 0x77], [2, 0, 0, 0, 0, 0x78]);
        let (v, out) = f.tenant("p4", &frame);
        assert_eq!(v, TC_ACT_STOLEN, "all copies are clones; the original is consumed");
        assert_eq!(out, frame, "the tag pushed for the trunk copy was popped again");
        assert_eq!(f.count(Encap), 0);
        assert_eq!(f.count(FloodRemoteCopies), 0);
        assert_eq!(f.count(FloodLocalCopies), 1);
    });
}

#[test]
fn bad_frames_from_tenants() {
    with_fixture(|f| {
        // BPF_PROG_TEST_RUN refuses frames under 14 bytes (and IPv4 ones
        // under 34); shorter truncations are covered by the host parser
        // tests. A tag cut short is what reaches the kernel here.
        let tagged = push_tag(&tenant_frame(VM2, VM1), 0x8100, 10);
        for n in 14..18 {
            assert_eq!(f.tenant("p3", &tagged[..n]).0, TC_ACT_SHOT, "len {n}");
        }
        let mcast_src = tenant_frame(VM2, [1, 0, 0x5e, 0, 0, 1]);
        assert_eq!(f.tenant("p1", &mcast_src).0, TC_ACT_SHOT);
        assert_eq!(f.nonzero(), counts(&[(DropMalformed, 4), (DropSrcMacInvalid, 1)]));
    });
}

/// Ports sit in `PORTS_ARRAY` at their ifindex, or in `PORTS` when the
/// ifindex is too large for it: either way a port switches both ways, a
/// port taken out of the config is no port any more, and `Maps::ports`
/// lists exactly the ports.
#[test]
fn ports_with_small_and_large_ifindexes() {
    use overlay_common::maps::PORTS_ARRAY_LEN;
    let mut c = dp_config();
    c.ports.push(access("p9", "blue"));
    in_private_netns(move || {
        sh("ip link add p9 index 70000 type veth peer name p9b; ip link set p9 up; ip link set p9b up");
        let mut f = Fixture::new(&c);
        let (p1, p9) = (f.ifindex["p1"], f.ifindex["p9"]);
        assert!(p1 < PORTS_ARRAY_LEN && p9 >= PORTS_ARRAY_LEN, "ifindexes {p1} and {p9}");
        let vm9 = [2, 0, 0, 0, 0, 0x99];
        let (v, _) = f.tenant("p9", &tenant_frame(VM2, vm9));
        assert_eq!(v, TC_ACT_REDIRECT, "from the large ifindex");
        let (v, _) = f.tenant("p1", &tenant_frame(vm9, VM1));
        assert_eq!(v, TC_ACT_REDIRECT, "to it");
        assert_eq!(fdb_get(&f, "blue", vm9).map(|e| e.ifindex), Some(p9));
        assert_eq!(f.nonzero(), counts(&[(RxTenant, 2), (TxLocal, 2), (Learned, 2)]));
        let listed = |f: &Fixture| {
            f.maps.ports().expect("ports").keys().copied().collect::<std::collections::BTreeSet<u32>>()
        };
        let configured = |f: &Fixture| {
            f.cfg.ports.iter().map(|p| f.ifindex[&p.interface]).collect::<std::collections::BTreeSet<u32>>()
        };
        assert_eq!(listed(&f), configured(&f));
        f.cfg.ports.retain(|p| p.interface != "p1" && p.interface != "p9");
        let want = overlay_user::apply::desired(&f.cfg, &f.ids, &f.resolved(), &Default::default()).unwrap();
        overlay_user::apply::apply(&mut f.maps, &want).expect("apply");
        assert_eq!(listed(&f), configured(&f));
        f.reset();
        for dev in ["p1", "p9"] {
            let (v, _) = f.tenant(dev, &tenant_frame(VM2, VM1));
            assert_eq!(v, TC_ACT_SHOT, "{dev} is no port any more");
        }
        assert_eq!(f.nonzero(), counts(&[(DropNotAPort, 2)]));
    });
}
