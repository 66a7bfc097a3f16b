//! Load cases of the reliability suite: a MAC flood in one network, and a
//! malformed mix at full rate on the underlay. Every count is exact.
//!
//! `OVERLAY_LONG=1` runs the malformed mix for 60 s (the CI form runs 5 s).

use std::time::Duration;

use overlay_common::pktbuild::udp4;
use overlay_tests::{blast, lab::*};

const FLOOD: u64 = 100_000;
const LIMIT: u64 = 1000;

/// blue (VNI 100, port vm1) and red (VNI 200, port vm2) on two hosts,
/// each network limited to `LIMIT` learned MACs.
fn two_networks(i: usize) -> String {
    let peer = if i == 0 { "192.0.2.2" } else { "192.0.2.1" };
    format!(
        "{}[[network]]\nname = \"blue\"\nvni = 100\npeers = [\"{peer}\"]\nmax_learned = {LIMIT}\n\
         [[network]]\nname = \"red\"\nvni = 200\npeers = [\"{peer}\"]\nmax_learned = {LIMIT}\n\
         [[port]]\ninterface = \"vm1\"\nnetwork = \"blue\"\n[[port]]\ninterface = \"vm2\"\nnetwork = \"red\"\n",
        underlay_toml(&format!("192.0.2.{}", i + 1))
    )
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
        .map(|(i, h)| Vm::attach(h, "vm2", &format!("02:00:00:00:01:{:02x}", i + 1), &format!("198.51.100.{}/24", i + 1)))
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
        udp4([2, 0xbb, 0, 0, 0, 1], [2, 0xaa, b[0], b[1], b[2], b[3]], [203, 0, 113, 1], [203, 0, 113, 99], 9, 9, 18)
    });
    let out = ping.wait_with_output().expect("ping");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("200 received"), "red lost nothing during the flood: {text}");

    for (i, h) in hosts.iter().enumerate() {
        let at = format!("host {i}");
        let (rx, learned, full) =
            (h.net_counter("blue", "rx_tenant"), h.net_counter("blue", "learned"), h.net_counter("blue", "learn_fdb_full"));
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
        assert!(h.fdb_entry("red", &format!("02:00:00:00:01:0{}", 2 - i)).is_some(), "{at}: red entries kept");
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
