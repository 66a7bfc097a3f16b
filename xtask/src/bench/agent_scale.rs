//! Control-plane scale: one `overlayctl agent` against one etcd member,
//! with N simulated hosts (10 MACs each, a lease each) registered by
//! `etcdgen`; then 10% of them vanish (leases revoked).

use std::{
    path::PathBuf,
    process::{Child, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use super::topology::Bench;
use crate::{
    cmd::root,
    lab::{self, sh_in, sh_root},
};

const AGENT_NS: &str = "ovbench-cpa";
const ETCD_NS: &str = "ovbench-cpe";
const INSTANCE: &str = "ovbench-agent";
const MACS: u32 = 10;

pub struct ScaleRow {
    pub hosts: u32,
    pub macs: u32,
    /// etcdgen's own time to write every key (one txn per host).
    pub register_s: f64,
    /// From the first key written until the agent had every VTEP in its
    /// flood sets and every MAC in its FDB.
    pub converged_s: f64,
    /// The same, counted from the last key written.
    pub after_last_s: f64,
    pub rss_mb: f64,
    /// From the revocation of 10% of the leases until they were gone.
    pub vanish_s: f64,
}

/// What is left on drop: the agent, etcd, the namespaces.
struct Lab {
    ctl: PathBuf,
    procs: Vec<Child>,
    data: PathBuf,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for p in &mut self.procs {
            // SAFETY: signalling our own child by its pid.
            unsafe { libc::kill(p.id() as i32, libc::SIGTERM) };
        }
        for p in &mut self.procs {
            let _ = p.wait();
        }
        let _ = sh_in(AGENT_NS, &format!("{} down --name {INSTANCE}", self.ctl.display()));
        lab::delete_namespaces([AGENT_NS, ETCD_NS]);
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

fn spawn(ns: &str, cmd: &str) -> Result<Child> {
    let c = std::process::Command::new("ip")
        .args(["netns", "exec", ns, "sh", "-c", cmd])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    Ok(c)
}

fn agent_status() -> Option<Value> {
    serde_json::from_slice(&std::fs::read(format!("/run/overlayctl/{INSTANCE}.agent.json")).ok()?).ok()
}

/// Polls the agent's status (every 10 ms) until `f` holds; seconds since `t0`.
fn until(t0: Instant, secs: u64, what: &str, f: impl Fn(&Value) -> bool) -> Result<f64> {
    let end = t0 + Duration::from_secs(secs);
    loop {
        if agent_status().is_some_and(|s| f(&s)) {
            return Ok(t0.elapsed().as_secs_f64());
        }
        if Instant::now() > end || lab::interrupted() {
            bail!("agent scale: {what} not reached within {secs} s: {:?}", agent_status());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn counts(s: &Value) -> (u64, u64) {
    (s["remote_vteps"].as_u64().unwrap_or(0), s["remote_macs"].as_u64().unwrap_or(0))
}

pub fn run(b: &Bench, hosts: u32) -> Result<ScaleRow> {
    let mut l = Lab { ctl: b.ctl.clone(), procs: Vec::new(), data: root().join("lab/bench-etcd") };
    lab::delete_namespaces([AGENT_NS, ETCD_NS]);
    let _ = std::fs::remove_dir_all(&l.data);
    sh_root(&format!(
        "ip netns add {AGENT_NS} && ip netns add {ETCD_NS} && \
         ip link add u netns {AGENT_NS} type veth peer name e netns {ETCD_NS}"
    ))?;
    sh_in(
        AGENT_NS,
        "ip link set lo up && ip link set u up && ip addr add 192.0.2.1/24 dev u && \
         ip route add 198.51.100.0/24 dev u",
    )?;
    sh_in(ETCD_NS, "ip link set lo up && ip link set e up && ip addr add 192.0.2.250/24 dev e")?;
    l.procs.push(spawn(
        ETCD_NS,
        &format!(
            "exec etcd --name bench --data-dir {} --listen-client-urls http://192.0.2.250:2379 \
             --advertise-client-urls http://192.0.2.250:2379 --listen-peer-urls http://127.0.0.1:2380 \
             --log-level error --logger zap",
            l.data.display()
        ),
    )?);
    netns_lab::wait_until("bench etcd healthy", 30, || {
        sh_in(ETCD_NS, "curl -s -m 2 http://192.0.2.250:2379/health").is_ok_and(|o| o.contains("\"true\""))
    })
    .map_err(anyhow::Error::msg)?;
    // One network per 100 simulated hosts (a flood set holds 128 VTEPs).
    let nets = hosts.div_ceil(100);
    let mut cfg = format!(
        "name = \"{INSTANCE}\"\n[underlay]\ninterface = \"u\"\naddress = \"192.0.2.1\"\n\
         [control]\netcd = [\"http://192.0.2.250:2379\"]\nlease_ttl = 10\n"
    );
    for i in 0..nets {
        cfg += &format!("[[network]]\nname = \"n{i}\"\nvni = {}\n", 100 + i);
    }
    let path = root().join("lab/bench-agent.toml");
    std::fs::write(&path, cfg)?;
    l.procs.push(spawn(AGENT_NS, &format!("exec {} agent -c {}", b.ctl.display(), path.display()))?);
    until(Instant::now(), 30, "agent connected", |s| s["connected"] == true)?;
    let generator = root().join("target/release/etcdgen");
    let leases = root().join("lab/bench-leases");
    let t0 = Instant::now();
    sh_in(
        ETCD_NS,
        &format!(
            "{} http://192.0.2.250:2379 register {hosts} {MACS} {}",
            generator.display(),
            leases.display()
        ),
    )
    .context("etcdgen register")?;
    let register_s = t0.elapsed().as_secs_f64();
    let want = (u64::from(hosts), u64::from(hosts * MACS));
    let converged_s = until(t0, 60, "every host and MAC installed", |s| counts(s) == want)?;
    let pid = agent_status().and_then(|s| s["pid"].as_u64()).context("agent pid")?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let rss_kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("VmRSS")?;
    let t1 = Instant::now();
    sh_in(ETCD_NS, &format!("{} http://192.0.2.250:2379 vanish {}", generator.display(), leases.display()))
        .context("etcdgen vanish")?;
    let gone = hosts.div_ceil(10);
    let after = (u64::from(hosts - gone), u64::from((hosts - gone) * MACS));
    let vanish_s = until(t1, 60, "vanished hosts removed", |s| counts(s) == after)?;
    Ok(ScaleRow {
        hosts,
        macs: hosts * MACS,
        register_s,
        converged_s,
        after_last_s: (converged_s - register_s).max(0.0),
        rss_mb: rss_kb / 1024.0,
        vanish_s,
    })
}
