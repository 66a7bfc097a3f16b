//! The FDB: static entries against spoofing, moves, a full FDB, the per-network learning limit and its sweep.
//! The real programs run on crafted frames through BPF_PROG_TEST_RUN:
//! verdict, exact output bytes and exact counters.

use overlay_tests::prelude::*;

#[test]
fn spoofed_source_cannot_move_a_static_entry() {
    with_fixture(|f| {
        // VM2 is static on p2; a peer claims it.
        let (v, _) = f.underlay(&from_vtep(PEER, 100, &tenant_frame([0xff; 6], VM2)));
        assert_eq!(v, TC_ACT_SHOT);
        // And a local port other than p2 claims it.
        let (v2, _) = f.tenant("p1", &tenant_frame([0xff; 6], VM2));
        assert_eq!(v2, TC_ACT_SHOT);
        assert_eq!(f.count(DropSrcMacStatic), 2);
        let e = fdb_get(&f, "blue", VM2).unwrap();
        assert_eq!((e.kind, e.ifindex, e.is_static()), (FDB_KIND_PORT, f.ifindex["p2"], true));
    });
}

/// A MAC that shows up on another port moves there (learned entries only).
#[test]
fn learned_macs_move() {
    with_fixture(|f| {
        let roamer = [2, 0, 0, 0, 0, 0x42];
        f.tenant("p1", &tenant_frame([0xff; 6], roamer));
        assert_eq!(fdb_get(&f, "blue", roamer).unwrap().ifindex, f.ifindex["p1"]);
        f.tenant("p2", &tenant_frame([0xff; 6], roamer));
        assert_eq!(fdb_get(&f, "blue", roamer).unwrap().ifindex, f.ifindex["p2"], "moved to p2");
        f.underlay(&from_vtep(PEER, 100, &tenant_frame([0xff; 6], roamer)));
        let e = fdb_get(&f, "blue", roamer).unwrap();
        assert_eq!((e.kind, e.remote_be), (FDB_KIND_REMOTE, vtep4(PEER)), "moved behind the peer VTEP");
        assert_eq!(f.count(Learned), 3);
    });
}

/// A full FDB: learning stops (counted), static entries still install
/// (learned ones make room), and a config that cannot fit is refused.
#[test]
fn full_fdb_stops_learning_but_static_entries_install() {
    in_private_netns(|| {
        let small = Config { fdb_size: 16, ..dp_config() };
        let mut f = Fixture::new(&small);
        // 2 static entries; learn until the map is full.
        for i in 0..20u8 {
            f.tenant("p1", &tenant_frame(VM2, [2, 0, 0, 0, 1, i]));
        }
        assert_eq!(f.count(Learned), 14, "16 slots, 2 static");
        assert_eq!(f.count(LearnFdbFull), 6);
        // Four more static entries: installed by evicting learned ones.
        let mut extra = small.clone();
        for i in 0..4 {
            extra.fdb.push(fdb_remote(&format!("02:00:00:00:02:0{i}"), "blue", "192.0.2.2"));
        }
        let want = overlay_user::apply::desired(&extra, &f.ids, &f.resolved(), &Default::default()).unwrap();
        overlay_user::apply::apply(&mut f.maps, &want).expect("statics fit after eviction");
        let statics = f.maps.fdb.iter().filter_map(|r| r.ok()).filter(|(_, e)| e.is_static()).count();
        assert_eq!(statics, 6);
        // More static entries than slots: a clear error.
        let mut too_many = small.clone();
        for i in 0..20 {
            too_many.fdb.push(fdb_remote(&format!("02:00:00:00:03:{i:02x}"), "blue", "192.0.2.2"));
        }
        let want =
            overlay_user::apply::desired(&too_many, &f.ids, &f.resolved(), &Default::default()).unwrap();
        let e = overlay_user::apply::apply(&mut f.maps, &want).expect_err("does not fit");
        assert!(e.to_string().contains("FDB full"), "{e}");
    });
}

/// A network at its learning limit stops learning (counted) while another
/// keeps learning; aged entries are swept by the datapath itself when the
/// limit is hit, so the network learns again with no userspace help; a
/// userspace flush gives the room back at once.
#[test]
fn learning_limit_per_network_with_sweep() {
    in_private_netns(|| {
        let mut cfg = Config { ageing: 1, ..dp_config() };
        cfg.networks[0].max_learned = Some(4);
        let mut f = Fixture::new(&cfg);
        for i in 0..10u8 {
            f.tenant("p1", &tenant_frame(VM2, [2, 0, 0, 0, 1, i]));
        }
        for i in 0..3u8 {
            f.tenant("p4", &tenant_frame([0xff; 6], [2, 0, 0, 0, 4, i]));
        }
        assert_eq!(
            (f.net_count("blue", Learned), f.net_count("blue", LearnFdbFull)),
            (4, 6),
            "blue capped at 4"
        );
        assert_eq!((f.net_count("red", Learned), f.net_count("red", LearnFdbFull)), (3, 0), "red unaffected");
        assert_eq!((f.learned("blue"), f.learned("red")), (4, 3), "datapath counts");
        // A move is not a new entry: allowed at the limit.
        f.tenant("p2", &tenant_frame(VM2, [2, 0, 0, 0, 1, 0]));
        assert_eq!((f.net_count("blue", Learned), f.learned("blue")), (5, 4), "moved, still 4 entries");
        std::thread::sleep(std::time::Duration::from_millis(2100));
        f.reset();
        // The next new MAC in blue finds the limit, sweeps, and is learned.
        f.tenant("p1", &tenant_frame(VM2, [2, 0, 0, 0, 1, 99]));
        assert_eq!(f.net_count("blue", AgedOut), 4, "blue's aged entries swept");
        assert_eq!(f.net_count("red", AgedOut), 3, "the sweep covers the whole FDB");
        assert_eq!((f.net_count("blue", Learned), f.net_count("blue", LearnFdbFull)), (1, 0));
        assert_eq!((f.learned("blue"), f.learned("red")), (1, 0));
        let learned_left = f.maps.fdb.iter().filter_map(|r| r.ok()).filter(|(_, e)| !e.is_static()).count();
        assert_eq!(learned_left, 1, "only the new entry is left");
        // Userspace flush: the count follows.
        f.tenant("p1", &tenant_frame(VM2, [2, 0, 0, 0, 1, 98]));
        assert_eq!(f.learned("blue"), 2);
        let entries: Vec<FdbKey> = f.maps.fdb.keys().filter_map(|k| k.ok()).collect();
        for k in entries {
            if !f.maps.fdb.get(&k, 0).unwrap().is_static() {
                f.maps.fdb.remove(&k).unwrap();
            }
        }
        overlay_user::apply::recount_learned(&mut f.maps).unwrap();
        assert_eq!(f.learned("blue"), 0, "recounted after userspace deletes");
    });
}

/// Entries carry CLOCK_MONOTONIC_COARSE, the clock userspace ages them
/// by, though the datapath reads it through its per-CPU `CLOCK` entry
/// (refreshed once per jiffy): a stamp lies between the clock before and
/// after the frame, when learned and when refreshed two seconds later.
/// (A reading can be a tick behind in the instant of a tick: 10 ms, the
/// longest tick, is allowed below.)
#[test]
fn learned_entries_carry_the_coarse_clock() {
    use overlay_user::fdb::datapath_now_ns;
    const TICK_NS: u64 = 10_000_000;
    with_fixture(|f| {
        let mac = [2, 0, 0, 0, 0, 0x43];
        for round in ["learned", "refreshed"] {
            let before = datapath_now_ns();
            f.tenant("p1", &tenant_frame([0xff; 6], mac));
            let after = datapath_now_ns();
            let seen = fdb_get(&f, "blue", mac).unwrap().seen_ns;
            assert!(
                before <= seen + TICK_NS && seen <= after,
                "{round}: stamp {seen} outside the coarse clock's {before}..{after}"
            );
            // Past the datapath's 1 s refresh interval, with a second to spare.
            std::thread::sleep(std::time::Duration::from_secs(2));
        }
    });
}
