//! Shell helpers for network-namespace labs: one implementation for the
//! demo and bench (`xtask`) and the kernel tests (`overlay-tests`).
//!
//! Every call returns `Result<_, String>` with the command and its output in
//! the error; xtask wraps that in `anyhow`, the tests panic with it.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Output, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    time::{Duration, Instant},
};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A namespace name no other lab of this process, nor another run, uses:
/// `{prefix}{pid}-{n}{tag}`.
pub fn unique(prefix: &str, tag: &str) -> String {
    format!("{prefix}{}-{}{tag}", std::process::id() % 100_000, NEXT.fetch_add(1, Ordering::SeqCst))
}

fn describe(what: &str, o: &Output) -> String {
    format!(
        "`{what}` failed ({}):\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout).trim(),
        String::from_utf8_lossy(&o.stderr).trim()
    )
}

fn run(mut c: Command, what: &str) -> Result<String, String> {
    let o = c.output().map_err(|e| format!("spawn `{what}`: {e}"))?;
    if o.status.success() {
        Ok(String::from_utf8_lossy(&o.stdout).into_owned())
    } else {
        Err(describe(what, &o))
    }
}

fn in_ns(ns: &str, cmd: &str) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns, "sh", "-c", cmd]);
    c
}

/// `sh -c cmd` in the root network namespace (lab set-up only: `ip netns
/// add`, `ip link add ... netns X`).
pub fn sh_root(cmd: &str) -> Result<String, String> {
    let mut c = Command::new("sh");
    c.arg("-c").arg(cmd);
    run(c, cmd)
}

/// `sh -c cmd` in network namespace `ns`.
pub fn sh_in(ns: &str, cmd: &str) -> Result<String, String> {
    run(in_ns(ns, cmd), &format!("[{ns}] {cmd}"))
}

/// Starts `sh -c cmd` in `ns` in the background, stdout and stderr piped
/// (it is killed when the namespace is deleted).
pub fn spawn_in(ns: &str, cmd: &str) -> Result<Child, String> {
    in_ns(ns, cmd)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn `[{ns}] {cmd}`: {e}"))
}

/// Kills what runs in namespace `ns` and deletes it; errors ignored (for
/// Drop guards).
pub fn delete(ns: &str) {
    let _ = Command::new("sh")
        .arg("-c")
        .arg(format!("(ip netns pids {ns} | xargs -r kill -9; ip netns del {ns}) 2>/dev/null"))
        .status();
}

/// Polls `f` every 50 ms until it holds; an error naming `what` after `secs`.
pub fn wait_until(what: &str, secs: u64, mut f: impl FnMut() -> bool) -> Result<(), String> {
    let end = Instant::now() + Duration::from_secs(secs);
    while !f() {
        if Instant::now() >= end {
            return Err(format!("{what} (waited {secs} s)"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// Waits until something in `ns` listens on `port` (`proto`: "t" for TCP,
/// "u" for UDP).
pub fn wait_listening(ns: &str, proto: &str, port: u16) -> Result<(), String> {
    wait_until(&format!("something listens on port {port} in {ns}"), 10, || {
        sh_in(ns, &format!("ss -Hl{proto}n 'sport = :{port}'")).is_ok_and(|o| !o.trim().is_empty())
    })
}

/// `tcpdump -l ARGS` in `ns` (ended after 20 s at the latest), returned
/// once it captures (it says "listening on" on stderr), so no frame sent
/// afterwards is missed however loaded the machine is. Its stdout stays
/// piped for `wait_with_output`; the rest of stderr is drained.
pub fn tcpdump(ns: &str, args: &str) -> Result<Child, String> {
    let mut c = spawn_in(ns, &format!("exec timeout 20 tcpdump -l {args}"))?;
    let err = c.stderr.take().expect("piped stderr");
    let mut lines = BufReader::new(err).lines();
    // "verbose output suppressed ...", then "listening on ...".
    loop {
        match lines.next() {
            Some(Ok(l)) if l.contains("listening on") => break,
            Some(Ok(_)) => {}
            other => {
                let _ = c.kill();
                let _ = c.wait();
                return Err(format!("tcpdump {args} in {ns} did not start: {other:?}"));
            }
        }
    }
    std::thread::spawn(move || lines.for_each(drop));
    Ok(c)
}
