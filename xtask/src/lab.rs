//! Shell helpers for the namespace labs of `demo` and `bench`.

use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Result, bail};

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

/// After Ctrl-C no further command runs.
fn not_interrupted() -> Result<()> {
    if interrupted() {
        bail!("interrupted");
    }
    Ok(())
}

/// `sh -c cmd` in the root network namespace (lab set-up only).
pub fn sh_root(cmd: &str) -> Result<String> {
    not_interrupted()?;
    netns_lab::sh_root(cmd).map_err(anyhow::Error::msg)
}

/// `sh -c cmd` in network namespace `ns`.
pub fn sh_in(ns: &str, cmd: &str) -> Result<String> {
    not_interrupted()?;
    netns_lab::sh_in(ns, cmd).map_err(anyhow::Error::msg)
}

/// Deletes namespaces (killing what runs in them); errors ignored.
pub fn delete_namespaces<'a>(names: impl IntoIterator<Item = &'a str>) {
    names.into_iter().for_each(netns_lab::delete);
}

/// Waits until something in `ns` listens on `port` (`proto`: "t" for TCP,
/// "u" for UDP), polling with a deadline instead of a fixed pause.
pub fn wait_listening(ns: &str, proto: &str, port: u16) -> Result<()> {
    netns_lab::wait_listening(ns, proto, port).map_err(anyhow::Error::msg)
}

/// `tcpdump -l ARGS` in `ns`, returned once it captures.
pub fn tcpdump(ns: &str, args: &str) -> Result<std::process::Child> {
    netns_lab::tcpdump(ns, args).map_err(anyhow::Error::msg)
}
