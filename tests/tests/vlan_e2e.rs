//! 802.1Q in BPF: access and trunk ports, VLAN-only networks, VLAN <-> VNI.
//! The kernel here has no 8021q module: every tag is pushed and popped by
//! the programs.

use overlay_tests::conf::*;
use overlay_tests::lab::*;
use overlay_tests::netns::host_sh;

/// A host at `address` with VLANs v10 and v20 and `ports`.
fn vlans(address: &str, ports: Vec<Port>) -> Config {
    Config { networks: vec![vlan("v10", 10), vlan("v20", 20)], ports, ..config(address) }
}

/// Two hosts joined by a trunk link `t0`; underlay on its own segment.
fn trunked_hosts() -> (Host, Host, Underlay) {
    let h1 = Host::new("h");
    let h2 = Host::new("h");
    let u = Underlay::new(&[&h1, &h2], "192.0.2");
    host_sh(&format!("ip link add t0 netns {} type veth peer name t0 netns {}", h1.ns.name, h2.ns.name));
    h1.ns.sh("ip link set t0 up");
    h2.ns.sh("ip link set t0 up");
    (h1, h2, u)
}

/// The seed scenario: VLAN 10 and VLAN 20 tenants on one host, same
/// subnet, isolated; VLAN 10 reaches across the trunk, tagged on the wire.
#[test]
fn vlan_isolation_on_a_host_and_reach_across_a_trunk() {
    let (h1, h2, _u) = trunked_hosts();
    let a = Vm::attach(&h1, "vma", "02:00:00:00:00:0a", "203.0.113.1/24");
    let b = Vm::attach(&h1, "vmb", "02:00:00:00:00:0b", "203.0.113.2/24");
    let _c = Vm::attach(&h2, "vmc", "02:00:00:00:00:0c", "203.0.113.3/24");
    let _d = Vm::attach(&h2, "vmd", "02:00:00:00:00:0d", "203.0.113.4/24");
    let t0 = || trunk("t0", &["v10", "v20"]);
    h1.up(&vlans("192.0.2.1", vec![access("vma", "v10"), access("vmb", "v20"), t0()]));
    h2.up(&vlans("192.0.2.2", vec![access("vmc", "v10"), access("vmd", "v20"), t0()]));

    let b_rx = b.ns.rx_packets("eth0");
    assert!(a.ping("203.0.113.2").is_err(), "VLAN 10 cannot reach VLAN 20 on the same host");
    assert_eq!(b.ns.rx_packets("eth0"), b_rx, "not one frame of VLAN 10 reached VLAN 20");

    // Each side sees what arrives over the trunk (a frame handed to the
    // veth peer with bpf_redirect_peer skips the sender's capture).
    let at_h2 = tcpdump(&h2.ns, "-nn -e -c 2 -i t0 'icmp and ether src 02:00:00:00:00:0a'");
    let at_h1 = tcpdump(&h1.ns, "-nn -e -c 2 -i t0 'icmp and ether src 02:00:00:00:00:0c'");
    a.ping("203.0.113.3").expect("VLAN 10 across the trunk");
    for (cap, what) in [(at_h2, "A -> C"), (at_h1, "C -> A")] {
        let out = cap.wait_with_output().expect("tcpdump");
        let text = String::from_utf8_lossy(&out.stdout);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{what}, captured: {text}");
        assert!(lines.iter().all(|l| l.contains("vlan 10")), "{what}: every ICMP frame tagged 10: {text}");
    }
    b.ping("203.0.113.4").expect("VLAN 20 across the trunk too");
    let e = h1.fdb_entry("v10", "02:00:00:00:00:0c").expect("C learned on the trunk");
    assert_eq!(e["location"], "port:t0");
}

/// Crafted tags on the trunk: disallowed VID, VID 4095, priority tag,
/// QinQ and 802.1ad are dropped and counted, one each.
#[test]
fn bad_tags_on_a_trunk_are_dropped_and_counted() {
    let (h1, h2, _u) = trunked_hosts();
    let a = Vm::attach(&h1, "vma", "02:00:00:00:00:0a", "203.0.113.1/24");
    h1.up(&vlans("192.0.2.1", vec![access("vma", "v10"), trunk("t0", &["v10", "v20"])]));
    let rx = a.ns.rx_packets("eth0");
    let src = "Ether(dst='ff:ff:ff:ff:ff:ff', src='02:00:00:00:00:99')";
    let body = "Raw(b'z'*46)";
    for frame in [
        format!("{src}/Dot1Q(vlan=30)/{body}"),
        format!("{src}/Dot1Q(vlan=4095)/{body}"),
        format!("{src}/Dot1Q(vlan=0)/{body}"),
        format!("{src}/Dot1Q(vlan=10)/Dot1Q(vlan=20)/{body}"),
        format!("Ether(dst='ff:ff:ff:ff:ff:ff', src='02:00:00:00:00:99', type=0x88a8)/Dot1Q(vlan=10)/{body}"),
    ] {
        send_frame(&h2.ns, "t0", &frame);
    }
    wait_until("five frames counted", 10, || {
        ["drop_vlan_not_allowed", "drop_vlan_4095", "drop_vlan_priority_tagged", "drop_vlan_qinq"]
            .iter()
            .map(|c| h1.counter(c))
            .sum::<u64>()
            >= 5
    });
    assert_eq!(h1.counter("drop_vlan_not_allowed"), 1);
    assert_eq!(h1.counter("drop_vlan_4095"), 1);
    assert_eq!(h1.counter("drop_vlan_priority_tagged"), 1);
    assert_eq!(h1.counter("drop_vlan_qinq"), 2);
    assert_eq!(h1.counter("rx_tenant"), 0);
    assert_eq!(a.ns.rx_packets("eth0"), rx, "nothing delivered");
    assert!(h1.fdb_entry("v10", "02:00:00:00:00:99").is_none(), "nothing learned");
}

/// A VXLAN network mapped to VLAN 10 (Neutron's local VLAN per network):
/// a tenant on VLAN 10 behind a VLAN-only host on the trunk talks to a
/// tenant on another host over VXLAN (VNI 100). The tag never travels
/// inside VXLAN. (This kernel has neither 8021q nor bridge VLAN filtering,
/// so the VLAN-only side runs this datapath too.)
#[test]
fn vxlan_network_mapped_to_a_vlan_on_a_trunk() {
    let h1 = Host::new("h");
    let h2 = Host::new("h");
    let h3 = Host::new("h");
    let _u = Underlay::new(&[&h1, &h2, &h3], "192.0.2");
    host_sh(&format!("ip link add t0 netns {} type veth peer name t0 netns {}", h1.ns.name, h3.ns.name));
    h1.ns.sh("ip link set t0 up");
    h3.ns.sh("ip link set t0 up");
    let lvm = Vm::attach(&h3, "vm1", "02:00:00:00:00:01", "203.0.113.1/24");
    let vm2 = Vm::attach(&h2, "vm1", "02:00:00:00:00:02", "203.0.113.2/24");
    let blue = |i: usize, port: Port| {
        let mut c = Config { ports: vec![port], ..blue_host(i, 2) };
        c.networks[0].vlan = Some(10);
        c
    };
    h1.up(&blue(0, trunk("t0", &["blue"])));
    h2.up(&blue(1, access("vm1", "blue")));
    let v10 = vec![vlan("v10", 10)];
    h3.up(&Config {
        networks: v10,
        ports: vec![access("vm1", "v10"), trunk("t0", &["v10"])],
        ..config("192.0.2.3")
    });
    let cap = tcpdump(&h1.ns, "-nn -e -c 2 -i t0 icmp");
    vm2.ping("203.0.113.1").expect("VXLAN tenant reaches the VLAN 10 tenant");
    let text = String::from_utf8_lossy(&cap.wait_with_output().expect("tcpdump").stdout).into_owned();
    assert_eq!(text.lines().filter(|l| l.contains("vlan 10")).count(), 2, "tagged 10 on the trunk: {text}");
    lvm.ping("203.0.113.2").expect("and back");
    assert!(iperf3(&vm2.ns, &lvm.ns, "203.0.113.2", "") > 1_000_000, "TCP VLAN -> VXLAN");
    assert_eq!(h2.counter("drop_inner_tagged"), 0, "no tag inside VXLAN");
    let e = h1.fdb_entry("blue", "02:00:00:00:00:01").expect("VLAN-side MAC learned on the trunk");
    assert_eq!(e["location"], "port:t0");
    let e = h1.fdb_entry("blue", "02:00:00:00:00:02").expect("VXLAN-side MAC learned at its VTEP");
    assert_eq!(e["location"], "remote:192.0.2.2");
}
