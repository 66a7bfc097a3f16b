//! `overlayctl monitor`: each drop is one event naming its reason and the
//! frame's fields; learns and age-outs are events; the per-CPU rate limit
//! holds under a flood of drops and every frame over it is counted as
//! `monitor_lost`; Ctrl-C switches events off and leaves nothing attached.

use std::{
    io::{BufRead, BufReader},
    process::Child,
    sync::mpsc::{Receiver, channel},
    time::{Duration, Instant},
};

use overlay_tests::{blast, conf::*, lab::*, netns::Netns};
use serde_json::Value;

const VM: &str = "02:00:00:00:00:01";
const REMOTE: &str = "02:00:00:00:00:02";

/// A running `overlayctl -j monitor ARGS`, its events read by a thread.
struct Monitor {
    child: Child,
    err: std::sync::Mutex<BufReader<std::process::ChildStderr>>,
    events: Receiver<Value>,
}

impl Monitor {
    fn start(h: &Host, args: &str) -> Monitor {
        let mut child =
            h.ns.spawn(&format!("exec {} --name {} -j monitor {args}", overlayctl().display(), h.instance));
        let mut err = BufReader::new(child.stderr.take().expect("stderr"));
        let mut first = String::new();
        err.read_line(&mut first).expect("monitor stderr");
        assert!(first.contains("monitoring"), "monitor did not start: {first}");
        let out = BufReader::new(child.stdout.take().expect("stdout"));
        let (tx, events) = channel();
        std::thread::spawn(move || {
            for l in out.lines().map_while(Result::ok) {
                let v: Value = serde_json::from_str(&l).unwrap_or_else(|e| panic!("event line {l:?}: {e}"));
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        Monitor { child, events, err: std::sync::Mutex::new(err) }
    }

    /// Events that arrive until `done` holds for what was received (or the
    /// deadline passes).
    fn collect_until(&self, secs: u64, mut done: impl FnMut(&[Value]) -> bool) -> Vec<Value> {
        let end = Instant::now() + Duration::from_secs(secs);
        let mut got = Vec::new();
        while !done(&got) {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let mut rest = String::new();
                // SAFETY: signalling the child we started.
                unsafe { libc::kill(self.child.id() as i32, libc::SIGKILL) };
                let _ = std::io::Read::read_to_string(self.err.lock().unwrap().get_mut(), &mut rest);
                panic!("events after {secs} s: {got:#?}\nmonitor stderr: {rest}");
            }
            if let Ok(v) = self.events.recv_timeout(left.min(Duration::from_millis(100))) {
                got.push(v);
            }
        }
        got
    }

    fn interrupt(mut self) -> std::process::ExitStatus {
        // SAFETY: signalling the child we started.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        self.child.wait().expect("monitor exit")
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn total_drops(h: &Host) -> u64 {
    let s = h.stats();
    overlay_common::counters::Counter::ALL
        .iter()
        .filter(|c| c.is_drop())
        .map(|c| s["total"][c.name()].as_u64().unwrap())
        .sum()
}

/// Host 192.0.2.1: blue (VNI 100, VLAN 10, peer 192.0.2.2) on access port
/// vm1 and trunk tr1, a static entry for REMOTE behind the peer, and an
/// attacker on the underlay.
fn lab() -> (Host, Underlay, Vm, Vm, Netns, String) {
    let (h, u) = one_host();
    let vm = Vm::attach(&h, "vm1", VM, "203.0.113.1/24");
    let tr = Vm::attach(&h, "tr1", "02:00:00:00:00:09", "203.0.113.9/24");
    let blue = Network { vlan: Some(10), ..vxlan("blue", 100, &["192.0.2.2"]) };
    let c = Config {
        ageing: 2,
        networks: vec![blue],
        ports: vec![access("vm1", "blue"), trunk("tr1", &["blue"])],
        fdb: vec![fdb_remote(REMOTE, "blue", "192.0.2.2")],
        ..config("192.0.2.1")
    };
    h.up(&c);
    let atk = u.attacker();
    let mac = h.ns.sh("cat /sys/class/net/u0/address").trim().to_string();
    (h, u, vm, tr, atk, mac)
}

fn vxlan_from(mac: &str, src: &str, vni: u32) -> String {
    format!(
        "Ether(dst='{mac}', src='02:00:00:00:66:66')/IP(src='{src}', dst='192.0.2.1')/UDP(sport=50000, dport=4789)\
         /VXLAN(vni={vni})/Ether(dst='{VM}', src='02:00:00:00:00:77')/IP(src='203.0.113.7', dst='203.0.113.1')/Raw(b'x'*20)"
    )
}

#[test]
fn each_drop_is_one_event_with_its_fields() {
    let (h, _u, vm, tr, atk, mac) = lab();
    let m = Monitor::start(&h, "--drops");
    let before = total_drops(&h);
    let seen = std::cell::RefCell::new(Vec::new());
    let one = |reason: &str| -> Value {
        let got = m.collect_until(10, |g| g.iter().any(|e| e["reason"] == reason));
        seen.borrow_mut().extend(got.iter().cloned());
        let mine: Vec<&Value> = got.iter().filter(|e| e["reason"] == reason).collect();
        assert_eq!(mine.len(), 1, "{reason}: {got:#?}");
        mine[0].clone()
    };
    // A VXLAN frame from a host that is not a peer.
    send_frame(&atk, "eth0", &vxlan_from(&mac, "192.0.2.77", 100));
    let e = one("drop_not_peer");
    assert_eq!(e["type"], "drop");
    assert_eq!(e["hook"], "vtep_tc");
    assert_eq!(e["interface"], "u0");
    assert_eq!(e["vni"], 100);
    assert_eq!(e["outer_src"], "192.0.2.77");
    assert_eq!(e["outer_dst"], "192.0.2.1");
    assert_eq!(e["src_mac"], "02:00:00:00:00:77");
    assert_eq!(e["dst_mac"], VM);
    assert_eq!(e["src_ip"], "203.0.113.7");
    // An unknown VNI from the peer.
    send_frame(&atk, "eth0", &vxlan_from(&mac, "192.0.2.2", 999));
    let e = one("drop_unknown_vni");
    assert_eq!((e["vni"].clone(), e["outer_src"].clone()), (999.into(), "192.0.2.2".into()), "{e}");
    // A tag the trunk does not carry (it carries blue as VLAN 10).
    send_frame(
        &tr.ns,
        "eth0",
        "Ether(dst='ff:ff:ff:ff:ff:ff', src='02:00:00:00:00:09')/Dot1Q(vlan=20)/ARP()",
    );
    let e = one("drop_vlan_not_allowed");
    assert_eq!((e["interface"].clone(), e["vlan"].clone()), ("tr1".into(), 20.into()), "{e}");
    assert_eq!(e["ethertype"], "0x0806");
    // MTU: the underlay's MTU lowered under the tenant's, a full-size
    // frame towards the remote MAC does not fit once encapsulated.
    h.ns.sh("ip link set u0 mtu 1400");
    send_frame(
        &vm.ns,
        "eth0",
        &format!(
            "Ether(dst='{REMOTE}', src='{VM}')/IP(src='203.0.113.1', dst='203.0.113.2')/UDP()/Raw(b'm'*1408)"
        ),
    );
    let e = one("drop_mtu");
    assert_eq!(e["hook"], "tenant_tc");
    assert_eq!(e["interface"], "vm1");
    assert_eq!(e["network"], "blue");
    assert_eq!(e["vni"], 100);
    assert_eq!(e["dst_mac"], REMOTE);
    assert_eq!(e["dst_ip"], "203.0.113.2");
    assert_eq!(e["outer_dst"], "192.0.2.2", "dropped after encapsulation: {e}");
    assert_eq!(e["len"], 1450 + 50);
    // Every drop counted during the monitor was one event.
    let after = total_drops(&h);
    let mut all = seen.take();
    let n = all.len() as u64;
    all.extend(m.collect_until(10, |g| n + g.len() as u64 >= after - before));
    assert_eq!(all.len() as u64, after - before, "one event per counted drop: {all:#?}");
    assert_eq!(h.counter("monitor_lost"), 0);
    drop(m);
}

#[test]
fn learn_and_age_out_are_events() {
    let (h, _u, vm, _tr, _atk, _mac) = lab();
    let m = Monitor::start(&h, "--learn --network blue");
    send_frame(&vm.ns, "eth0", "Ether(dst='ff:ff:ff:ff:ff:ff', src='02:00:00:00:00:55')/ARP()");
    let got = m.collect_until(10, |g| !g.is_empty());
    assert_eq!(got.len(), 1, "{got:#?}");
    let e = &got[0];
    assert_eq!(e["type"], "learned");
    assert_eq!(e["mac"], "02:00:00:00:00:55");
    assert_eq!(e["network"], "blue");
    assert_eq!(e["location"], "port:vm1");
    // ageing = 2 s: a frame to it after that finds it expired.
    let t = Instant::now();
    let aged = m.collect_until(15, |g| {
        if t.elapsed() > Duration::from_secs(2) {
            send_frame(&vm.ns, "eth0", "Ether(dst='02:00:00:00:00:55', src='02:00:00:00:00:01')/ARP()");
        }
        g.iter().any(|e| e["type"] == "aged")
    });
    let e = aged.iter().find(|e| e["type"] == "aged").unwrap();
    assert_eq!(
        (e["mac"].clone(), e["location"].clone()),
        ("02:00:00:00:00:55".into(), "port:vm1".into()),
        "{e}"
    );
}

#[test]
fn the_rate_limit_holds_and_counts_the_rest() {
    let (h, _u, _vm, _tr, atk, mac) = lab();
    let m = Monitor::start(&h, "--drops --rate 1000/s");
    let before = h.counter("drop_unknown_vni");
    let host_mac = mac.parse::<overlay_user::mac::MacAddr>().unwrap().0;
    let inner = overlay_common::pktbuild::udp4(
        [2, 0, 0, 0, 0, 1],
        [2, 0, 0, 0, 0, 0x77],
        [203, 0, 113, 7],
        [203, 0, 113, 1],
        1,
        2,
        18,
    );
    let frame = overlay_common::pktbuild::vxlan_from(
        host_mac,
        [2, 0, 0, 0, 0x66, 0x66],
        [192, 0, 2, 2],
        [192, 0, 2, 1],
        999,
        &inner,
    );
    let t = Instant::now();
    let n = 300_000;
    blast::send_n(&atk, "eth0", n, move |_| frame.clone());
    let secs = t.elapsed().as_secs_f64();
    eprintln!("{n} drops in {secs:.2} s ({:.0} kpps)", n as f64 / secs / 1e3);
    wait_until("every frame counted", 10, || h.counter("drop_unknown_vni") - before == n);
    let lost = h.counter("monitor_lost");
    let events = m.collect_until(10, |g| g.len() as u64 + lost == n);
    let cpus = std::thread::available_parallelism().unwrap().get() as f64;
    let bound = 1000.0 * cpus * (secs.ceil() + 1.0);
    assert!((events.len() as f64) <= bound, "{} events over {secs:.2} s on {cpus} CPUs", events.len());
    assert!(lost > 0 && events.iter().all(|e| e["reason"] == "drop_unknown_vni"));
    assert_eq!(events.len() as u64 + lost, n, "each drop is an event or monitor_lost");
}

#[test]
fn ctrl_c_switches_events_off_and_leaves_nothing_attached() {
    let (h, _u, _vm, _tr, _atk, _mac) = lab();
    let links =
        || overlay_tests::netns::host_sh("bpftool link list | grep -c '^[0-9]' || true").trim().to_string();
    let before = links();
    let ctl = || {
        use aya::maps::{Array, Map, MapData};
        let p = overlay_user::bpffs::pin_dir(&h.instance).join("MONITOR_CTL");
        let a: Array<MapData, overlay_common::monitor::MonitorCtl> =
            Map::Array(MapData::from_pin(p).expect("pin")).try_into().expect("array");
        a.get(&0, 0).expect("ctl")
    };
    let m = Monitor::start(&h, "--drops --learn");
    assert_eq!(ctl().flags, 3, "events on while it runs");
    let second = h.try_ctl("monitor").expect_err("one monitor per instance");
    assert!(second.contains("already runs"), "{second}");
    assert!(m.interrupt().success(), "Ctrl-C ends it cleanly");
    assert_eq!(ctl().flags, 0, "events off");
    assert_eq!(links(), before, "no link added or left");
    // kill -9: events stop by themselves within the lease.
    let mut m = Monitor::start(&h, "--drops");
    let _ = m.child.kill();
    let _ = m.child.wait();
    let c = ctl();
    let now = overlay_user::fdb::monotonic_ns();
    assert!(
        c.flags != 0 && c.until_ns <= now + overlay_common::monitor::MONITOR_LEASE_NS,
        "deadline bounds a dead monitor"
    );
    Monitor::start(&h, "--drops").interrupt();
}
