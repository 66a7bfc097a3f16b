//! The datapath's log (aya-log), for rare events only: a network reaching
//! `max_learned` is logged once per crossing, not per refused MAC; a full
//! FDB at most once a second per network; `status` and `monitor` show them.

use std::time::Instant;

use overlay_tests::{conf::*, lab::*};
use serde_json::Value;

/// `n` frames from distinct source MACs 02:00:00:00:5X:NN out of `vm`.
fn macs_from(vm: &Vm, x: u8, n: usize) {
    send_frame(
        &vm.ns,
        "eth0",
        &format!(
            "[Ether(dst='ff:ff:ff:ff:ff:ff', src='02:00:00:00:5{x:x}:%02x' % i, type=0x88b5)/Raw(b'z'*46) for i in range({n})]"
        ),
    );
}

fn log_lines(h: &Host) -> Vec<Value> {
    let s: Value = serde_json::from_str(&h.ctl("-j status")).expect("status json");
    s["log"].as_array().expect("log").clone()
}

#[test]
fn max_learned_is_logged_once_per_crossing() {
    let (h, _u) = one_host();
    let vm = Vm::attach(&h, "vm1", "02:00:00:00:00:01", "203.0.113.1/24");
    let c = Config {
        networks: vec![Network { max_learned: Some(3), ..vlan("red", 20) }],
        ports: vec![access("vm1", "red")],
        ..config("192.0.2.1")
    };
    h.up(&c);
    assert!(log_lines(&h).is_empty(), "nothing logged yet");
    macs_from(&vm, 1, 5);
    wait_until("5 frames", 10, || h.counter("rx_tenant") == 5);
    assert_eq!((h.counter("learned"), h.counter("learn_fdb_full")), (3, 2));
    let log = log_lines(&h);
    assert_eq!(log.len(), 1, "one line for reaching the limit, none per refused MAC: {log:#?}");
    assert_eq!(log[0]["level"], "warn");
    let msg = log[0]["message"].as_str().unwrap();
    assert!(msg.contains("reached max_learned 3"), "{msg}");
    // More MACs refused: still one line. A monitor running meanwhile sees
    // nothing new; the text status shows the line.
    macs_from(&vm, 2, 10);
    wait_until("15 frames", 10, || h.counter("rx_tenant") == 15);
    assert_eq!(h.counter("learn_fdb_full"), 12);
    assert_eq!(log_lines(&h).len(), 1, "no line per refused MAC");
    let text = h.ctl("status");
    assert!(text.contains("datapath log") && text.contains("reached max_learned 3"), "{text}");
    // Below the limit again (a flush) and back up: a second crossing.
    h.ctl("fdb flush");
    macs_from(&vm, 3, 3);
    wait_until("18 frames", 10, || h.counter("rx_tenant") == 18);
    assert_eq!(log_lines(&h).len(), 2, "a second crossing, a second line");
    // A ring buffer that cannot be found (here: the program pin removed)
    // does not make status fail; it says so after the lines kept so far.
    let pin = overlay_user::bpffs::pin_dir(&h.instance).join("prog_tenant_ingress");
    std::fs::remove_file(&pin).expect("remove the program pin");
    let log = log_lines(&h);
    assert_eq!(log.len(), 3, "{log:#?}");
    assert_eq!(log[2]["level"], "error");
    assert!(log[2]["message"].as_str().unwrap().contains("datapath log not readable"), "{log:#?}");
}

#[test]
fn a_full_fdb_is_logged_at_most_once_a_second() {
    let (h, _u) = one_host();
    let vm = Vm::attach(&h, "vm1", "02:00:00:00:00:01", "203.0.113.1/24");
    let c = Config {
        fdb_size: 16,
        networks: vec![Network { max_learned: Some(0), ..vlan("red", 20) }],
        ports: vec![access("vm1", "red")],
        ..config("192.0.2.1")
    };
    h.up(&c);
    let mut m = Monitor(h.ns.spawn(&format!(
        "exec {} --name {} -j monitor --learn",
        overlayctl().display(),
        h.instance
    )));
    let stdout = m.0.stdout.take().expect("stdout");
    let t = Instant::now();
    macs_from(&vm, 4, 40);
    wait_until("40 frames", 10, || h.counter("rx_tenant") == 40);
    let secs = t.elapsed().as_secs();
    assert_eq!((h.counter("learned"), h.counter("learn_fdb_full")), (16, 24));
    // The monitor drains the log once a second and prints each line.
    wait_until("the monitor wrote the log", 10, || {
        std::fs::read_to_string(overlay_user::dplog::path(&h.instance)).is_ok_and(|t| t.contains("FDB full"))
    });
    // SAFETY: signalling the child we started.
    unsafe { libc::kill(m.0.id() as i32, libc::SIGINT) };
    assert!(m.0.wait().expect("monitor").success(), "monitor exit");
    let events: Vec<Value> = std::io::BufRead::lines(std::io::BufReader::new(stdout))
        .map(|l| serde_json::from_str(&l.expect("line")).expect("event json"))
        .collect();
    let logs: Vec<&Value> = events.iter().filter(|e| e["type"] == "log").collect();
    assert!(!logs.is_empty(), "the monitor printed the log line: {events:#?}");
    assert!(logs.iter().all(|e| e["message"].as_str().unwrap().contains("FDB full")), "{logs:#?}");
    let full = log_lines(&h).iter().filter(|l| l["message"].as_str().unwrap().contains("FDB full")).count();
    assert!(
        (1..=secs as usize + 1).contains(&full),
        "{full} lines for 24 refused MACs in {secs} s: at most one a second"
    );
}

/// A monitor process, killed if the test ends early.
struct Monitor(std::process::Child);

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
