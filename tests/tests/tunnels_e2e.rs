//! GRE and GENEVE networks between hosts of this project, with real
//! traffic: ping, TCP (GSO on), learning both ways, the XDP fast path, the
//! frames on the underlay as Wireshark dissects them, and a triangle of
//! GRE tunnels in which a broadcast reaches each host exactly once.

use overlay_tests::conf::*;
use overlay_tests::lab::*;
use overlay_tests::tshark;

/// A 32-bit GRE key (beyond the 24 bits of a VNI).
const GRE_KEY: u32 = 0x0100_0064;
const GENEVE_VNI: u32 = 300;
const IPS: [&str; 3] = ["192.0.2.1", "192.0.2.2", "192.0.2.3"];

fn mac(i: usize) -> String {
    format!("02:00:00:00:00:{:02x}", i + 1)
}

/// Host `i` of `n` with networks green (GRE) and orange (GENEVE) meshed
/// to the others, access ports vmg and vmo.
fn host(i: usize, n: usize) -> Config {
    let peers: Vec<&str> = IPS[..n].iter().enumerate().filter(|(j, _)| *j != i).map(|(_, a)| *a).collect();
    Config {
        networks: vec![
            tunnel("green", Encap::Gre, GRE_KEY, &peers),
            tunnel("orange", Encap::Geneve, GENEVE_VNI, &peers),
        ],
        ports: vec![access("vmg", "green"), access("vmo", "orange")],
        ..config(IPS[i])
    }
}

#[test]
fn gre_and_geneve_carry_ping_and_tcp_between_two_hosts() {
    let hosts: Vec<Host> = (0..2).map(|_| Host::new("h")).collect();
    let u = Underlay::new(&hosts.iter().collect::<Vec<_>>(), "192.0.2");
    // The same tenant addresses and MACs in both networks.
    let mut green = Vec::new();
    let mut orange = Vec::new();
    for (i, h) in hosts.iter().enumerate() {
        let cidr = format!("203.0.113.{}/24", i + 1);
        green.push(Vm::attach(h, "vmg", &mac(i), &cidr));
        orange.push(Vm::attach(h, "vmo", &mac(i), &cidr));
    }
    hosts[0].up(&host(0, 2));
    hosts[1].up(&host(1, 2));
    let status: serde_json::Value = serde_json::from_str(&hosts[0].ctl("-j status")).unwrap();
    let encaps: Vec<_> = status["networks"].as_array().unwrap().iter().map(|n| n["encap"].clone()).collect();
    assert_eq!(encaps, ["gre", "geneve"], "status names each network's encapsulation");
    let mtu = hosts[0].ns.sh("cat /sys/class/net/vmg/mtu /sys/class/net/vmo/mtu");
    assert_eq!(mtu.split_whitespace().collect::<Vec<_>>(), ["1458", "1450"], "GRE -42, GENEVE -50");

    // What crosses the underlay, as host 1's switch port sees it.
    let pcap = std::env::temp_dir().join(overlay_tests::netns::unique("cap") + ".pcap");
    let mut cap = tcpdump(&u.sw, &format!("-i p0 -U -w {} 'ip proto 47 or udp port 6081'", pcap.display()));
    let orange_rx = orange[1].ns.rx_packets("eth0");
    green[0].ping("203.0.113.2").expect("green (GRE) 1 -> 2");
    green[1].ping("203.0.113.1").expect("green (GRE) 2 -> 1");
    assert_eq!(orange[1].ns.rx_packets("eth0"), orange_rx, "not one green frame reached orange");
    orange[1].ping("203.0.113.1").expect("orange (GENEVE) 2 -> 1");
    orange[0].ping("203.0.113.2").expect("orange (GENEVE) 1 -> 2");
    // Four pings of two echoes each way: 16 frames through host 1's port.
    wait_until("the capture wrote the pings", 10, || read_pcap(&pcap).len() >= 16);
    let _ = cap.kill();
    let _ = cap.wait();
    let frames = read_pcap(&pcap);
    let _ = std::fs::remove_file(&pcap);
    let rows = tshark::fields(&frames, &["frame.protocols", "gre.key", "geneve.vni", "geneve.version"]);
    let (mut gre, mut geneve) = (0, 0);
    for r in &rows {
        match r[0].as_str() {
            p if p.starts_with("eth:ethertype:ip:gre:eth:ethertype:") => {
                assert_eq!(r[1], "0x01000064", "the 32-bit key: {r:?}");
                gre += 1;
            }
            p if p.starts_with("eth:ethertype:ip:udp:geneve:eth:ethertype:") => {
                assert_eq!((r[2].as_str(), r[3].as_str()), ("0x00012c", "0"), "{r:?}");
                geneve += 1;
            }
            _ => panic!("not GRE or GENEVE carrying Ethernet: {r:?}"),
        }
    }
    assert!(gre >= 8 && geneve >= 8, "{gre} GRE and {geneve} GENEVE frames (two pings each way per network)");

    // TCP with the tenants' offloads on: GSO super-packets are
    // encapsulated whole and segmented as GRE or UDP tunnel packets.
    for (vms, net) in [(&green, "green"), (&orange, "orange")] {
        let got = iperf3(&vms[1].ns, &vms[0].ns, "203.0.113.2", "");
        assert!(got > 1_000_000, "{net}: TCP 1 -> 2: {got}\n{}", hosts[1].ctl("stats"));
        assert!(iperf3(&vms[0].ns, &vms[1].ns, "203.0.113.1", "") > 1_000_000, "{net}: TCP 2 -> 1");
        for (h, other) in [(0, 1), (1, 0)] {
            let e = hosts[h]
                .fdb_entry(net, &mac(other))
                .unwrap_or_else(|| panic!("{net}: host {} learned host {}'s tenant", h + 1, other + 1));
            assert_eq!(e["location"], format!("remote:{}", IPS[other]), "{net}");
        }
    }
    // The same with the underlay segmenting in software: the switch port
    // to host 2 cannot pass GRE or UDP-tunnel super-packets, so the kernel
    // cuts host 1's into frames (GRE and UDP-tunnel segmentation of what
    // the datapath encapsulated) before host 2 decapsulates them.
    u.sw.sh("ethtool -K p1 tx-gre-segmentation off tx-gre-csum-segmentation off \
             tx-udp_tnl-segmentation off tx-udp_tnl-csum-segmentation off >/dev/null");
    for (vms, net) in [(&green, "green"), (&orange, "orange")] {
        let frames = hosts[1].ns.rx_packets("u0");
        let got = iperf3(&vms[1].ns, &vms[0].ns, "203.0.113.2", "");
        assert!(got > 1_000_000, "{net}: TCP 1 -> 2, segmented on the way: {got}\n{}", hosts[1].ctl("stats"));
        let frames = hosts[1].ns.rx_packets("u0") - frames;
        assert!(frames >= got / 1500, "{net}: {got} bytes in {frames} frames: segmented to the MTU");
    }
    // Host 2 takes known unicast in XDP (generic): its tenants run NAPI,
    // and all tenants fill in their checksums (README, Known limits: an
    // XDP-redirected frame carries no checksum state).
    for v in green.iter().chain(&orange) {
        v.ns.sh("ethtool -K eth0 gro on tx off >/dev/null");
    }
    let mut c = host(1, 2);
    c.underlay.xdp = XdpMode::Generic;
    c.ports.iter_mut().for_each(|p| p.xdp_target = true);
    hosts[1].up(&c);
    for (vms, net) in [(&green, "green"), (&orange, "orange")] {
        let before = hosts[1].counter("xdp_redirect");
        assert!(iperf3(&vms[1].ns, &vms[0].ns, "203.0.113.2", "") > 1_000_000, "{net}: TCP 1 -> 2 (XDP)");
        assert!(hosts[1].counter("xdp_redirect") > before, "{net}: known unicast took host 2's XDP path");
    }
    for h in &hosts {
        for c in [
            "drop_unknown_vni",
            "drop_not_peer",
            "drop_tunnel_header",
            "drop_malformed",
            "drop_helper_failed",
        ] {
            assert_eq!(h.counter(c), 0, "{c}");
        }
    }
}

/// Seed 001's three hosts, joined in a triangle of GRE tunnels (each host
/// a peer of the other two): a broadcast reaches each other host exactly
/// once and is never sent on by them (split horizon), so the loop in the
/// topology needs no spanning tree.
#[test]
fn gre_triangle_floods_each_host_exactly_once() {
    let hosts: Vec<Host> = (0..3).map(|_| Host::new("h")).collect();
    let _u = Underlay::new(&hosts.iter().collect::<Vec<_>>(), "192.0.2");
    let vms: Vec<Vm> = hosts
        .iter()
        .enumerate()
        .map(|(i, h)| Vm::attach(h, "vmg", &mac(i), &format!("203.0.113.{}/24", i + 1)))
        .collect();
    for (i, h) in hosts.iter().enumerate() {
        let mut c = host(i, 3);
        c.networks.truncate(1);
        c.ports.truncate(1);
        h.up(&c);
    }
    for sender in 0..3 {
        let before: Vec<u64> = vms.iter().map(|v| v.ns.rx_packets("eth0")).collect();
        let copies: Vec<u64> = hosts.iter().map(|h| h.counter("flood_remote_copies")).collect();
        send_frame(
            &vms[sender].ns,
            "eth0",
            &format!("Ether(dst='ff:ff:ff:ff:ff:ff', src='{}', type=0x88b5)/Raw(b'x'*46)", mac(sender)),
        );
        wait_until("the broadcast reached the two other hosts", 10, || {
            (0..3).filter(|i| *i != sender).all(|i| vms[i].ns.rx_packets("eth0") > before[i])
        });
        // A storm or a second copy would show within this second.
        std::thread::sleep(std::time::Duration::from_secs(1));
        for i in 0..3 {
            let got = vms[i].ns.rx_packets("eth0") - before[i];
            let sent = hosts[i].counter("flood_remote_copies") - copies[i];
            if i == sender {
                assert_eq!(
                    (got, sent),
                    (0, 2),
                    "host {}: never back to the sender; one copy per peer",
                    i + 1
                );
            } else {
                assert_eq!((got, sent), (1, 0), "host {}: exactly once, never flooded on", i + 1);
            }
        }
    }
}

/// The Ethernet frames of a classic pcap file (none while it has no
/// header yet; a record still being written is left out).
fn read_pcap(path: &std::path::Path) -> Vec<Vec<u8>> {
    let b = std::fs::read(path).unwrap_or_default();
    if b.len() < 24 {
        return Vec::new(); // not written yet
    }
    assert_eq!(b[..4], 0xa1b2_c3d4u32.to_le_bytes(), "a little-endian pcap file");
    let mut at = 24;
    let mut out = Vec::new();
    while at + 16 <= b.len() {
        let caplen = u32::from_le_bytes(b[at + 8..at + 12].try_into().unwrap()) as usize;
        let Some(f) = b.get(at + 16..at + 16 + caplen) else { break };
        out.push(f.to_vec());
        at += 16 + caplen;
    }
    out
}
