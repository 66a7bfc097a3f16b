//! Faults: overlayctl killed mid-`up` under traffic, 100 program upgrades
//! under traffic, a tenant interface deleted and re-created, a peer host
//! vanishing. Forwarding never depends on an overlayctl process.

use std::time::Duration;

use overlay_tests::conf::*;
use overlay_tests::lab::*;

/// "N packets transmitted, M received" of a finished ping.
fn ping_counts(out: &std::process::Output) -> (u64, u64) {
    let text = String::from_utf8_lossy(&out.stdout);
    let line =
        text.lines().find(|l| l.contains("packets transmitted")).unwrap_or_else(|| panic!("ping: {text}"));
    let num = |w: &str| -> u64 {
        let pre = &line[..line.find(w).unwrap_or_else(|| panic!("{w} in {line}"))];
        pre.trim_end().rsplit([' ', ',']).next().unwrap().parse().unwrap()
    };
    (num(" packets transmitted"), num(" received"))
}

/// Nothing of the instance is left in its namespace.
fn assert_gone(h: &Host, ifaces: &[&str]) {
    assert!(!overlay_user::bpffs::pin_dir(&h.instance).exists(), "pins removed");
    assert!(!overlay_user::bpffs::state_path(&h.instance).exists(), "state removed");
    for i in ifaces {
        assert!(h.ns.tcx_ingress(i).is_empty(), "{i}: no program left");
        let xdp = h.ns.sh(&format!("ip -d link show {i}"));
        assert!(!xdp.contains("prog/xdp"), "{i}: no XDP left: {xdp}");
    }
}

/// Two hosts up with [`blue_host`], their VMs reaching each other.
fn two_hosts_up() -> (Vec<Host>, Underlay, Vec<Vm>) {
    let (hosts, u, vms) = hosts_with_vms(2);
    for (i, h) in hosts.iter().enumerate() {
        h.up(&blue_host(i, 2));
    }
    vms[0].ping("203.0.113.2").expect("ping");
    (hosts, u, vms)
}

/// `kill -9` of overlayctl at many points of `up` (with a change each
/// time) while ping and TCP run: no ping is lost, TCP keeps going, the
/// next `up` completes, and `down` after the crashes leaves nothing.
#[test]
fn kill_9_during_up_under_traffic() {
    let (hosts, _u, vms) = two_hosts_up();
    let mut srv = iperf3_server(&vms[1].ns);
    let tcp = vms[0].ns.spawn("exec iperf3 -J -c 203.0.113.2 -p 5201 -t 6");
    let ping = vms[0].ns.spawn("exec ping -c 500 -i 0.01 -W 2 203.0.113.2");
    let cfg = std::env::temp_dir().join(format!("{}-k.toml", hosts[0].instance));
    let ctl = overlayctl();
    // Alternate configs, so every `up` has something to change, and each
    // `up` an upgrade (the pinned programs named as another object's), so
    // kills also land while programs are loaded and re-pinned.
    let object = overlay_user::bpffs::object_path(&hosts[0].instance);
    let write = |round: u64| {
        let mut c = blue_host(0, 2);
        if round.is_multiple_of(2) {
            c.networks.push(vxlan("red", 200, &[]));
        }
        std::fs::write(&cfg, hosts[0].config_text(&c)).unwrap();
        let _ = std::fs::write(&object, "an older object");
    };
    // How long one `up` takes here, so the 20 kill points spread over it.
    write(1);
    let t = std::time::Instant::now();
    hosts[0].ns.sh(&format!("{} up -c {}", ctl.display(), cfg.display()));
    let full = t.elapsed();
    let mut killed = 0;
    for round in 0..20u64 {
        write(round);
        // A run that finishes before its kill point is run again with the
        // point moved earlier: every one of the 20 rounds is a real kill.
        let mut at = full.mul_f64((round + 1) as f64 / 21.0);
        loop {
            let mut c = hosts[0].ns.spawn(&format!("exec {} up -c {}", ctl.display(), cfg.display()));
            std::thread::sleep(at);
            let alive = c.try_wait().expect("wait").is_none();
            if alive {
                c.kill().expect("kill -9");
            }
            let _ = c.wait();
            if alive {
                killed += 1;
                break;
            }
            at /= 2;
        }
    }
    let pinged = ping_counts(&ping.wait_with_output().expect("ping"));
    let tcp = tcp.wait_with_output().expect("iperf3");
    let _ = srv.kill();
    let _ = srv.wait();
    eprintln!("killed 20 runs of up (one takes {full:.1?}); ping {pinged:?}");
    assert_eq!(killed, 20, "every round killed mid-way");
    assert_eq!(pinged, (500, 500), "no ping lost while overlayctl was killed");
    let v: serde_json::Value = serde_json::from_slice(&tcp.stdout).expect("iperf3 json");
    assert!(v["error"].is_null(), "iperf3: {}", v["error"]);
    assert!(v["end"]["sum_received"]["bytes"].as_u64().unwrap() > 0, "TCP carried data");
    // The next up completes and forwards; down after the crashes cleans up.
    hosts[0].up(&blue_host(0, 2));
    vms[0].ping("203.0.113.2").expect("forwarding after recovery");
    assert_eq!(hosts[0].ns.tcx_ingress("vm1"), ["tenant_ingress"], "one program, ours");
    hosts[0].ctl("down");
    assert_gone(&hosts[0], &["u0", "vm1"]);
    hosts[0].ctl("down");
    // A first `up` killed part-way (no state file yet): down still cleans up.
    for delay in [150, 350, 550] {
        std::fs::write(&cfg, hosts[0].config_text(&blue_host(0, 2))).unwrap();
        let mut c = hosts[0].ns.spawn(&format!("exec {} up -c {}", ctl.display(), cfg.display()));
        std::thread::sleep(Duration::from_millis(delay));
        let _ = c.kill();
        let _ = c.wait();
        hosts[0].ctl("down");
        assert_gone(&hosts[0], &["u0", "vm1"]);
    }
    let _ = std::fs::remove_file(&cfg);
}

/// 100 program upgrades (50 per host) under a 100-per-second ping: the
/// loss is reported and must be zero (TCX links are updated in place).
#[test]
fn hundred_upgrades_under_traffic() {
    let (hosts, _u, vms) = two_hosts_up();
    let ids_before = hosts[0].ns.tcx_ingress_programs("vm1");
    let ping = vms[0].ns.spawn("exec ping -i 0.01 -W 2 203.0.113.2");
    let start = std::time::Instant::now();
    std::thread::scope(|s| {
        for (i, h) in hosts.iter().enumerate() {
            s.spawn(move || {
                let object = overlay_user::bpffs::object_path(&h.instance);
                for _ in 0..50 {
                    // An upgrade: the pinned programs are another object's.
                    std::fs::write(&object, "an older object").expect("object file");
                    h.up(&blue_host(i, 2));
                }
            });
        }
    });
    let took = start.elapsed();
    std::thread::sleep(Duration::from_millis(1000));
    // SIGINT: ping stops. Every ping up to the last answered one, which
    // was sent a second after the upgrades ended, must have its reply: a
    // gap is a lost ping. (The one in flight at SIGINT is no loss.)
    hosts[0].ns.sh(&format!("kill -INT {}", ping.id()));
    let out = ping.wait_with_output().expect("ping");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut seqs: Vec<u64> = text
        .lines()
        .filter_map(|l| l.split("icmp_seq=").nth(1)?.split_whitespace().next()?.parse().ok())
        .collect();
    seqs.sort_unstable();
    seqs.dedup();
    let last = *seqs.last().expect("replies");
    let lost: Vec<u64> = (1..=last).filter(|q| seqs.binary_search(q).is_err()).collect();
    eprintln!("100 upgrades in {took:.1?}: {last} pings answered in order, lost {lost:?}");
    assert!(last > 100, "ping ran throughout ({last} answered)");
    assert_eq!(lost, Vec::<u64>::new(), "no ping lost during 100 upgrades");
    let ids_after = hosts[0].ns.tcx_ingress_programs("vm1");
    assert_eq!(ids_after.len(), 1);
    assert_ne!(ids_after[0].0, ids_before[0].0, "the program was replaced");
}

/// A tenant interface deleted and re-created (a VM restarted): `up` while
/// it is missing fails and changes nothing; once it is back, `up` attaches
/// to the new interface, drops the old ifindex everywhere, and forwards.
#[test]
fn tenant_interface_deleted_and_recreated() {
    let (hosts, _u, vms) = two_hosts_up();
    let old_idx: u64 = hosts[0].ns.sh("cat /sys/class/net/vm1/ifindex").trim().parse().unwrap();
    hosts[0].ns.sh("ip link del vm1");
    let before = hosts[0].ctl("-j status");
    let e = hosts[0].try_up(&blue_host(0, 2)).expect_err("port missing");
    assert!(e.contains("vm1"), "error names the port: {e}");
    assert_eq!(hosts[0].ctl("-j status"), before, "nothing changed");
    let status: serde_json::Value = serde_json::from_str(&before).unwrap();
    let port =
        status["interfaces"].as_array().unwrap().iter().find(|i| i["interface"] == "vm1").unwrap().clone();
    assert_eq!((port["present"].as_bool(), port["attached"].as_bool()), (Some(false), Some(false)), "{port}");
    assert!(hosts[0].ctl("status").contains("MISSING"), "status says so");
    vms[0].ping("203.0.113.2").err();
    // The VM comes back on a new veth with the same name.
    let vm = Vm::attach(&hosts[0], "vm1", "02:00:00:00:00:01", "203.0.113.1/24");
    hosts[0].up(&blue_host(0, 2));
    let new_idx: u64 = hosts[0].ns.sh("cat /sys/class/net/vm1/ifindex").trim().parse().unwrap();
    assert_ne!(new_idx, old_idx);
    let status: serde_json::Value = serde_json::from_str(&hosts[0].ctl("-j status")).unwrap();
    let port =
        status["interfaces"].as_array().unwrap().iter().find(|i| i["interface"] == "vm1").unwrap().clone();
    assert_eq!((port["ifindex"].as_u64(), port["attached"].as_bool()), (Some(new_idx), Some(true)));
    vm.ping("203.0.113.2").expect("forwarding to the new interface");
    vms[1].ping("203.0.113.1").expect("and back");
    assert_eq!(hosts[0].fdb_entry("blue", "02:00:00:00:00:01").unwrap()["location"], "port:vm1");
    let m = overlay_user::maps::Maps::open(&overlay_user::bpffs::pin_dir(&hosts[0].instance)).unwrap();
    let ports: Vec<u32> = m.ports().unwrap().into_keys().collect();
    assert!(!ports.contains(&(old_idx as u32)), "old ifindex gone from PORTS: {ports:?}");
    assert!(
        m.fdb.iter().filter_map(|r| r.ok()).all(|(_, e)| e.ifindex != old_idx as u32),
        "no FDB entry points at the old ifindex"
    );
}

/// A peer host vanishes (namespace deleted) mid-traffic: the others keep
/// forwarding without loss; removing it as a peer stops the copies to it.
#[test]
fn peer_host_disappears() {
    let (mut hosts, _u, mut vms) = hosts_with_vms(3);
    for (i, h) in hosts.iter().enumerate() {
        h.up(&blue_host(i, 3));
    }
    vms[0].ping("203.0.113.2").expect("ping 2");
    vms[0].ping("203.0.113.3").expect("ping 3");
    // No tenant ARP from here on (a broadcast rightly reaches every peer,
    // and a probe of a stale entry between VMs 1 and 2 would be counted
    // below): the VMs' neighbour entries are pinned.
    vms[0].ns.sh("ip neigh replace 203.0.113.3 lladdr 02:00:00:00:00:03 dev eth0 nud permanent && \
         ip neigh replace 203.0.113.2 lladdr 02:00:00:00:00:02 dev eth0 nud permanent");
    vms[1].ns.sh("ip neigh replace 203.0.113.1 lladdr 02:00:00:00:00:01 dev eth0 nud permanent");
    let ping = vms[0].ns.spawn("exec ping -c 200 -i 0.01 -W 2 203.0.113.2");
    std::thread::sleep(Duration::from_millis(500));
    let gone = hosts.pop().unwrap();
    drop(vms.pop());
    overlay_tests::netns::host_sh(&format!("ip netns del {}", gone.ns.name));
    let pinged = ping_counts(&ping.wait_with_output().expect("ping"));
    assert_eq!(pinged, (200, 200), "host 2 unaffected by host 3 vanishing");
    // Unicast to the vanished VM still leaves, encapsulated for its VTEP:
    // the switch floods it to host 2, whose program leaves it to the stack.
    let (decap1, rx_vm1) = (hosts[1].counter("decap"), vms[1].ns.rx_packets("eth0"));
    let _ = vms[0].ns.try_sh("ping -c 3 -i 0.2 -W 1 203.0.113.3");
    assert_eq!(hosts[1].counter("decap"), decap1, "nothing for host 3 is decapsulated on host 2");
    assert_eq!(vms[1].ns.rx_packets("eth0"), rx_vm1, "nor delivered to its VM");
    // Peer removed: a broadcast now makes exactly one remote copy.
    hosts[0].up(&blue_host(0, 2));
    let f = hosts[0].counter("flood_remote_copies");
    send_frame(
        &vms[0].ns,
        "eth0",
        "Ether(dst='ff:ff:ff:ff:ff:ff', src='02:00:00:00:00:01')/ARP(pdst='203.0.113.77')",
    );
    assert_eq!(hosts[0].counter("flood_remote_copies") - f, 1, "one copy, to host 2");
    drop(gone);
}
