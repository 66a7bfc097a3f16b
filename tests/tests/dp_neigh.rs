//! ARP and ND suppression and IP learning (#15): the real program answers
//! a tenant's request for a known address with a reply that is byte for
//! byte scapy's own, floods every corner case the kernel bridge does not
//! answer, and learns announcements without overriding configured pairs.
//! BPF_PROG_TEST_RUN on crafted frames: verdict, exact bytes, exact counters.

use overlay_common::maps::{NeighEntry, NeighKey};
use overlay_tests::{conf::neigh, prelude::*, scapy};

const VM1_S: &str = "02:00:00:00:00:01";
const VM2_S: &str = "02:00:00:00:00:02";

/// The datapath tests' config with blue's pairs 203.0.113.2 and
/// 2001:db8::2 owned by VM2 (so blue suppresses by default; red has no
/// pairs).
fn neigh_config() -> Config {
    let mut c = dp_config();
    c.neigh = vec![neigh("blue", "203.0.113.2", VM2_S), neigh("blue", "2001:db8::2", VM2_S)];
    c
}

fn arp(op: u8, eth_dst: &str, hwsrc: &str, psrc: &str, pdst: &str) -> Vec<u8> {
    scapy::bytes(&format!(
        "Ether(dst='{eth_dst}', src='{hwsrc}')/ARP(op={op}, hwsrc='{hwsrc}', psrc='{psrc}', pdst='{pdst}')"
    ))
}

/// VM1 (203.0.113.1) asks, by broadcast, who has `pdst`.
fn who_has(pdst: &str) -> Vec<u8> {
    arp(1, "ff:ff:ff:ff:ff:ff", VM1_S, "203.0.113.1", pdst)
}

/// An NS from `src` (VM1's MAC) for `target`, to its solicited-node group,
/// with a source link-layer address option unless `bare`; `extra` is
/// scapy keyword arguments of the IPv6 header.
fn ns(src: &str, target: &str, bare: bool, extra: &str) -> Vec<u8> {
    let group = format!("ff02::1:ff00:{}", target.rsplit(':').next().unwrap());
    let opt = if bare { String::new() } else { format!("/ICMPv6NDOptSrcLLAddr(lladdr='{VM1_S}')") };
    scapy::bytes(&format!(
        "Ether(dst=in6_getnsmac(inet_pton(socket.AF_INET6, '{group}')), src='{VM1_S}')/\
         IPv6(src='{src}', dst='{group}', hlim=255{extra})/ICMPv6ND_NS(tgt='{target}'){opt}"
    ))
}

fn suppressed(f: &Fixture) -> u64 {
    f.count(ArpSuppressed) + f.count(NdSuppressed)
}

#[test]
fn arp_request_for_a_known_address_is_answered_byte_exact() {
    in_private_netns(|| {
        let f = Fixture::new(&neigh_config());
        let want = scapy::bytes(&format!(
            "Ether(dst='{VM1_S}', src='{VM2_S}')/\
             ARP(op=2, hwsrc='{VM2_S}', psrc='203.0.113.2', hwdst='{VM1_S}', pdst='203.0.113.1')"
        ));
        assert_eq!(want.len(), 42);
        let (v, out) = f.tenant("p1", &who_has("203.0.113.2"));
        assert_eq!(v, TC_ACT_REDIRECT, "sent back out of p1");
        assert_eq!(out, want, "scapy's ARP reply, byte for byte");
        assert_eq!(f.nonzero(), counts(&[(RxTenant, 1), (Learned, 1), (ArpSuppressed, 1)]));
        // Padded to the Ethernet minimum (as many stacks send it): the
        // reply is still the kernel's 42 bytes.
        let mut padded = who_has("203.0.113.2");
        padded.resize(60, 0);
        assert_eq!(f.tenant("p1", &padded), (TC_ACT_REDIRECT, want.clone()));
        // Tagged on the trunk (VLAN 10 = blue): answered the same way (the
        // tag goes back on at egress; the end-to-end test sees it on the wire).
        assert_eq!(f.tenant("p3", &push_tag(&who_has("203.0.113.2"), 0x8100, 10)), (TC_ACT_REDIRECT, want));
        assert_eq!(f.count(ArpSuppressed), 3);
        assert_eq!((f.count(FloodLocalCopies), f.count(FloodRemoteCopies)), (0, 0), "nothing flooded");
    });
}

#[test]
fn neighbour_solicitation_is_answered_with_scapys_advertisement() {
    in_private_netns(|| {
        let f = Fixture::new(&neigh_config());
        // The kernel copies the high nibble of the traffic class (0xb8 -> 0xb0).
        let want = scapy::bytes(&format!(
            "Ether(dst='{VM1_S}', src='{VM2_S}')/IPv6(src='2001:db8::2', dst='2001:db8::1', hlim=255, tc=0xb0)/\
             ICMPv6ND_NA(tgt='2001:db8::2', R=0, S=1, O=1)/ICMPv6NDOptDstLLAddr(lladdr='{VM2_S}')"
        ));
        assert_eq!(want.len(), 86);
        let (v, out) = f.tenant("p1", &ns("2001:db8::1", "2001:db8::2", false, ", tc=0xb8"));
        assert_eq!(v, TC_ACT_REDIRECT);
        assert_eq!(out, want, "scapy's NA (flags, option, checksum), byte for byte");
        assert_eq!(f.nonzero(), counts(&[(RxTenant, 1), (Learned, 1), (NdSuppressed, 1)]));
        // Without a source link-layer option: to the Ethernet source, the
        // frame grown to the NA's length.
        let want = scapy::bytes(&format!(
            "Ether(dst='{VM1_S}', src='{VM2_S}')/IPv6(src='2001:db8::2', dst='2001:db8::1', hlim=255)/\
             ICMPv6ND_NA(tgt='2001:db8::2', R=0, S=1, O=1)/ICMPv6NDOptDstLLAddr(lladdr='{VM2_S}')"
        ));
        let bare = ns("2001:db8::1", "2001:db8::2", true, "");
        assert_eq!(bare.len(), 78);
        assert_eq!(f.tenant("p1", &bare), (TC_ACT_REDIRECT, want.clone()));
        assert_eq!(f.tenant("p3", &push_tag(&bare, 0x8100, 10)), (TC_ACT_REDIRECT, want));
        assert_eq!(f.count(NdSuppressed), 3);
    });
}

/// What the kernel bridge does not answer is forwarded as before: not
/// answered, not dropped.
#[test]
fn corner_cases_are_forwarded_not_answered() {
    in_private_netns(|| {
        let mut f = Fixture::new(&neigh_config());
        let mut bad_sum = ns("2001:db8::1", "2001:db8::2", false, "");
        bad_sum[56] ^= 0xff;
        let cases = [
            ("ARP probe (sender 0.0.0.0)", arp(1, "ff:ff:ff:ff:ff:ff", VM1_S, "0.0.0.0", "203.0.113.2")),
            ("gratuitous ARP request", arp(1, "ff:ff:ff:ff:ff:ff", VM1_S, "203.0.113.2", "203.0.113.2")),
            ("gratuitous ARP reply", arp(2, "ff:ff:ff:ff:ff:ff", VM1_S, "203.0.113.2", "203.0.113.2")),
            ("request for the asker's own address", who_has("203.0.113.1")),
            ("unknown target", who_has("203.0.113.77")),
            ("loopback target", who_has("127.0.0.1")),
            ("multicast target", who_has("224.0.0.1")),
            (
                "unicast ARP request (a probe of the owner)",
                arp(1, VM2_S, VM1_S, "203.0.113.1", "203.0.113.2"),
            ),
            ("DAD (NS from ::)", ns("::", "2001:db8::2", true, "")),
            ("NS from the target itself", ns("2001:db8::2", "2001:db8::2", false, "")),
            ("NS with a bad checksum", bad_sum),
            ("NS with hop limit 64", ns("2001:db8::1", "2001:db8::2", false, "").tap_mut(|b| b[21] = 64)),
            ("NS for an unknown target", ns("2001:db8::1", "2001:db8::77", false, "")),
        ];
        for (what, frame) in cases {
            f.reset();
            let (v, _) = f.tenant("p1", &frame);
            assert_eq!(suppressed(&f), 0, "{what}: not answered");
            assert_ne!(v, TC_ACT_SHOT, "{what}: not dropped");
            assert!(f.count(FloodRemoteCopies) + f.count(TxLocal) > 0, "{what}: forwarded as before");
        }
        // A unicast NS (a reachability probe) goes to the owner too.
        let mut unicast = ns("2001:db8::1", "2001:db8::2", false, "");
        unicast[..6].copy_from_slice(&VM2);
        f.reset();
        let (v, _) = f.tenant("p1", &unicast);
        assert_eq!((v, suppressed(&f), f.count(TxLocal)), (TC_ACT_REDIRECT, 0, 1), "unicast NS to p2");
    });
}

/// The table is per network, and `suppress = false` turns answers off.
#[test]
fn pairs_of_one_network_never_answer_in_another() {
    in_private_netns(|| {
        let mut c = neigh_config();
        c.networks[1].suppress = Some(true); // red: on, but without pairs
        let f = Fixture::new(&c);
        f.tenant("p4", &who_has("203.0.113.2"));
        assert_eq!(suppressed(&f), 0, "red does not know blue's pair");
        assert_eq!(f.count(FloodLocalCopies), 1, "flooded in red (to trunk p3) as before");
    });
    in_private_netns(|| {
        let mut c = neigh_config();
        c.networks[0].suppress = Some(false);
        let f = Fixture::new(&c);
        f.tenant("p1", &who_has("203.0.113.2"));
        f.tenant("p1", &ns("2001:db8::1", "2001:db8::2", false, ""));
        assert_eq!(suppressed(&f), 0, "suppress = false");
    });
}

fn pair(f: &Fixture, key: NeighKey) -> Option<NeighEntry> {
    f.maps.neigh.get(&key, 0).ok()
}

#[test]
fn learn_ip_learns_announcements_but_never_over_a_configured_pair() {
    in_private_netns(|| {
        let mut c = neigh_config();
        c.networks[0].learn_ip = true;
        let f = Fixture::new(&c);
        let blue = f.net("blue");
        // VM1 announces 203.0.113.1 (gratuitous ARP): learned, then answered.
        f.tenant("p1", &arp(1, "ff:ff:ff:ff:ff:ff", VM1_S, "203.0.113.1", "203.0.113.1"));
        let e = pair(&f, NeighKey::v4(blue, [203, 0, 113, 1])).expect("learned from gratuitous ARP");
        assert_eq!((e.mac, e.is_static()), (VM1, false));
        let ask = arp(1, "ff:ff:ff:ff:ff:ff", VM2_S, "203.0.113.2", "203.0.113.1");
        let (v, out) = f.tenant("p2", &ask);
        assert_eq!((v, &out[6..12]), (TC_ACT_REDIRECT, &VM1[..]), "answered with the learned MAC");
        // An ARP reply teaches too; an unsolicited NA as well.
        f.tenant("p1", &arp(2, VM2_S, VM1_S, "203.0.113.11", "203.0.113.2"));
        assert_eq!(pair(&f, NeighKey::v4(blue, [203, 0, 113, 11])).map(|e| e.mac), Some(VM1));
        let na = scapy::bytes(&format!(
            "Ether(dst='33:33:00:00:00:01', src='{VM1_S}')/IPv6(src='2001:db8::1', dst='ff02::1', hlim=255)/\
             ICMPv6ND_NA(tgt='2001:db8::1', R=0, S=0, O=1)/ICMPv6NDOptDstLLAddr(lladdr='{VM1_S}')"
        ));
        f.tenant("p1", &na);
        let v6 = "2001:db8::1".parse::<std::net::Ipv6Addr>().unwrap().octets();
        assert_eq!(pair(&f, NeighKey::v6(blue, v6)).map(|e| e.mac), Some(VM1), "learned from an NA");
        assert_eq!(f.count(NeighLearned), 3);
        // VM1 claims VM2's configured 203.0.113.2: counted, kept out.
        f.tenant("p1", &arp(1, "ff:ff:ff:ff:ff:ff", VM1_S, "203.0.113.2", "203.0.113.2"));
        let e = pair(&f, NeighKey::v4(blue, [203, 0, 113, 2])).unwrap();
        assert_eq!((e.mac, e.is_static(), f.count(NeighConflict)), (VM2, true, 1));
        // Announcements that are not the sender's own are not learned.
        let mut spoofed = arp(1, "ff:ff:ff:ff:ff:ff", VM2_S, "203.0.113.9", "203.0.113.9");
        spoofed[6..12].copy_from_slice(&VM1); // Ethernet source VM1, ARP sender VM2
        f.tenant("p1", &spoofed);
        assert!(pair(&f, NeighKey::v4(blue, [203, 0, 113, 9])).is_none(), "sender MAC is not the frame's");
        assert_eq!(f.count(NeighLearned), 3);
    });
}

trait TapMut: Sized {
    fn tap_mut(self, f: impl FnOnce(&mut Self)) -> Self;
}

impl TapMut for Vec<u8> {
    fn tap_mut(mut self, f: impl FnOnce(&mut Self)) -> Self {
        f(&mut self);
        self
    }
}
