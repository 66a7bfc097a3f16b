//! `overlayctl trace` on a running instance: for each frame the printed
//! path names where it goes, the trace changes no counter and no FDB entry,
//! and the same bytes then sent for real do exactly that: the counters
//! grow by what the trace listed and the frame arrives where it said.

use overlay_tests::{
    conf::*,
    lab::*,
    netns::{Netns, host_sh},
};
use serde_json::Value;

const VM1: &str = "02:00:00:00:00:01";
const VM2: &str = "02:00:00:00:00:02";
const TRUNK_VM: &str = "02:00:00:00:00:03";
const B_VM: &str = "02:00:00:00:00:0b";
/// Frames without IP (IEEE local experimental ethertype): nobody answers
/// them, so the counters move only by what the test sends.
const NO_IP: &str = "type=0x88b5)/Raw(b'q'*46)";

struct Lab {
    a: Host,
    b: Host,
    vm1: Vm,
    vm2: Vm,
    tr: Vm,
    atk: Netns,
    _u: Underlay,
}

/// Host A (192.0.2.1): blue (VNI 100, VLAN 10) on vm1, vm2 (VM2 static)
/// and trunk tr1, B's VM static behind 192.0.2.2. Host B: blue on vm1.
fn lab() -> Lab {
    let (a, b) = (Host::new("ha"), Host::new("hb"));
    let u = Underlay::new(&[&a, &b], "192.0.2");
    let vm1 = Vm::attach(&a, "vm1", VM1, "203.0.113.1/24");
    let vm2 = Vm::attach(&a, "vm2", VM2, "203.0.113.2/24");
    let tr = Vm::attach(&a, "tr1", TRUNK_VM, "203.0.113.3/24");
    let _bvm = Vm::attach(&b, "vm1", B_VM, "203.0.113.11/24");
    let blue = Network { vlan: Some(10), ..vxlan("blue", 100, &["192.0.2.2"]) };
    a.up(&Config {
        networks: vec![blue.clone()],
        ports: vec![access("vm1", "blue"), access("vm2", "blue"), trunk("tr1", &["blue"])],
        fdb: vec![fdb_port(VM2, "blue", "vm2"), fdb_remote(B_VM, "blue", "192.0.2.2")],
        ..config("192.0.2.1")
    });
    b.up(&Config {
        networks: vec![Network { peers: vec!["192.0.2.1".parse().unwrap()], ..blue }],
        ports: vec![access("vm1", "blue")],
        ..config("192.0.2.2")
    });
    // Permanent underlay neighbours: no ARP refresh adds to the counts.
    let mac = |h: &Host| h.ns.sh("cat /sys/class/net/u0/address").trim().to_string();
    a.ns.sh(&format!("ip neigh replace 192.0.2.2 lladdr {} dev u0 nud permanent", mac(&b)));
    b.ns.sh(&format!("ip neigh replace 192.0.2.1 lladdr {} dev u0 nud permanent", mac(&a)));
    let atk = u.attacker();
    Lab { a, b, vm1, vm2, tr, atk, _u: u }
}

/// The bytes of a scapy expression, as hex.
fn hex(expr: &str) -> String {
    let out = host_sh(&format!("/usr/bin/python3 -c \"from scapy.all import *; print(raw({expr}).hex())\""));
    out.trim().to_string()
}

/// Counters over all networks, and the FDB without ages.
fn state(h: &Host) -> (Value, Vec<Value>) {
    let fdb = h
        .fdb()
        .into_iter()
        .map(|mut r| {
            r.as_object_mut().expect("row").remove("age");
            r
        })
        .collect();
    (h.stats()["total"].clone(), fdb)
}

/// Counter growth from `before` to `after` (non-zero only).
fn delta(before: &Value, after: &Value) -> Vec<(String, u64)> {
    let b = before.as_object().expect("counters");
    after
        .as_object()
        .expect("counters")
        .iter()
        .filter_map(|(k, v)| {
            let d = v.as_u64().unwrap() - b[k].as_u64().unwrap();
            (d != 0).then(|| (k.clone(), d))
        })
        .collect()
}

/// The trace's counters summed over networks.
fn traced_counts(t: &Value) -> Vec<(String, u64)> {
    let mut sum = std::collections::BTreeMap::<String, u64>::new();
    for per in t["counters"].as_object().expect("counters").values() {
        for (c, n) in per.as_object().expect("per network") {
            *sum.entry(c.clone()).or_default() += n.as_u64().unwrap();
        }
    }
    sum.into_iter().collect()
}

/// Traces the frame `expr` arriving at `args` (`--port IF` or
/// `--underlay`) on A, checks that nothing changed, sends the same bytes
/// from `sender`'s eth0, and waits until A's counters grew by exactly
/// what the trace listed. Returns the trace.
fn check(l: &Lab, args: &str, expr: &str, sender: &Netns) -> Value {
    let bytes = hex(expr);
    let before = state(&l.a);
    let t: Value =
        serde_json::from_str(&l.a.ctl(&format!("-j trace {args} --frame {bytes}"))).expect("trace json");
    assert_eq!(state(&l.a), before, "the trace of {expr} changed counters or the FDB: {t:#}");
    send_frame(sender, "eth0", &format!("Ether(bytes.fromhex('{bytes}'))"));
    let want = traced_counts(&t);
    let mut got = Vec::new();
    let settled = netns_lab::wait_until("counters", 10, || {
        got = delta(&before.0, &state(&l.a).0);
        got == want
    });
    assert!(settled.is_ok(), "{expr}: live counters {got:?}, traced {want:?}\n{t:#}");
    assert_eq!(state(&l.a).1.len(), before.1.len() + usize::from(want.contains(&("learned".into(), 1))));
    t
}

fn steps<'a>(t: &'a Value, kind: &str) -> Vec<&'a Value> {
    t["steps"].as_array().expect("steps").iter().filter(|s| s["step"] == kind).collect()
}

#[test]
fn traced_paths_are_the_paths_frames_take() {
    let l = lab();
    // Local unicast: vm1 -> VM2 (static on vm2).
    let rx = l.vm2.ns.rx_packets("eth0");
    let t = check(&l, "--port vm1", &format!("Ether(dst='{VM2}', src='{VM1}', {NO_IP}"), &l.vm1.ns);
    assert_eq!(
        (t["verdict"].as_str(), t["out_interface"].as_str()),
        (Some("redirect"), Some("vm2")),
        "{t:#}"
    );
    assert_eq!(steps(&t, "fdb")[0]["result"], "port");
    wait_until("vm2 got it", 10, || l.vm2.ns.rx_packets("eth0") == rx + 1);
    // Remote unicast: vm1 -> B's VM, encapsulated to 192.0.2.2; B decapsulates it.
    let decap = l.b.counter("decap");
    let t = check(&l, "--port vm1", &format!("Ether(dst='{B_VM}', src='{VM1}', {NO_IP}"), &l.vm1.ns);
    assert_eq!(t["out_interface"], "u0", "{t:#}");
    assert_eq!(steps(&t, "encap")[0]["vtep"], "192.0.2.2");
    assert_eq!(steps(&t, "encap")[0]["vni"], 100);
    wait_until("B decapsulated it", 10, || l.b.counter("decap") == decap + 1);
    // Flood from the trunk, tagged 10: popped, copied to vm1 and vm2, and to B.
    let (rx1, rx2, decap) = (l.vm1.ns.rx_packets("eth0"), l.vm2.ns.rx_packets("eth0"), l.b.counter("decap"));
    let t = check(
        &l,
        "--port tr1",
        &format!("Ether(dst='ff:ff:ff:ff:ff:ff', src='{TRUNK_VM}')/Dot1Q(vlan=10, {NO_IP}"),
        &l.tr.ns,
    );
    assert_eq!(steps(&t, "pop")[0]["vlan"], 10);
    let copies: Vec<_> = steps(&t, "flood_local").iter().map(|s| s["interface"].clone()).collect();
    assert_eq!(copies, ["vm1", "vm2"], "{t:#}");
    assert_eq!(steps(&t, "flood_remote")[0]["vtep"], "192.0.2.2");
    wait_until("both local copies and B's", 10, || {
        l.vm1.ns.rx_packets("eth0") == rx1 + 1
            && l.vm2.ns.rx_packets("eth0") == rx2 + 1
            && l.b.counter("decap") == decap + 1
    });
    // A drop: vm2 sending to its own MAC.
    let t = check(&l, "--port vm2", &format!("Ether(dst='{VM2}', src='{VM2}', {NO_IP}"), &l.vm2.ns);
    assert_eq!((t["verdict"].as_str(), t["drop_reason"].as_str()), (Some("drop"), Some("drop_hairpin")));
    // From the underlay: VXLAN from B to VM2, decapsulated to vm2.
    let rx2 = l.vm2.ns.rx_packets("eth0");
    let mac = l.a.ns.sh("cat /sys/class/net/u0/address").trim().to_string();
    let vx = |vni: u32| {
        format!(
            "Ether(dst='{mac}', src='02:00:00:00:66:66')/IP(src='192.0.2.2', dst='192.0.2.1')\
             /UDP(sport=50000, dport=4789)/VXLAN(vni={vni})/Ether(dst='{VM2}', src='{B_VM}', {NO_IP}"
        )
    };
    let t = check(&l, "--underlay", &vx(100), &l.atk);
    assert_eq!(t["hook"], "vtep_tc");
    assert_eq!(steps(&t, "rp_filter")[0]["result"], "pass");
    assert_eq!(t["out_interface"], "vm2", "{t:#}");
    wait_until("vm2 got the decapsulated frame", 10, || l.vm2.ns.rx_packets("eth0") == rx2 + 1);
    let t = check(&l, "--underlay", &vx(999), &l.atk);
    assert_eq!(t["drop_reason"], "drop_unknown_vni");
}

#[test]
fn built_frames_print_a_readable_path_and_bad_input_is_refused() {
    let l = lab();
    let out = l.a.ctl(&format!("trace --port vm1 --from {VM1} --to {VM2} --ip 203.0.113.1,203.0.113.2"));
    for line in [
        "in on vm1 (tenant_tc), 02:00:00:00:00:01 > 02:00:00:00:00:02 203.0.113.1 > 203.0.113.2",
        "network blue from port vm1, untagged",
        "learn source 02:00:00:00:00:01 at port vm1: new",
        "fdb 02:00:00:00:00:02: hit, port vm2",
        "out vm2 untagged",
        "count tx_local [blue]",
        "verdict: redirect to vm2",
    ] {
        assert!(out.contains(line), "{line:?} missing from:\n{out}");
    }
    // The receive side, built from its outer fields.
    let out = l.a.ctl(&format!("trace --underlay --vtep 192.0.2.2 --vni 100 --from {B_VM} --to {VM1}"));
    assert!(out.contains("(VXLAN 192.0.2.2 > 192.0.2.1 vni 100)"), "{out}");
    assert!(out.contains("network blue (vni 100) from underlay u0"), "{out}");
    assert!(out.contains("vxlan decap"), "{out}");
    // An ARP request tagged on the trunk.
    let out =
        l.a.ctl(&format!("trace --port tr1 --vlan 10 --arp --from {TRUNK_VM} --ip 203.0.113.3,203.0.113.9"));
    assert!(out.contains("pop vlan tag 10"), "{out}");
    assert!(out.contains("fdb ff:ff:ff:ff:ff:ff: group address, flood"), "{out}");
    // Bad input: a clear error, nothing traced.
    for (args, says) in [
        ("--port vm1 --frame 0xzz", "not hex"),
        ("--port vm1 --frame ffff", "shorter than an Ethernet header"),
        ("--port nosuch0 --from 02:00:00:00:00:01 --to 02:00:00:00:00:02", "nosuch0"),
        ("--port vm1 --from 02:00:00:00:00:01", "--to MAC is needed"),
        ("--port vm1 --arp --from 02:00:00:00:00:01", "--arp needs --ip"),
        ("--port vm1 --from 02:00:00:00:00:01 --to 02:00:00:00:00:02 --vlan 4095", "not 1..4094"),
        ("--underlay --from 02:00:00:00:00:01 --to 02:00:00:00:00:02 --vni 100", "--vtep"),
        (
            "--port vm1 --from 02:00:00:00:00:01 --to 02:00:00:00:00:02 --ip 203.0.113.1,2001:db8::1",
            "one family",
        ),
    ] {
        let err = l.a.try_ctl(&format!("trace {args}")).expect_err(args);
        assert!(err.contains(says), "trace {args}: {err}");
    }
    assert_eq!(l.a.counter("rx_tenant"), 0, "nothing was counted by tracing");
}
