//! Isolation across config changes: learned entries made under one config
//! never carry a frame into another network after `up` changes membership.
//! Each test learns a station, changes the config, then sends to the stale
//! MAC and counts what arrives where it must not: exactly 0 frames.

use overlay_tests::conf::*;
use overlay_tests::lab::*;
use overlay_tests::netns::{Netns, host_sh};

const A: &str = "02:00:00:00:00:0a";
const B: &str = "02:00:00:00:00:0b";
const M: &str = "02:00:00:00:00:4d";

/// `count` frames from `src` to `dst` (ethertype 0x88b5), sent on `dev`,
/// tagged `vlan` when given.
fn send(ns: &Netns, dev: &str, src: &str, dst: &str, vlan: Option<u16>, count: u32) {
    let tag = vlan.map(|v| format!("/Dot1Q(vlan={v})")).unwrap_or_default();
    send_frame(
        ns,
        dev,
        &format!("[Ether(dst='{dst}', src='{src}'){tag}/Raw(b'\\x88\\xb5' + b'i'*46)]*{count}"),
    );
}

/// A station's namespace at the far end of `port` on `host`: raw frames
/// only (no addresses, no IPv6: it sends nothing by itself).
fn station(host: &Host, port: &str) -> Netns {
    let ns = Netns::new("st");
    host_sh(&format!("ip link add {port} netns {} type veth peer name eth0 netns {}", host.ns.name, ns.name));
    host.ns.sh(&format!("ip link set {port} up"));
    ns.sh("ip link set eth0 up");
    ns
}

/// Sends 5 frames from `from` to `mac` and waits until `h` has handled
/// them (delivered locally, flooded to no target or stopped at egress);
/// returns the frames `to` received meanwhile.
fn five_frames(h: &Host, from: &Netns, src: &str, mac: &str, to: &Netns) -> u64 {
    let handled = || {
        let t = &h.stats()["total"];
        ["tx_local", "drop_flood_no_target", "drop_not_member", "drop_no_network"]
            .iter()
            .map(|c| t[c].as_u64().unwrap_or(0))
            .sum::<u64>()
    };
    let (before, rx) = (handled(), to.rx_packets("eth0"));
    send(from, "eth0", src, mac, None, 5);
    wait_until("5 frames handled", 10, || handled() >= before + 5);
    to.rx_packets("eth0") - rx
}

/// Waits until `host` counts `n` of `counter`, then checks it is exactly `n`.
fn await_counter(host: &Host, counter: &str, n: u64) {
    wait_until(&format!("{counter} reaches {n}"), 10, || host.counter(counter) >= n);
    assert_eq!(host.counter(counter), n, "{counter}");
}

/// The case: a trunk carrying v10 and v20 learns M in v20; `up`
/// takes v20 off the trunk; a v20 tenant sends to M: nothing leaves by
/// the trunk.
#[test]
fn trunk_loses_a_vlan_stale_macs_stay_behind() {
    let (h, _u) = one_host();
    let a = station(&h, "vma");
    let far = station(&h, "t0");
    let with = |t: Port| Config {
        networks: vec![vlan("v10", 10), vlan("v20", 20)],
        ports: vec![access("vma", "v20"), t],
        ..config("192.0.2.1")
    };
    h.up(&with(trunk("t0", &["v10", "v20"])));
    send(&far, "eth0", M, "ff:ff:ff:ff:ff:ff", Some(20), 1);
    await_counter(&h, "learned", 1);
    assert_eq!(h.fdb_entry("v20", M).expect("M learned")["location"], "port:t0");
    h.up(&with(trunk("t0", &["v10"])));
    assert_eq!(five_frames(&h, &a, A, M, &far), 0, "not one v20 frame left by the trunk");
    // M is unknown in v20 now: flooded, with no other v20 port to go to.
    await_counter(&h, "drop_flood_no_target", 5);
    assert!(h.fdb_entry("v20", M).is_none(), "the stale entry is gone too (hygiene)");
}

/// vma and vmb access ports of red, B (on vmb) learned; then `up` makes
/// vmb `after`: frames from vma to B never reach vmb.
fn vmb_leaves_red(after: Port, what: &str) {
    let (h, _u) = one_host();
    let a = station(&h, "vma");
    let b = station(&h, "vmb");
    let with =
        |ports| Config { networks: vec![vlan("red", 10), vlan("blue", 20)], ports, ..config("192.0.2.1") };
    h.up(&with(vec![access("vma", "red"), access("vmb", "red")]));
    send(&b, "eth0", B, "ff:ff:ff:ff:ff:ff", None, 1);
    await_counter(&h, "learned", 1);
    h.up(&with(vec![access("vma", "red"), after]));
    assert_eq!(five_frames(&h, &a, A, B, &b), 0, "{what}");
    // B is unknown in red now: flooded, with no other red port to go to.
    await_counter(&h, "drop_flood_no_target", 5);
}

/// An access port moved to another network: frames to the MAC it had in
/// the old network are not delivered to it.
#[test]
fn access_port_moved_to_another_network() {
    vmb_leaves_red(access("vmb", "blue"), "not one red frame reached blue's port");
}

/// An access port turned into a trunk that does not carry its old network.
#[test]
fn access_port_becomes_a_trunk_of_other_networks() {
    vmb_leaves_red(trunk("vmb", &["blue"]), "not one red frame (tagged or not) on a trunk without red");
}

/// A network removed and a new one added in the same `up`: the newcomer
/// starts with an empty FDB slice, learned count and counters.
#[test]
fn new_network_inherits_nothing_from_a_removed_one() {
    let (h, _u) = one_host();
    let a = station(&h, "vma");
    let b = station(&h, "vmb");
    let only = |net: &str, vid| Config {
        networks: vec![vlan(net, vid)],
        ports: vec![access("vma", net), access("vmb", net)],
        ..config("192.0.2.1")
    };
    h.up(&only("old", 10));
    send(&a, "eth0", A, "ff:ff:ff:ff:ff:ff", None, 1);
    send(&b, "eth0", B, "ff:ff:ff:ff:ff:ff", None, 1);
    await_counter(&h, "learned", 2);
    h.up(&only("new", 20));
    assert!(
        h.fdb().iter().all(|r| r["network"] != "new"),
        "no entry of `old` shows up in `new`: {:?}",
        h.fdb()
    );
    let s = h.stats();
    assert!(s["networks"]["new"].as_object().is_none_or(|m| m.is_empty()), "counters start at zero: {s}");
    let st = h.ctl("status");
    assert!(st.lines().any(|l| l.starts_with("new") && l.contains(" 0/")), "learned count 0: {st}");
}

/// A VXLAN network whose VNI changes forgets what it learned from remote
/// VTEPs under the old VNI (those MACs are in another network now).
#[test]
fn vni_change_forgets_remote_macs_learned_under_the_old_vni() {
    let (hosts, _u, vms) = hosts_with_vms(2);
    hosts[0].up(&blue_host(0, 2));
    hosts[1].up(&blue_host(1, 2));
    vms[0].ping("203.0.113.2").expect("ping over VNI 100");
    assert!(hosts[0].fdb_entry("blue", "02:00:00:00:00:02").is_some(), "learned at the peer");
    let mut vni_300 = blue_host(0, 2);
    vni_300.networks[0].vni = Some(300);
    hosts[0].up(&vni_300);
    assert!(hosts[0].fdb_entry("blue", "02:00:00:00:00:02").is_none(), "forgotten with VNI 100");
    let rx = vms[1].ns.rx_packets("eth0");
    send(&vms[0].ns, "eth0", "02:00:00:00:00:01", "02:00:00:00:00:02", None, 5);
    await_counter(&hosts[1], "drop_unknown_vni", 5);
    assert_eq!(vms[1].ns.rx_packets("eth0") - rx, 0, "VNI 300 frames never reach VNI 100's tenant");
}

/// `allow_inner_vlan` with the network as a trunk's native is refused,
/// naming both fields, and nothing changes.
#[test]
fn inner_tags_as_native_are_refused() {
    let (h, _u) = one_host();
    let _t = station(&h, "t0");
    let blue = Network { vlan: Some(10), allow_inner_vlan: true, ..vxlan("blue", 100, &[]) };
    let t0 = Port { native: Some("blue".into()), ..trunk("t0", &["red"]) };
    let c = Config { networks: vec![blue, vlan("red", 20)], ports: vec![t0], ..config("192.0.2.1") };
    let e = h.try_up(&c).expect_err("refused");
    assert!(e.contains("native = \"blue\"") && e.contains("allow_inner_vlan"), "{e}");
    assert!(h.try_ctl("status").is_err(), "nothing was brought up");
}
