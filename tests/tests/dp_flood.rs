//! Flooding at the limits: every local port, head-end replication to 128 peers.
//! The real programs run on crafted frames through BPF_PROG_TEST_RUN:
//! verdict, exact output bytes and exact counters.

use overlay_tests::prelude::*;

/// The largest flood: 63 local copies (every member but the sender),
/// each counted once.
#[test]
fn flood_reaches_every_local_port_at_the_limit() {
    in_private_netns(|| {
        let n = overlay_common::MAX_FLOOD_PORTS;
        sh(&format!(
            "for i in $(seq 10 {}); do ip link add f$i type veth peer name f${{i}}b; ip link set f$i up; ip link set f${{i}}b up; done",
            9 + n
        ));
        let ports = (10..10 + n).map(|i| access(&format!("f{i}"), "big")).collect();
        let cfg = Config { networks: vec![vlan("big", 30)], ports, ..config("192.0.2.1") };
        let f = Fixture::new(&cfg);
        let frame = tenant_frame([0xff; 6], VM1);
        let (v, _) = f.tenant("f10", &frame);
        assert_eq!(v, TC_ACT_STOLEN);
        assert_eq!(f.nonzero(), counts(&[(RxTenant, 1), (Learned, 1), (FloodLocalCopies, n as u64 - 1)]));
    });
}

/// Head-end replication to 128 peer VTEPs: one encapsulated copy each.
#[test]
fn head_end_replication_to_128_peers() {
    in_private_netns(|| {
        let n = overlay_common::MAX_FLOOD_PEERS;
        let cfg = many_peers(n);
        let f = Fixture::new(&cfg);
        let (v, out) = f.tenant("p1", &tenant_frame([0xff; 6], VM1));
        assert_eq!(v, TC_ACT_REDIRECT, "the last copy is the frame itself");
        let ip: Ipv4Hdr = out.read(14).unwrap();
        assert_eq!(ip.daddr_be, ip_be([198, 51, 100, n as u8 + 1]), "last peer");
        assert_eq!(ipv4_checksum(&ip), 0, "checksum valid after retargeting");
        assert_eq!(&out[0..6], &[2, 0, 0, 0, 0xbb, n as u8], "MAC of the last peer");
        assert_eq!(f.nonzero(), counts(&[(RxTenant, 1), (Learned, 1), (FloodRemoteCopies, n as u64)]));
    });
}

/// The copies to peer VTEPs are `tenant_flood`, tail-called through
/// `TAIL`: without it there the frame is a counted drop, not lost unseen
/// (and the local copies went out before).
#[test]
fn a_flood_whose_tail_call_fails_is_counted() {
    in_private_netns(|| {
        let mut f = Fixture::new(&many_peers(2));
        let map = f.ebpf.map_mut(overlay_common::maps::MAP_TAIL).expect("TAIL");
        let mut tail: aya::maps::ProgramArray<_> = map.try_into().expect("a program array");
        tail.clear_index(&overlay_common::maps::TAIL_FLOOD_REMOTE).expect("clear TAIL[0]");
        let (v, _) = f.tenant("p1", &tenant_frame([0xff; 6], VM1));
        assert_eq!(v, TC_ACT_SHOT);
        assert_eq!(f.nonzero(), counts(&[(RxTenant, 1), (Learned, 1), (DropHelperFailed, 1)]));
    });
}
