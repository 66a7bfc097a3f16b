//! VXLAN overlay across hosts in network namespaces, with real traffic.

use overlay_tests::conf::*;
use overlay_tests::lab::*;
use overlay_tests::netns::{Netns, host_sh};

fn mac(i: u8) -> String {
    format!("02:00:00:00:00:{i:02x}")
}

/// A host at `address` with `networks` and access ports `ports` (interface, network).
fn host(address: &str, networks: Vec<Network>, ports: &[(&str, &str)]) -> Config {
    Config { networks, ports: ports.iter().map(|(i, n)| access(i, n)).collect(), ..config(address) }
}

const IPS: [&str; 3] = ["192.0.2.1", "192.0.2.2", "192.0.2.3"];

fn others(i: usize) -> Vec<&'static str> {
    IPS.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, ip)| *ip).collect()
}

/// Three hosts; VNI 100 (blue) and 200 (red) carry tenants with the same
/// IP addresses and the same MAC addresses.
#[test]
fn three_hosts_two_vnis_with_overlapping_tenants_are_isolated() {
    let hosts: Vec<Host> = (0..3).map(|_| Host::new("h")).collect();
    let _u = Underlay::new(&hosts.iter().collect::<Vec<_>>(), "192.0.2");
    let mut blue = Vec::new();
    let mut red = Vec::new();
    for (i, h) in hosts.iter().enumerate() {
        blue.push(Vm::attach(h, "vmb", &mac(i as u8 + 1), &format!("203.0.113.{}/24", i + 1)));
        red.push(Vm::attach(h, "vmr", &mac(i as u8 + 1), &format!("203.0.113.{}/24", i + 1)));
        let (blue, red) = (vxlan("blue", 100, &others(i)), vxlan("red", 200, &others(i)));
        h.up(&host(IPS[i], vec![blue, red], &[("vmb", "blue"), ("vmr", "red")]));
    }
    assert_eq!(host_sh("pgrep -x overlayctl || true").trim(), "", "no overlayctl process keeps running");
    let red_rx: Vec<u64> = red.iter().map(|v| v.ns.rx_packets("eth0")).collect();
    for j in [1, 2] {
        blue[0].ping(&format!("203.0.113.{}", j + 1)).expect("blue ping across hosts");
    }
    assert!(iperf3(&blue[1].ns, &blue[0].ns, "203.0.113.2", "") > 1_000_000, "blue TCP");
    assert!(iperf3(&blue[1].ns, &blue[0].ns, "203.0.113.2", "-u -b 20M") > 100_000, "blue UDP");
    let red_after: Vec<u64> = red.iter().map(|v| v.ns.rx_packets("eth0")).collect();
    assert_eq!(red_after, red_rx, "not one frame of blue reached red");

    let blue_rx: Vec<u64> = blue.iter().map(|v| v.ns.rx_packets("eth0")).collect();
    red[2].ping("203.0.113.1").expect("red ping across hosts");
    assert!(iperf3(&red[0].ns, &red[2].ns, "203.0.113.1", "") > 1_000_000, "red TCP");
    let blue_after: Vec<u64> = blue.iter().map(|v| v.ns.rx_packets("eth0")).collect();
    assert_eq!(blue_after, blue_rx, "not one frame of red reached blue");

    // Each host learned the other hosts' tenants per network.
    let e = hosts[0].fdb_entry("blue", &mac(2)).expect("host1 learned blue vm2");
    assert_eq!(e["location"], "remote:192.0.2.2");
    let e = hosts[0].fdb_entry("red", &mac(3)).expect("host1 learned red vm3");
    assert_eq!(e["location"], "remote:192.0.2.3");
    assert_eq!(hosts[0].counter("drop_unknown_vni") + hosts[0].counter("drop_not_peer"), 0);
}

/// One broadcast frame reaches every remote host of the network exactly
/// once, even with a configured peer that does not exist.
#[test]
fn broadcast_reaches_each_remote_host_exactly_once() {
    let hosts: Vec<Host> = (0..3).map(|_| Host::new("h")).collect();
    let _u = Underlay::new(&hosts.iter().collect::<Vec<_>>(), "192.0.2");
    let mut vms = Vec::new();
    for (i, h) in hosts.iter().enumerate() {
        vms.push(Vm::attach(h, "vm1", &mac(i as u8 + 1), &format!("203.0.113.{}/24", i + 1)));
        let mut peers = others(i);
        if i == 0 {
            peers.push("192.0.2.99"); // down: never answers ARP
        }
        h.up(&host(IPS[i], vec![vxlan("blue", 100, &peers)], &[("vm1", "blue")]));
    }
    let before: Vec<u64> = vms.iter().map(|v| v.ns.rx_packets("eth0")).collect();
    send_frame(
        &vms[0].ns,
        "eth0",
        "Ether(dst='ff:ff:ff:ff:ff:ff', src='02:00:00:00:00:01', type=0x88b5)/Raw(b'x'*46)",
    );
    wait_until("the broadcast reached hosts 2 and 3", 10, || {
        hosts[0].counter("drop_no_neighbour") == 1 && (1..3).all(|i| vms[i].ns.rx_packets("eth0") > before[i])
    });
    let after: Vec<u64> = vms.iter().map(|v| v.ns.rx_packets("eth0")).collect();
    assert_eq!(after[0] - before[0], 0, "never back to the sender");
    assert_eq!(after[1] - before[1], 1, "host2 got it once");
    assert_eq!(after[2] - before[2], 1, "host3 got it once");
    assert_eq!(hosts[0].counter("flood_remote_copies"), 2);
    assert_eq!(hosts[0].counter("drop_no_neighbour"), 1, "the dead peer's copy is counted");
    for h in &hosts[1..] {
        assert_eq!(h.counter("decap"), 1);
        assert_eq!(h.counter("flood_remote_copies"), 0, "split horizon: no re-flooding");
    }
}

/// One host runs this datapath, the other the kernel's vxlan + bridge.
#[test]
fn interoperates_with_kernel_vxlan() {
    interop(false);
}

/// The same with outer UDP checksums: the kernel's UDP receive path drops
/// VXLAN whose non-zero checksum is wrong.
#[test]
fn interoperates_with_kernel_vxlan_with_udp_checksums() {
    interop(true);
}

fn interop(udp_checksum: bool) {
    let ours = Host::new("h");
    let kern = Netns::new("k");
    host_sh(&format!("ip link add u0 netns {} type veth peer name u0 netns {}", ours.ns.name, kern.name));
    ours.ns.sh("ip addr add 192.0.2.1/24 dev u0 && ip link set u0 up");
    kern.sh("ip addr add 192.0.2.2/24 dev u0 && ip link set u0 up");
    let vm1 = Vm::attach(&ours, "vm1", &mac(1), "203.0.113.1/24");
    let vm2 = Netns::new("vm");
    host_sh(&format!("ip link add vm2 netns {} type veth peer name eth0 netns {}", kern.name, vm2.name));
    vm2.sh(&format!(
        "ip link set eth0 address {} mtu 1450 up && ip addr add 203.0.113.2/24 dev eth0",
        mac(2)
    ));
    kern.sh("ip link add vx100 type vxlan id 100 local 192.0.2.2 dstport 4789 dev u0 && \
         ip link add br0 type bridge && ip link set vx100 master br0 && ip link set vm2 master br0 && \
         ip link set vx100 up && ip link set vm2 up && ip link set br0 up && \
         bridge fdb append 00:00:00:00:00:00 dev vx100 dst 192.0.2.1");
    let mut c = blue_host(0, 2);
    c.underlay.udp_checksum = udp_checksum;
    ours.up(&c);
    vm1.ping("203.0.113.2").expect("ours -> kernel");
    vm2.try_sh("ping -c 2 -i 0.2 -W 1 203.0.113.1").expect("kernel -> ours");
    assert!(iperf3(&vm2, &vm1.ns, "203.0.113.2", "") > 1_000_000, "TCP ours -> kernel");
    assert!(iperf3(&vm1.ns, &vm2, "203.0.113.1", "") > 1_000_000, "TCP kernel -> ours");
    let e = ours.fdb_entry("blue", &mac(2)).expect("we learned the kernel side's MAC");
    assert_eq!(e["location"], "remote:192.0.2.2");
    let kfdb = kern.sh("bridge fdb show dev vx100");
    assert!(
        kfdb.lines().any(|l| l.starts_with(&mac(1)) && l.contains("dst 192.0.2.1")),
        "kernel learned our MAC: {kfdb}"
    );
}

/// Learned entries age out; a static entry survives a spoofed frame.
#[test]
fn ageing_and_static_entries() {
    let (hosts, _u, vms) = hosts_with_vms(2);
    for (i, h) in hosts.iter().enumerate() {
        let mut c = Config { ageing: 2, ..blue_host(i, 2) };
        if i == 0 {
            c.fdb.push(fdb_port("02:00:00:00:00:01", "blue", "vm1"));
        }
        h.up(&c);
    }
    // Pinned neighbours: no ARP probe refreshes the learned entry later
    // (the check below must not race the far VM's delay_first_probe_time).
    vms[0].ns.sh("ip neigh replace 203.0.113.2 lladdr 02:00:00:00:00:02 dev eth0 nud permanent");
    vms[1].ns.sh("ip neigh replace 203.0.113.1 lladdr 02:00:00:00:00:01 dev eth0 nud permanent");
    vms[0].ping("203.0.113.2").expect("ping");
    let e = hosts[0].fdb_entry("blue", &mac(2)).expect("learned");
    assert_eq!((e["type"].as_str(), e["location"].as_str()), (Some("learned"), Some("remote:192.0.2.2")));
    assert_eq!(hosts[0].fdb_entry("blue", &mac(1)).expect("static")["type"], "static");
    // VM2 claims VM1's MAC.
    send_frame(
        &vms[1].ns,
        "eth0",
        "Ether(dst='ff:ff:ff:ff:ff:ff', src='02:00:00:00:00:01', type=0x88b5)/Raw(b'x'*46)",
    );
    wait_until("spoofed frame refused", 10, || hosts[0].counter("drop_src_mac_static") == 1);
    let e = hosts[0].fdb_entry("blue", &mac(1)).expect("static still there");
    assert_eq!((e["type"].as_str(), e["location"].as_str()), (Some("static"), Some("port:vm1")));
    wait_until("learned entry aged out (ageing = 2 s)", 10, || hosts[0].fdb_entry("blue", &mac(2)).is_none());
    assert!(hosts[0].fdb_entry("blue", &mac(1)).is_some(), "static entries never age");
    assert_eq!(hosts[0].counter("drop_src_mac_static"), 1);
}

/// VXLAN from a VTEP that is not a peer, for an unknown VNI, or from a peer
/// of another network only: dropped, counted, never learned or delivered.
#[test]
fn spoofed_vteps_and_unknown_vnis_are_refused() {
    let h = Host::new("h");
    let other = Host::new("h");
    let attacker = Netns::new("atk");
    let u = Underlay::new(&[&h, &other], "192.0.2");
    host_sh(&format!("ip link add p9 netns {} type veth peer name a0 netns {}", u.sw.name, attacker.name));
    u.sw.sh("ip link set p9 master br0 up");
    attacker.sh("ip addr add 192.0.2.66/24 dev a0 && ip link set a0 up");
    let vm = Vm::attach(&h, "vm1", &mac(1), "203.0.113.1/24");
    // 192.0.2.2 is a peer of red only.
    h.up(&host(
        "192.0.2.1",
        vec![vxlan("blue", 100, &[]), vxlan("red", 200, &["192.0.2.2"])],
        &[("vm1", "blue")],
    ));
    let rx = vm.ns.rx_packets("eth0");
    let hmac = h.ns.sh("cat /sys/class/net/u0/address").trim().to_string();
    let inner = "Ether(dst='ff:ff:ff:ff:ff:ff', src='02:00:00:00:00:66', type=0x88b5)/Raw(b'y'*46)";
    let vx = |vni: u32| {
        format!(
            "Ether(dst='{hmac}')/IP(src='192.0.2.66', dst='192.0.2.1')/UDP(sport=50000, dport=4789)/VXLAN(vni={vni}, flags=0x08)/{inner}"
        )
    };
    send_frame(&attacker, "a0", &vx(100));
    send_frame(&attacker, "a0", &vx(999));
    other.ns.sh("ip addr show u0 >/dev/null");
    send_frame(
        &other.ns,
        "u0",
        &format!(
            "Ether(dst='{hmac}')/IP(src='192.0.2.2', dst='192.0.2.1')/UDP(sport=50000, dport=4789)/VXLAN(vni=100, flags=0x08)/{inner}"
        ),
    );
    wait_until("three frames counted", 10, || {
        h.counter("drop_not_peer") + h.counter("drop_unknown_vni") >= 3
    });
    assert_eq!(h.counter("drop_not_peer"), 2, "stranger on blue, red-only peer on blue");
    assert_eq!(h.counter("drop_unknown_vni"), 1);
    assert_eq!(h.counter("decap"), 0);
    assert!(h.fdb_entry("blue", "02:00:00:00:00:66").is_none(), "nothing learned");
    assert_eq!(vm.ns.rx_packets("eth0"), rx, "nothing delivered");
}

/// Hosts in different subnets, joined by a router namespace.
#[test]
fn routed_underlay() {
    let h1 = Host::new("h");
    let h2 = Host::new("h");
    let r = Netns::new("rt");
    host_sh(&format!("ip link add u0 netns {} type veth peer name r1 netns {}", h1.ns.name, r.name));
    host_sh(&format!("ip link add u0 netns {} type veth peer name r2 netns {}", h2.ns.name, r.name));
    r.sh("ip addr add 192.0.2.254/24 dev r1 && ip addr add 198.51.100.254/24 dev r2 && ip link set r1 up && ip link set r2 up && sysctl -qw net.ipv4.ip_forward=1");
    h1.ns.sh("ip addr add 192.0.2.1/24 dev u0 && ip link set u0 up && ip route add default via 192.0.2.254");
    h2.ns.sh(
        "ip addr add 198.51.100.1/24 dev u0 && ip link set u0 up && ip route add default via 198.51.100.254",
    );
    let vm1 = Vm::attach(&h1, "vm1", &mac(1), "203.0.113.1/24");
    let vm2 = Vm::attach(&h2, "vm1", &mac(2), "203.0.113.2/24");
    h1.up(&host("192.0.2.1", vec![vxlan("blue", 100, &["198.51.100.1"])], &[("vm1", "blue")]));
    h2.up(&host("198.51.100.1", vec![vxlan("blue", 100, &["192.0.2.1"])], &[("vm1", "blue")]));
    vm1.ping("203.0.113.2").expect("ping over a routed underlay");
    assert!(iperf3(&vm2.ns, &vm1.ns, "203.0.113.2", "") > 1_000_000, "TCP over a routed underlay");
}

/// A frame that would not fit the underlay after encapsulation is dropped
/// and counted, never fragmented.
#[test]
fn oversized_frames_are_counted_not_fragmented() {
    let (hosts, _u, vms) = hosts_with_vms(2);
    for (i, h) in hosts.iter().enumerate() {
        h.up(&blue_host(i, 2));
    }
    assert_eq!(
        hosts[0].ns.sh("cat /sys/class/net/vm1/mtu").trim(),
        "1450",
        "up sets tenant MTU to underlay - 50"
    );
    vms[0].ping("203.0.113.2").expect("small frames pass");
    // Let a full-size frame reach the program (the veth would drop it first).
    hosts[0].ns.sh("ip link set vm1 mtu 1500");
    vms[0].ns.sh("ip link set eth0 mtu 1500");
    let r = vms[0].ns.try_sh("ping -c 1 -W 1 -M do -s 1472 203.0.113.2");
    assert!(r.is_err(), "a 1500-byte frame cannot cross a 1500-byte underlay with VXLAN");
    assert_eq!(hosts[0].counter("drop_mtu"), 1);
}

/// A router namespace attached to two VXLAN networks (a Neutron router):
/// ping and TCP cross from VNI 100 to VNI 200 through it. Traffic
/// decapsulated on the router's host is encapsulated again there.
#[test]
fn routing_between_two_vnis_through_a_router_namespace() {
    let (hosts, _u, vms) = hosts_with_vms(2);
    for h in &hosts {
        // VXLAN as single frames on the veth underlay (README, Known limits).
        h.ns.sh("ethtool -K u0 tx-udp_tnl-segmentation off tx-udp_tnl-csum-segmentation off >/dev/null");
    }
    let router = Netns::new("rt");
    host_sh(&format!(
        "ip link add r100 netns {} type veth peer name eth0 netns {}",
        hosts[0].ns.name, router.name
    ));
    host_sh(&format!(
        "ip link add r200 netns {} type veth peer name eth1 netns {}",
        hosts[0].ns.name, router.name
    ));
    hosts[0].ns.sh("ip link set r100 up && ip link set r200 up");
    router.sh(
        "ip link set eth0 mtu 1450 up && ip link set eth1 mtu 1450 up && ip addr add 203.0.113.254/24 dev eth0 && \
         ip addr add 198.51.100.254/24 dev eth1 && sysctl -qw net.ipv4.ip_forward=1",
    );
    let nets = |peer| vec![vxlan("blue", 100, &[peer]), vxlan("red", 200, &[peer])];
    hosts[0].up(&host(IPS[0], nets(IPS[1]), &[("r100", "blue"), ("r200", "red")]));
    // vms[1] is blue on host 2; a red tenant on host 2 too.
    let red = Vm::attach(&hosts[1], "vm2", &mac(9), "198.51.100.9/24");
    hosts[1].up(&host(IPS[1], nets(IPS[0]), &[("vm1", "blue"), ("vm2", "red")]));
    vms[1].ns.sh("ip route add default via 203.0.113.254");
    red.ns.sh("ip route add default via 198.51.100.254");
    vms[1].ping("198.51.100.9").expect("blue -> router -> red");
    assert!(iperf3(&red.ns, &vms[1].ns, "198.51.100.9", "") > 1_000_000, "TCP blue -> red");
    assert_eq!(hosts[0].counter("drop_tunnel_gso"), 0);
}

/// The XDP fast path, native and generic: known unicast to a port marked
/// as an XDP target is decapsulated in XDP (counted as xdp_redirect);
/// unmarked ports and everything else go through TC and are still
/// delivered; ports made by `port add --netns` are marked automatically;
/// `xdp = "off"` detaches it again.
#[test]
fn xdp_fast_path_native_and_generic() {
    for mode in [XdpMode::Native, XdpMode::Generic] {
        let (hosts, _u, vms) = hosts_with_vms(2);
        let cfg = |i: usize, xdp: XdpMode, target: bool| {
            let mut c = blue_host(i, 2);
            c.underlay.xdp = xdp;
            c.ports[0].xdp_target = target;
            c
        };
        for v in &vms {
            // Veth specifics (README, Known limits): XDP_REDIRECT into a veth
            // needs NAPI on its far end (GRO on), and an XDP-redirected frame
            // carries no checksum state, so tenants must not leave checksums
            // to offload (a NIC underlay delivers complete checksums).
            v.ns.sh("ethtool -K eth0 gro on tx off >/dev/null");
        }
        // Not marked: TC delivers, XDP passes.
        hosts[0].up(&cfg(0, mode, false));
        hosts[1].up(&cfg(1, mode, false));
        vms[0].ping("203.0.113.2").unwrap_or_else(|e| panic!("{mode} unmarked: {e}"));
        assert_eq!(hosts[1].counter("xdp_redirect"), 0, "{mode}: unmarked port is not an XDP target");
        // Marked: the fast path.
        hosts[1].up(&cfg(1, mode, true));
        let status: serde_json::Value = serde_json::from_str(&hosts[1].ctl("-j status")).unwrap();
        let u0 =
            status["interfaces"].as_array().unwrap().iter().find(|i| i["interface"] == "u0").unwrap().clone();
        assert_eq!(u0["hook"], format!("tcx + xdp {mode}"), "{mode}");
        vms[0].ping("203.0.113.2").unwrap_or_else(|e| panic!("{mode}: {e}"));
        assert!(iperf3(&vms[1].ns, &vms[0].ns, "203.0.113.2", "") > 1_000_000, "{mode}: TCP");
        assert!(hosts[1].counter("xdp_redirect") > 0, "{mode}: known unicast took the XDP path");
        assert_eq!(hosts[1].counter("drop_helper_failed"), 0, "{mode}");
        // A container made by port add --netns is an XDP target.
        let c = Netns::new("ct");
        hosts[1].ctl(&format!("port add ct1 --network blue --netns {}", c.name));
        c.sh("ethtool -K eth0 tx off >/dev/null && ip addr add 203.0.113.9/24 dev eth0");
        let before = hosts[1].counter("xdp_redirect");
        vms[0].ping("203.0.113.9").unwrap_or_else(|e| {
            panic!(
                "{mode} container: {e}\n{}\n{}",
                c.sh("ethtool -k eth0 | grep -E 'generic-receive|tx-checksumming'; ip -s link show eth0"),
                hosts[1].ctl("stats")
            )
        });
        assert!(hosts[1].counter("xdp_redirect") > before, "{mode}: container reached through XDP");
        hosts[1].ctl("port del ct1");
        // Off: detached.
        hosts[1].up(&cfg(1, XdpMode::Off, true));
        let status: serde_json::Value = serde_json::from_str(&hosts[1].ctl("-j status")).unwrap();
        let u0 =
            status["interfaces"].as_array().unwrap().iter().find(|i| i["interface"] == "u0").unwrap().clone();
        assert_eq!(u0["hook"], "tc-ingress (tcx)", "{mode}: detached");
        let before = hosts[1].counter("xdp_redirect");
        vms[0].ping("203.0.113.2").unwrap_or_else(|e| panic!("{mode} off: {e}"));
        assert_eq!(hosts[1].counter("xdp_redirect"), before, "{mode}: no XDP after off");
    }
}
