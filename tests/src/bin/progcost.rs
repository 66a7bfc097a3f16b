//! Per-packet cost of the BPF programs, from BPF_PROG_TEST_RUN: one run per
//! syscall with a fresh frame each time (encapsulation would otherwise
//! compound on the same skb), averaging the kernel-measured duration.
//! Prints `name<TAB>bytes<TAB>ns` lines for `cargo xtask bench`.

use overlay_common::{
    ENCAP_GENEVE, ENCAP_GRE,
    counters::Counter::{self, *},
    maps::{FDB_F_STATIC, FDB_KIND_REMOTE, FdbEntry, FdbKey},
    pktbuild::*,
};
use overlay_tests::{
    conf::{Config, Encap, access, fdb_port, fdb_remote, neigh, tunnel},
    progtest::{Fixture, TC_ACT_REDIRECT, TC_ACT_SHOT, dp_config, in_private_netns, many_peers, sh},
    scapy,
};

/// The datapath tests' config, plus a static entry behind trunk p3 (for
/// the VLAN push case), VM2's neighbour pairs (for the answered ARP
/// request and NS), and a GRE network (key 200, port p4) and a GENEVE one
/// (VNI 300, port p5) with the same peer, each with a static entry on its
/// port and one behind the peer.
fn config() -> Config {
    let mut c = dp_config();
    c.fdb.push(fdb_port("02:00:00:00:00:03", "blue", "p3"));
    c.networks.push(tunnel("green", Encap::Gre, 200, &["192.0.2.2"]));
    c.networks.push(tunnel("orange", Encap::Geneve, 300, &["192.0.2.2"]));
    c.ports[3] = access("p4", "green");
    c.ports.push(access("p5", "orange"));
    for (net, port, local, remote) in [("green", "p4", "05", "15"), ("orange", "p5", "06", "16")] {
        c.fdb.push(fdb_port(&format!("02:00:00:00:00:{local}"), net, port));
        c.fdb.push(fdb_remote(&format!("02:00:00:00:00:{remote}"), net, "192.0.2.2"));
    }
    c.neigh = vec![
        neigh("blue", "203.0.113.2", "02:00:00:00:00:02"),
        neigh("blue", "2001:db8::2", "02:00:00:00:00:02"),
    ];
    c
}

/// The fixture of `c` (a [`config`]), with the port p5 it has beyond the
/// fixture's own.
fn fixture(c: Config) -> Fixture {
    sh("ip link add p5 type veth peer name p5b; ip link set p5 up; ip link set p5b up");
    Fixture::new(&c)
}

fn frame(dst: [u8; 6], src: [u8; 6], size: usize) -> Vec<u8> {
    udp4(dst, src, [203, 0, 113, 1], [203, 0, 113, 2], 1000, 2000, size.saturating_sub(42))
}

/// One timed case: a frame on a device, and what the program must do with
/// it.
struct Case<'a> {
    name: String,
    prog: &'a str,
    dev: &'a str,
    input: Vec<u8>,
    verdict: u32,
    /// The counter that counts it, and how many times.
    counter: Counter,
    copies: u64,
}

impl Case<'_> {
    fn tenant<'a>(name: &str, dev: &'a str, input: Vec<u8>, counter: Counter, copies: u64) -> Case<'a> {
        let name = name.to_string();
        Case { name, prog: "tenant_ingress", dev, input, verdict: TC_ACT_REDIRECT, counter, copies }
    }

    /// Runs the case once and checks what it does: its verdict, and that
    /// the counter counted it exactly `copies` times. A case that regressed
    /// to an early drop must fail here, not look like a speed-up.
    fn check(&self, f: &Fixture) {
        let before = f.count(self.counter);
        let (v, _) = f.run(self.prog, self.dev, &self.input);
        let n = f.count(self.counter) - before;
        assert_eq!(
            (v, n),
            (self.verdict, self.copies),
            "{}: verdict {v} and {n} x {} (want {} and {}); counters: {:?}",
            self.name,
            self.counter.name(),
            self.verdict,
            self.copies,
            f.nonzero()
        );
    }

    /// Checks the case, then its cost over `runs`: the median of
    /// [`BATCHES`] batch means.
    fn cost(&self, f: &Fixture, runs: u32) -> f64 {
        self.check(f);
        let per = (runs / BATCHES).max(1);
        median_of((0..BATCHES).map(|_| batch_mean(f, self, per)).collect())
    }
}

/// The mean cost of `per` runs of case `c`.
fn batch_mean(f: &Fixture, c: &Case, per: u32) -> f64 {
    let total: u128 = (0..per).map(|_| f.run_timed(c.prog, c.dev, &c.input).2.as_nanos()).sum();
    total as f64 / per as f64
}

/// The median of batch means (a stall of the machine during one batch
/// moves one mean, not the figure).
fn median_of(mut means: Vec<f64>) -> f64 {
    means.sort_by(f64::total_cmp);
    means[means.len() / 2]
}

const BATCHES: u32 = 5;

/// Switches drop events on in the fixture's `MONITOR_CTL` at `rate` per
/// second per CPU (0: every event is over the rate); off again when the
/// returned guard goes.
fn set_monitor(f: &Fixture, rate: u32) -> impl Drop {
    use aya::maps::{Array, Map, MapData};
    use overlay_common::monitor::{MAP_MONITOR_CTL, MON_DROPS, MonitorCtl};
    let data = MapData::from_pin(f.dir.join(MAP_MONITOR_CTL)).expect("MONITOR_CTL pin");
    let mut ctl: Array<MapData, MonitorCtl> = Map::Array(data).try_into().expect("array");
    let on = MonitorCtl { flags: MON_DROPS, rate_per_sec: rate, row: 0, _pad: 0, until_ns: u64::MAX };
    ctl.set(0, on, 0).expect("monitor on");
    struct Off(Array<MapData, MonitorCtl>);
    impl Drop for Off {
        fn drop(&mut self) {
            let _ = self.0.set(0, MonitorCtl::default(), 0);
        }
    }
    Off(ctl)
}

fn peer_vxlan(inner: &[u8]) -> Vec<u8> {
    vxlan_from([2, 0, 0, 0, 0xaa, 1], [2, 0, 0, 0, 0xaa, 2], [192, 0, 2, 2], [192, 0, 2, 1], 100, inner)
}

const ME: [u8; 6] = [2, 0, 0, 0, 0, 1];

/// One row of the per-case table: a case, the frame size it is listed
/// under, and whether a monitor runs while it is timed.
struct Row<'a> {
    case: Case<'a>,
    bytes: usize,
    monitor: bool,
}

/// Encap, decap, FDB hit and miss, VLAN push and pop (64 and 1400 bytes),
/// GRE and GENEVE, answered ARP and NS, against the baseline. Every case is
/// checked first; then the batches of all cases take turns ([`BATCHES`]
/// rounds), so a slow spell of the machine falls on every row alike (the
/// baseline included) instead of on the rows timed during it, and each
/// row is the median of its batch means.
fn per_case(runs: u32) {
    in_private_netns(move || {
        let f = fixture(config());
        let mut rows = Vec::new();
        let mut add =
            |case: Case<'static>, bytes: usize, monitor: bool| rows.push(Row { case, bytes, monitor });
        // Overhead of the harness and the entry point: a frame on an
        // interface that is not a port is refused after two lookups.
        let refused = |name: &str, counter| Case {
            verdict: TC_ACT_SHOT,
            ..Case::tenant(name, "u0", frame([2, 0, 0, 0, 0, 2], ME, 64), counter, 1)
        };
        add(refused("baseline", DropNotAPort), 64, false);
        // The same drop while a monitor runs (over its rate, the usual case
        // under a flood of drops: counted as monitor_lost, no record).
        add(refused("baseline, monitor on (over its rate)", MonitorLost), 64, true);
        for size in [64usize, 1400] {
            let decap = peer_vxlan(&frame([2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 9], size));
            let tagged = push_tag(&frame([2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 4], size), 0x8100, 10);
            add(Case::tenant("encap", "p1", frame([2, 0, 0, 0, 0, 9], ME, size), Encap, 1), size, false);
            add(Case { prog: "vtep_ingress", ..Case::tenant("decap", "u0", decap, Decap, 1) }, size, false);
            add(
                Case::tenant("fdb_hit_local", "p1", frame([2, 0, 0, 0, 0, 2], ME, size), TxLocal, 1),
                size,
                false,
            );
            // Copies to p2 and trunk p3; the frame itself goes to the peer.
            let miss = frame([2, 0, 0, 0, 0, 0x77], ME, size);
            add(Case::tenant("fdb_miss_flood", "p1", miss, FloodLocalCopies, 2), size, false);
            add(
                Case::tenant("vlan_push", "p1", frame([2, 0, 0, 0, 0, 3], ME, size), TxLocal, 1),
                size,
                false,
            );
            add(Case::tenant("vlan_pop", "p3", tagged, TxLocal, 1), size, false);
        }
        // The same encap and decap in the GRE and GENEVE networks.
        for (encap, name, vni, port, local, remote) in
            [(ENCAP_GRE, "gre", 200, "p4", 5u8, 0x15u8), (ENCAP_GENEVE, "geneve", 300, "p5", 6, 0x16)]
        {
            let peer = ([2, 0, 0, 0, 0xaa, 1], [2, 0, 0, 0, 0xaa, 2]);
            let inner = frame([2, 0, 0, 0, 0, local], [2, 0, 0, 0, 0, remote], 64);
            let decap = tunnel_from(encap, peer, [192, 0, 2, 2], [192, 0, 2, 1], vni, &inner);
            let out = frame([2, 0, 0, 0, 0, remote], [2, 0, 0, 0, 0, local], 64);
            add(Case::tenant(&format!("encap ({name})"), port, out, Encap, 1), 64, false);
            let de = Case::tenant(&format!("decap ({name})"), "u0", decap, Decap, 1);
            add(Case { prog: "vtep_ingress", ..de }, 64, false);
        }
        // Answered from the neighbour table, back out of the asking port.
        let arp = scapy::bytes(
            "Ether(dst='ff:ff:ff:ff:ff:ff', src='02:00:00:00:00:01')/\
             ARP(op=1, hwsrc='02:00:00:00:00:01', psrc='203.0.113.1', pdst='203.0.113.2')",
        );
        let ns = scapy::bytes(
            "Ether(dst='33:33:ff:00:00:02', src='02:00:00:00:00:01')/\
             IPv6(src='2001:db8::1', dst='ff02::1:ff00:2', hlim=255)/ICMPv6ND_NS(tgt='2001:db8::2')/\
             ICMPv6NDOptSrcLLAddr(lladdr='02:00:00:00:00:01')",
        );
        let (arp_len, ns_len) = (arp.len(), ns.len());
        add(Case::tenant("arp_suppressed", "p1", arp, ArpSuppressed, 1), arp_len, false);
        add(Case::tenant("nd_suppressed", "p1", ns, NdSuppressed, 1), ns_len, false);
        rows.retain(|r| wanted(&r.case.name));
        for r in &rows {
            let _monitor = r.monitor.then(|| set_monitor(&f, 0));
            r.case.check(&f);
        }
        let per = (runs / BATCHES).max(1);
        let mut means = vec![Vec::new(); rows.len()];
        for _ in 0..BATCHES {
            for (r, m) in rows.iter().zip(means.iter_mut()) {
                let _monitor = r.monitor.then(|| set_monitor(&f, 0));
                m.push(batch_mean(&f, &r.case, per));
            }
        }
        for (r, m) in rows.iter().zip(means) {
            println!("{}\t{}\t{:.1}", r.case.name, r.bytes, median_of(m));
        }
    });
}

/// A fixture whose FDB holds `n` static remote entries, on its own
/// thread (BPF_PROG_TEST_RUN resolves the next hop in the calling thread's
/// namespace). Each request measures `runs` encapsulations, each frame to
/// a different one of the `n` MACs (spread over the table, as many flows
/// would be), and answers the mean ns.
fn fdb_scale_worker(n: u32) -> (std::sync::mpsc::Sender<u32>, std::sync::mpsc::Receiver<f64>) {
    let (req_tx, req_rx) = std::sync::mpsc::channel::<u32>();
    let (res_tx, res_rx) = std::sync::mpsc::channel::<f64>();
    std::thread::spawn(move || {
        in_private_netns(move || {
            let f = fixture(Config { fdb_size: 1_100_000, ..config() });
            let net_id = f.net("blue");
            let mac = |i: u32| {
                let b = i.to_be_bytes();
                [2, 0x55, b[0], b[1], b[2], b[3]]
            };
            let keys: Vec<FdbKey> = (0..n).map(|i| FdbKey::new(net_id, mac(i))).collect();
            let e = FdbEntry {
                kind: FDB_KIND_REMOTE,
                flags: FDB_F_STATIC,
                remote_be: vtep4([192, 0, 2, 2]),
                ..Default::default()
            };
            let (written, err) = overlay_user::batch::update(&f.maps.fdb_raw, &keys, &vec![e; keys.len()]);
            assert!(err.is_none() && written == keys.len(), "filled {written} of {n}: {err:?}");
            let mut r = Rng::new(u64::from(n));
            let frames: Vec<Vec<u8>> =
                (0..4096).map(|_| frame(mac(r.below(n as usize) as u32), ME, 64)).collect();
            Case::tenant("encap (FDB scale)", "p1", frames[0].clone(), Encap, 1).check(&f);
            let mut next = 0;
            while let Ok(runs) = req_rx.recv() {
                let total: u128 = (0..runs)
                    .map(|_| {
                        next = (next + 1) % frames.len();
                        f.run_timed("tenant_ingress", "p1", &frames[next]).2.as_nanos()
                    })
                    .sum();
                res_tx.send(total as f64 / runs as f64).unwrap();
            }
        })
    });
    (req_tx, res_rx)
}

/// Encap to known MACs with 100 and with 1M FDB entries, interleaved in
/// 10 slices; the median slice of each.
fn fdb_scale(runs: u32) {
    let sizes = [(100u32, "100"), (1_000_000, "1M")];
    let workers: Vec<_> = sizes.iter().map(|(n, _)| fdb_scale_worker(*n)).collect();
    let mut got = vec![Vec::new(); sizes.len()];
    for _ in 0..10 {
        for (i, (tx, rx)) in workers.iter().enumerate() {
            tx.send(runs / 10).unwrap();
            got[i].push(rx.recv().expect("worker"));
        }
    }
    for ((_, label), mut v) in sizes.iter().zip(got) {
        v.sort_by(f64::total_cmp);
        println!("encap to one of {label} FDB entries\t64\t{:.1}", v[v.len() / 2]);
    }
}

/// A broadcast from a local port with `n` peer VTEPs (one encapsulated
/// copy each, head-end replication).
fn flood_peers(runs: u32, n: usize) {
    in_private_netns(move || {
        let f = Fixture::new(&many_peers(n));
        let name = format!("flood to {n} peer VTEP{}", if n == 1 { "" } else { "s" });
        let c = Case::tenant(&name, "p1", frame([0xff; 6], ME, 64), FloodRemoteCopies, n as u64);
        println!("{name}\t64\t{:.1}", c.cost(&f, runs));
    });
}

/// `progcost RUNS cases NAME`: only the per-case rows named NAME (for a
/// profiler attached to one case).
fn wanted(name: &str) -> bool {
    std::env::args().nth(3).is_none_or(|w| w == name)
}

fn main() {
    let runs: u32 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(20_000);
    // `progcost RUNS fdb`: the FDB scale rows only.
    if std::env::args().nth(2).as_deref() == Some("fdb") {
        return fdb_scale(runs);
    }
    per_case(runs);
    // `progcost RUNS cases`: the per-case table only (for quick comparisons).
    if std::env::args().nth(2).as_deref() == Some("cases") {
        return;
    }
    fdb_scale(runs);
    for n in [1, 8, 64] {
        flood_peers(runs / 4, n);
    }
}
