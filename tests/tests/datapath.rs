//! The real programs run on crafted frames through BPF_PROG_TEST_RUN:
//! verdict, exact output bytes and exact counters.

use overlay_common::{
    counters::Counter::{self, *},
    encap::ipv4_checksum,
    frame::Frame,
    headers::Ipv4Hdr,
    is_unicast_vtep,
    maps::{FDB_KIND_PORT, FDB_KIND_REMOTE, FdbKey},
    parse::{Reject, parse_l2, parse_underlay},
    pktbuild::*,
};
use overlay_tests::progtest::*;

const VM1: [u8; 6] = [2, 0, 0, 0, 0, 1];
const VM2: [u8; 6] = [2, 0, 0, 0, 0, 2];
const REMOTE_VM: [u8; 6] = [2, 0, 0, 0, 0, 9];
const LOCAL: [u8; 4] = [192, 0, 2, 1];
const PEER: [u8; 4] = [192, 0, 2, 2];
const STRANGER: [u8; 4] = [192, 0, 2, 66];
const U0_MAC: [u8; 6] = [2, 0, 0, 0, 0xaa, 1];
const PEER_MAC: [u8; 6] = [2, 0, 0, 0, 0xaa, 2];

fn tenant_frame(dst: [u8; 6], src: [u8; 6]) -> Vec<u8> {
    udp4(dst, src, [203, 0, 113, 1], [203, 0, 113, 2], 1000, 2000, 32)
}

fn from_vtep(src: [u8; 4], vni: u32, inner: &[u8]) -> Vec<u8> {
    vxlan_from(U0_MAC, PEER_MAC, src, LOCAL, vni, inner)
}

fn fdb_get(f: &Fixture, net: &str, mac: [u8; 6]) -> Option<overlay_common::maps::FdbEntry> {
    f.maps.fdb.get(&FdbKey::new(f.net(net), mac), 0).ok()
}

#[test]
fn local_switching_between_access_ports() {
    in_private_netns(|| {
        let f = Fixture::new(CONFIG);
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
    in_private_netns(|| {
        let f = Fixture::new(CONFIG);
        let (v, _) = f.tenant("p2", &tenant_frame(VM2, [2, 0, 0, 0, 0, 5]));
        assert_eq!(v, TC_ACT_SHOT);
        assert_eq!(f.count(DropHairpin), 1);
    });
}

#[test]
fn known_remote_is_encapsulated_exactly() {
    in_private_netns(|| {
        let f = Fixture::new(CONFIG);
        let inner = tenant_frame(REMOTE_VM, VM1);
        let (v, out) = f.tenant("p1", &inner);
        assert_eq!(v, TC_ACT_REDIRECT);
        assert_eq!(out.len(), inner.len() + 50);
        assert_eq!(&out[0..6], &PEER_MAC, "outer dst from the neighbour table");
        assert_eq!(&out[6..12], &U0_MAC, "outer src is the underlay's MAC");
        assert_eq!(&out[12..14], &[0x08, 0x00]);
        let ip: Ipv4Hdr = out.read(14).unwrap();
        assert_eq!(ip.version_ihl, 0x45);
        assert_eq!(u16::from_be(ip.tot_len_be) as usize, inner.len() + 36);
        assert_eq!(u16::from_be(ip.frag_off_be), 0x4000, "DF set, never fragmented");
        assert_eq!(ip.ttl, 64);
        assert_eq!(ip.protocol, 17);
        assert_eq!(ip.saddr_be, ip_be(LOCAL));
        assert_eq!(ip.daddr_be, ip_be(PEER));
        assert_eq!(ipv4_checksum(&ip), 0, "outer IPv4 checksum valid");
        let sport = u16::from_be_bytes([out[34], out[35]]);
        assert!(sport >= 49152, "source port {sport} in the dynamic range");
        assert_eq!(&out[36..38], &4789u16.to_be_bytes());
        assert_eq!(u16::from_be_bytes([out[38], out[39]]) as usize, inner.len() + 16);
        assert_eq!(&out[40..42], &[0, 0], "UDP checksum zero");
        assert_eq!(&out[42..50], &[0x08, 0, 0, 0, 0, 0, 100, 0], "VXLAN header, VNI 100");
        assert_eq!(&out[50..], &inner[..], "inner frame intact");
        assert_eq!(f.nonzero(), counts(&[(RxTenant, 1), (Encap, 1), (Learned, 1)]));
    });
}

/// The next hop of a peer is cached for `NEXT_HOP_TTL_NS` (0.5 s): a
/// neighbour change is used from then on, and `apply` (every `up`) clears
/// the cache at once.
#[test]
fn next_hop_cache_follows_neighbour_changes() {
    in_private_netns(|| {
        let mut f = Fixture::new(CONFIG);
        let inner = tenant_frame(REMOTE_VM, VM1);
        let dmac = |f: &Fixture| f.tenant("p1", &inner).1[0..6].to_vec();
        // "Within the TTL" is only asserted for a run that took well under
        // it (a loaded machine may stall this thread): retried otherwise.
        let mut within = false;
        for _ in 0..20 {
            f.maps.next_hop.keys().filter_map(|k| k.ok()).collect::<Vec<_>>().iter().for_each(|k| {
                let _ = f.maps.next_hop.remove(k);
            });
            sh("ip neigh replace 192.0.2.2 lladdr 02:00:00:00:aa:02 dev u0 nud permanent");
            let t = std::time::Instant::now();
            let first = dmac(&f);
            sh("ip neigh replace 192.0.2.2 lladdr 02:00:00:00:aa:03 dev u0 nud permanent");
            let second = dmac(&f);
            if t.elapsed() < std::time::Duration::from_millis(250) {
                assert_eq!(first, PEER_MAC, "first packet: from the FIB");
                assert_eq!(f.maps.next_hop.keys().count(), 1, "cached");
                assert_eq!(second, PEER_MAC, "within the TTL: the cached next hop");
                within = true;
                break;
            }
        }
        assert!(within, "no run finished within 250 ms of its first packet in 20 tries");
        std::thread::sleep(std::time::Duration::from_millis(600));
        assert_eq!(dmac(&f), [2, 0, 0, 0, 0xaa, 3], "after the TTL: the new neighbour");
        sh("ip neigh replace 192.0.2.2 lladdr 02:00:00:00:aa:04 dev u0 nud permanent");
        let want = overlay_user::apply::desired(&f.cfg, &f.ids, &f.resolved()).unwrap();
        overlay_user::apply::apply(&mut f.maps, &want).unwrap();
        assert_eq!(f.maps.next_hop.keys().count(), 0, "apply clears the cache");
        assert_eq!(dmac(&f), [2, 0, 0, 0, 0xaa, 4]);
        // An unresolvable peer is never cached.
        sh("ip neigh del 192.0.2.2 dev u0 && ip route add unreachable 192.0.2.2/32");
        std::thread::sleep(std::time::Duration::from_millis(600));
        let (v, _) = f.tenant("p1", &inner);
        assert_eq!(v, TC_ACT_SHOT);
        assert_eq!(f.maps.next_hop.keys().count(), 0, "dropped from the cache");
    });
}

#[test]
fn decapsulation_to_local_port_exactly() {
    in_private_netns(|| {
        let f = Fixture::new(CONFIG);
        let inner = tenant_frame(VM2, REMOTE_VM);
        let (v, out) = f.underlay(&from_vtep(PEER, 100, &inner));
        assert_eq!(v, TC_ACT_REDIRECT);
        assert_eq!(out, inner, "exactly the inner frame");
        assert_eq!(f.nonzero(), counts(&[(RxUnderlay, 1), (Decap, 1), (TxLocal, 1)]));
        // REMOTE_VM is static here, at the same VTEP: not re-learned.
        let e = fdb_get(&f, "blue", REMOTE_VM).unwrap();
        assert!(e.is_static());
    });
}

#[test]
fn decapsulation_learns_remote_source() {
    in_private_netns(|| {
        let f = Fixture::new(CONFIG);
        let src = [2, 0, 0, 0, 0, 0x33];
        let (v, _) = f.underlay(&from_vtep(PEER, 100, &tenant_frame(VM2, src)));
        assert_eq!(v, TC_ACT_REDIRECT);
        let e = fdb_get(&f, "blue", src).expect("learned");
        assert_eq!((e.kind, e.remote_be, e.is_static()), (FDB_KIND_REMOTE, ip_be(PEER), false));
        assert_eq!(f.count(Learned), 1);
    });
}

#[test]
fn ihl_with_options_decapsulates() {
    in_private_netns(|| {
        let f = Fixture::new(CONFIG);
        let inner = tenant_frame(VM2, REMOTE_VM);
        let mut frame = from_vtep(PEER, 100, &inner);
        frame[14] = 0x47; // 8 bytes of options (NOPs)
        frame.splice(34..34, [1u8; 8]);
        let tot = u16::from_be_bytes([frame[16], frame[17]]) + 8;
        frame[16..18].copy_from_slice(&tot.to_be_bytes());
        fix_ipv4_checksum(&mut frame);
        let (v, out) = f.underlay(&frame);
        assert_eq!(v, TC_ACT_REDIRECT);
        assert_eq!(out, inner);
    });
}

#[test]
fn unknown_vni_and_stranger_vtep_are_dropped_and_not_learned() {
    in_private_netns(|| {
        let f = Fixture::new(CONFIG);
        let src = [2, 0, 0, 0, 0, 0x44];
        let (v, _) = f.underlay(&from_vtep(PEER, 999, &tenant_frame(VM2, src)));
        assert_eq!(v, TC_ACT_SHOT);
        let (v, _) = f.underlay(&from_vtep(STRANGER, 100, &tenant_frame(VM2, src)));
        assert_eq!(v, TC_ACT_SHOT);
        assert_eq!(f.nonzero(), counts(&[(RxUnderlay, 2), (DropUnknownVni, 1), (DropNotPeer, 1)]));
        assert!(fdb_get(&f, "blue", src).is_none(), "nothing learned from refused frames");
    });
}

#[test]
fn spoofed_source_cannot_move_a_static_entry() {
    in_private_netns(|| {
        let f = Fixture::new(CONFIG);
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

#[test]
fn vxlan_inner_rules() {
    in_private_netns(|| {
        let f = Fixture::new(CONFIG);
        let tagged = push_tag(&tenant_frame(VM2, REMOTE_VM), 0x8100, 10);
        assert_eq!(f.underlay(&from_vtep(PEER, 100, &tagged)).0, TC_ACT_SHOT);
        let bcast_src = tenant_frame(VM2, [0xff; 6]);
        assert_eq!(f.underlay(&from_vtep(PEER, 100, &bcast_src)).0, TC_ACT_SHOT);
        let mut no_i = from_vtep(PEER, 100, &tenant_frame(VM2, REMOTE_VM));
        no_i[42] = 0;
        assert_eq!(f.underlay(&no_i).0, TC_ACT_SHOT);
        assert_eq!(
            f.nonzero(),
            counts(&[(RxUnderlay, 3), (DropInnerTagged, 1), (DropSrcMacInvalid, 1), (DropVxlanNoIFlag, 1)])
        );
    });
}

#[test]
fn foreign_underlay_traffic_passes_untouched() {
    in_private_netns(|| {
        let f = Fixture::new(CONFIG);
        let mut arp = eth([0xff; 6], PEER_MAC, 0x0806);
        arp.extend_from_slice(&[0u8; 28]);
        let other_port = {
            let mut v = from_vtep(PEER, 100, &tenant_frame(VM2, REMOTE_VM));
            v[36..38].copy_from_slice(&4790u16.to_be_bytes());
            v
        };
        let frag = {
            let mut v = from_vtep(PEER, 100, &tenant_frame(VM2, REMOTE_VM));
            v[20..22].copy_from_slice(&0x2000u16.to_be_bytes());
            v
        };
        let lldp = eth([0x01, 0x80, 0xc2, 0, 0, 0x0e], PEER_MAC, 0x88cc);
        let mut dot3 = eth([0xff; 6], PEER_MAC, 46);
        dot3.extend_from_slice(&[0u8; 46]);
        for frame in [&arp, &other_port, &lldp, &dot3] {
            let (v, out) = f.underlay(frame);
            assert_eq!(v, TC_ACT_OK);
            assert_eq!(&out, frame, "passed untouched");
        }
        assert_eq!(f.underlay(&frag).0, TC_ACT_OK);
        assert_eq!(f.nonzero(), counts(&[(RxUnderlay, 5), (PassHost, 4), (PassFragment, 1)]));
    });
}

#[test]
fn trunk_tags_are_checked_and_popped() {
    in_private_netns(|| {
        let f = Fixture::new(CONFIG);
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
    in_private_netns(|| {
        let f = Fixture::new(CONFIG);
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
    in_private_netns(|| {
        let f = Fixture::new(CONFIG);
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

/// Every truncation of a VXLAN frame (and a few corruptions) gets the same
/// verdict from the kernel as from the host parser; counters add up to the
/// number of frames sent.
#[test]
fn kernel_and_host_parsers_agree() {
    in_private_netns(|| {
        let mut f = Fixture::new(CONFIG);
        let full = from_vtep(PEER, 100, &tenant_frame(VM2, REMOTE_VM));
        // From 34 bytes: BPF_PROG_TEST_RUN refuses shorter IPv4 frames.
        let mut frames: Vec<Vec<u8>> = (34..full.len()).map(|n| full[..n].to_vec()).collect();
        for (off, val) in [(14usize, 0x44u8), (14, 0x4f), (23, 6), (42, 0), (42, 0xff), (16, 0xff), (38, 0)] {
            let mut v = full.clone();
            v[off] = val;
            frames.push(v);
        }
        f.reset();
        let (mut passes, mut drops) = (0u64, 0u64);
        for fr in &frames {
            let host = parse_underlay(&fr[..], ip_be(LOCAL), 4789u16.to_be(), false);
            let (v, out) = f.underlay(fr);
            match host {
                Err(Reject::Pass(_)) => {
                    assert_eq!(v, TC_ACT_OK, "host says pass for {} bytes", fr.len());
                    assert_eq!(&out, fr);
                    passes += 1;
                }
                Err(Reject::Drop(_)) => {
                    assert_eq!(v, TC_ACT_SHOT, "host says drop for {} bytes", fr.len());
                    drops += 1;
                }
                Ok(_) => assert_ne!(v, TC_ACT_OK, "host accepts; kernel must not pass to host"),
            }
        }
        let c = f.nonzero();
        let pass_total =
            c.get("pass_host").copied().unwrap_or(0) + c.get("pass_fragment").copied().unwrap_or(0);
        assert_eq!(pass_total, passes);
        let drop_total: u64 =
            Counter::ALL.iter().filter(|x| x.is_drop()).map(|x| c.get(x.name()).copied().unwrap_or(0)).sum();
        assert!(drop_total >= drops, "every host drop is a counted kernel drop ({drop_total} < {drops})");
        assert_eq!(c["rx_underlay"], frames.len() as u64);
    });
}

#[test]
fn every_program_passes_the_verifier() {
    in_private_netns(|| {
        let f = Fixture::new(CONFIG);
        for name in overlay_user::loader::ALL_PROGRAMS {
            let p: &aya::programs::SchedClassifier =
                f.ebpf.program(name).expect("in object").try_into().expect("classifier");
            let info = p.info().expect("loaded program info");
            assert!(info.id() > 0, "{name} loaded");
        }
    });
}

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
        let mut cfg = String::from(
            "[underlay]\ninterface = \"u0\"\naddress = \"192.0.2.1\"\n[[network]]\nname = \"big\"\nvlan = 30\n",
        );
        for i in 10..10 + n {
            cfg += &format!("[[port]]\ninterface = \"f{i}\"\nnetwork = \"big\"\n");
        }
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

/// A full FDB: learning stops (counted), static entries still install
/// (learned ones make room), and a config that cannot fit is refused.
#[test]
fn full_fdb_stops_learning_but_static_entries_install() {
    in_private_netns(|| {
        let small = CONFIG.replace("ageing = 300", "ageing = 300\nfdb_size = 16");
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
            extra += &format!(
                "[[fdb]]\nmac = \"02:00:00:00:02:0{i}\"\nnetwork = \"blue\"\nremote = \"192.0.2.2\"\n"
            );
        }
        let cfg = overlay_user::config::Config::parse(&format!("name = \"x\"\n{extra}")).unwrap();
        let want = overlay_user::apply::desired(&cfg, &f.ids, &f.resolved()).unwrap();
        overlay_user::apply::apply(&mut f.maps, &want).expect("statics fit after eviction");
        let statics = f.maps.fdb.iter().filter_map(|r| r.ok()).filter(|(_, e)| e.is_static()).count();
        assert_eq!(statics, 6);
        // More static entries than slots: a clear error.
        let mut too_many = small.clone();
        for i in 0..20 {
            too_many += &format!(
                "[[fdb]]\nmac = \"02:00:00:00:03:{i:02x}\"\nnetwork = \"blue\"\nremote = \"192.0.2.2\"\n"
            );
        }
        let cfg = overlay_user::config::Config::parse(&format!("name = \"x\"\n{too_many}")).unwrap();
        let want = overlay_user::apply::desired(&cfg, &f.ids, &f.resolved()).unwrap();
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
        let cfg = CONFIG
            .replace("ageing = 300", "ageing = 1")
            .replace("vlan = 10\n", "vlan = 10\nmax_learned = 4\n");
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

/// `udp_checksum = true`: single frames leave with a valid outer UDP
/// checksum, IP or not, and flood copies keep it valid per peer.
#[test]
fn outer_udp_checksum_when_configured() {
    in_private_netns(|| {
        let cfg = CONFIG
            .replace("address = \"192.0.2.1\"", "address = \"192.0.2.1\"\nudp_checksum = true")
            .replace("peers = [\"192.0.2.2\"]", "peers = [\"192.0.2.3\", \"192.0.2.2\"]");
        let f = Fixture::new(&cfg);
        sh("ip neigh add 192.0.2.3 lladdr 02:00:00:00:aa:03 dev u0 nud permanent");
        for size in [64usize, 1400, 1401] {
            let inner = udp4(REMOTE_VM, VM1, [203, 0, 113, 1], [203, 0, 113, 2], 1, 2, size - 42);
            let (v, out) = f.tenant("p1", &inner);
            assert_eq!(v, TC_ACT_REDIRECT);
            assert!(udp4_checksum_valid(&out), "{size}-byte frame: valid outer UDP checksum");
        }
        let mut arp = eth(REMOTE_VM, VM1, 0x0806);
        arp.extend_from_slice(&[0x5a; 28]);
        let (v, out) = f.tenant("p1", &arp);
        assert_eq!(v, TC_ACT_REDIRECT);
        assert!(udp4_checksum_valid(&out), "ARP (change_head path)");
        // Broadcast: the copy to 192.0.2.3 is a clone; the frame itself goes
        // to 192.0.2.2 after its destination (and checksums) were rewritten.
        let (v, out) = f.tenant("p1", &tenant_frame([0xff; 6], VM1));
        assert_eq!(v, TC_ACT_REDIRECT);
        assert_eq!(&out[30..34], &[192, 0, 2, 2]);
        assert!(udp4_checksum_valid(&out), "checksum follows the retargeted destination");
        assert_eq!(f.count(FloodRemoteCopies), 2);
    });
}

/// With `udp_checksum = true`, an inner TCP segment whose checksum was left
/// to offload (the field holds only the pseudo-header sum, as a
/// CHECKSUM_PARTIAL skb has it) still gets an outer checksum that is valid
/// once the inner checksum is filled in: local checksum offload.
#[test]
fn outer_udp_checksum_survives_inner_checksum_offload() {
    in_private_netns(|| {
        let cfg = CONFIG.replace("address = \"192.0.2.1\"", "address = \"192.0.2.1\"\nudp_checksum = true");
        let f = Fixture::new(&cfg);
        for payload in [0usize, 1, 100, 1357] {
            let (partial, full) = tcp4_pair(REMOTE_VM, VM1, payload);
            let (v, out) = f.tenant("p1", &partial);
            assert_eq!(v, TC_ACT_REDIRECT);
            // What a NIC would send: the same frame with the inner checksum done.
            let mut sent = out.clone();
            sent[50..].copy_from_slice(&full);
            assert!(
                udp4_checksum_valid(&sent),
                "{payload}-byte TCP payload: outer checksum valid after offload"
            );
            let (_, out_full) = f.tenant("p1", &full);
            assert!(udp4_checksum_valid(&out_full), "{payload}: already complete inner checksum");
        }
    });
}

/// An inner IPv4 TCP frame twice: with the checksum field holding the
/// pseudo-header sum only (left to offload), and complete.
fn tcp4_pair(dst: [u8; 6], src: [u8; 6], payload: usize) -> (Vec<u8>, Vec<u8>) {
    let (sa, da) = ([203u8, 0, 113, 1], [203u8, 0, 113, 2]);
    let tcp_len = 20 + payload;
    let mut f = eth(dst, src, 0x0800);
    let tot = (20 + tcp_len) as u16;
    let mut ip = vec![0x45, 0, (tot >> 8) as u8, tot as u8, 0, 0, 0x40, 0, 64, 6, 0, 0];
    ip.extend_from_slice(&sa);
    ip.extend_from_slice(&da);
    let c = fold16(sum16(&ip));
    ip[10..12].copy_from_slice(&(!c).to_be_bytes());
    f.extend_from_slice(&ip);
    let mut tcp = vec![0x04, 0xd2, 0x16, 0x2e, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0];
    tcp.extend((0..payload).map(|i| (i * 7) as u8));
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&sa);
    pseudo.extend_from_slice(&da);
    pseudo.extend_from_slice(&[0, 6]);
    pseudo.extend_from_slice(&(tcp_len as u16).to_be_bytes());
    let p = fold16(sum16(&pseudo));
    let mut partial = f.clone();
    let mut t = tcp.clone();
    t[16..18].copy_from_slice(&p.to_be_bytes());
    partial.extend_from_slice(&t);
    let full_sum = fold16(sum16(&pseudo) + sum16(&tcp));
    let mut full = f;
    let mut t = tcp;
    t[16..18].copy_from_slice(&(!full_sum).to_be_bytes());
    full.extend_from_slice(&t);
    (partial, full)
}

fn sum16(b: &[u8]) -> u32 {
    b.chunks(2).map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32).sum()
}

fn fold16(mut s: u32) -> u16 {
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// A MAC that shows up on another port moves there (learned entries only).
#[test]
fn learned_macs_move() {
    in_private_netns(|| {
        let f = Fixture::new(CONFIG);
        let roamer = [2, 0, 0, 0, 0, 0x42];
        f.tenant("p1", &tenant_frame([0xff; 6], roamer));
        assert_eq!(fdb_get(&f, "blue", roamer).unwrap().ifindex, f.ifindex["p1"]);
        f.tenant("p2", &tenant_frame([0xff; 6], roamer));
        assert_eq!(fdb_get(&f, "blue", roamer).unwrap().ifindex, f.ifindex["p2"], "moved to p2");
        f.underlay(&from_vtep(PEER, 100, &tenant_frame([0xff; 6], roamer)));
        let e = fdb_get(&f, "blue", roamer).unwrap();
        assert_eq!((e.kind, e.remote_be), (FDB_KIND_REMOTE, ip_be(PEER)), "moved behind the peer VTEP");
        assert_eq!(f.count(Learned), 3);
    });
}

/// `learn_unknown_peers = true`: VXLAN from a VTEP not listed is accepted
/// and its sources are learned against it.
#[test]
fn unknown_peers_are_accepted_when_the_network_allows() {
    in_private_netns(|| {
        let cfg =
            CONFIG.replace("peers = [\"192.0.2.2\"]", "peers = [\"192.0.2.2\"]\nlearn_unknown_peers = true");
        let f = Fixture::new(&cfg);
        let src = [2, 0, 0, 0, 0, 0x66];
        let (v, out) = f.underlay(&from_vtep(STRANGER, 100, &tenant_frame(VM2, src)));
        assert_eq!(v, TC_ACT_REDIRECT);
        assert_eq!(out, tenant_frame(VM2, src));
        let e = fdb_get(&f, "blue", src).expect("learned");
        assert_eq!((e.kind, e.remote_be), (FDB_KIND_REMOTE, ip_be(STRANGER)));
        assert_eq!(f.count(DropNotPeer), 0);
        // Still not for an unknown VNI.
        assert_eq!(f.underlay(&from_vtep(STRANGER, 999, &tenant_frame(VM2, src))).0, TC_ACT_SHOT);
        assert_eq!(f.count(DropUnknownVni), 1);
    });
}

/// The fuzz corpus (`pktbuild::mutate` of valid frames, 3000 seeds per
/// side) through the real programs: for every frame the kernel's verdict is
/// the one the host parsers and a model of the admission rules predict, and
/// every counter adds up exactly.
#[test]
fn fuzz_corpus_host_and_kernel_agree() {
    use std::collections::{BTreeMap, HashMap};
    in_private_netns(|| {
        let mut f = Fixture::new(CONFIG);
        f.reset();
        // Underlay: VXLAN from the peer, unicast to VM2 and broadcast.
        let bases = [
            from_vtep(PEER, 100, &tenant_frame(VM2, REMOTE_VM)),
            from_vtep(PEER, 100, &tenant_frame([0xff; 6], [2, 0, 0, 0, 7, 7])),
            from_vtep(PEER, 100, &push_tag(&tenant_frame(VM1, [2, 0, 0, 0, 7, 8]), 0x8100, 10)),
        ];
        let mut want: BTreeMap<&str, u64> = BTreeMap::new();
        let mut learned: HashMap<[u8; 6], bool> = HashMap::new(); // MAC -> behind the peer
        let (mut admitted, mut runs) = (0u64, 0u64);
        for seed in 0..3000u64 {
            let fr = mutate(&bases[(seed % 3) as usize], seed);
            // BPF_PROG_TEST_RUN refuses frames under 14 bytes and IPv4 under 34.
            if fr.len() < 14 || (fr[12..14] == [8, 0] && fr.len() < 34) {
                continue;
            }
            runs += 1;
            let (v, out) = f.underlay(&fr);
            let at = format!("seed {seed}: {fr:02x?}");
            let expect = match parse_underlay(&fr[..], ip_be(LOCAL), 4789u16.to_be(), false) {
                Err(Reject::Pass(c)) => {
                    assert_eq!((v, &out), (TC_ACT_OK, &fr), "{at}: passed untouched");
                    c
                }
                Err(Reject::Drop(c)) => c,
                Ok(rx) => {
                    let inner_type = u16::from_be(rx.inner.ethertype_be);
                    let src = rx.inner.src;
                    if rx.outer_dst[0] & 1 == 0 && rx.outer_dst != U0_MAC {
                        DropOtherHost
                    } else if !is_unicast_vtep(rx.src_vtep_be) || rx.src_vtep_be == ip_be(LOCAL) {
                        DropVtepSrcInvalid
                    } else if rx.vni != 100 {
                        DropUnknownVni
                    } else if rx.src_vtep_be != ip_be(PEER) {
                        DropNotPeer
                    } else if inner_type == 0x8100 || inner_type == 0x88a8 {
                        DropInnerTagged
                    } else if src[0] & 1 != 0 || src == [0; 6] {
                        DropSrcMacInvalid
                    } else if src == VM2 {
                        DropSrcMacStatic
                    } else {
                        admitted += 1;
                        if src != REMOTE_VM {
                            learned.insert(src, true); // REMOTE_VM: static, already at the peer
                        }
                        let dst = rx.inner.dst;
                        if dst[0] & 1 == 0 && (dst == REMOTE_VM || learned.contains_key(&dst)) {
                            DropSplitHorizon
                        } else {
                            assert!(v == TC_ACT_REDIRECT || v == TC_ACT_STOLEN, "{at}: delivered, got {v}");
                            Decap
                        }
                    }
                }
            };
            if expect.is_drop() {
                assert_eq!(v, TC_ACT_SHOT, "{at}: dropped as {}", expect.name());
            }
            *want.entry(expect.name()).or_insert(0) += 1;
        }
        let got = f.nonzero();
        for (name, n) in &want {
            assert_eq!(got.get(name), Some(n), "counter {name}: got {got:?}, want {want:?}");
        }
        // No other counter moved: every drop and pass is one the model expects.
        for c in Counter::ALL.iter().filter(|c| c.is_drop() || matches!(c, PassHost | PassFragment)) {
            assert_eq!(
                got.get(c.name()),
                want.get(c.name()),
                "counter {}: got {got:?}, want {want:?}",
                c.name()
            );
        }
        assert_eq!(got["rx_underlay"], runs);
        assert_eq!(
            got.get("learned").copied().unwrap_or(0),
            learned.len() as u64,
            "one entry per new source"
        );
        eprintln!("underlay: {runs} frames, {admitted} admitted, {want:?}");

        // Tenant port p1 (access, blue): parse rules, then the VLAN rule.
        f.reset();
        let bases = [
            tenant_frame(VM2, VM1),
            push_tag(&tenant_frame(VM2, VM1), 0x8100, 10),
            push_tag(&tenant_frame(VM2, VM1), 0x8100, 0xe000),
            push_tag(&push_tag(&tenant_frame(VM2, VM1), 0x8100, 10), 0x88a8, 20),
        ];
        let mut want: BTreeMap<&str, u64> = BTreeMap::new();
        let mut runs = 0;
        for seed in 0..3000u64 {
            let fr = mutate(&bases[(seed % 4) as usize], seed);
            if fr.len() < 14 || (fr[12..14] == [8, 0] && fr.len() < 34) {
                continue;
            }
            runs += 1;
            let (v, _) = f.tenant("p1", &fr);
            let at = format!("seed {seed}: {fr:02x?}");
            let expect = match parse_l2(&fr[..], None, false) {
                Err(Reject::Drop(c)) | Err(Reject::Pass(c)) => c,
                Ok(l2) if l2.vid != overlay_common::NO_VLAN => DropVlanNotAllowed,
                Ok(_) => RxTenant,
            };
            if expect.is_drop() {
                assert_eq!(v, TC_ACT_SHOT, "{at}: dropped as {}", expect.name());
            }
            *want.entry(expect.name()).or_insert(0) += 1;
        }
        let got = f.nonzero();
        for (name, n) in &want {
            assert_eq!(got.get(name), Some(n), "counter {name}: got {got:?}, want {want:?}");
        }
        // No other parse-level drop moved (drops after the frame is a
        // tenant's, e.g. a spoofed static source, are not modelled here).
        for c in [
            DropMalformed,
            DropVlanNotAllowed,
            DropVlanPriorityTagged,
            DropVlan4095,
            DropVlanQinq,
            DropSrcMacInvalid,
            DropNotAPort,
        ] {
            assert_eq!(
                got.get(c.name()),
                want.get(c.name()),
                "counter {}: got {got:?}, want {want:?}",
                c.name()
            );
        }
        eprintln!("tenant: {runs} frames, {want:?}");
    });
}
