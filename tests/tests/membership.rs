//! The per-packet egress membership check (BPF_PROG_TEST_RUN): stale FDB
//! and flood entries, written straight into the maps as a config change
//! in progress or a bug would leave them, never deliver into another
//! network. Each stopped frame is counted as `drop_not_member`.

use overlay_tests::prelude::*;

const STALE: [u8; 6] = [2, 0, 0, 0, 0, 0x5e];

/// Writes `e` for STALE in `net`, static so it never ages out meanwhile.
fn stale(f: &mut Fixture, net: &str, e: FdbEntry) {
    let e = FdbEntry { flags: FDB_F_STATIC, ..e };
    let k = FdbKey::new(f.net(net), STALE);
    f.maps.fdb.insert(k, e, 0).expect("insert stale entry");
}

fn at_port(f: &Fixture, port: &str) -> FdbEntry {
    FdbEntry { kind: FDB_KIND_PORT, ifindex: f.ifindex[port], ..Default::default() }
}

#[test]
fn stale_port_entries_never_cross_networks() {
    with_fixture(|mut f| {
        // blue's entry points at p4, an access port of red.
        let e = at_port(&f, "p4");
        stale(&mut f, "blue", e);
        let (v, _) = f.tenant("p1", &tenant_frame(STALE, VM1));
        assert_eq!(v, TC_ACT_SHOT, "tenant to a stale port");
        let (v, _) = f.underlay(&from_vtep(PEER, 100, &tenant_frame(STALE, [2, 0, 0, 0, 0, 0x77])));
        assert_eq!(v, TC_ACT_SHOT, "decapsulated to a stale port");
        assert_eq!(f.count(DropNotMember), 2);
        assert_eq!((f.count(TxLocal), f.count(Decap)), (0, 0), "nothing delivered, nothing decapsulated");
    });
}

#[test]
fn trunk_that_no_longer_carries_the_vlan_is_not_a_member() {
    with_fixture(|mut f| {
        let e = at_port(&f, "p3");
        stale(&mut f, "blue", e);
        let (v, _) = f.tenant("p1", &tenant_frame(STALE, VM1));
        assert_eq!(v, TC_ACT_REDIRECT, "trunk p3 carries blue (tagged)");
        // Take VLAN 10 (blue) off the trunk, as a config change would.
        let k = TrunkKey { ifindex: f.ifindex["p3"], vid: 10, _pad: 0 };
        f.maps.trunk.remove(&k).expect("remove VID 10 from p3");
        f.reset();
        let (v, _) = f.tenant("p1", &tenant_frame(STALE, VM1));
        assert_eq!(v, TC_ACT_SHOT);
        assert_eq!(f.nonzero(), counts(&[(RxTenant, 1), (DropNotMember, 1)]));
    });
}

#[test]
fn stale_flood_members_are_skipped_one_by_one() {
    with_fixture(|mut f| {
        // blue's flood set still lists p4 (red) among its untagged members.
        let blue = f.net("blue");
        let mut fs = f.maps.flood.get(&blue, 0).expect("flood set");
        fs.untagged[fs.n_untagged as usize] = f.ifindex["p4"];
        fs.n_untagged += 1;
        fs.n_peers = 0;
        f.maps.flood.set(blue, fs, 0).expect("write flood set");
        f.reset();
        let (v, _) = f.tenant("p1", &tenant_frame([0xff; 6], VM1));
        assert_eq!(v, TC_ACT_STOLEN);
        // p2 (untagged) and p3 (tagged) get their copies; p4 does not.
        assert_eq!(
            f.nonzero(),
            counts(&[(RxTenant, 1), (FloodLocalCopies, 2), (DropNotMember, 1), (Learned, 1)])
        );
    });
}

#[test]
fn remote_entries_go_only_to_vteps_of_the_network() {
    with_fixture(|mut f| {
        let e = FdbEntry { kind: FDB_KIND_REMOTE, remote_be: vtep4([192, 0, 2, 77]), ..Default::default() };
        stale(&mut f, "blue", e);
        let (v, _) = f.tenant("p1", &tenant_frame(STALE, VM1));
        assert_eq!(v, TC_ACT_SHOT, "192.0.2.77 is no VTEP of blue");
        assert_eq!(f.nonzero(), counts(&[(RxTenant, 1), (Learned, 1), (DropNotMember, 1)]));
    });
}
