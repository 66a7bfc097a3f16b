//! Everything a fresh Debian machine needs, each step skipped when done.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::cmd::{clean, output, run, step};

/// Debian packages the tests and the demo use: (binary that proves it is
/// there, package).
const PACKAGES: &[(&str, &str)] = &[
    ("/usr/sbin/ip", "iproute2"),
    ("/usr/bin/ping", "iputils-ping"),
    ("/usr/sbin/arping", "arping"),
    ("/usr/bin/iperf3", "iperf3"),
    ("/usr/bin/tcpdump", "tcpdump"),
    ("/usr/lib/python3/dist-packages/scapy/__init__.py", "python3-scapy"),
    ("/usr/sbin/dnsmasq", "dnsmasq"),
    ("/usr/sbin/dhclient", "isc-dhcp-client"),
    ("/usr/sbin/ethtool", "ethtool"),
    ("/usr/sbin/trafgen", "netsniff-ng"),
    ("/usr/bin/sockperf", "sockperf"),
    // The control plane: etcd for its tests and the demo, protoc to build
    // the etcd-client crate, curl for the tests' etcd v3 gateway requests.
    ("/usr/bin/etcd", "etcd-server"),
    ("/usr/bin/protoc", "protobuf-compiler"),
    // protoc's well-known types (google/protobuf/descriptor.proto), which
    // etcd-client's protos import; not a dependency of protobuf-compiler.
    ("/usr/include/google/protobuf/descriptor.proto", "libprotobuf-dev"),
    ("/usr/bin/curl", "curl"),
    // The CNI plugin's tests: podman (rootful, CNI backend) with runc,
    // host-local IPAM, and a static busybox for the containers' image.
    ("/usr/bin/podman", "podman"),
    ("/usr/sbin/runc", "runc"),
    ("/usr/lib/cni/host-local", "containernetworking-plugins"),
    ("/usr/bin/busybox", "busybox-static"),
    // promtool checks the metrics output.
    ("/usr/bin/promtool", "prometheus"),
    // An independent dissector for the GRE and GENEVE wire formats (no
    // kernel peer for them here: ip_gre and geneve are not built).
    ("/usr/bin/tshark", "tshark"),
];

pub fn all() -> Result<()> {
    toolchain()?;
    packages()?;
    Ok(())
}

/// Nightly with rust-src and a bpf-linker built against nightly's LLVM.
pub fn toolchain() -> Result<()> {
    let sysroot = output("rustc", &["+nightly", "--print", "sysroot"])
        .map(|s| PathBuf::from(s.trim()))
        .context("a nightly toolchain is needed (rustup toolchain install nightly)")?;
    if sysroot.join("lib/rustlib/src/rust/library/core").exists() {
        step("rust-src (nightly): present");
    } else {
        step("rust-src (nightly): installing");
        run(clean("rustup").args(["component", "add", "rust-src", "--toolchain", "nightly"]))?;
    }
    bpf_linker(&sysroot)
}

/// `libLLVM-<major>-rust-<version>.so` in the nightly sysroot.
fn nightly_llvm(sysroot: &Path) -> Result<(String, String)> {
    let lib = sysroot.join("lib");
    for e in std::fs::read_dir(&lib).with_context(|| lib.display().to_string())? {
        let name = e?.file_name().to_string_lossy().into_owned();
        let Some(stem) = name.strip_prefix("lib").and_then(|s| s.strip_suffix(".so")) else {
            continue;
        };
        let Some(rest) = stem.strip_prefix("LLVM-") else {
            continue;
        };
        let major = rest.split('-').next().unwrap_or_default().to_string();
        if !major.is_empty() && major.bytes().all(|b| b.is_ascii_digit()) {
            return Ok((stem.to_string(), major));
        }
    }
    bail!("no libLLVM-*.so in {}", lib.display())
}

fn bpf_linker(sysroot: &Path) -> Result<()> {
    let lib = sysroot.join("lib");
    let (dylib, major) = nightly_llvm(sysroot)?;
    if let Some(path) = output("sh", &["-c", "command -v bpf-linker"]) {
        let path = path.trim().to_string();
        let ldd = output("ldd", &[&path]).unwrap_or_default();
        let llvm_line = ldd.lines().find(|l| l.contains("libLLVM")).unwrap_or("");
        let ok = output(&path, &["--version"]).is_some()
            && llvm_line.contains(&*lib.to_string_lossy())
            && !llvm_line.contains("not found");
        if ok {
            step(&format!("bpf-linker: present, linked to {dylib}"));
            return Ok(());
        }
        step(&format!("bpf-linker at {path} is not linked to nightly's LLVM ({dylib}): rebuilding"));
    } else {
        step(&format!("bpf-linker: building against nightly's {dylib} (about a minute)"));
    }
    let lib_s = lib.to_string_lossy();
    run(clean("cargo")
        .args([
            "+nightly",
            "install",
            "--force",
            "bpf-linker",
            "--version",
            "0.13.0",
            "--no-default-features",
        ])
        .args(["--features", &format!("llvm-{major},no-llvm-linking")])
        .env("RUSTFLAGS", format!("-L {lib_s} -l dylib={dylib} -C link-arg=-Wl,-rpath,{lib_s}")))
}

fn packages() -> Result<()> {
    let missing: Vec<&str> =
        PACKAGES.iter().filter(|(f, _)| !Path::new(f).exists()).map(|(_, p)| *p).collect();
    if missing.is_empty() {
        step("Debian packages: present");
        return Ok(());
    }
    step(&format!("Debian packages: installing {}", missing.join(" ")));
    run(clean("apt-get").args(["update", "-qq"]))?;
    run(clean("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive"))
}
