//! Project tasks: `cargo xtask build-ebpf | test | demo | bench | install | bootstrap | clippy`.

mod bench;
mod bootstrap;
mod build;
mod cmd;
mod demo;
mod install;
mod lab;
mod test;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "xtask", about = "Build, test and demo the eBPF overlay")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install what is missing: rust-src, bpf-linker, Debian packages, bpffs.
    Bootstrap,
    /// Build the BPF object (release, with BTF).
    BuildEbpf,
    /// Bootstrap, build, then run every test (unit, BPF_PROG_TEST_RUN, netns).
    Test {
        /// Only run tests whose name contains this.
        filter: Option<String>,
    },
    /// Build overlayctl and overlay-cni (release) and install them: overlayctl
    /// in --bin-dir, the CNI plugin in --cni-dir where runtimes look.
    Install {
        #[arg(long, default_value = "/usr/local/sbin")]
        bin_dir: std::path::PathBuf,
        #[arg(long, default_value = "/opt/cni/bin")]
        cni_dir: std::path::PathBuf,
    },
    /// Clippy over the host crates and the BPF crate.
    Clippy,
    /// Benchmark against the kernel's vxlan + bridge; writes BENCHMARKS.md.
    Bench {
        /// One round of short runs (under two minutes).
        #[arg(long)]
        quick: bool,
    },
    /// The demo lab: three hosts, VXLAN, DHCP, a router, VLANs (main job).
    Demo {
        /// Leave the lab up to explore it.
        #[arg(long)]
        keep: bool,
        /// Remove a lab left up with --keep.
        #[arg(long, conflicts_with = "keep")]
        down: bool,
    },
}

fn main() {
    let cli = Cli::parse();
    let r: Result<()> = match cli.task {
        Task::Bootstrap => bootstrap::all(),
        Task::BuildEbpf => bootstrap::toolchain().and_then(|_| build::ebpf()),
        Task::Test { filter } => test::run(filter.as_deref()),
        Task::Clippy => build::clippy(),
        Task::Install { bin_dir, cni_dir } => install::run(&bin_dir, &cni_dir),
        Task::Bench { quick } => bench::run(quick),
        Task::Demo { keep, down } => {
            if down {
                demo::down()
            } else {
                demo::run(keep)
            }
        }
    };
    if let Err(e) = r {
        eprintln!("xtask: {e:#}");
        std::process::exit(1);
    }
}
