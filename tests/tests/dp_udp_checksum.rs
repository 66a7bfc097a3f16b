//! The optional outer UDP checksum, also with inner checksums left to offload.
//! The real programs run on crafted frames through BPF_PROG_TEST_RUN:
//! verdict, exact output bytes and exact counters.

use overlay_tests::prelude::*;

/// `udp_checksum = true`: single frames leave with a valid outer UDP
/// checksum, IP or not, and flood copies keep it valid per peer.
#[test]
fn outer_udp_checksum_when_configured() {
    in_private_netns(|| {
        let mut cfg = dp_config();
        cfg.underlay.udp_checksum = true;
        cfg.networks[0].peers = vec!["192.0.2.3".parse().unwrap(), "192.0.2.2".parse().unwrap()];
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
        let mut cfg = dp_config();
        cfg.underlay.udp_checksum = true;
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
