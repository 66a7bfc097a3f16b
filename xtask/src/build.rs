//! Building the BPF object, and clippy.

use std::path::PathBuf;

use anyhow::Result;

use crate::cmd::{clean, root, run, step};

pub fn object_path() -> PathBuf {
    root().join("target/bpfel-unknown-none/release/overlay-ebpf")
}

/// `bpf_target_arch` for aya-ebpf: the architecture the programs will run
/// on, this machine's (as aya-build derives it from the target).
fn arch_cfg() -> String {
    let arch = match std::env::consts::ARCH {
        a if a.starts_with("riscv64") => "riscv64",
        a => a,
    };
    format!("--cfg=bpf_target_arch=\"{arch}\"")
}

pub fn ebpf() -> Result<()> {
    step("build BPF object (nightly, bpfel-unknown-none, release, BTF)");
    run(clean("cargo")
        .args([
            "+nightly",
            "build",
            "--package",
            "overlay-ebpf",
            "--release",
            "--target",
            "bpfel-unknown-none",
        ])
        .args(["-Z", "build-std=core"])
        .env("CARGO_ENCODED_RUSTFLAGS", [&arch_cfg(), "-Cdebuginfo=2", "-Clink-arg=--btf"].join("\x1f")))?;
    step(&format!("BPF object: {}", object_path().display()));
    Ok(())
}

/// overlayctl and overlay-cni, debug (`--quiet`) or release.
pub fn user_bins(release: bool) -> Result<()> {
    let profile = if release { "--release" } else { "--quiet" };
    step(&format!("build overlayctl and overlay-cni ({})", if release { "release" } else { "debug" }));
    run(clean("cargo").args([
        "build",
        profile,
        "--package",
        "overlay-user",
        "--bin",
        "overlayctl",
        "--bin",
        "overlay-cni",
    ]))
}

pub fn clippy() -> Result<()> {
    crate::bootstrap::toolchain()?;
    ebpf()?;
    step("clippy (host crates)");
    run(clean("cargo").args([
        "clippy",
        "--workspace",
        "--exclude",
        "overlay-ebpf",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    step("clippy (BPF crate)");
    run(clean("cargo")
        .args([
            "+nightly",
            "clippy",
            "--package",
            "overlay-ebpf",
            "--release",
            "--target",
            "bpfel-unknown-none",
        ])
        .args(["-Z", "build-std=core", "--", "-D", "warnings"])
        .env("CARGO_ENCODED_RUSTFLAGS", arch_cfg()))
}
