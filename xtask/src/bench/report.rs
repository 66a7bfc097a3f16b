//! BENCHMARKS.md from the measured figures.

use std::{collections::BTreeMap, fmt::Write as _};

use anyhow::Result;

use super::{
    Settings,
    measure::{median, spread},
    topology::ns,
};
use crate::lab::{sh_in, sh_root};

/// (key, label, higher is better). No CPU-per-frame row: the generator
/// holds one core busy whatever the datapath costs, so CPU time per frame
/// measured over the run is only the inverse of the rate row.
const METRICS: [(&str, &str, bool); 5] = [
    ("tcp_1_gbps", "TCP, 1 stream (Gbit/s)", true),
    ("tcp_2_gbps", "TCP, 2 streams (Gbit/s)", true),
    ("small_kpps", "64-byte frames delivered, trafgen on one core (kpps)", true),
    ("rtt_p50_us", "sockperf ping-pong latency p50 (us)", false),
    ("rtt_p99_us", "sockperf ping-pong latency p99 (us)", false),
];

/// The ratio of the medians of `x` over `base`, and a verdict from the
/// rounds themselves: "ahead" or "behind" only when the two ranges
/// (min..max over the rounds) do not overlap, "even" otherwise.
pub fn verdict(x: &[f64], base: &[f64], higher_better: bool) -> String {
    let range = |v: &[f64]| v.iter().fold((f64::MAX, f64::MIN), |(lo, hi), a| (lo.min(*a), hi.max(*a)));
    let ((xlo, xhi), (blo, bhi)) = (range(x), range(base));
    let ratio = median(x) / median(base);
    let word = if x.is_empty() || base.is_empty() {
        "?"
    } else if xlo > bhi {
        if higher_better { "ahead" } else { "behind" }
    } else if xhi < blo {
        if higher_better { "behind" } else { "ahead" }
    } else {
        "even"
    };
    format!("{ratio:.2} {word}")
}

fn environment() -> String {
    let kernel = sh_root("uname -r").unwrap_or_default();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    let ncpu = sh_root("nproc").unwrap_or_default();
    let offloads = sh_in(&ns("overlay", "ha"), "ethtool -k u | grep -E '^(tcp-segmentation|generic-segmentation|generic-receive|tx-udp_tnl-segmentation):' | tr -s ' ' | paste -sd ';'")
        .unwrap_or_default();
    format!(
        "- kernel {}, {} CPUs ({cpu}); (d) attaches XDP in native (driver) mode to the underlay veth, with GRO on \
         and tx checksum offload off on its tenants (the veth path needs both, see README)\n- underlay veth offloads: {}\n",
        kernel.trim(),
        ncpu.trim(),
        offloads.trim()
    )
}

pub fn report(
    results: &BTreeMap<&str, BTreeMap<&'static str, Vec<f64>>>,
    prog: &str,
    cp: &[(String, f64)],
    scale: &[super::agent_scale::ScaleRow],
    s: &Settings,
    quick: bool,
    secs: u64,
) -> Result<String> {
    let mut r = String::new();
    let date = sh_root("date -u +%Y-%m-%d").unwrap_or_default();
    writeln!(r, "# Benchmarks\n")?;
    writeln!(
        r,
        "Measured {} by `cargo xtask bench{}` ({} round{}, {} s per run of iperf3, trafgen and sockperf; {secs} s in all).\n",
        date.trim(),
        if quick { " --quick" } else { "" },
        s.rounds,
        if s.rounds == 1 { "" } else { "s" },
        s.secs,
    )?;
    r += &environment();
    writeln!(
        r,
        "\nTopology for every variant: tenant ns -> host ns -> underlay veth -> host ns -> tenant ns, tenant MTU 1500."
    )?;
    writeln!(
        r,
        "Each cell: the median of the rounds, ± its spread = (max - min) / median of the rounds. (c)/(b) and (d)/(b): \
         the ratio of the medians, \"ahead\"/\"behind\" only when the ranges (min..max) of the rounds do not overlap, \
         otherwise \"even\" (with one round, any difference counts).\n"
    )?;
    writeln!(
        r,
        "| metric | (a) bridge | (b) kernel vxlan | (c) this project, TC | (d) this project, TC + XDP | (c)/(b) | (d)/(b) |"
    )?;
    writeln!(r, "|---|---:|---:|---:|---:|---:|---:|")?;
    for (key, label, higher_better) in METRICS {
        let cell = |v: &str| {
            let vals = results.get(v).and_then(|m| m.get(key)).cloned().unwrap_or_default();
            (median(&vals), spread(&vals))
        };
        let rounds = |v: &str| results.get(v).and_then(|m| m.get(key)).cloned().unwrap_or_default();
        let (a, sa) = cell("bridge");
        let (b, sb) = cell("kvxlan");
        let (c, sc) = cell("overlay");
        let (d, sd) = cell("overlayx");
        writeln!(
            r,
            "| {label} | {a:.2} (±{sa:.0}%) | {b:.2} (±{sb:.0}%) | {c:.2} (±{sc:.0}%) | {d:.2} (±{sd:.0}%) | {} | {} |",
            verdict(&rounds("overlay"), &rounds("kvxlan"), higher_better),
            verdict(&rounds("overlayx"), &rounds("kvxlan"), higher_better)
        )?;
    }
    writeln!(
        r,
        "\nIPv6 underlay, same run, same topology (the underlay veth addressed 2001:db8::1 and ::2, the tenants \
         IPv4): outer IPv6 with UDP checksums, as Linux's vxlan sends them at its defaults; (f) hands GSO \
         super-packets to the kernel's vxlan device (README, IPv6 underlay) and encapsulates single frames \
         itself.\n"
    )?;
    writeln!(
        r,
        "| metric | (e) kernel vxlan over IPv6 | (f) this project over IPv6, TC | (f)/(e) | (f)/(c) |"
    )?;
    writeln!(r, "|---|---:|---:|---:|---:|")?;
    for (key, label, higher_better) in METRICS {
        let rounds = |v: &str| results.get(v).and_then(|m| m.get(key)).cloned().unwrap_or_default();
        let (e, f) = (rounds("kvxlan6"), rounds("overlay6"));
        writeln!(
            r,
            "| {label} | {:.2} (±{:.0}%) | {:.2} (±{:.0}%) | {} | {} |",
            median(&e),
            spread(&e),
            median(&f),
            spread(&f),
            verdict(&f, &e, higher_better),
            verdict(&f, &rounds("overlay"), higher_better)
        )?;
    }
    let nogso = results.get("overlay6").and_then(|m| m.get("tcp_1_nogso_gbps")).cloned().unwrap_or_default();
    let gso = results.get("overlay6").and_then(|m| m.get("tcp_1_gbps")).cloned().unwrap_or_default();
    writeln!(
        r,
        "\nThe alternative to the GSO device, measured in (f): TCP, 1 stream, with the sender's TSO and GSO off \
         (every segment encapsulated and checksummed in BPF): {:.2} Gbit/s (±{:.0}%) against {:.2} with GSO \
         through the device ({}).",
        median(&nogso),
        spread(&nogso),
        median(&gso),
        verdict(&nogso, &gso, true)
    )?;
    writeln!(
        r,
        "\nPer-packet program cost from BPF_PROG_TEST_RUN (kernel-measured duration of one run, fresh frame per run: the median of 5 batch means, the batches of all cases taking turns so that a slow spell of the machine falls on every row alike; expect ±20% between runs of the bench on this shared 2-core machine; `baseline` is a frame refused after two map lookups, i.e. the harness and entry overhead). Each case's verdict and counters were checked before it was timed. Under test-run `bpf_redirect` only sets the target (no transmit is timed), while a flood's `bpf_clone_redirect` copies are transmitted inside the run, so `fdb_miss_flood` and the peer rows include transmit:\n"
    )?;
    writeln!(r, "| case | frame bytes | ns | ns over baseline |")?;
    writeln!(r, "|---|---:|---:|---:|")?;
    let rows: Vec<(String, String, f64)> = prog
        .lines()
        .filter_map(|l| {
            let mut f = l.split('\t');
            Some((f.next()?.to_string(), f.next()?.to_string(), f.next()?.parse().ok()?))
        })
        .collect();
    let base = rows.iter().find(|(n, _, _)| n == "baseline").map(|r| r.2).unwrap_or(0.0);
    for (name, bytes, ns) in &rows {
        writeln!(r, "| {name} | {bytes} | {ns:.0} | {:.0} |", (ns - base).max(0.0))?;
    }
    r += &super::goals::table(results, &rows);
    writeln!(
        r,
        "\nControl plane (fresh instance each time; static FDB entries are written with `BPF_MAP_UPDATE_BATCH`):\n"
    )?;
    writeln!(r, "| operation | seconds |")?;
    writeln!(r, "|---|---:|")?;
    for (what, secs) in cp {
        writeln!(r, "| {what} | {secs:.2} |")?;
    }
    writeln!(
        r,
        "\nControl plane at scale: one `overlayctl agent` and one etcd member; `etcdgen` registers N \
         simulated hosts (a lease, a VTEP key and 10 MAC keys each, one transaction per host; 100 hosts \
         per VNI, their VTEP addresses in 198.51.100.0/24, reused across VNIs: each is a (network, VTEP) \
         pair of its own for the agent), then revokes 10% of the leases. Times are read off the agent's \
         status file (written every 100 ms). Goals: 1,000 hosts / 10,000 MACs installed within 5 s, \
         agent RSS under 50 MB.\n"
    )?;
    writeln!(
        r,
        "| hosts | MACs | registering (etcdgen) s | all in FLOOD/FDB s | after the last key s | agent RSS MB | 10% vanish, removed s | goals |"
    )?;
    writeln!(r, "|---:|---:|---:|---:|---:|---:|---:|---|")?;
    for x in scale {
        let goal = if x.hosts < 1000 {
            "-".to_string()
        } else {
            let c = if x.converged_s < 5.0 { "met" } else { "missed" };
            let m = if x.rss_mb < 50.0 { "met" } else { "missed" };
            format!("converge < 5 s: {c}; RSS < 50 MB: {m}")
        };
        writeln!(
            r,
            "| {} | {} | {:.2} | {:.2} | {:.2} | {:.1} | {:.2} | {goal} |",
            x.hosts, x.macs, x.register_s, x.converged_s, x.after_last_s, x.rss_mb, x.vanish_s
        )?;
    }
    r += ANALYSIS;
    Ok(r)
}

const ANALYSIS: &str = r#"
## Analysis

This section explains; it holds no figures. Every number above comes from
this run; "ahead"/"behind" are read off the rounds in the same rows, and
"even" where their ranges overlap.

Where (c) and (b) differ, and why:

- **Per-packet work.** (b) moves every frame through the bridge, the vxlan
  device's transmit path (route lookup, UDP tunnel transmit) and, on the other
  side, the UDP receive path with the vxlan socket and the bridge again. (c)
  runs one TC program on the tenant port (parse, one FDB lookup, the next
  hop, egress membership, encapsulation in place, redirect) and one on the
  underlay (parse with the outer IPv4 checksum, VNI and peer lookups, the
  reverse-path check, decapsulation in place, redirect): no extra netdevice
  hops, no socket lookup. Known unicast into a tenant's namespace is handed
  to the tenant's `eth0` with `bpf_redirect_peer` (no veth transmit, no
  backlog queue; after decapsulation when the inner frame is IPv4). The 64-byte rate (trafgen, so the sender's own cost
  is small) and the sockperf latency show it; (a) does no encapsulation at
  all. There is no CPU-per-frame row: trafgen keeps one core busy whatever
  the datapath costs, so CPU time per frame over the run would only restate
  the rate (its inverse).
- **(c) against (a), small frames.** The whole path runs on trafgen's
  core (a veth hands each frame to the backlog of the sending CPU), so the
  rate is the inverse of what one frame costs from sender to receiver. A
  profile of both variants (perf, cpu-clock, outside the bench) shows
  what each spends that the other does not. (a): the bridge twice (input,
  FDB lookup, forward, its netfilter hook stubs) and one veth hop more.
  (c): the two programs' own instructions (the largest share: long
  programs whose path spreads over many cache lines), six hash-map
  lookups a frame (each a call, a hash, a bucket and an entry: `FDB`
  twice and `PEERS` on both sides; a peer's next hop, the underlay MTU
  and the reverse-path pass ride in its `PEERS` entry; ports and VNIs
  below 65536 are array lookups, which the verifier inlines), the
  reallocation of the frame's head, and two redirects, each resolving an ifindex. The
  reallocation: a packet socket (or UDP socket) reserves the tenant
  device's own headroom, 16 bytes, so `bpf_skb_adjust_room` reallocates
  the head of every such frame to make room for the outer headers. The
  kernel's vxlan (b) avoids it: the bridge passes the vxlan device's
  `needed_headroom` on to its ports, which only in-kernel callers (bridge,
  Open vSwitch) can do, not BPF or netlink; TCP senders reserve ample
  headroom, so TCP does not pay it. Closing the gap takes fewer lookups a
  frame (one table for the FDB's two lookups) and a shorter hot path, not
  another hook.
- **TCP** rides as GSO super-packets in both (b) and (c): 64 KB segments are
  encapsulated once (`bpf_skb_adjust_room` with the UDP-tunnel flags in (c))
  and cross the veth underlay unsegmented, so throughput is bounded by the
  TCP endpoints. The bench turns off br_netfilter's hooks in its namespaces
  (a host without br_netfilter); with them on, (a) and (b) pay iptables hooks
  on every bridged frame.
- **Spread.** Where the spread of a row is wide, the machine was shared
  (CPU steal on the host); rows whose ranges overlap are no verdict.
- **IPv6 underlay**, (e) against (f): both send outer UDP checksums. (f)
  sums single frames in BPF (64-byte chunks, local checksum offload for
  the inner TCP/UDP segment) and verifies received ones unless the kernel
  already did; its GSO super-packets (TCP) are handed to the kernel's
  vxlan device, so its TCP rows run the kernel's transmit path plus one
  TC program, and only its receive side is ours. The 64-byte and latency
  rows are single frames: ours on both sides.

Hooks, (c) against (d): on this veth underlay the XDP fast path loses.
Attaching XDP to a veth takes GSO away from its peer, so the sending host
segments every TCP stream in software and the receiver gets MTU-sized
frames; the path also needs full checksums from the tenants (an
XDP-redirected frame carries no checksum state) and NAPI on the target
veth. Small packets do not gain either: veth turns each skb into an
xdp_frame and back. XDP pays off where frames arrive as xdp_frames, a NIC's
receive path, which this machine has none of; so the underlay stays at TC by
default (`xdp = "off"`), with `native` and `generic` selectable.

Program cost, case by case:

- **Encap** is the flow hash for the UDP source port (the skb's own when a
  socket gave it one; otherwise a hash of the inner addresses, protocol and
  ports computed in the program, as a test-run frame, a forwarded frame or
  trafgen's has none: a multilinear hash whose products the CPU computes
  side by side, where `bpf_get_hash_recalc` would run the kernel's flow
  dissector), the cached next hop (a FIB lookup at most every 0.5 s per
  peer), `bpf_skb_adjust_room`, one store for the next hop's MAC
  addresses, the ethertype, the outer headers and the inner Ethernet
  header, the MTU check (against the MTU cached with the next hop, the
  helper only for frames over it and GSO), the port lookup (an array),
  the PEERS (membership and the cached next hop) and FDB lookups
  (destination, and the source for learning: three hash lookups, the
  largest share after the program's own instructions) and the redirect.
  The clock is read once per frame: `jiffies` (one load) and the
  reading kept per CPU for that jiffy (`CLOCK`); `bpf_ktime_get_coarse_ns`
  (about 30 ns) runs once per jiffy and CPU.
- **Decap** is the parse and the outer header checksum, the VNI, peer and
  FDB lookups, the reverse-path check (one FIB lookup per peer at most
  every 0.5 s, the pass kept in the peer's `PEERS` entry), learning,
  `bpf_skb_adjust_room`, the inner Ethernet header written directly over
  the outer one and the redirect: three hash lookups (peer, source and
  destination MAC) and two array lookups (VNI, egress port).
- **GRE and GENEVE** (`encap (gre)`, `decap (geneve)`, ...) run the same
  code as VXLAN with another header: GRE writes 28 bytes of outer header
  instead of 36 and has no UDP header (so no source port to hash into);
  GENEVE's receive also reads the option length and skips the options.
- **Tagged egress and flooding** check each port's membership at that
  moment (one `TRUNK_VLANS` or port lookup per port), so a stale entry
  never crosses networks.
- **Flooding** costs a tail call into `tenant_flood` and one
  `bpf_clone_redirect` per peer VTEP, each copy readdressed and sent by a
  `bpf_loop` callback with the next hop from `NEXT_HOP` (head-end replication; the kernel's vxlan device clones per
  FDB `00:00:00:00:00:00` entry in the same way). Profiled (outside the
  bench), most of a copy is the kernel's: the clone, its transmit
  (included here), and a copy of the frame's head, which
  `bpf_clone_redirect` makes so that the program may rewrite the outer
  header for the next peer; the program's own share is the readdressing
  (one store for the IPv4 checksum and addresses, one for the MACs), the
  `NEXT_HOP` lookup and the loop.
- **Answered ARP and NS** (`arp_suppressed`, `nd_suppressed`): the parse
  (for NS with the ICMPv6 checksum, by `bpf_csum_diff`), one `NEIGH`
  lookup, the reply written over the request in place (`bpf_skb_change_tail`
  to its length, the NA checksum) and the redirect back out of the port,
  in a BPF function of its own.
- **1M FDB entries:** a MAC picked at random among 1M entries misses the
  CPU caches (the table does not fit), so each lookup pays two misses:
  the bucket (an array in 4 KiB vmalloc pages, so a TLB miss too; in a VM
  each is a nested page walk) and the element. A profile (outside the
  bench) puts the two at about the same share. The FDB's entries are
  allocated as they are added (`BPF_F_NO_PREALLOC`), from the kernel's
  linear map, whose large pages spare most of the element's TLB misses; a
  preallocated map keeps them in vmalloc pages too. With a working set
  that fits the cache the table size does not matter (the lookup is
  O(1)); the remaining gap would need a table with one miss a lookup
  (open addressing, key and value in the slot).
- **Control plane:** static entries are written in batches
  (`BPF_MAP_UPDATE_BATCH`); most of an `up` is loading and verifying the
  programs (the "nothing to program" row).
"#;

#[cfg(test)]
mod tests {
    use super::verdict;

    #[test]
    fn ahead_or_behind_only_when_the_rounds_do_not_overlap() {
        assert_eq!(verdict(&[11.0, 12.0, 13.0], &[8.0, 9.0, 10.0], true), "1.33 ahead");
        assert_eq!(verdict(&[11.0, 12.0, 13.0], &[8.0, 9.0, 10.0], false), "1.33 behind");
        assert_eq!(verdict(&[9.5, 12.0, 13.0], &[8.0, 9.0, 10.0], true), "1.33 even", "ranges overlap");
        assert_eq!(verdict(&[5.0], &[10.0], false), "0.50 ahead", "one round: any difference");
        assert_eq!(verdict(&[], &[10.0], true), "NaN ?");
    }
}
