//! Per-packet cost of the BPF programs, from BPF_PROG_TEST_RUN: one run per
//! syscall with a fresh frame each time (encapsulation would otherwise
//! compound on the same skb), averaging the kernel-measured duration.
//! Prints `name<TAB>bytes<TAB>ns` lines for `cargo xtask bench`.

use overlay_common::{encap::EncapParams, pktbuild::*};
use overlay_tests::progtest::{Fixture, in_private_netns};

const CONFIG: &str = r#"
[underlay]
interface = "u0"
address = "192.0.2.1"
[[network]]
name = "blue"
vni = 100
vlan = 10
peers = ["192.0.2.2"]
[[port]]
interface = "p1"
network = "blue"
[[port]]
interface = "p2"
network = "blue"
[[port]]
interface = "p3"
trunk = ["blue"]
[[fdb]]
mac = "02:00:00:00:00:02"
network = "blue"
port = "p2"
[[fdb]]
mac = "02:00:00:00:00:03"
network = "blue"
port = "p3"
[[fdb]]
mac = "02:00:00:00:00:09"
network = "blue"
remote = "192.0.2.2"
"#;

fn frame(dst: [u8; 6], src: [u8; 6], size: usize) -> Vec<u8> {
    udp4(dst, src, [203, 0, 113, 1], [203, 0, 113, 2], 1000, 2000, size.saturating_sub(42))
}

fn avg_ns(f: &Fixture, prog: &str, dev: &str, input: &[u8], runs: u32) -> f64 {
    let total: u128 = (0..runs).map(|_| f.run_timed(prog, dev, input).2.as_nanos()).sum();
    total as f64 / runs as f64
}

fn main() {
    let runs: u32 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(20_000);
    in_private_netns(move || {
        let f = Fixture::new(CONFIG);
        let me = [2, 0, 0, 0, 0, 1];
        let peer = |inner: &[u8]| {
            let p = EncapParams {
                src_be: ip_be([192, 0, 2, 2]),
                dst_be: ip_be([192, 0, 2, 1]),
                vni: 100,
                ttl: 64,
                src_port: 50000,
                dst_port_be: 4789u16.to_be(),
            };
            vxlan([2, 0, 0, 0, 0xaa, 1], [2, 0, 0, 0, 0xaa, 2], &p, inner)
        };
        // Overhead of the harness and the entry point: a frame on an
        // interface that is not a port is refused after two lookups.
        println!(
            "baseline\t64\t{:.1}",
            avg_ns(&f, "tenant_ingress", "u0", &frame([2, 0, 0, 0, 0, 2], me, 64), runs)
        );
        for size in [64usize, 1400] {
            let cases: [(&str, &str, &str, Vec<u8>); 6] = [
                ("encap", "tenant_ingress", "p1", frame([2, 0, 0, 0, 0, 9], me, size)),
                ("decap", "vtep_ingress", "u0", peer(&frame([2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 9], size))),
                ("fdb_hit_local", "tenant_ingress", "p1", frame([2, 0, 0, 0, 0, 2], me, size)),
                ("fdb_miss_flood", "tenant_ingress", "p1", frame([2, 0, 0, 0, 0, 0x77], me, size)),
                ("vlan_push", "tenant_ingress", "p1", frame([2, 0, 0, 0, 0, 3], me, size)),
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
    });
}
