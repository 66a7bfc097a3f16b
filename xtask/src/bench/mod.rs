//! `cargo xtask bench [--quick]`: this project against the kernel's own
//! datapath, side by side, in one run.
//!
//! Same topology for every variant: tenant ns -> host ns -> underlay veth ->
//! host ns -> tenant ns, tenant MTU 1500 (underlay MTU 1600). Variants:
//! (a) kernel bridge without encapsulation (the ceiling), (b) kernel vxlan +
//! bridge with static FDB, (c) this project (TC programs). Variants are
//! interleaved in every round; medians and spread are reported, each figure
//! also as a ratio to (b) of the same rounds.

mod agent_scale;
mod goals;
mod measure;
mod report;
mod topology;

use std::{collections::BTreeMap, time::Instant};

use anyhow::{Result, bail};

use crate::{
    cmd::{self, clean, root, step},
    lab,
};
use measure::{control_plane, measure};
use topology::{Bench, build};

/// The datapaths compared, in table order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// (a) kernel bridge, no encapsulation: the ceiling.
    Bridge,
    /// (b) kernel vxlan + bridge with a static FDB.
    KernelVxlan,
    /// (c) this project, TC programs.
    Overlay,
    /// (d) this project, TC + XDP native on the underlay.
    OverlayXdp,
    /// (e) kernel vxlan over IPv6 + bridge, static FDB, at its defaults
    /// (outer UDP checksums).
    KernelVxlan6,
    /// (f) this project over IPv6, TC (checksums, GSO through the
    /// kernel's vxlan device).
    Overlay6,
}

impl Variant {
    pub const ALL: [Variant; 6] = [
        Variant::Bridge,
        Variant::KernelVxlan,
        Variant::Overlay,
        Variant::OverlayXdp,
        Variant::KernelVxlan6,
        Variant::Overlay6,
    ];

    /// An IPv6 underlay.
    pub fn v6(self) -> bool {
        matches!(self, Variant::KernelVxlan6 | Variant::Overlay6)
    }

    /// Short name: namespaces, instances and result keys.
    pub fn key(self) -> &'static str {
        match self {
            Variant::Bridge => "bridge",
            Variant::KernelVxlan => "kvxlan",
            Variant::Overlay => "overlay",
            Variant::OverlayXdp => "overlayx",
            Variant::KernelVxlan6 => "kvxlan6",
            Variant::Overlay6 => "overlay6",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Variant::Bridge => "(a) kernel bridge, no encapsulation",
            Variant::KernelVxlan => "(b) kernel vxlan + bridge, static FDB",
            Variant::Overlay => "(c) this project, TC",
            Variant::OverlayXdp => "(d) this project, TC + XDP native on the underlay",
            Variant::KernelVxlan6 => "(e) kernel vxlan over IPv6 + bridge, static FDB, outer UDP checksums",
            Variant::Overlay6 => "(f) this project over IPv6, TC, outer UDP checksums",
        }
    }
}

pub struct Settings {
    pub rounds: usize,
    pub secs: u32,
    pub prog_runs: u32,
}

pub fn run(quick: bool) -> Result<()> {
    let started = Instant::now();
    let s = if quick {
        Settings { rounds: 1, secs: 1, prog_runs: 2000 }
    } else {
        Settings { rounds: 3, secs: 5, prog_runs: 20_000 }
    };
    crate::bootstrap::all()?;
    crate::build::ebpf()?;
    step("build overlayctl, progcost and etcdgen (release)");
    cmd::run(clean("cargo").args([
        "build",
        "--quiet",
        "--release",
        "--package",
        "overlay-user",
        "--bin",
        "overlayctl",
    ]))?;
    cmd::run(clean("cargo").args([
        "build",
        "--quiet",
        "--release",
        "--package",
        "overlay-tests",
        "--bin",
        "progcost",
        "--bin",
        "etcdgen",
    ]))?;
    lab::catch_interrupt();
    let b = Bench { ctl: root().join("target/release/overlayctl") };
    drop(Bench { ctl: b.ctl.clone() }); // leftovers of an interrupted run
    for v in Variant::ALL {
        step(&format!("build {}", v.describe()));
        build(&b, v)?;
    }
    // results[variant][metric] = one value per round
    let mut results: BTreeMap<&str, BTreeMap<&'static str, Vec<f64>>> = BTreeMap::new();
    for round in 0..s.rounds {
        for i in 0..Variant::ALL.len() {
            let v = Variant::ALL[(i + round) % Variant::ALL.len()];
            step(&format!("round {}/{}: {}", round + 1, s.rounds, v.describe()));
            measure(v, &s, results.entry(v.key()).or_default())?;
        }
    }
    step(&format!("per-packet program cost (BPF_PROG_TEST_RUN, {} runs each)", s.prog_runs));
    let prog = std::process::Command::new(root().join("target/release/progcost"))
        .arg(s.prog_runs.to_string())
        .output()?;
    if !prog.status.success() {
        bail!("progcost: {}", String::from_utf8_lossy(&prog.stderr));
    }
    let prog = String::from_utf8_lossy(&prog.stdout).into_owned();
    step("control plane: up with 100 ports, up with 100k static FDB entries");
    let cp = control_plane(&b)?;
    let mut scale = Vec::new();
    for hosts in if quick { &[100][..] } else { &[100, 1000][..] } {
        step(&format!("control plane at scale: one agent, {hosts} simulated hosts x 10 MACs in etcd"));
        scale.push(agent_scale::run(&b, *hosts)?);
    }
    let report = report::report(&results, &prog, &cp, &scale, &s, quick, started.elapsed().as_secs())?;
    println!("\n{report}");
    // The committed BENCHMARKS.md comes from full runs only.
    let file = if quick { root().join("target/BENCHMARKS-quick.md") } else { root().join("BENCHMARKS.md") };
    std::fs::write(&file, &report)?;
    step(&format!("results written to {}", file.display()));
    Ok(())
}
