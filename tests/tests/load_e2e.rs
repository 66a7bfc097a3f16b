//! Load cases of the reliability suite: a MAC flood in one network, and a
//! malformed mix at full rate on the underlay. Every count is exact.
//!
//! `OVERLAY_LONG=1` runs the malformed mix for 60 s (the CI form runs 5 s).

use std::time::Duration;

use overlay_common::pktbuild::udp4;
use overlay_tests::{blast, conf::*, lab::*};

const FLOOD: u64 = 100_000;
const LIMIT: u64 = 1000;

/// blue (VNI 100, port vm1) and red (VNI 200, port vm2) on two hosts,
/// each network limited to `LIMIT` learned MACs.
/// Host `i` of 2: blue (VNI 100, port vm1) and red (VNI 200, port vm2),
/// each limited to LIMIT learned entries.
fn two_networks(i: usize) -> Config {
    let mut c = blue_host(i, 2);
    let mut red = Network { name: "red".into(), vni: Some(200), ..c.networks[0].clone() };
    red.max_learned = Some(LIMIT as u32);
    c.networks[0].max_learned = Some(LIMIT as u32);
    c.networks.push(red);
    c.ports.push(access("vm2", "red"));
    c
}

fn status_net(h: &Host, net: &str) -> serde_json::Value {
    let s: serde_json::Value = serde_json::from_str(&h.ctl("-j status")).expect("status json");
    s["networks"].as_array().unwrap().iter().find(|n| n["name"] == net).cloned().expect("network")
}

#[test]
fn mac_flood_in_one_network_leaves_the_others_alone() {
    let (hosts, _u, blue) = hosts_with_vms(2);
    let red: Vec<Vm> = hosts
        .iter()
        .enumerate()
        .map(|(i, h)| {
            Vm::attach(
                h,
                "vm2",
                &format!("02:00:00:00:01:{:02x}", i + 1),
                &format!("198.51.100.{}/24", i + 1),
            )
        })
        .collect();
    for (i, h) in hosts.iter().enumerate() {
        h.up(&two_networks(i));
    }
    red[0].ping("198.51.100.2").expect("red works before");
    let red_before: Vec<(u64, u64)> = hosts
        .iter()
        .map(|h| (h.net_counter("red", "learned"), h.net_counter("red", "flood_local_copies")))
        .collect();
    let ping = red[0].ns.spawn("ping -c 200 -i 0.01 -W 1 198.51.100.2");

    // 100k frames from distinct source MACs to an unknown destination in blue.
    let sent = blast::send_n(&blue[0].ns, "eth0", FLOOD, |i| {
        let b = (i as u32).to_be_bytes();
        udp4(
            [2, 0xbb, 0, 0, 0, 1],
            [2, 0xaa, b[0], b[1], b[2], b[3]],
            [203, 0, 113, 1],
            [203, 0, 113, 99],
            9,
            9,
            18,
        )
    });
    let out = ping.wait_with_output().expect("ping");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("200 received"), "red lost nothing during the flood: {text}");

    for (i, h) in hosts.iter().enumerate() {
        let at = format!("host {i}");
        let (rx, learned, full) = (
            h.net_counter("blue", "rx_tenant"),
            h.net_counter("blue", "learned"),
            h.net_counter("blue", "learn_fdb_full"),
        );
        if i == 0 {
            assert_eq!(rx, sent, "{at}: every flood frame reached the program");
            assert_eq!(h.net_counter("blue", "flood_remote_copies"), sent, "{at}: one copy to the peer each");
        } else {
            assert_eq!(h.net_counter("blue", "decap"), sent, "{at}: every copy decapsulated");
        }
        assert_eq!(learned, LIMIT, "{at}: blue stops at its limit");
        assert_eq!(full, sent - LIMIT, "{at}: every other source counted as not learned");
        assert_eq!(status_net(h, "blue")["learned"], LIMIT, "{at}: status shows the limit reached");
        assert_eq!(h.net_counter("red", "learn_fdb_full"), 0, "{at}: red never ran out of room");
        assert_eq!(h.net_counter("red", "learned"), red_before[i].0, "{at}: red's table untouched");
        assert!(
            h.fdb_entry("red", &format!("02:00:00:00:01:0{}", 2 - i)).is_some(),
            "{at}: red entries kept"
        );
        assert_eq!(h.net_counter("red", "flood_local_copies"), red_before[i].1, "{at}: no blue frame in red");
    }
    // A new station in red after the flood is learned at once.
    let late = Vm::attach(&hosts[1], "vm3", "02:00:00:00:01:33", "198.51.100.33/24");
    hosts[1].ctl("port add vm3 --network red");
    red[0].ping("198.51.100.33").expect("new red station reachable");
    assert!(hosts[1].fdb_entry("red", "02:00:00:00:01:33").is_some(), "learned on its host");
    assert!(hosts[0].fdb_entry("red", "02:00:00:00:01:33").is_some(), "learned across the overlay");
    // Flushing blue gives its room back.
    hosts[0].ctl("fdb flush --network blue");
    assert_eq!(status_net(&hosts[0], "blue")["learned"], 0);
    blue[0].ping("203.0.113.2").expect("blue works after the flush");
    assert_eq!(status_net(&hosts[0], "blue")["learned"], 2, "both VMs learned again");
    drop(late);
}

/// The malformed mix: each frame with the counter it must land in at the
/// VTEP 192.0.2.1 (peer 192.0.2.2 is configured but absent; the attacker
/// spoofs it or uses 192.0.2.66).
fn malformed_mix(vtep_mac: [u8; 6]) -> Vec<(&'static str, Vec<u8>)> {
    use overlay_common::{frame::Frame, headers::Ipv4Hdr, pktbuild::*};
    const ATK: [u8; 6] = [2, 0, 0, 0, 0x66, 0x66];
    let vx =
        |src: [u8; 4], vni: u32, inner: &[u8]| vxlan_from(vtep_mac, ATK, src, [192, 0, 2, 1], vni, inner);
    let inner =
        udp4([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0x66, 1], [203, 0, 113, 66], [203, 0, 113, 1], 9, 9, 18);
    let peer = [192, 0, 2, 2];
    let good = vx(peer, 100, &inner);
    let with = |off: usize, val: u8| {
        let mut v = good.clone();
        v[off] = val;
        v
    };
    let ip_proto = |proto: u8, dport: u16| {
        let mut v = udp4(vtep_mac, ATK, [192, 0, 2, 66], [192, 0, 2, 1], 9, dport, 24);
        v[23] = proto;
        v[24..26].copy_from_slice(&[0, 0]);
        let sum = overlay_common::encap::ipv4_checksum(&Frame::read::<Ipv4Hdr>(&v[..], 14).unwrap());
        v[24..26].copy_from_slice(&sum.to_be_bytes());
        v
    };
    let mut mcast_src = inner.clone();
    mcast_src[6..12].copy_from_slice(&[1, 0, 0x5e, 0, 0, 1]);
    let mut len_8023 = eth(vtep_mac, ATK, 46);
    len_8023.extend([0xaa; 46]);
    let mut arp = eth([0xff; 6], ATK, 0x0806);
    arp.extend([0, 1, 8, 0, 6, 4, 0, 1]);
    arp.extend(ATK);
    arp.extend([192, 0, 2, 66, 0, 0, 0, 0, 0, 0, 192, 0, 2, 1]);
    let mut nd = eth([0x33, 0x33, 0xff, 0, 0, 1], ATK, 0x86dd);
    nd.extend([0x60, 0, 0, 0, 0, 32, 58, 255]);
    nd.extend([0; 72]);
    vec![
        ("drop_not_peer", vx([192, 0, 2, 66], 100, &inner)),
        ("drop_unknown_vni", vx(peer, 999, &inner)),
        ("drop_vxlan_no_i_flag", with(42, 0)),
        ("drop_src_mac_invalid", vx(peer, 100, &mcast_src)),
        ("drop_inner_tagged", vx(peer, 100, &push_tag(&inner, 0x8100, 10))),
        ("drop_malformed", good[..50].to_vec()), // VXLAN, no inner Ethernet
        ("drop_malformed", with(14, 0x44)),      // IHL 4
        ("drop_malformed", with(38, 0xff)),      // UDP length beyond the packet
        ("drop_malformed", good[..good.len() - 10].to_vec()), // IP total length beyond the frame
        ("pass_fragment", with(20, 0x20)),       // more fragments
        ("pass_host", arp),
        ("pass_host", len_8023),
        ("pass_host", ip_proto(47, 0)),  // GRE to the VTEP address
        ("pass_host", ip_proto(50, 0)),  // ESP
        ("pass_host", ip_proto(17, 53)), // UDP, another port
        ("pass_host", nd),
    ]
}

/// The kernel log, a line each.
fn dmesg() -> Vec<String> {
    let out = std::process::Command::new("dmesg").output().expect("dmesg");
    assert!(out.status.success(), "dmesg: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
}

/// Kernel log lines after the first `since` that mean trouble.
fn kernel_trouble(since: usize) -> Vec<String> {
    dmesg()
        .into_iter()
        .skip(since)
        .filter(|l| {
            let l = l.to_ascii_lowercase();
            ["warning", "bug", "oops", "call trace", "rcu", "bpf", "stall", "refcount"]
                .iter()
                .any(|w| l.contains(w))
        })
        .collect()
}

/// A malformed mix from an attacker on the underlay, as fast as one core
/// sends it: every frame lands in exactly the counter it belongs to,
/// nothing reaches the tenant, and the kernel logs no warning.
#[test]
fn malformed_mix_at_full_rate() {
    let secs = if std::env::var_os("OVERLAY_LONG").is_some() { 60 } else { 5 };
    let (hosts, u, vms) = hosts_with_vms(1);
    let h = &hosts[0];
    h.up(&blue_host(0, 2));
    let atk = u.attacker();
    let mac = h.ns.sh("cat /sys/class/net/u0/address");
    let mac = mac.trim().parse::<overlay_user::mac::MacAddr>().expect("u0 MAC").0;
    let mix = malformed_mix(mac);
    let log_start = dmesg().len();
    h.ctl("stats --reset");
    let vm_rx = vms[0].ns.rx_packets("eth0");
    let frames: Vec<Vec<u8>> = mix.iter().map(|(_, f)| f.clone()).collect();
    let rounds = blast::send_rounds(&atk, "eth0", frames, Duration::from_secs(secs));
    let sent = rounds * mix.len() as u64;
    eprintln!("malformed mix: {sent} frames in {secs} s ({:.0} kpps)", sent as f64 / secs as f64 / 1e3);

    let total = h.stats()["total"].clone();
    let mut got: std::collections::BTreeMap<String, u64> = total
        .as_object()
        .unwrap()
        .iter()
        .filter_map(|(k, v)| v.as_u64().filter(|v| *v != 0).map(|v| (k.clone(), v)))
        .collect();
    let mut want = std::collections::BTreeMap::new();
    for (c, _) in &mix {
        *want.entry(c.to_string()).or_insert(0) += rounds;
    }
    want.insert("rx_underlay".into(), sent);
    // Frames the host stack itself sent back do not count; nothing else may appear.
    got.retain(|k, _| k != "tx_host");
    assert_eq!(got, want, "every frame in exactly its counter ({rounds} rounds)");
    assert_eq!(vms[0].ns.rx_packets("eth0"), vm_rx, "nothing delivered to the tenant");
    let trouble = kernel_trouble(log_start);
    assert!(trouble.is_empty(), "kernel warnings: {trouble:#?}");
}
