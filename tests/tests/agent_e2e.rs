//! The control plane end to end: a 3-member etcd cluster on the underlay,
//! hosts with no peer lists running `overlayctl agent`.

use std::time::{Duration, Instant};

use overlay_tests::{
    conf::*,
    etcd::{self, Agent, Etcd, control_rows, control_status, remote_vteps},
    lab::*,
};

/// Host `i`: network blue (VNI 100) with no peers, flood_unknown off,
/// its tenant's MAC and address registered statically on vm1 (published
/// with the address, so the others answer its ARP locally).
fn agent_host(i: usize, lease_ttl: u32) -> Config {
    let mut c = Config {
        networks: vec![Network { flood_unknown: false, ..vxlan("blue", 100, &[]) }],
        ports: vec![access("vm1", "blue")],
        control: Some(etcd::control(lease_ttl)),
        ..config(&host_ip(i))
    };
    let mut f = fdb_port(&format!("02:00:00:00:00:{:02x}", i + 1), "blue", "vm1");
    f.ip = vec![format!("203.0.113.{}", i + 1).parse().unwrap()];
    c.fdb.push(f);
    c
}

fn vm_mac(i: usize) -> String {
    format!("02:00:00:00:00:{:02x}", i + 1)
}

/// What host `me` of `n` should have installed: the others' VTEPs and MACs.
fn expected(me: usize, n: usize) -> (Vec<String>, Vec<(String, String, String)>) {
    let others: Vec<usize> = (0..n).filter(|j| *j != me).collect();
    let vteps = others.iter().map(|j| host_ip(*j)).collect();
    let rows =
        others.iter().map(|j| ("blue".into(), vm_mac(*j), format!("remote:{}", host_ip(*j)))).collect();
    (vteps, rows)
}

fn converged(hosts: &[Host], live: &[usize]) -> bool {
    live.iter().enumerate().all(|(k, &i)| {
        let (mut vteps, mut rows) = (Vec::new(), Vec::new());
        for (m, &j) in live.iter().enumerate() {
            if m != k {
                vteps.push(host_ip(j));
                rows.push(("blue".to_string(), vm_mac(j), format!("remote:{}", host_ip(j))));
            }
        }
        vteps.sort();
        rows.sort();
        remote_vteps(&hosts[i], "blue") == vteps && control_rows(&hosts[i]) == rows
    })
}

fn sum(hosts: &[Host], counter: &str) -> u64 {
    hosts.iter().map(|h| h.counter(counter)).sum()
}

#[test]
fn a_joining_host_is_known_everywhere_within_2s_without_flooding() {
    let (hosts, u, vms) = hosts_with_vms(3);
    let _etcd = Etcd::start(&u);
    let mut agents = Vec::new();
    for (i, h) in hosts.iter().enumerate().take(2) {
        agents.push(Agent::start(h, &agent_host(i, 10), ""));
    }
    wait_until("hosts 1 and 2 know each other", 10, || converged(&hosts, &[0, 1]));
    // Host 3 joins: measured from the moment its agent is connected.
    agents.push(Agent::start(&hosts[2], &agent_host(2, 10), ""));
    let t = Instant::now();
    wait_until("every host knows host 3 and its MAC", 2, || converged(&hosts, &[0, 1, 2]));
    eprintln!("converged {} ms after host 3's agent connected", t.elapsed().as_millis());
    for (i, h) in hosts.iter().enumerate() {
        assert_eq!(expected(i, 3).0, remote_vteps(h, "blue"), "host {i} flood set");
        assert_eq!(expected(i, 3).1, control_rows(h), "host {i} control entries");
    }
    // Traffic between all three: ARP answered locally, unicast encapsulated,
    // nothing flooded to learn anything.
    for (i, vm) in vms.iter().enumerate() {
        for j in (0..3).filter(|j| *j != i) {
            vm.ping(&format!("203.0.113.{}", j + 1)).unwrap_or_else(|e| panic!("vm{i} -> vm{j}: {e}"));
        }
    }
    assert_eq!(sum(&hosts, "flood_remote_copies"), 0, "nothing flooded over the overlay");
    assert!(sum(&hosts, "arp_suppressed") >= 6, "every first ARP answered locally");
    assert!(sum(&hosts, "encap") >= 12, "2 echo requests and replies per pair");
    let s = control_status(&hosts[0]).unwrap();
    assert_eq!((s["remote_vteps"].as_u64(), s["remote_macs"].as_u64()), (Some(2), Some(2)), "{s}");
    assert_eq!(s["local_macs"], 1, "{s}");
    drop(agents);
}

#[test]
fn unknown_unicast_is_dropped_and_counted_with_flood_unknown_off() {
    let (hosts, u, vms) = hosts_with_vms(2);
    let _etcd = Etcd::start(&u);
    let _a: Vec<Agent> =
        hosts.iter().enumerate().map(|(i, h)| Agent::start(h, &agent_host(i, 10), "")).collect();
    wait_until("converged", 10, || converged(&hosts, &[0, 1]));
    // One agent per instance.
    let path = std::env::temp_dir().join(format!("{}-agent.toml", hosts[0].instance));
    let e = hosts[0].try_ctl(&format!("agent -c {}", path.display())).expect_err("a second agent");
    assert!(e.contains("an agent already runs"), "{e}");
    let before = hosts[0].counter("drop_unknown_unicast");
    // A unicast frame to a MAC nobody registered.
    vms[0].ns.sh(
        "/usr/bin/python3 -c \"from scapy.all import *; \
         sendp(Ether(src='02:00:00:00:00:01', dst='02:00:00:00:99:99')/IP(src='203.0.113.1', dst='203.0.113.99')/UDP(), iface='eth0', verbose=0)\"",
    );
    wait_until("drop_unknown_unicast counted", 5, || hosts[0].counter("drop_unknown_unicast") == before + 1);
    assert_eq!(sum(&hosts, "flood_remote_copies"), 0);
    // Broadcast still floods (a gratuitous ARP for an address nobody has).
    vms[0].ns.sh("arping -U -c 1 -i eth0 203.0.113.1 >/dev/null 2>&1 || true");
    wait_until("broadcast flooded to host 2", 5, || hosts[0].counter("flood_remote_copies") == 1);
}

#[test]
fn kill9_and_restart_within_lease_ttl_changes_nothing_on_peers() {
    let ttl = 10;
    let (hosts, u, vms) = hosts_with_vms(2);
    let _etcd = Etcd::start(&u);
    let a0 = Agent::start(&hosts[0], &agent_host(0, ttl), "");
    let a1 = Agent::start(&hosts[1], &agent_host(1, ttl), "");
    wait_until("converged", 10, || converged(&hosts, &[0, 1]));
    let rows = control_rows(&hosts[0]);
    let flood_before = remote_vteps(&hosts[0], "blue");
    let lease = control_status(&hosts[1]).unwrap()["lease_id"].clone();
    assert!(lease.is_i64(), "{lease}");
    a1.kill9();
    // Forwarding goes on from the pinned state.
    vms[0].ping("203.0.113.2").expect("ping with host 2's agent dead");
    // Restarted well within the TTL; host 1 must not see host 2 leave.
    let restarted = Agent::spawn(&hosts[1], &agent_host(1, ttl), "");
    let end = Instant::now() + Duration::from_secs(4);
    while Instant::now() < end {
        assert_eq!(remote_vteps(&hosts[0], "blue"), flood_before, "host 1's flood set flapped");
        assert_eq!(control_rows(&hosts[0]), rows, "host 1's FDB flapped");
        std::thread::sleep(Duration::from_millis(100));
    }
    restarted.wait_connected(&hosts[1]);
    let s = control_status(&hosts[1]).unwrap();
    assert_eq!((s["remote_vteps"].as_u64(), s["remote_macs"].as_u64()), (Some(1), Some(1)), "{s}");
    assert_eq!(s["lease_id"], lease, "the restarted agent kept its lease");
    vms[1].ping("203.0.113.1").expect("ping after the restart");
    drop((a0, restarted));
}

#[test]
fn a_host_whose_agent_stays_dead_is_dropped_after_lease_ttl() {
    let ttl = 3;
    let (hosts, u, _vms) = hosts_with_vms(2);
    let _etcd = Etcd::start(&u);
    let _a0 = Agent::start(&hosts[0], &agent_host(0, ttl), "");
    let a1 = Agent::start(&hosts[1], &agent_host(1, ttl), "");
    wait_until("converged", 10, || converged(&hosts, &[0, 1]));
    a1.kill9();
    let t = Instant::now();
    // etcd expires the lease lease_ttl after the last keep-alive (at most
    // lease_ttl after the kill) and checks every 500 ms; the agent installs
    // within 100 ms. Measured here: lease_ttl + 0.4 s. The deadline leaves
    // a loaded machine a second more.
    wait_until("host 2 dropped after lease_ttl + 2 s", u64::from(ttl) + 2, || {
        remote_vteps(&hosts[0], "blue").is_empty() && control_rows(&hosts[0]).is_empty()
    });
    eprintln!("dropped {} ms after kill -9 (lease_ttl {ttl} s)", t.elapsed().as_millis());
    let s: serde_json::Value = serde_json::from_str(&hosts[0].ctl("-j status")).unwrap();
    assert_eq!(s["networks"][0]["remote_vteps"].as_array().unwrap().len(), 0);
}

#[test]
fn down_and_leave_revoke_the_lease_at_once() {
    let ttl = 30;
    let (hosts, u, _vms) = hosts_with_vms(3);
    let etcd = Etcd::start(&u);
    let _a0 = Agent::start(&hosts[0], &agent_host(0, ttl), "");
    let a1 = Agent::start(&hosts[1], &agent_host(1, ttl), "--leave");
    let _a2 = Agent::start(&hosts[2], &agent_host(2, ttl), "");
    wait_until("converged", 10, || converged(&hosts, &[0, 1, 2]));
    // agent --leave, stopped: gone from every peer long before the TTL.
    a1.stop();
    wait_until("host 2 dropped after --leave", 2, || converged(&hosts, &[0, 2]));
    // overlayctl down while the agent runs: revoked, and the agent exits.
    hosts[2].ctl("down");
    wait_until("host 3 dropped after down", 2, || {
        remote_vteps(&hosts[0], "blue").is_empty() && control_rows(&hosts[0]).is_empty()
    });
    let left: Vec<String> = etcd.keys("/overlay/");
    assert_eq!(
        left,
        ["/overlay/v1/vni/100/mac/02:00:00:00:00:01", "/overlay/v1/vni/100/vtep/192.0.2.1"],
        "only host 1's keys remain"
    );
}

#[test]
fn bad_data_under_the_prefix_is_ignored_and_counted() {
    let (hosts, u, _vms) = hosts_with_vms(2);
    let etcd = Etcd::start(&u);
    let _a: Vec<Agent> =
        hosts.iter().enumerate().map(|(i, h)| Agent::start(h, &agent_host(i, 10), "")).collect();
    wait_until("converged", 10, || converged(&hosts, &[0, 1]));
    let vtep = |host: &str, addr: &str| format!(r#"{{"host":"{host}","address":"{addr}","port":4789}}"#);
    etcd.put("/overlay/v1/vni/100/vtep/192.0.2.9", "{garbage");
    etcd.put("/overlay/v1/vni/100/vtep/192.0.2.8", &vtep("x", "192.0.2.7"));
    etcd.put("/overlay/v1/vni/100/vtep/192.0.2.1", &vtep("impostor", "192.0.2.1"));
    etcd.put("/overlay/v1/vni/999/vtep/192.0.2.6", &vtep("y", "192.0.2.6"));
    // Host 2 never registered 02:..:03; host 1 has 02:..:01 locally.
    etcd.put("/overlay/v1/vni/100/mac/02:00:00:00:00:03", r#"{"vtep":"192.0.2.1","ips":[]}"#);
    etcd.put("/overlay/v1/vni/100/mac/02:00:00:00:00:01", "{garbage");
    etcd.put("/overlay/v1/whatever", "x");
    wait_until("seven refusals counted", 5, || {
        control_status(&hosts[0]).is_some_and(|s| {
            let i = &s["ignored"];
            [
                ("bad_value", 2),
                ("address_mismatch", 1),
                ("own_address", 2),
                ("unknown_vni", 1),
                ("bad_key", 1),
            ]
            .iter()
            .all(|(k, n)| i[*k] == *n)
        })
    });
    // Never installed: host 1 still has exactly host 2 and its MAC, and it
    // put its own MAC's key back.
    assert_eq!(remote_vteps(&hosts[0], "blue"), ["192.0.2.2"]);
    assert_eq!(control_rows(&hosts[0]), [("blue".into(), vm_mac(1), "remote:192.0.2.2".into())]);
    assert_eq!(hosts[0].fdb_entry("blue", &vm_mac(0)).expect("own MAC")["type"], "static");
    wait_until("host 1 republished its MAC", 5, || {
        etcd.get("/overlay/v1/vni/100/mac/02:00:00:00:00:01").contains("192.0.2.1")
    });
}

/// Sends one frame from `src` (a MAC not yet known) out of `vm`'s eth0.
fn send_from(vm: &Vm, src: &str) {
    vm.ns.sh(&format!(
        "/usr/bin/python3 -c \"from scapy.all import *; \
         sendp(Ether(src='{src}', dst='ff:ff:ff:ff:ff:ff')/ARP(psrc='203.0.113.200', pdst='203.0.113.201'), iface='eth0', verbose=0)\""
    ));
}

#[test]
fn learned_macs_are_published_from_the_datapath_events_and_withdrawn_when_they_age() {
    let (hosts, u, vms) = hosts_with_vms(2);
    let etcd = Etcd::start(&u);
    let mut c1 = agent_host(1, 10);
    c1.ageing = 3;
    let _a0 = Agent::start(&hosts[0], &agent_host(0, 10), "");
    let _a1 = Agent::start(&hosts[1], &c1, "");
    wait_until("converged", 10, || converged(&hosts, &[0, 1]));
    let key = "/overlay/v1/vni/100/mac/02:00:00:00:00:42";
    send_from(&vms[1], "02:00:00:00:00:42");
    wait_until("learned MAC published", 2, || etcd.get(key).contains("192.0.2.2"));
    wait_until("installed on host 1", 2, || {
        hosts[0].fdb_entry("blue", "02:00:00:00:00:42").is_some_and(|r| r["type"] == "control")
    });
    assert_eq!(hosts[1].counter("fdb_events_lost"), 0);
    // Idle for longer than ageing (3 s): withdrawn, and gone from host 1.
    wait_until("aged MAC withdrawn", 6, || etcd.get(key).is_empty());
    wait_until("removed on host 1", 2, || hosts[0].fdb_entry("blue", "02:00:00:00:00:42").is_none());
    // Back: the datapath reports it again.
    send_from(&vms[1], "02:00:00:00:00:42");
    wait_until("published again", 2, || etcd.get(key).contains("192.0.2.2"));
}

#[test]
fn etcd_outage_forwarding_goes_on_and_changes_are_reconciled_after() {
    let ttl = 4;
    let (hosts, u, vms) = hosts_with_vms(3);
    let mut etcd = Etcd::start(&u);
    let _a0 = Agent::start(&hosts[0], &agent_host(0, ttl), "");
    let _a1 = Agent::start(&hosts[1], &agent_host(1, ttl), "");
    let a2 = Agent::start(&hosts[2], &agent_host(2, ttl), "");
    wait_until("converged", 10, || converged(&hosts, &[0, 1, 2]));
    etcd.stop_all();
    wait_until("host 1's agent says it lost etcd", 15, || {
        control_status(&hosts[0]).is_some_and(|s| s["connected"] == false && s["last_error"].is_string())
    });
    vms[0].ping("203.0.113.2").expect("forwarding goes on without etcd");
    vms[0].ping("203.0.113.3").expect("forwarding goes on without etcd");
    // Meanwhile host 3 goes away for good (its lease cannot be revoked now).
    a2.kill9();
    hosts[2].ctl("down");
    etcd.start_all();
    wait_until("host 1 connected again", 20, || {
        control_status(&hosts[0]).is_some_and(|s| s["connected"] == true)
    });
    // Host 3's lease expires (etcd restarts leases with their full TTL).
    wait_until("host 3 gone everywhere, nothing else changed", u64::from(ttl) + 10, || {
        converged(&hosts, &[0, 1])
    });
    vms[0].ping("203.0.113.2").expect("ping after etcd came back");
    let s = control_status(&hosts[0]).unwrap();
    assert!(s["retries"] == 0 && s["last_error"].is_string(), "{s}");
    assert_eq!(
        etcd.keys("/overlay/"),
        [
            "/overlay/v1/vni/100/mac/02:00:00:00:00:01",
            "/overlay/v1/vni/100/mac/02:00:00:00:00:02",
            "/overlay/v1/vni/100/vtep/192.0.2.1",
            "/overlay/v1/vni/100/vtep/192.0.2.2"
        ],
        "no duplicates, no leftovers"
    );
}

#[test]
fn a_host_cut_off_past_a_compaction_relists_and_reconciles() {
    let (hosts, u, vms) = hosts_with_vms(3);
    let etcd = Etcd::start(&u);
    let _a0 = Agent::start(&hosts[0], &agent_host(0, 15), "");
    let _a1 = Agent::start(&hosts[1], &agent_host(1, 15), "");
    let a2 = Agent::start(&hosts[2], &agent_host(2, 15), "--leave");
    wait_until("converged", 10, || converged(&hosts, &[0, 1, 2]));
    let relists = control_status(&hosts[0]).unwrap()["relists"].as_u64().unwrap();
    // Host 1 is cut off from the underlay (and so from etcd).
    hosts[0].ns.sh("ip link set u0 down");
    wait_until("host 1's agent notices", 15, || {
        control_status(&hosts[0]).is_some_and(|s| s["connected"] == false)
    });
    // Meanwhile: host 3 leaves, its tenant's MAC moves to host 2 (learned
    // there), and the history is compacted.
    a2.stop();
    let moved = "/overlay/v1/vni/100/mac/02:00:00:00:00:03";
    wait_until("host 3's keys gone", 5, || etcd.get(moved).is_empty());
    wait_until("host 2 dropped host 3's MAC", 5, || hosts[1].fdb_entry("blue", &vm_mac(2)).is_none());
    send_from(&vms[1], &vm_mac(2));
    wait_until("the moved MAC published by host 2", 5, || etcd.get(moved).contains("192.0.2.2"));
    etcd.compact(etcd.revision());
    hosts[0].ns.sh("ip link set u0 up");
    wait_until("host 1 connected again", 20, || {
        control_status(&hosts[0]).is_some_and(|s| s["connected"] == true)
    });
    wait_until("host 1 reconciled", 5, || {
        remote_vteps(&hosts[0], "blue") == ["192.0.2.2"]
            && control_rows(&hosts[0])
                == [
                    ("blue".into(), vm_mac(1), "remote:192.0.2.2".into()),
                    ("blue".into(), vm_mac(2), "remote:192.0.2.2".into()),
                ]
    });
    let s = control_status(&hosts[0]).unwrap();
    assert_eq!(s["relists"].as_u64(), Some(relists + 1), "one full list after the compaction: {s}");
}

#[test]
fn one_etcd_member_killed_costs_nothing() {
    let (hosts, u, vms) = hosts_with_vms(3);
    let mut etcd = Etcd::start(&u);
    let _a0 = Agent::start(&hosts[0], &agent_host(0, 10), "");
    let _a1 = Agent::start(&hosts[1], &agent_host(1, 10), "");
    wait_until("converged", 10, || converged(&hosts, &[0, 1]));
    let before: Vec<serde_json::Value> = hosts.iter().take(2).map(|h| control_status(h).unwrap()).collect();
    etcd.kill_member(0);
    // A host joins while the cluster runs on two members.
    let _a2 = Agent::start(&hosts[2], &agent_host(2, 10), "");
    wait_until("converged on two members", 10, || converged(&hosts, &[0, 1, 2]));
    vms[0].ping("203.0.113.3").expect("ping the new host");
    for (i, b) in before.iter().enumerate() {
        let s = control_status(&hosts[i]).unwrap();
        assert_eq!(s["connected"], true, "{s}");
        assert_eq!(s["lease_id"], b["lease_id"], "host {i} kept its lease");
        let sessions = s["sessions"].as_u64().unwrap() - b["sessions"].as_u64().unwrap();
        assert!(sessions <= 1, "no reconnect storm: {sessions} new sessions: {s}");
        assert_ne!(s["endpoint"], "http://192.0.2.250:2379", "not on the dead member: {s}");
    }
}

#[test]
fn tls_with_client_certificates() {
    let (hosts, u, vms) = hosts_with_vms(2);
    let etcd = Etcd::start_tls(&u);
    let tls = etcd.tls.as_ref().unwrap();
    let with_tls = |i: usize, client_cert: bool| {
        let mut c = agent_host(i, 10);
        let ctl = c.control.as_mut().unwrap();
        ctl.etcd = ctl.etcd.iter().map(|e| e.replace("http://", "https://")).collect();
        ctl.ca = Some(tls.file("ca.crt"));
        if client_cert {
            ctl.cert = Some(tls.file("client.crt"));
            ctl.key = Some(tls.file("client.key"));
        }
        c
    };
    // Without a client certificate the cluster refuses it: the agent says so.
    let refused = Agent::spawn(&hosts[1], &with_tls(1, false), "");
    wait_until("the refused agent reports its error", 20, || {
        control_status(&hosts[1]).is_some_and(|s| s["connected"] == false && s["last_error"].is_string())
    });
    refused.stop();
    let _a: Vec<Agent> = (0..2).map(|i| Agent::start(&hosts[i], &with_tls(i, true), "")).collect();
    wait_until("converged over TLS", 10, || converged(&hosts, &[0, 1]));
    vms[0].ping("203.0.113.2").expect("ping");
}

#[test]
fn etcd_authentication_with_a_password_file() {
    let (hosts, u, vms) = hosts_with_vms(2);
    let mut etcd = Etcd::start(&u);
    etcd.enable_auth("s3cret");
    let dir = std::env::temp_dir().join(format!("{}-auth", hosts[0].instance));
    std::fs::create_dir_all(&dir).unwrap();
    let with_password = |i: usize, pw: &str| {
        let f = dir.join(format!("pw{i}-{}", pw.len()));
        std::fs::write(&f, format!("{pw}\n")).unwrap();
        let mut c = agent_host(i, 10);
        let ctl = c.control.as_mut().unwrap();
        ctl.username = Some("root".into());
        ctl.password_file = Some(f);
        c
    };
    let refused = Agent::spawn(&hosts[1], &with_password(1, "wrong"), "");
    wait_until("the refused agent reports its error", 20, || {
        control_status(&hosts[1]).is_some_and(|s| {
            s["connected"] == false
                && s["last_error"].as_str().is_some_and(|e| e.contains("authentication failed"))
        })
    });
    refused.stop();
    let _a: Vec<Agent> = (0..2).map(|i| Agent::start(&hosts[i], &with_password(i, "s3cret"), "")).collect();
    wait_until("converged with authentication", 10, || converged(&hosts, &[0, 1]));
    vms[0].ping("203.0.113.2").expect("ping");
    assert_eq!(etcd.keys("/overlay/").len(), 4, "two VTEP and two MAC keys");
    let _ = std::fs::remove_dir_all(&dir);
}

/// 130 other VTEPs registered for one network: all of them peers, 128 in
/// the flood set, and the 2 left out reported (status, both forms).
#[test]
fn more_vteps_than_a_flood_set_holds_is_reported_not_truncated_silently() {
    let (hosts, u, _vms) = hosts_with_vms(1);
    let etcd = Etcd::start(&u);
    let _a = Agent::start(&hosts[0], &agent_host(0, 10), "");
    for i in 1..=130 {
        let addr = format!("198.51.100.{i}");
        etcd.put(
            &format!("/overlay/v1/vni/100/vtep/{addr}"),
            &format!(r#"{{"host":"sim{i}","address":"{addr}","port":4789}}"#),
        );
    }
    wait_until("130 VTEPs installed", 10, || remote_vteps(&hosts[0], "blue").len() == 130);
    let s: serde_json::Value = serde_json::from_str(&hosts[0].ctl("-j status")).unwrap();
    assert_eq!(s["networks"][0]["flood_overflow"], 2, "{}", s["networks"][0]);
    wait_until("the agent reports it", 5, || {
        control_status(&hosts[0]).is_some_and(|c| c["flood_overflow"]["blue"] == 2)
    });
    let text = hosts[0].ctl("status");
    assert!(text.contains("ERROR: 2 VTEPs beyond the flood set's capacity are not flooded to"), "{text}");
}

/// `monitor -j --learn` on host 0, its lines read by a thread.
struct Monitor {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<serde_json::Value>,
}

impl Monitor {
    fn start(h: &Host) -> Monitor {
        use std::io::BufRead;
        let mut child =
            h.ns.spawn(&format!("exec {} --name {} -j monitor --learn", overlayctl().display(), h.instance));
        let mut err = std::io::BufReader::new(child.stderr.take().expect("stderr"));
        let mut first = String::new();
        err.read_line(&mut first).expect("monitor stderr");
        assert!(first.contains("monitoring"), "monitor did not start: {first}");
        let out = std::io::BufReader::new(child.stdout.take().expect("stdout"));
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for l in out.lines().map_while(Result::ok) {
                if tx.send(serde_json::from_str(&l).expect("event json")).is_err() {
                    break;
                }
            }
        });
        Monitor { child, lines }
    }

    /// Control-plane events (kind, location, MAC) received until `want`
    /// of them arrived (10 s at most), then any stragglers for 1 s.
    fn control_events(&self, want: usize) -> Vec<(String, String, String)> {
        let mut got = Vec::new();
        let end = Instant::now() + Duration::from_secs(10);
        while got.len() < want && Instant::now() < end {
            if let Ok(v) = self.lines.recv_timeout(Duration::from_millis(100)) {
                got.push(v);
            }
        }
        while let Ok(v) = self.lines.recv_timeout(Duration::from_secs(1)) {
            got.push(v);
        }
        let mut out: Vec<(String, String, String)> = got
            .iter()
            .filter(|e| {
                ["installed", "withdrawn", "vtep_added", "vtep_removed"]
                    .contains(&e["type"].as_str().unwrap())
            })
            .map(|e| {
                let s = |k: &str| e[k].as_str().unwrap_or("-").to_string();
                (s("type"), s("location"), s("mac"))
            })
            .collect();
        out.sort();
        out
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn monitor_reports_control_plane_installs_and_withdrawals() {
    let (hosts, u, _vms) = hosts_with_vms(3);
    let _etcd = Etcd::start(&u);
    let _a0 = Agent::start(&hosts[0], &agent_host(0, 30), "");
    let m = Monitor::start(&hosts[0]);
    let a1 = Agent::start(&hosts[1], &agent_host(1, 30), "--leave");
    let _a2 = Agent::start(&hosts[2], &agent_host(2, 30), "");
    wait_until("converged", 10, || converged(&hosts, &[0, 1, 2]));
    let t = |k: &str, ip: &str, mac: &str| (k.to_string(), format!("remote:{ip}"), mac.to_string());
    assert_eq!(
        m.control_events(4),
        [
            t("installed", "192.0.2.2", &vm_mac(1)),
            t("installed", "192.0.2.3", &vm_mac(2)),
            t("vtep_added", "192.0.2.2", "-"),
            t("vtep_added", "192.0.2.3", "-"),
        ],
        "one event per VTEP and MAC installed"
    );
    a1.stop();
    wait_until("host 2 dropped after --leave", 5, || converged(&hosts, &[0, 2]));
    assert_eq!(
        m.control_events(2),
        [t("vtep_removed", "192.0.2.2", "-"), t("withdrawn", "192.0.2.2", &vm_mac(1))],
        "one event per VTEP and MAC withdrawn"
    );
}
