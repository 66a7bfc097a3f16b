//! The CNI plugin driven the way runtimes drive it (CNI_* environment,
//! configuration on stdin, Debian's host-local for IPAM): ADD, CHECK, DEL,
//! DEL again, VERSION, the spec's error codes with nothing left half-made,
//! 50 ADDs in parallel; and a tap port for a VM.

use std::path::PathBuf;

use overlay_tests::{
    cni::{CniDir, attach_call, call, host_ends},
    conf::blue_host,
    etcd::{self, Agent, Etcd, control_rows, control_status},
    lab::{Host, Underlay, Vm, hosts_with_vms, wait_until},
    netns::Netns,
};
use serde_json::{Value, json};

fn netns_path(ns: &Netns) -> PathBuf {
    PathBuf::from(format!("/run/netns/{}", ns.name))
}

fn up_both(hosts: &[Host]) {
    for (i, h) in hosts.iter().enumerate() {
        h.up(&blue_host(i, 2));
    }
}

fn runtime_ports(h: &Host) -> Vec<String> {
    let st: Value = serde_json::from_str(&h.ctl("-j status")).expect("status json");
    let ports = st["networks"][0]["ports"].as_array().cloned().unwrap_or_default();
    ports.iter().filter_map(|p| p.as_str().map(String::from)).collect()
}

#[test]
fn add_check_del_del_again_and_version() {
    let (hosts, _u, vms) = hosts_with_vms(2);
    up_both(&hosts);
    let dir = CniDir::new();
    let c = Netns::new("ct");
    let conf = dir.conf("1.0.0", "blue", 100, 199);
    let r = attach_call(&hosts[0], &dir, "ADD", "ctr-a", &netns_path(&c), &conf).expect("ADD");
    // The result: host end, container end in its sandbox, the address on it.
    assert_eq!(r["cniVersion"], "1.0.0", "{r}");
    let host_end = r["interfaces"][0]["name"].as_str().expect("host interface").to_string();
    assert_eq!(r["interfaces"][1]["name"], "eth0");
    assert_eq!(r["interfaces"][1]["sandbox"], netns_path(&c).display().to_string());
    let ip = json!([{"address": "203.0.113.100/24", "gateway": "203.0.113.1", "interface": 1}]);
    assert_eq!(r["ips"], ip, "{r}");
    let mac = r["interfaces"][1]["mac"].as_str().expect("mac").to_string();
    assert_eq!(c.sh("cat /sys/class/net/eth0/address").trim(), mac);
    assert_eq!(c.sh("cat /sys/class/net/eth0/mtu").trim(), "1450", "underlay MTU - 50 by default");
    assert!(c.sh("ip -4 addr show eth0").contains("203.0.113.100/24"));
    assert_eq!(dir.leases("ovl"), ["203.0.113.100"]);
    // A port of blue with a static entry carrying the address.
    assert!(runtime_ports(&hosts[0]).contains(&host_end), "{:?}", runtime_ports(&hosts[0]));
    let e = hosts[0].fdb_entry("blue", &mac).expect("static entry for the container");
    assert_eq!(e["type"], "static", "{e}");
    assert_eq!(e["location"], format!("port:{host_end}"), "{e}");
    assert!(hosts[0].ctl("neigh show").contains("203.0.113.100"), "address registered");
    c.try_sh("ping -c 2 -i 0.2 -W 1 203.0.113.2").expect("container reaches the VM on host 2");
    vms[1].ping("203.0.113.100").expect("and back");

    // CHECK against the result, then against a container that changed.
    let with_prev = |mut conf: Value, prev: &Value| {
        conf["prevResult"] = prev.clone();
        conf
    };
    attach_call(&hosts[0], &dir, "CHECK", "ctr-a", &netns_path(&c), &with_prev(conf.clone(), &r))
        .expect("CHECK");
    // Re-running up with the file keeps the attachment.
    hosts[0].up(&blue_host(0, 2));
    attach_call(&hosts[0], &dir, "CHECK", "ctr-a", &netns_path(&c), &with_prev(conf.clone(), &r))
        .expect("CHECK after up -c FILE");
    vms[1].ping("203.0.113.100").expect("attachment survives up -c FILE");
    c.sh("ip addr del 203.0.113.100/24 dev eth0");
    let e = attach_call(&hosts[0], &dir, "CHECK", "ctr-a", &netns_path(&c), &with_prev(conf.clone(), &r))
        .expect_err("CHECK of a container that lost its address");
    assert_eq!(e["code"], 100, "{e}");
    assert!(e["msg"].as_str().unwrap().contains("203.0.113.100"), "{e}");

    // DEL removes everything; DEL again succeeds.
    attach_call(&hosts[0], &dir, "DEL", "ctr-a", &netns_path(&c), &conf).expect("DEL");
    assert!(c.try_sh("ip link show eth0").is_err(), "container end gone");
    assert!(host_ends(&hosts[0]).is_empty(), "host end gone: {:?}", host_ends(&hosts[0]));
    assert!(!runtime_ports(&hosts[0]).contains(&host_end));
    assert!(hosts[0].fdb_entry("blue", &mac).is_none(), "static entry gone");
    assert!(!hosts[0].ctl("neigh show").contains("203.0.113.100"), "address gone");
    assert!(dir.leases("ovl").is_empty(), "address released: {:?}", dir.leases("ovl"));
    attach_call(&hosts[0], &dir, "DEL", "ctr-a", &netns_path(&c), &conf).expect("DEL again");
    c.sh("true");

    let v = call(&hosts[0], &[("CNI_COMMAND", "VERSION")], br#"{"cniVersion":"1.0.0"}"#).expect("VERSION");
    for ver in ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"] {
        assert!(v["supportedVersions"].as_array().unwrap().contains(&json!(ver)), "{ver}: {v}");
    }
}

#[test]
fn older_versions_get_results_of_their_version() {
    let (hosts, _u, _vms) = hosts_with_vms(2);
    up_both(&hosts);
    let dir = CniDir::new();
    for (i, v) in ["0.3.1", "0.4.0"].iter().enumerate() {
        let c = Netns::new("ct");
        let conf = dir.conf(v, "blue", 100, 199);
        let id = format!("old-{i}");
        let r = attach_call(&hosts[0], &dir, "ADD", &id, &netns_path(&c), &conf).expect("ADD");
        assert_eq!(r["cniVersion"], *v);
        assert_eq!(r["ips"][0]["version"], "4", "{v}: {r}");
        let mut check = conf.clone();
        check["prevResult"] = r.clone();
        let checked = attach_call(&hosts[0], &dir, "CHECK", &id, &netns_path(&c), &check);
        if *v == "0.3.1" {
            assert_eq!(checked.expect_err("no CHECK before 0.4.0")["code"], 1);
        } else {
            checked.expect("CHECK");
        }
        attach_call(&hosts[0], &dir, "DEL", &id, &netns_path(&c), &conf).expect("DEL");
    }
    assert!(dir.leases("ovl").is_empty());
}

#[test]
fn bad_input_gets_the_spec_codes_and_leaves_nothing() {
    let (hosts, _u, _vms) = hosts_with_vms(2);
    up_both(&hosts);
    let h = &hosts[0];
    let dir = CniDir::new();
    let c = Netns::new("ct");
    let ns = netns_path(&c);
    let good = dir.conf("1.0.0", "blue", 100, 199);
    let ports_before = runtime_ports(h);
    let edit = |f: &dyn Fn(&mut Value)| {
        let mut v = good.clone();
        f(&mut v);
        v
    };
    let cases: Vec<(&str, Value, u64, &str)> = vec![
        (
            "missing network",
            edit(&|v| v.as_object_mut().unwrap().remove("network").map(|_| ()).unwrap()),
            7,
            "network",
        ),
        ("unknown network", edit(&|v| v["network"] = json!("nosuch")), 7, "nosuch"),
        ("unknown instance", edit(&|v| v["instance"] = json!("ovt-nosuch")), 7, "ovt-nosuch"),
        ("unknown ipam plugin", edit(&|v| v["ipam"]["type"] = json!("nosuch-ipam")), 7, "nosuch-ipam"),
        ("ipam type missing", edit(&|v| v["ipam"] = json!({})), 7, "ipam"),
        (
            "bad ipam range",
            edit(&|v| v["ipam"]["ranges"][0][0]["subnet"] = json!("203.0.113.0/99")),
            0,
            "ipam host-local",
        ),
        ("mtu out of range", edit(&|v| v["mtu"] = json!(20)), 7, "mtu"),
        ("unsupported version", edit(&|v| v["cniVersion"] = json!("2.0.0")), 1, "2.0.0"),
    ];
    for (what, conf, code, says) in cases {
        let e = attach_call(h, &dir, "ADD", "bad", &ns, &conf).expect_err(what);
        if code != 0 {
            assert_eq!(e["code"], code, "{what}: {e}");
        }
        let text = format!("{} {}", e["msg"], e["details"]);
        assert!(text.contains(says), "{what}: {e}");
    }
    let e = call(h, &[("CNI_COMMAND", "ADD")], good.to_string().as_bytes()).expect_err("no CNI_CONTAINERID");
    assert_eq!(e["code"], 4, "{e}");
    let e = attach_call(h, &dir, "ADD", "bad", &ns, &json!("{")).expect_err("not a config");
    assert_eq!(e["code"], 6, "{e}");
    let e = attach_call(h, &dir, "ADD", "bad", &PathBuf::from("/run/netns/ovt-nosuch"), &good)
        .expect_err("no netns");
    assert_eq!(e["code"], 3, "{e}");
    // A failure after IPAM and the veth pair were made (the container has
    // an eth0 already): both are undone.
    c.sh("ip link add eth0 type veth peer name eth0p");
    let e = attach_call(h, &dir, "ADD", "bad", &ns, &good).expect_err("eth0 exists");
    assert!(e["details"].as_str().unwrap().contains("already exists"), "{e}");
    assert!(dir.leases("ovl").is_empty(), "address released on failure: {:?}", dir.leases("ovl"));
    assert!(host_ends(h).is_empty(), "no host end left: {:?}", host_ends(h));
    assert_eq!(runtime_ports(h), ports_before, "no port left");
    assert_eq!(c.sh("ls /sys/class/net").split_whitespace().count(), 3, "lo, eth0, eth0p only");
}

#[test]
fn fifty_parallel_adds_lose_and_duplicate_nothing() {
    let (hosts, _u, _vms) = hosts_with_vms(2);
    up_both(&hosts);
    let dir = std::sync::Arc::new(CniDir::new());
    let conf = dir.conf("1.0.0", "blue", 10, 99);
    let containers: Vec<Netns> = (0..50).map(|_| Netns::new("ct")).collect();
    let results: Vec<Value> = std::thread::scope(|s| {
        let handles: Vec<_> = containers
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let (h, dir, conf) = (&hosts[0], &dir, &conf);
                s.spawn(move || attach_call(h, dir, "ADD", &format!("par-{i}"), &netns_path(c), conf))
            })
            .collect();
        handles.into_iter().map(|t| t.join().expect("thread").expect("parallel ADD")).collect()
    });
    let mut ips: Vec<String> =
        results.iter().map(|r| r["ips"][0]["address"].as_str().unwrap().to_string()).collect();
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), 50, "distinct addresses");
    assert_eq!(dir.leases("ovl").len(), 50);
    let ports = runtime_ports(&hosts[0]);
    for r in &results {
        let host_end = r["interfaces"][0]["name"].as_str().unwrap();
        assert!(ports.iter().any(|p| p == host_end), "{host_end} is a port");
        let mac = r["interfaces"][1]["mac"].as_str().unwrap();
        assert!(hosts[0].fdb_entry("blue", mac).is_some(), "{mac} has its entry");
    }
    assert_eq!(ports.len(), 51, "vm1 and 50 containers: {ports:?}");
    // Every container reaches the VM on host 2 (one ping each).
    for c in &containers {
        c.try_sh("ping -c 1 -W 2 203.0.113.2").expect("container on the overlay");
    }
    std::thread::scope(|s| {
        for (i, c) in containers.iter().enumerate() {
            let (h, dir, conf) = (&hosts[0], &dir, &conf);
            s.spawn(move || {
                attach_call(h, dir, "DEL", &format!("par-{i}"), &netns_path(c), conf).expect("parallel DEL")
            });
        }
    });
    assert_eq!(runtime_ports(&hosts[0]), ["vm1"]);
    assert!(host_ends(&hosts[0]).is_empty());
    assert!(dir.leases("ovl").is_empty());
}

#[test]
fn status_and_gc_of_cni_1_1() {
    let (hosts, _u, _vms) = hosts_with_vms(2);
    up_both(&hosts);
    let dir = CniDir::new();
    let conf = dir.conf("1.1.0", "blue", 100, 199);
    let path = dir.path();
    let status =
        |h: &Host| call(h, &[("CNI_COMMAND", "STATUS"), ("CNI_PATH", &path)], conf.to_string().as_bytes());
    status(&hosts[0]).expect("STATUS with the instance up");
    let (a, b) = (Netns::new("ct"), Netns::new("ct"));
    let ra = attach_call(&hosts[0], &dir, "ADD", "keep", &netns_path(&a), &conf).expect("ADD a");
    assert_eq!(ra["interfaces"][1]["mtu"], 1450, "1.1.0 results carry the MTU");
    attach_call(&hosts[0], &dir, "ADD", "stale", &netns_path(&b), &conf).expect("ADD b");
    let mut gc = conf.clone();
    gc["cni.dev/valid-attachments"] = json!([{"containerID": "keep", "ifname": "eth0"}]);
    call(&hosts[0], &[("CNI_COMMAND", "GC"), ("CNI_PATH", &path)], gc.to_string().as_bytes()).expect("GC");
    assert_eq!(dir.leases("ovl"), ["203.0.113.100"], "the stale attachment's address is released");
    assert!(b.try_sh("ip link show eth0").is_err(), "stale attachment removed");
    a.sh("ip link show eth0");
    assert_eq!(runtime_ports(&hosts[0]).len(), 2, "vm1 and the kept attachment");
    hosts[0].ctl("down");
    let e = status(&hosts[0]).expect_err("STATUS with no instance");
    assert_eq!(e["code"], 50, "{e}");
}

#[test]
fn tap_port_carries_traffic_for_a_vm() {
    let (hosts, _u, vms) = hosts_with_vms(2);
    up_both(&hosts);
    hosts[0].ctl("port add tap0 --network blue --tap");
    let flags = hosts[0].ns.sh("cat /sys/class/net/tap0/tun_flags");
    assert_eq!(flags.trim(), "0x1802", "IFF_TAP | IFF_NO_PI | IFF_PERSIST, as `ip tuntap add mode tap`");
    // The "VM": a process on the tap's file descriptor.
    let bin = env!("CARGO_BIN_EXE_tapvm");
    let mut vm = hosts[0].ns.spawn(&format!("exec {bin} tap0 02:00:00:00:00:50 203.0.113.50"));
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(vm.stdout.as_mut().unwrap()), &mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready");
    vms[1].ping("203.0.113.50").expect("VM on host 2 reaches the tap VM on host 1");
    let e = hosts[0].fdb_entry("blue", "02:00:00:00:00:50").expect("tap VM learned");
    assert_eq!(e["location"], "port:tap0", "{e}");
    hosts[0].up(&blue_host(0, 2));
    vms[1].ping("203.0.113.50").expect("tap port survives up -c FILE");
    let _ = vm.kill();
    let _ = vm.wait();
    hosts[0].ctl("port del tap0");
    assert!(hosts[0].ns.try_sh("ip link show tap0").is_err(), "tap deleted with the port");
    let err = hosts[0].try_ctl("port add vm1 --network blue --tap").expect_err("existing interface");
    assert!(err.contains("already"), "{err}");
}

/// Two hosts with agents on one etcd cluster, network blue on VNI 100.
fn hosts_with_agents() -> (Vec<Host>, Underlay, Vec<Vm>, Etcd, Vec<Agent>) {
    use overlay_tests::conf::{Config, access, config, host_ip, vxlan};
    let (hosts, u, vms) = hosts_with_vms(2);
    let etcd = Etcd::start(&u);
    let cfg = |i: usize| Config {
        networks: vec![vxlan("blue", 100, &[])],
        ports: vec![access("vm1", "blue")],
        control: Some(etcd::control(10)),
        ..config(&host_ip(i))
    };
    let agents = hosts.iter().enumerate().map(|(i, h)| Agent::start(h, &cfg(i), "")).collect();
    (hosts, u, vms, etcd, agents)
}

fn mac_key(mac: &str) -> String {
    format!("/overlay/v1/vni/100/mac/{mac}")
}

#[test]
fn a_container_is_published_to_the_control_plane() {
    let (hosts, _u, vms, etcd, _agents) = hosts_with_agents();
    let dir = CniDir::new();
    let c = Netns::new("ct");
    let conf = dir.conf("1.0.0", "blue", 100, 199);
    let r = attach_call(&hosts[0], &dir, "ADD", "pub-a", &netns_path(&c), &conf).expect("ADD");
    let mac = r["interfaces"][1]["mac"].as_str().unwrap().to_string();
    let key = mac_key(&mac);
    wait_until("the container's MAC is in etcd", 5, || !etcd.get(&key).is_empty());
    let v: Value = serde_json::from_str(&etcd.get(&key)).expect("key value");
    assert_eq!(v["ips"], json!(["203.0.113.100"]), "{v}");
    assert_eq!(v["vtep"], "192.0.2.1", "{v}");
    let row = ("blue".to_string(), mac.clone(), "remote:192.0.2.1".to_string());
    wait_until("host 2 installed it", 5, || control_rows(&hosts[1]).contains(&row));
    assert!(hosts[1].ctl("neigh show").contains("203.0.113.100"), "host 2 answers ARP for it");
    vms[1].ping("203.0.113.100").expect("VM on host 2 reaches the container");
    attach_call(&hosts[0], &dir, "DEL", "pub-a", &netns_path(&c), &conf).expect("DEL");
    wait_until("withdrawn from etcd and from host 2", 5, || {
        etcd.get(&key).is_empty() && !control_rows(&hosts[1]).contains(&row)
    });
}

/// Whether process `pid` waits for a file lock (a `->` line of
/// /proc/locks: pid is the sixth field).
fn waits_for_a_lock(pid: u32) -> bool {
    let locks = std::fs::read_to_string("/proc/locks").expect("/proc/locks");
    let pid = pid.to_string();
    locks.lines().any(|l| l.contains("->") && l.split_whitespace().nth(5) == Some(pid.as_str()))
}

/// Whether every thread of `pid` is stopped (state T).
fn all_threads_stopped(pid: u32) -> bool {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("/proc/PID/task");
    tasks.flatten().all(|t| {
        let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
        // "tid (comm) STATE ...": comm may hold anything but the last ')'.
        stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('T'))
    })
}

/// SIGSTOP for a process of ours, returned once every thread stopped (a
/// thread waiting for a lock leaves the wait to stop; it waits again when
/// continued); SIGCONT when dropped.
struct Stopped(i32);

impl Stopped {
    fn new(pid: u32) -> Stopped {
        // SAFETY: signals a process this test started.
        assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGSTOP) }, 0, "SIGSTOP {pid}");
        let s = Stopped(pid as i32);
        wait_until("every thread of the agent stopped", 10, || all_threads_stopped(pid));
        s
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        // SAFETY: as above.
        unsafe { libc::kill(self.0, libc::SIGCONT) };
    }
}

#[test]
fn a_container_added_while_the_agent_waits_to_install_is_published() {
    // An ADD holds the instance's lock while it programs the datapath; an
    // agent install that waits for that lock reads the ADD's state back.
    // The agent once took that state for its own write and never published
    // the container (one CI run in four). Made certain here: the agent
    // waits for the lock, is stopped, the ADD runs, the agent goes on.
    let (hosts, _u, _vms, etcd, _agents) = hosts_with_agents();
    let pid = control_status(&hosts[0]).and_then(|c| c["pid"].as_u64()).expect("agent pid") as u32;
    let dir = CniDir::new();
    let conf = dir.conf("1.0.0", "blue", 100, 199);
    let lock = overlay_user::instance::lock(&hosts[0].instance).expect("the instance lock");
    // Another host's MAC: the agent has something to install.
    let vtep = r#"{"host":"other","address":"192.0.2.9","port":4789}"#;
    etcd.put("/overlay/v1/vni/100/vtep/192.0.2.9", vtep);
    wait_until("the agent waits for the instance lock to install", 10, || waits_for_a_lock(pid));
    let stopped = Stopped::new(pid);
    drop(lock);
    let c = Netns::new("ct");
    let r = attach_call(&hosts[0], &dir, "ADD", "late", &netns_path(&c), &conf).expect("ADD");
    let mac = r["interfaces"][1]["mac"].as_str().expect("mac").to_string();
    drop(stopped);
    wait_until("the agent installed the other host", 10, || {
        control_status(&hosts[0]).is_some_and(|c| c["remote_vteps"] == 2)
    });
    wait_until("the container's MAC is in etcd", 10, || !etcd.get(&mac_key(&mac)).is_empty());
    let v: Value = serde_json::from_str(&etcd.get(&mac_key(&mac))).expect("key value");
    assert_eq!(v, json!({"vtep": "192.0.2.1", "ips": ["203.0.113.100"]}));
}

#[test]
fn a_container_gone_without_del_blocks_nothing() {
    let (hosts, _u, _vms) = hosts_with_vms(2);
    up_both(&hosts);
    let dir = CniDir::new();
    let conf = dir.conf("1.0.0", "blue", 100, 199);
    let gone = Netns::new("ct");
    let r = attach_call(&hosts[0], &dir, "ADD", "gone", &netns_path(&gone), &conf).expect("ADD");
    let host_end = r["interfaces"][0]["name"].as_str().unwrap().to_string();
    // The runtime lost the container (its namespace deleted, no DEL): the
    // veth pair goes with it.
    let path = netns_path(&gone);
    drop(gone);
    let next = Netns::new("ct");
    attach_call(&hosts[0], &dir, "ADD", "next", &netns_path(&next), &conf).expect("the next ADD works");
    assert!(!runtime_ports(&hosts[0]).contains(&host_end), "the vanished port was dropped");
    hosts[0].up(&blue_host(0, 2));
    // DEL comes late: it still succeeds and releases the address.
    attach_call(&hosts[0], &dir, "DEL", "gone", &path, &conf).expect("late DEL");
    assert_eq!(dir.leases("ovl"), ["203.0.113.101"]);
}
