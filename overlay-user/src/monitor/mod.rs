//! `overlayctl monitor`: streams the datapath's drop and FDB events from
//! the `MONITOR` ring buffer until interrupted (see
//! `overlay_common::monitor` for the datapath's side). One monitor per
//! instance (a lock beside the state file); on exit, SIGINT or SIGTERM the
//! events are switched off again, and a monitor killed with -9 lets them
//! stop by themselves within three seconds. With `--learn` it also
//! reports the control plane's installs and withdrawals (`control.rs`), and
//! always the datapath's rare log events.

pub mod control;
pub mod decode;

use std::{
    collections::BTreeMap,
    os::fd::AsRawFd,
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant},
};

use aya::maps::{Array, Map, MapData, RingBuf};
use overlay_common::monitor::*;

use crate::{
    bpffs::{pin_dir, run_dir},
    error::{Error, Result},
    fdb::monotonic_ns,
    instance::{self, State},
};

pub use decode::{Event, decode, line};

#[derive(Clone, Debug)]
pub struct MonitorOptions {
    pub drops: bool,
    /// Learn, move and age-out events.
    pub fdb: bool,
    pub network: Option<String>,
    /// Events per second per CPU.
    pub rate: u32,
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

struct Names<'a>(&'a State, BTreeMap<u32, String>);

impl decode::Names for Names<'_> {
    fn interface(&self, ifindex: u32) -> Option<String> {
        self.1.get(&ifindex).cloned()
    }
    fn network(&self, row: u32) -> Option<(String, Option<u32>)> {
        let (name, _) = self.0.net_ids.iter().find(|(_, id)| **id + 1 == row)?;
        Some((name.clone(), self.0.config.network(name).and_then(|n| n.vni)))
    }
    fn vxlan_port(&self) -> u16 {
        self.0.config.underlay.port
    }
}

/// Switches events off when dropped (also on an error or a closed stdout).
struct Switch {
    ctl: Array<MapData, MonitorCtl>,
    want: MonitorCtl,
}

impl Switch {
    fn renew(&mut self) -> Result<()> {
        self.want.until_ns = monotonic_ns() + MONITOR_LEASE_NS;
        self.ctl.set(0, self.want, 0).map_err(Error::map(MAP_MONITOR_CTL))
    }
}

impl Drop for Switch {
    fn drop(&mut self) {
        let _ = self.ctl.set(0, MonitorCtl::default(), 0);
    }
}

/// Runs until SIGINT/SIGTERM, or until `emit` returns false (its reader
/// went away). `ready` is called once events are switched on.
pub fn run(
    name: &str,
    opts: &MonitorOptions,
    ready: impl FnOnce(),
    mut emit: impl FnMut(&Event) -> bool,
) -> Result<()> {
    let state = instance::require_state(name)?;
    let row = match &opts.network {
        Some(n) => {
            state.net_ids.get(n).map(|id| id + 1).ok_or_else(|| Error::Config(format!("no network {n:?}")))?
        }
        None => 0,
    };
    let _lock = lock(name)?;
    let dir = pin_dir(name);
    let data = MapData::from_pin(dir.join(MAP_MONITOR)).map_err(Error::map(MAP_MONITOR))?;
    let mut ring: RingBuf<MapData> = Map::RingBuf(data).try_into().map_err(Error::map(MAP_MONITOR))?;
    let data = MapData::from_pin(dir.join(MAP_MONITOR_CTL)).map_err(Error::map(MAP_MONITOR_CTL))?;
    let ctl: Array<MapData, MonitorCtl> = Map::Array(data).try_into().map_err(Error::map(MAP_MONITOR_CTL))?;
    let flags = if opts.drops { MON_DROPS } else { 0 } | if opts.fdb { MON_FDB } else { 0 };
    let names = Names(&state, state.attached.iter().map(|(n, i)| (*i, n.clone())).collect());
    // SAFETY: the handler only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t);
    }
    // Events left from an earlier monitor are not ours.
    while ring.next().is_some() {}
    let mut sw =
        Switch { ctl, want: MonitorCtl { flags, rate_per_sec: opts.rate, row, _pad: 0, until_ns: 0 } };
    sw.renew()?;
    let mut control = control::Watch::new(name);
    ready();
    let mut renewed = Instant::now();
    while !STOP.load(Ordering::SeqCst) {
        let mut pfd = libc::pollfd { fd: ring.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd; EINTR (a signal) just ends the wait.
        unsafe { libc::poll(&mut pfd, 1, 200) };
        while let Some(item) = ring.next() {
            if item.len() < size_of::<MonitorEvent>() {
                continue;
            }
            // SAFETY: the datapath writes whole MonitorEvents; read unaligned.
            let ev = unsafe { std::ptr::read_unaligned(item.as_ptr() as *const MonitorEvent) };
            drop(item);
            if !emit(&decode(&ev, &names)) {
                return Ok(());
            }
        }
        if opts.fdb {
            for e in control.poll(name, opts.network.as_deref()) {
                if !emit(&e) {
                    return Ok(());
                }
            }
        }
        if renewed.elapsed() >= Duration::from_secs(1) {
            sw.renew()?;
            renewed = Instant::now();
            // The datapath's rare events (aya-log), once a second.
            for l in crate::dplog::drain(name)? {
                let e = Event {
                    kind: "log",
                    level: Some(l.level),
                    message: Some(l.message),
                    ..Default::default()
                };
                if !emit(&e) {
                    return Ok(());
                }
            }
        }
    }
    Ok(())
}

/// `NAME.monitor.lock` beside the state file (`down` removes it).
pub fn lock_path(name: &str) -> std::path::PathBuf {
    run_dir().join(format!("{name}.monitor.lock"))
}

/// One monitor per instance: the ring buffer has one reader.
fn lock(name: &str) -> Result<std::fs::File> {
    let p = lock_path(name);
    let f = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&p)?;
    // SAFETY: flock on our own descriptor.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return Err(Error::Config(format!("a monitor of {name} already runs (lock {})", p.display())));
    }
    Ok(f)
}
