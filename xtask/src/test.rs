//! `cargo xtask test`: every layer, with one summary line at the end.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use anyhow::{Result, bail};

use crate::cmd::{clean, step};

pub fn run(filter: Option<&str>) -> Result<()> {
    crate::bootstrap::all()?;
    crate::build::ebpf()?;
    // The end-to-end tests run them.
    crate::build::user_bins(false)?;
    let mut passed = 0u64;
    let mut failed = 0u64;
    let mut ignored = 0u64;
    let mut bad_runs = Vec::new();
    // Host unit tests may run in parallel; kernel tests share kernel state
    // (interfaces, bpffs) and run one at a time.
    let runs: [(&str, Vec<&str>); 2] = [
        (
            "host unit tests",
            vec![
                "test",
                "--no-fail-fast",
                "--workspace",
                "--exclude",
                "overlay-ebpf",
                "--exclude",
                "overlay-tests",
            ],
        ),
        (
            "kernel tests (BPF_PROG_TEST_RUN, netns)",
            vec!["test", "--no-fail-fast", "--package", "overlay-tests"],
        ),
    ];
    for (i, (what, args)) in runs.iter().enumerate() {
        step(what);
        let mut c = clean("cargo");
        c.args(args).arg("--");
        if let Some(f) = filter {
            c.arg(f);
        }
        if i == 1 {
            c.arg("--test-threads=1");
        }
        let mut child = c.stdout(Stdio::piped()).spawn()?;
        let out = child.stdout.take().expect("piped");
        for line in BufReader::new(out).lines() {
            let line = line?;
            println!("{line}");
            if let Some(rest) = line.strip_prefix("test result: ") {
                passed += field(rest, "passed");
                failed += field(rest, "failed");
                ignored += field(rest, "ignored");
            }
        }
        let st = child.wait()?;
        if !st.success() {
            bad_runs.push(*what);
        }
    }
    // Whole jobs, each counted as one test: the demo lab and a benchmark
    // smoke run (its figures go to target/BENCHMARKS-quick.md).
    type Job = fn() -> Result<()>;
    let jobs: [(&str, &str, Job); 2] = [
        ("demo", "the demo lab, end to end (cargo xtask demo)", || crate::demo::run(false)),
        ("bench --quick", "benchmark smoke run (cargo xtask bench --quick)", || crate::bench::run(true)),
    ];
    for (name, what, job) in jobs.into_iter().filter(|_| filter.is_none()) {
        step(what);
        match job() {
            Ok(()) => passed += 1,
            Err(e) => {
                eprintln!("{name}: {e:#}");
                failed += 1;
                bad_runs.push(name);
            }
        }
    }
    println!();
    println!("{passed} passed, {failed} failed, {ignored} skipped");
    if failed > 0 || !bad_runs.is_empty() {
        bail!("tests failed ({})", bad_runs.join(", "));
    }
    if let Some(f) = filter
        && passed == 0
    {
        bail!("no test matches {f:?}: nothing was run");
    }
    Ok(())
}

/// The number before `name` in a libtest summary ("3 passed; 0 failed; ...").
fn field(summary: &str, name: &str) -> u64 {
    summary
        .split(';')
        .filter_map(|p| p.trim().trim_start_matches("ok. ").trim_start_matches("FAILED. ").split_once(' '))
        .find(|(_, n)| *n == name)
        .and_then(|(v, _)| v.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_libtest_summary() {
        let s = "ok. 16 passed; 2 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s";
        assert_eq!(super::field(s, "passed"), 16);
        assert_eq!(super::field(s, "failed"), 2);
        assert_eq!(super::field(s, "ignored"), 1);
    }
}
