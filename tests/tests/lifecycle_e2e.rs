//! overlayctl lifecycle: idempotent re-apply, run-time changes, clear
//! errors that change nothing, and `down` leaving nothing behind.

use overlay_tests::conf::*;
use overlay_tests::lab::*;
use overlay_tests::netns::Netns;

fn up_both(hosts: &[Host]) {
    for (i, h) in hosts.iter().enumerate() {
        h.up(&blue_host(i, 2));
    }
}

#[test]
fn reapply_is_idempotent_and_keeps_learned_entries() {
    let (hosts, _u, vms) = hosts_with_vms(2);
    up_both(&hosts);
    vms[0].ping("203.0.113.2").expect("ping");
    let learned = hosts[0].fdb_entry("blue", "02:00:00:00:00:02").expect("learned");
    let encap = hosts[0].counter("encap");
    // Same file again, then a file with one more network and peer.
    hosts[0].up(&blue_host(0, 2));
    let mut with_red = blue_host(0, 2);
    with_red.networks.push(vxlan("red", 200, &["192.0.2.2"]));
    hosts[0].up(&with_red);
    let again = hosts[0].fdb_entry("blue", "02:00:00:00:00:02").expect("learned entry survives re-apply");
    assert_eq!(again["location"], learned["location"]);
    assert!(hosts[0].counter("encap") >= encap, "counters are not reset by up");
    let status: serde_json::Value = serde_json::from_str(&hosts[0].ctl("-j status")).unwrap();
    assert_eq!(status["networks"].as_array().unwrap().len(), 2);
    vms[0].ping("203.0.113.2").expect("still forwarding");
    // Removing the network again leaves blue alone.
    hosts[0].up(&blue_host(0, 2));
    vms[0].ping("203.0.113.2").expect("still forwarding after removal of red");
}

fn program_ids(h: &Host) -> Vec<u64> {
    let status: serde_json::Value = serde_json::from_str(&h.ctl("-j status")).unwrap();
    status["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["program_id"].as_u64().expect("attached"))
        .collect()
}

/// A re-run of `up` by the same binary reuses the programs it pinned (no
/// verifier run: the agent and the tests re-apply configs all the time);
/// pins of another object are replaced.
#[test]
fn reapply_reuses_pinned_programs_of_the_same_object() {
    let (hosts, _u, vms) = hosts_with_vms(2);
    up_both(&hosts);
    let first = program_ids(&hosts[0]);
    hosts[0].up(&blue_host(0, 2));
    assert_eq!(program_ids(&hosts[0]), first, "same object: the pinned programs stay");
    // Pins that came from another object (an upgrade) are loaded afresh.
    let object = overlay_user::bpffs::object_path(&hosts[0].instance);
    std::fs::write(&object, "another-object").expect("write object file");
    hosts[0].up(&blue_host(0, 2));
    let upgraded = program_ids(&hosts[0]);
    assert!(upgraded.iter().all(|id| !first.contains(id)), "reloaded: {first:?} -> {upgraded:?}");
    assert_ne!(std::fs::read_to_string(&object).unwrap(), "another-object");
    vms[0].ping("203.0.113.2").expect("forwarding with the reloaded programs");
}

#[test]
fn port_add_with_netns_creates_and_removes_the_veth() {
    let (hosts, _u, vms) = hosts_with_vms(2);
    up_both(&hosts);
    let c = Netns::new("ct");
    hosts[0].ctl(&format!("port add vm9 --network blue --netns {}", c.name));
    assert_eq!(c.sh("cat /sys/class/net/eth0/mtu").trim(), "1450", "container end gets underlay MTU - 50");
    c.sh("ip addr add 203.0.113.9/24 dev eth0");
    c.try_sh("ping -c 2 -i 0.2 -W 1 203.0.113.2").expect("container reaches the remote VM");
    vms[1].ping("203.0.113.9").expect("and back");
    // Re-running up with the same file keeps ports added at run time.
    hosts[0].up(&blue_host(0, 2));
    c.try_sh("ping -c 2 -i 0.2 -W 1 203.0.113.2").expect("run-time port survives up -c FILE");
    let e = hosts[0].try_ctl("port del vm1").expect_err("file port");
    assert!(e.contains("config file"), "{e}");
    hosts[0].ctl("port del vm9");
    assert!(c.try_sh("ip link show eth0").is_err(), "veth deleted with the port");
    assert!(hosts[0].fdb().iter().all(|r| r["location"] != "port:vm9"), "its FDB entries are gone");
    let err = hosts[0].try_ctl("port add vm1 --network blue").expect_err("duplicate port");
    assert!(err.contains("already a port"), "{err}");
    let err = hosts[0].try_ctl("port add vm8 --network nosuch --netns x").expect_err("unknown network");
    assert!(err.contains("unknown network"), "{err}");
    assert!(hosts[0].ns.try_sh("ip link show vm8").is_err(), "nothing created on error");
}

#[test]
fn errors_are_clear_and_change_nothing() {
    let (hosts, _u, vms) = hosts_with_vms(2);
    up_both(&hosts);
    vms[0].ping("203.0.113.2").expect("ping");
    let before = hosts[0].ctl("-j status");
    let mut no_such_port = blue_host(0, 2);
    no_such_port.ports.push(access("nope0", "blue"));
    let mut vni_0 = blue_host(0, 2);
    vni_0.networks[0].vni = Some(0);
    let mut with_fdb = blue_host(0, 2);
    with_fdb.fdb.push(fdb_port("02:00:00:00:00:77", "blue", "vm1"));
    let bad_mac = hosts[0].config_text(&with_fdb).replace("02:00:00:00:00:77", "zz:00:00:00:00:01");
    let other_size = Config { fdb_size: 1024, ..blue_host(0, 2) };
    let h = &hosts[0];
    let cases = [
        (h.config_text(&no_such_port), "port[1] \"nope0\""),
        (h.config_text(&vni_0), "vni 0 out of range"),
        (h.config_text(&other_size), "fdb_size cannot change"),
        (bad_mac, "not a MAC address"),
    ];
    for (text, want) in cases {
        let e = h.try_up_text(&text).expect_err(want);
        assert!(e.contains(want), "error should name {want:?}: {e}");
        assert_eq!(hosts[0].ctl("-j status"), before, "nothing changed after: {want}");
        vms[0].ping("203.0.113.2").expect("still forwarding");
    }
    let e = hosts[0]
        .try_ctl("fdb add 02:00:00:00:00:99 --network blue --remote 192.0.2.1")
        .expect_err("local VTEP");
    assert!(e.contains("local VTEP"), "{e}");
    let e = hosts[0].try_ctl("peer add 192.0.2.2 --network blue").expect_err("duplicate peer");
    assert!(e.contains("already"), "{e}");
}

#[test]
fn foreign_program_is_refused() {
    let (hosts, _u, _vms) = hosts_with_vms(2);
    hosts[0].up(&blue_host(0, 2));
    // Another instance's program is foreign to this one.
    let other = format!("{}x", hosts[0].instance);
    let cfg = std::env::temp_dir().join(format!("{other}.toml"));
    std::fs::write(&cfg, Config { name: other.clone(), ..blue_host(0, 2) }.to_toml()).unwrap();
    let ctl = overlayctl();
    let r = hosts[0].ns.try_sh(&format!("{} up -c {}", ctl.display(), cfg.display()));
    let e = r.expect_err("foreign program");
    assert!(e.contains("did not attach") && e.contains("--force"), "{e}");
    assert_eq!(hosts[0].ns.tcx_ingress("vm1"), ["tenant_ingress"], "nothing attached on refusal");
    // --force: attached anyway, first in the TCX chain.
    let forced = hosts[0].ns.try_sh(&format!("{} up --force -c {}", ctl.display(), cfg.display()));
    let chain = hosts[0].ns.tcx_ingress_programs("vm1");
    let status = hosts[0].ns.try_sh(&format!("{} --name {other} -j status", ctl.display()));
    let _ = hosts[0].ns.try_sh(&format!("{} down --name {other}", ctl.display()));
    let _ = std::fs::remove_file(&cfg);
    forced.expect("--force attaches");
    let status: serde_json::Value = serde_json::from_str(&status.expect("status")).unwrap();
    let ours = status["interfaces"].as_array().unwrap().iter().find(|i| i["interface"] == "vm1").unwrap()["program_id"]
        .as_u64()
        .unwrap();
    assert_eq!(chain.len(), 2, "{chain:?}");
    assert_eq!(chain[0].0 as u64, ours, "the forced program runs first: {chain:?}");
    assert_eq!(
        hosts[0].ns.tcx_ingress("vm1"),
        ["tenant_ingress"],
        "its down leaves the other instance attached"
    );
}

#[test]
fn down_removes_everything_and_is_idempotent() {
    let (hosts, _u, _vms) = hosts_with_vms(2);
    hosts[0].up(&blue_host(0, 2));
    hosts[0].ctl("fdb add 02:00:00:00:00:42 --network blue --remote 192.0.2.2");
    assert_eq!(hosts[0].fdb_entry("blue", "02:00:00:00:00:42").unwrap()["type"], "static");
    hosts[0].ctl("fdb del 02:00:00:00:00:42 --network blue");
    assert!(hosts[0].fdb_entry("blue", "02:00:00:00:00:42").is_none());
    let pins = overlay_user::bpffs::pin_dir(&hosts[0].instance);
    assert!(pins.join("FDB").exists());
    assert_eq!(hosts[0].ns.tcx_ingress("u0"), ["vtep_ingress"]);
    assert_eq!(hosts[0].ns.tcx_ingress("vm1"), ["tenant_ingress"]);
    hosts[0].ctl("down");
    assert!(!pins.exists(), "pins removed");
    assert!(!overlay_user::bpffs::state_path(&hosts[0].instance).exists(), "state removed");
    assert!(!overlay_user::bpffs::object_path(&hosts[0].instance).exists(), "object file removed");
    assert!(hosts[0].ns.tcx_ingress("u0").is_empty(), "underlay program detached");
    assert!(hosts[0].ns.tcx_ingress("vm1").is_empty(), "port program detached");
    hosts[0].ctl("down");
    let e = hosts[0].try_ctl("status").expect_err("not up");
    assert!(e.contains("not up"), "{e}");
}

/// `overlayctl ... | head -1`: a reader that went away ends the command
/// quietly (exit 0, nothing on stderr), never a panic. Here stdout is a
/// pipe whose read end is closed before overlayctl starts, so every write
/// fails with EPIPE.
#[test]
fn closed_stdout_ends_quietly() {
    use std::os::fd::FromRawFd;
    let (hosts, _u, _vms) = hosts_with_vms(1);
    hosts[0].up(&blue_host(0, 2));
    for cmd in ["stats", "-j stats", "fdb show", "status"] {
        let mut fds = [0i32; 2];
        // SAFETY: pipe() fills two descriptors; the read end is closed at once.
        unsafe {
            assert_eq!(libc::pipe(fds.as_mut_ptr()), 0, "pipe");
            libc::close(fds[0]);
        }
        // SAFETY: fds[1] is ours and handed over exactly once.
        let stdout = unsafe { std::process::Stdio::from_raw_fd(fds[1]) };
        let out = std::process::Command::new("ip")
            .args(["netns", "exec", &hosts[0].ns.name])
            .arg(overlayctl())
            .args(["--name", &hosts[0].instance])
            .args(cmd.split(' '))
            .stdout(stdout)
            .output()
            .expect("run overlayctl");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && err.is_empty(), "overlayctl {cmd}: {:?}, stderr {err:?}", out.status);
    }
}
