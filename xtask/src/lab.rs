//! Shell helpers for the namespace labs of `demo` and `bench`.

use std::{
    process::Command,
    sync::atomic::{AtomicBool, Ordering},
};

use anyhow::{Context, Result, bail};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Ctrl-C sets a flag; the next command fails and the lab's Drop guard
/// tears everything down.
pub fn catch_interrupt() {
    // SAFETY: installing a handler that only stores to an atomic.
    unsafe { libc::signal(libc::SIGINT, on_sigint as *const () as libc::sighandler_t) };
}

pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

fn output(mut c: Command, what: &str) -> Result<String> {
    if interrupted() {
        bail!("interrupted");
    }
    let o = c.output().with_context(|| format!("spawn {what}"))?;
    if !o.status.success() {
        bail!("{what}: {}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
}

/// `sh -c cmd` in the root network namespace (lab set-up only).
pub fn sh_root(cmd: &str) -> Result<String> {
    let mut c = Command::new("sh");
    c.arg("-c").arg(cmd);
    output(c, cmd)
}

/// `sh -c cmd` in network namespace `ns`.
pub fn sh_in(ns: &str, cmd: &str) -> Result<String> {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns, "sh", "-c", cmd]);
    output(c, &format!("[{ns}] {cmd}"))
}

/// Deletes namespaces (killing what runs in them); errors ignored.
pub fn delete_namespaces<'a>(names: impl IntoIterator<Item = &'a str>) {
    for n in names {
        let _ = Command::new("sh")
            .arg("-c")
            .arg(format!("ip netns pids {n} 2>/dev/null | xargs -r kill -9; ip netns del {n} 2>/dev/null"))
            .status();
    }
}

/// Waits until something in `ns` listens on `port` (`proto`: "t" for TCP,
/// "u" for UDP), polling with a deadline instead of a fixed pause.
pub fn wait_listening(ns: &str, proto: &str, port: u16) -> Result<()> {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while sh_in(ns, &format!("ss -Hl{proto}n 'sport = :{port}'"))?.trim().is_empty() {
        if std::time::Instant::now() > end {
            bail!("nothing listens on port {port} in {ns}");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    Ok(())
}
