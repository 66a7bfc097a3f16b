//! One round of measurements of a variant, and the control-plane timings.

use std::{collections::BTreeMap, time::Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use super::{
    Settings, Variant,
    topology::{Bench, ns},
};
use crate::{
    cmd::root,
    lab::{sh_in, sh_root, wait_listening},
};

fn iperf(v: &str, args: &str, secs: u32) -> Result<Value> {
    sh_in(&ns(v, "tb"), "iperf3 -s -1 -D -p 5201")?;
    wait_listening(&ns(v, "tb"), "t", 5201)?;
    let out = sh_in(
        &ns(v, "ta"),
        &format!("timeout {} iperf3 -J -c 203.0.113.2 -p 5201 -t {secs} {args}", secs + 15),
    )?;
    let j: Value = serde_json::from_str(&out).context("iperf3 JSON")?;
    if let Some(e) = j.get("error") {
        bail!("{v}: iperf3 {args}: {e}");
    }
    Ok(j)
}

/// Frames received by the tenant `eth0` of namespace `ns`.
fn rx_packets(ns: &str) -> Result<u64> {
    sh_in(ns, "cat /sys/class/net/eth0/statistics/rx_packets")?.trim().parse().context("rx_packets")
}

/// trafgen config: 60-byte UDP frames from tenant A's MAC to tenant B's, to
/// an address B does not have (B's stack drops them without a reply; its
/// `eth0` counts them).
fn trafgen_conf() -> Result<std::path::PathBuf> {
    let p = root().join("lab/bench-trafgen.cfg");
    std::fs::create_dir_all(root().join("lab"))?;
    std::fs::write(
        &p,
        "{ 0x02,0,0,0,0,0x02, 0x02,0,0,0,0,0x01, 0x08,0x00,\n\
           0x45,0, const16(46), 0,0, 0x40,0, 64, 17, csumip(14, 33),\n\
           203,0,113,1, 203,0,113,99,\n\
           const16(9), const16(9), const16(26), 0,0,\n\
           fill(0x55, 18) }\n",
    )?;
    Ok(p)
}

pub fn measure(variant: Variant, s: &Settings, out: &mut BTreeMap<&'static str, Vec<f64>>) -> Result<()> {
    let v = variant.key();
    // A missing figure is an error, never a zero that looks like a result.
    let gbps = |j: &Value| -> Result<f64> {
        let bps = j.pointer("/end/sum_received/bits_per_second").and_then(Value::as_f64);
        match bps {
            Some(b) if b > 0.0 => Ok(b / 1e9),
            _ => bail!("{v}: iperf3 reported no received throughput"),
        }
    };
    eprintln!("      {v}: TCP, 1 stream");
    out.entry("tcp_1_gbps").or_default().push(gbps(&iperf(v, "", s.secs)?)?);
    eprintln!("      {v}: TCP, 2 streams");
    out.entry("tcp_2_gbps").or_default().push(gbps(&iperf(v, "-P 2", s.secs)?)?);
    if variant == Variant::Overlay6 {
        // The alternative to the GSO device: the sender segments, and every
        // segment is encapsulated and checksummed in BPF.
        eprintln!("      {v}: TCP, 1 stream, the sender's TSO and GSO off");
        sh_in(&ns(v, "ta"), "ethtool -K eth0 tso off gso off >/dev/null")?;
        let r = iperf(v, "", s.secs);
        sh_in(&ns(v, "ta"), "ethtool -K eth0 tso on gso on >/dev/null")?;
        out.entry("tcp_1_nogso_gbps").or_default().push(gbps(&r?)?);
    }
    eprintln!("      {v}: 64-byte frames (trafgen, one core)");
    let rx0 = rx_packets(&ns(v, "tb"))?;
    // `timeout` ends trafgen with SIGINT (status 124); anything else is a
    // failure of the generator, reported with what it said.
    sh_in(
        &ns(v, "ta"),
        &format!(
            "timeout -s INT {} trafgen -o eth0 -c {} -P 1 -C >/dev/null 2>{err}; \
             rc=$?; [ $rc -eq 0 ] || [ $rc -eq 124 ] || {{ cat {err} >&2; exit $rc; }}",
            s.secs,
            trafgen_conf()?.display(),
            err = root().join("lab/bench-trafgen.err").display()
        ),
    )
    .with_context(|| format!("{v}: trafgen"))?;
    // Frames still in flight are counted once they are delivered.
    std::thread::sleep(std::time::Duration::from_millis(200));
    let delivered = rx_packets(&ns(v, "tb"))? - rx0;
    if delivered == 0 {
        bail!("{v}: not one 64-byte frame delivered");
    }
    out.entry("small_kpps").or_default().push(delivered as f64 / s.secs as f64 / 1e3);
    eprintln!("      {v}: latency (sockperf ping-pong, {} s)", s.secs);
    // Ended by its own pid afterwards, never by name.
    let server = sh_in(&ns(v, "tb"), "sockperf sr -i 203.0.113.2 -p 11111 >/dev/null 2>&1 & echo $!")?;
    let server: u32 =
        server.trim().parse().with_context(|| format!("{v}: sockperf server pid {server:?}"))?;
    wait_listening(&ns(v, "tb"), "u", 11111)?;
    let pp = sh_in(&ns(v, "ta"), &format!("sockperf pp -i 203.0.113.2 -p 11111 -m 64 -t {} 2>&1", s.secs));
    let _ = sh_in(&ns(v, "tb"), &format!("kill {server}"));
    let pp = pp?;
    let pct = |p: &str| -> Result<f64> {
        pp.lines()
            .find(|l| l.contains(&format!("percentile {p} =")))
            .and_then(|l| l.rsplit('=').next()?.trim().parse().ok())
            .with_context(|| format!("{v}: sockperf gave no p{p}:\n{pp}"))
    };
    out.entry("rtt_p50_us").or_default().push(pct("50.000")?);
    out.entry("rtt_p99_us").or_default().push(pct("99.000")?);
    Ok(())
}

/// Control plane: `up` with 100 ports, and `up` programming 100k static
/// FDB entries (batched), each on a fresh instance. Returns (what, seconds).
pub fn control_plane(b: &Bench) -> Result<Vec<(String, f64)>> {
    let ns = "ovbench-cp";
    sh_root(&format!("ip netns add {ns}"))?;
    sh_in(
        ns,
        "ip link set lo up && ip link add u type veth peer name u2 && ip link set u up && ip link set u2 up && \
               ip addr add 192.0.2.1/24 dev u && for i in $(seq 0 99); do ip link add p$i type veth peer name q$i; \
               ip link set p$i up; done",
    )?;
    let head = "name = \"ovbench-cp\"\nfdb_size = 131072\n[underlay]\ninterface = \"u\"\naddress = \"192.0.2.1\"\n\
                [[network]]\nname = \"t\"\nvni = 100\npeers = [\"192.0.2.2\"]\n\
                [[network]]\nname = \"t2\"\nvni = 101\npeers = [\"192.0.2.2\"]\n";
    let mut out = Vec::new();
    let mut timed_up = |what: &str, body: String| -> Result<()> {
        let cfg = root().join("lab/bench-cp.toml");
        std::fs::write(&cfg, format!("{head}{body}"))?;
        let t = Instant::now();
        sh_in(ns, &format!("{} up -c {}", b.ctl.display(), cfg.display()))?;
        out.push((what.to_string(), t.elapsed().as_secs_f64()));
        sh_in(ns, &format!("{} down --name ovbench-cp", b.ctl.display()))?;
        Ok(())
    };
    // Two networks: at most 64 local ports per network.
    let ports: String = (0..100)
        .map(|i| {
            format!("[[port]]\ninterface = \"p{i}\"\nnetwork = \"{}\"\n", if i % 2 == 0 { "t" } else { "t2" })
        })
        .collect();
    timed_up("`overlayctl up` with 100 ports in 2 networks (s)", ports)?;
    let fdb: String = (0..100_000u32)
        .map(|i| {
            let m = i.to_be_bytes();
            format!("[[fdb]]\nmac = \"02:00:{:02x}:{:02x}:{:02x}:{:02x}\"\nnetwork = \"t\"\nremote = \"192.0.2.2\"\n", m[0], m[1], m[2], m[3])
        })
        .collect();
    timed_up("`overlayctl up` with 100k static FDB entries (s)", fdb)?;
    timed_up("`overlayctl up` with nothing to program (s)", String::new())?;
    Ok(out)
}

pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    if s.is_empty() { f64::NAN } else { s[s.len() / 2] }
}

pub fn spread(v: &[f64]) -> f64 {
    let m = median(v);
    let (lo, hi) = v.iter().fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(*x), b.max(*x)));
    if m == 0.0 || v.len() < 2 { 0.0 } else { (hi - lo) / m * 100.0 }
}
