//! Per-packet cost of the BPF programs, from BPF_PROG_TEST_RUN: one run per
//! syscall with a fresh frame each time (encapsulation would otherwise
//! compound on the same skb), averaging the kernel-measured duration.
//! Prints `name<TAB>bytes<TAB>ns` lines for `cargo xtask bench`.

use overlay_common::{
    maps::{FDB_F_STATIC, FDB_KIND_REMOTE, FdbEntry, FdbKey},
    pktbuild::*,
};
use overlay_tests::{
    conf::{Config, fdb_port, neigh},
    progtest::{Fixture, dp_config, in_private_netns, many_peers},
    scapy,
};

/// The datapath tests' config, plus a static entry behind trunk p3 (for
/// the VLAN push case) and VM2's neighbour pairs (for the answered ARP
/// request and NS).
fn config() -> Config {
    let mut c = dp_config();
    c.fdb.push(fdb_port("02:00:00:00:00:03", "blue", "p3"));
    c.neigh = vec![
        neigh("blue", "203.0.113.2", "02:00:00:00:00:02"),
        neigh("blue", "2001:db8::2", "02:00:00:00:00:02"),
    ];
    c
}

fn frame(dst: [u8; 6], src: [u8; 6], size: usize) -> Vec<u8> {
    udp4(dst, src, [203, 0, 113, 1], [203, 0, 113, 2], 1000, 2000, size.saturating_sub(42))
}

fn avg_ns(f: &Fixture, prog: &str, dev: &str, input: &[u8], runs: u32) -> f64 {
    let total: u128 = (0..runs).map(|_| f.run_timed(prog, dev, input).2.as_nanos()).sum();
    total as f64 / runs as f64
}

fn peer_vxlan(inner: &[u8]) -> Vec<u8> {
    vxlan_from([2, 0, 0, 0, 0xaa, 1], [2, 0, 0, 0, 0xaa, 2], [192, 0, 2, 2], [192, 0, 2, 1], 100, inner)
}

const ME: [u8; 6] = [2, 0, 0, 0, 0, 1];

/// Encap, decap, FDB hit and miss, VLAN push and pop; 64 and 1400 bytes.
fn per_case(runs: u32) {
    in_private_netns(move || {
        let f = Fixture::new(&config());
        // Overhead of the harness and the entry point: a frame on an
        // interface that is not a port is refused after two lookups.
        println!(
            "baseline\t64\t{:.1}",
            avg_ns(&f, "tenant_ingress", "u0", &frame([2, 0, 0, 0, 0, 2], ME, 64), runs)
        );
        for size in [64usize, 1400] {
            let cases: [(&str, &str, &str, Vec<u8>); 6] = [
                ("encap", "tenant_ingress", "p1", frame([2, 0, 0, 0, 0, 9], ME, size)),
                (
                    "decap",
                    "vtep_ingress",
                    "u0",
                    peer_vxlan(&frame([2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 9], size)),
                ),
                ("fdb_hit_local", "tenant_ingress", "p1", frame([2, 0, 0, 0, 0, 2], ME, size)),
                ("fdb_miss_flood", "tenant_ingress", "p1", frame([2, 0, 0, 0, 0, 0x77], ME, size)),
                ("vlan_push", "tenant_ingress", "p1", frame([2, 0, 0, 0, 0, 3], ME, size)),
                (
                    "vlan_pop",
                    "tenant_ingress",
                    "p3",
                    push_tag(&frame([2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 4], size), 0x8100, 10),
                ),
            ];
            for (name, prog, dev, input) in cases {
                println!("{name}\t{size}\t{:.1}", avg_ns(&f, prog, dev, &input, runs));
            }
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
        for (name, input) in [("arp_suppressed", arp), ("nd_suppressed", ns)] {
            println!("{name}\t{}\t{:.1}", input.len(), avg_ns(&f, "tenant_ingress", "p1", &input, runs));
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
            let f = Fixture::new(&Config { fdb_size: 1_100_000, ..config() });
            let net_id = f.net("blue");
            let mac = |i: u32| {
                let b = i.to_be_bytes();
                [2, 0x55, b[0], b[1], b[2], b[3]]
            };
            let keys: Vec<FdbKey> = (0..n).map(|i| FdbKey::new(net_id, mac(i))).collect();
            let e = FdbEntry {
                kind: FDB_KIND_REMOTE,
                flags: FDB_F_STATIC,
                remote_be: ip_be([192, 0, 2, 2]),
                ..Default::default()
            };
            let (written, err) = overlay_user::batch::update(&f.maps.fdb_raw, &keys, &vec![e; keys.len()]);
            assert!(err.is_none() && written == keys.len(), "filled {written} of {n}: {err:?}");
            let mut r = Rng::new(u64::from(n));
            let frames: Vec<Vec<u8>> =
                (0..4096).map(|_| frame(mac(r.below(n as usize) as u32), ME, 64)).collect();
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
        let b = frame([0xff; 6], ME, 64);
        println!(
            "flood to {n} peer VTEP{}\t64\t{:.1}",
            if n == 1 { "" } else { "s" },
            avg_ns(&f, "tenant_ingress", "p1", &b, runs)
        );
    });
}

fn main() {
    let runs: u32 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(20_000);
    per_case(runs);
    fdb_scale(runs);
    for n in [1, 8, 64] {
        flood_peers(runs / 4, n);
    }
}
