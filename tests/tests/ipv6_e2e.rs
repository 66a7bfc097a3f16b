//! VXLAN over an IPv6 underlay, against Linux's vxlan at its defaults
//! (outer UDP checksums sent, zero-checksum frames dropped), directly and
//! through a router, and the receive rules over IPv6.

use overlay_tests::conf::*;
use overlay_tests::lab::*;
use overlay_tests::netns::{Netns, host_sh};

fn mac(i: u8) -> String {
    format!("02:00:00:00:00:{i:02x}")
}

/// Tenant MTU over IPv6: the underlay's 1500 - 70.
const MTU6: u32 = 1430;

/// UDP-over-IPv6 datagrams a namespace's stack refused for a bad checksum.
fn udp6_csum_errors(ns: &Netns) -> u64 {
    let t = ns.sh("cat /proc/net/snmp6");
    t.lines()
        .find_map(|l| l.strip_prefix("Udp6InCsumErrors"))
        .map(|v| v.trim().parse().expect("a counter"))
        .expect("Udp6InCsumErrors in /proc/net/snmp6")
}

/// IPv6 on for `dev` of `ns` only (namespaces start with it off: no ND or
/// MLD noise elsewhere).
fn ipv6_on(ns: &Netns, dev: &str) {
    ns.sh(&format!("sysctl -qw net.ipv6.conf.{dev}.disable_ipv6=0"));
}

/// TX packets of `dev` in `ns`.
fn tx_packets(ns: &Netns, dev: &str) -> u64 {
    ns.sh(&format!("cat /sys/class/net/{dev}/statistics/tx_packets")).trim().parse().expect("tx_packets")
}

/// Ours at 2001:db8:1::1 (or 2001:db8::1 on the same link), the kernel's
/// vxlan + bridge at 2001:db8:2::2 (2001:db8::2), VNI 100 both.
struct Interop {
    ours: Host,
    kern: Netns,
    vm1: Vm,
    vm2: Netns,
    _router: Option<Netns>,
    kern_addr: &'static str,
}

fn interop(routed: bool) -> Interop {
    let ours = Host::new("h");
    let kern = Netns::new("k");
    let (our_addr, kern_addr) =
        if routed { ("2001:db8:1::1", "2001:db8:2::2") } else { ("2001:db8::1", "2001:db8::2") };
    let router = if routed {
        let r = Netns::new("r");
        host_sh(&format!("ip link add u0 netns {} type veth peer name r1 netns {}", ours.ns.name, r.name));
        host_sh(&format!("ip link add u0 netns {} type veth peer name r2 netns {}", kern.name, r.name));
        ipv6_on(&r, "r1");
        ipv6_on(&r, "r2");
        ipv6_on(&ours.ns, "u0");
        ipv6_on(&kern, "u0");
        r.sh("sysctl -qw net.ipv6.conf.all.forwarding=1 && \
              ip -6 addr add 2001:db8:1::fe/64 dev r1 nodad && ip -6 addr add 2001:db8:2::fe/64 dev r2 nodad && \
              ip link set r1 up && ip link set r2 up");
        ours.ns.sh("ip -6 addr add 2001:db8:1::1/64 dev u0 nodad && ip link set u0 up && \
                    ip -6 route add 2001:db8:2::/64 via 2001:db8:1::fe");
        kern.sh("ip -6 addr add 2001:db8:2::2/64 dev u0 nodad && ip link set u0 up && \
                 ip -6 route add 2001:db8:1::/64 via 2001:db8:2::fe");
        Some(r)
    } else {
        host_sh(&format!("ip link add u0 netns {} type veth peer name u0 netns {}", ours.ns.name, kern.name));
        ipv6_on(&ours.ns, "u0");
        ipv6_on(&kern, "u0");
        ours.ns.sh("ip -6 addr add 2001:db8::1/64 dev u0 nodad && ip link set u0 up");
        kern.sh("ip -6 addr add 2001:db8::2/64 dev u0 nodad && ip link set u0 up");
        None
    };
    let vm1 = Vm::attach(&ours, "vm1", &mac(1), "203.0.113.1/24");
    vm1.ns.sh(&format!("ip link set eth0 mtu {MTU6}"));
    let vm2 = Netns::new("vm");
    host_sh(&format!("ip link add vm2 netns {} type veth peer name eth0 netns {}", kern.name, vm2.name));
    vm2.sh(&format!(
        "ip link set eth0 address {} mtu {MTU6} up && ip addr add 203.0.113.2/24 dev eth0",
        mac(2)
    ));
    // Linux's vxlan at its defaults: udp6zerocsumtx off, udp6zerocsumrx off.
    kern.sh(&format!(
        "ip link add vx100 type vxlan id 100 local {kern_addr} dstport 4789 dev u0 && \
         ip link add br0 type bridge && ip link set vx100 master br0 && ip link set vm2 master br0 && \
         ip link set vx100 up && ip link set vm2 up && ip link set br0 up && \
         bridge fdb append 00:00:00:00:00:00 dev vx100 dst {our_addr}"
    ));
    kern.sh(NO_BRIDGE_NETFILTER);
    let mut c = config(our_addr);
    c.networks = vec![vxlan("blue", 100, &[kern_addr])];
    c.ports = vec![access("vm1", "blue")];
    ours.up(&c);
    // `up` starts NDP for the peer's next hop; a tenant's first ARP request
    // (not IP: the datapath cannot resolve a neighbour for it) needs it
    // resolved. Wait for it rather than race it.
    let hop = if routed { "2001:db8:1::fe" } else { kern_addr };
    wait_until("the next hop's neighbour entry resolved", 10, || {
        ours.ns.sh(&format!("ip -6 neigh show {hop} dev u0")).contains("lladdr")
    });
    Interop { ours, kern, vm1, vm2, _router: router, kern_addr }
}

fn check_interop(t: &Interop) {
    let (ours, kern, vm1, vm2) = (&t.ours, &t.kern, &t.vm1, &t.vm2);
    vm1.ping("203.0.113.2").expect("ours -> kernel");
    vm2.try_sh("ping -c 2 -i 0.2 -W 1 203.0.113.1").expect("kernel -> ours");
    // TCP with GSO on both sides: super-packets of ours go through the
    // GSO device, whose segments must carry checksums the kernel accepts.
    let gso_dev = ours.ns.sh("ip -o link show type vxlan | awk -F': ' '{print $2}'").trim().to_string();
    assert!(gso_dev.starts_with("ovx"), "the GSO device exists: {gso_dev:?}");
    let dev_tx = tx_packets(&ours.ns, &gso_dev);
    assert!(iperf3(vm2, &vm1.ns, "203.0.113.2", "") > 1_000_000, "TCP ours -> kernel");
    assert!(iperf3(&vm1.ns, vm2, "203.0.113.1", "") > 1_000_000, "TCP kernel -> ours");
    assert!(tx_packets(&ours.ns, &gso_dev) > dev_tx, "super-packets went through the GSO device");
    assert_eq!(udp6_csum_errors(kern), 0, "the kernel refused none of our checksums");
    assert_eq!(ours.counter("drop_udp_checksum"), 0, "we refused none of the kernel's");
    assert_eq!(ours.counter("drop_tunnel_gso"), 0);
    assert!(ours.counter("decap") > 0 && ours.counter("encap") > 0);
    let e = ours.fdb_entry("blue", &mac(2)).expect("we learned the kernel side's MAC");
    assert_eq!(e["location"], format!("remote:{}", t.kern_addr));
    let kfdb = kern.sh("bridge fdb show dev vx100");
    let ours_at = if t._router.is_some() { "2001:db8:1::1" } else { "2001:db8::1" };
    assert!(
        kfdb.lines().any(|l| l.starts_with(&mac(1)) && l.contains(&format!("dst {ours_at}"))),
        "the kernel learned our MAC behind {ours_at}: {kfdb}"
    );
}

/// One host runs this datapath over IPv6, the other Linux's vxlan + bridge
/// at its defaults: ping and TCP (GSO) both ways, learning both ways.
#[test]
fn interoperates_with_kernel_vxlan6_at_its_defaults() {
    let t = interop(false);
    check_interop(&t);
    let s: serde_json::Value = serde_json::from_str(&t.ours.ctl("status -j")).expect("status json");
    assert_eq!(s["underlay"]["address"], "2001:db8::1", "{s}");
}

/// The same through a router: the next hop comes from the IPv6 FIB, its
/// neighbour from NDP (primed at `up`), and the strict reverse-path check
/// passes over the route back.
#[test]
fn a_routed_ipv6_underlay_works_through_a_router() {
    let t = interop(true);
    check_interop(&t);
    let nh = t.ours.ns.sh("ip -6 neigh show dev u0");
    assert!(nh.contains("2001:db8:1::fe"), "the router's neighbour entry: {nh}");
    assert_eq!(t.ours.counter("drop_rp_filter"), 0);
}

/// Over IPv6: VXLAN from a VTEP that is not a peer, for an unknown VNI,
/// with a zero or a wrong UDP checksum: dropped and counted, never learned
/// or delivered; the right frame from the peer is delivered.
#[test]
fn ipv6_receive_rules_spoofing_vnis_and_checksums() {
    let h = Host::new("h");
    let other = Host::new("h");
    let u = Underlay::new(&[&h, &other], "192.0.2");
    ipv6_on(&h.ns, "u0");
    ipv6_on(&other.ns, "u0");
    h.ns.sh("ip -6 addr add 2001:db8::1/64 dev u0 nodad");
    other.ns.sh("ip -6 addr add 2001:db8::2/64 dev u0 nodad");
    let atk = u.plug("atk", "p9");
    ipv6_on(&atk, "eth0");
    atk.sh("ip link set eth0 up && ip -6 addr add 2001:db8::66/64 dev eth0 nodad");
    let vm = Vm::attach(&h, "vm1", &mac(1), "203.0.113.1/24");
    let mut c = config("2001:db8::1");
    c.networks = vec![vxlan("blue", 100, &["2001:db8::2"])];
    c.ports = vec![access("vm1", "blue")];
    h.up(&c);
    let hmac = h.ns.sh("cat /sys/class/net/u0/address").trim().to_string();
    let rx = vm.ns.rx_packets("eth0");
    let frame = |src: &str, vni: u32, csum: &str, smac: u8| {
        format!(
            "Ether(dst='{hmac}')/IPv6(src='{src}', dst='2001:db8::1')/UDP(sport=50000, dport=4789{csum})/\
             VXLAN(vni={vni}, flags=0x08)/Ether(dst='ff:ff:ff:ff:ff:ff', src='02:00:00:00:00:{smac:02x}', \
             type=0x88b5)/Raw(b'y'*46)"
        )
    };
    // Not a peer; unknown VNI (from the peer's address); zero and wrong
    // checksums (from the peer's address, right VNI).
    send_frame(&atk, "eth0", &frame("2001:db8::66", 100, "", 0x61));
    send_frame(&atk, "eth0", &frame("2001:db8::2", 999, "", 0x62));
    send_frame(&atk, "eth0", &frame("2001:db8::2", 100, ", chksum=0", 0x63));
    send_frame(&atk, "eth0", &frame("2001:db8::2", 100, ", chksum=0x1234", 0x64));
    wait_until("four refusals counted", 10, || {
        h.counter("drop_not_peer") == 1
            && h.counter("drop_unknown_vni") == 1
            && h.counter("drop_udp_checksum") == 2
    });
    assert_eq!(vm.ns.rx_packets("eth0"), rx, "nothing delivered");
    assert!(h.fdb().iter().all(|e| e["network"] != "blue" || e["type"] != "learned"), "nothing learned");
    // The same frame with scapy's (right) checksum, from the peer: delivered.
    send_frame(&atk, "eth0", &frame("2001:db8::2", 100, "", 0x65));
    wait_until("the right frame delivered", 10, || vm.ns.rx_packets("eth0") == rx + 1);
    let e = h.fdb_entry("blue", &mac(0x65)).expect("learned behind the peer");
    assert_eq!(e["location"], "remote:2001:db8::2");
    assert_eq!((h.counter("drop_not_peer"), h.counter("drop_udp_checksum")), (1, 2), "no more drops");
}

/// The XDP fast path over IPv6 (native and generic): known unicast to an
/// XDP target is decapsulated in XDP once its outer UDP checksum sums
/// right; what does not goes on to TC and is still delivered.
#[test]
fn xdp_fast_path_over_ipv6() {
    for mode in [XdpMode::Native, XdpMode::Generic] {
        let (hosts, _u, vms) = hosts_with_vms(2);
        for (i, h) in hosts.iter().enumerate() {
            ipv6_on(&h.ns, "u0");
            h.ns.sh(&format!("ip -6 addr add 2001:db8::{}/64 dev u0 nodad", i + 1));
            // XDP_REDIRECT into a veth needs NAPI on its far end; tenants
            // send full checksums (README, Known limits).
            vms[i].ns.sh(&format!("ip link set eth0 mtu {MTU6} && ethtool -K eth0 gro on tx off >/dev/null"));
        }
        for (i, h) in hosts.iter().enumerate() {
            let me = format!("2001:db8::{}", i + 1);
            let peer = format!("2001:db8::{}", 2 - i);
            let mut c = config(&me);
            c.networks = vec![vxlan("blue", 100, &[peer.as_str()])];
            c.ports = vec![Port { xdp_target: true, ..access("vm1", "blue") }];
            c.underlay.xdp = mode;
            h.up(&c);
        }
        // `up` starts NDP for the peer; the tenants' first ARP request (not
        // IP: the datapath cannot resolve a neighbour for it) needs it
        // resolved. Wait for it rather than race it.
        for (i, h) in hosts.iter().enumerate() {
            let peer = format!("2001:db8::{}", 2 - i);
            wait_until(&format!("{mode}: host {i}'s neighbour entry of {peer}"), 10, || {
                h.ns.sh(&format!("ip -6 neigh show {peer} dev u0")).contains("lladdr")
            });
        }
        vms[0].ping("203.0.113.2").unwrap_or_else(|e| panic!("{mode}: {e}"));
        assert!(iperf3(&vms[1].ns, &vms[0].ns, "203.0.113.2", "") > 1_000_000, "{mode}: TCP");
        assert!(hosts[1].counter("xdp_redirect") > 0, "{mode}: known unicast took the XDP path over IPv6");
        for h in &hosts {
            assert_eq!(h.counter("drop_udp_checksum"), 0, "{mode}");
            assert_eq!(h.counter("drop_helper_failed"), 0, "{mode}");
        }
    }
}
