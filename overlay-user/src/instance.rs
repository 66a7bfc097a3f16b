//! Instance lifecycle: `up` (validate, load, program maps, attach), `down`,
//! and the state file that remembers what `up` did.

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

use crate::{
    apply::{Resolved, apply, assign_net_ids, desired, fresh_ids},
    bpffs::{ensure_bpffs, object_path, pin_dir, state_path},
    config::Config,
    error::{Error, Result},
    loader::{self, PROG_TENANT, PROG_VTEP},
    maps::{Maps, check_pins},
    netlink,
    remote::Remote,
    runtime::Runtime,
    statefile,
};

/// What `up` did, kept in `/run/overlayctl/NAME.json`.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct State {
    /// The configuration in force: the file plus run-time changes.
    pub config: Config,
    /// The config file as last given to `up`.
    pub file: Config,
    /// Changes made with `port|peer|fdb add` since.
    #[serde(default)]
    pub runtime: Runtime,
    pub net_ids: BTreeMap<String, u32>,
    /// Interfaces overlayctl created: name -> where the far end is (the
    /// netns of `port add --netns` or the CNI plugin's CNI_NETNS), or "tap".
    #[serde(default)]
    pub created: BTreeMap<String, String>,
    /// Interfaces with our TC link: name -> ifindex.
    pub attached: BTreeMap<String, u32>,
    /// Network namespace the instance lives in (inode of /proc/self/ns/net).
    pub netns: u64,
    /// What the control plane installed (`overlayctl agent`).
    #[serde(default, skip_serializing_if = "Remote::is_empty")]
    pub remote: Remote,
    /// Networks with more VTEPs than a flood set holds: how many are not
    /// flooded to.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub flood_overflow: BTreeMap<String, usize>,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct UpOptions {
    /// Attach even where other tools attached TC programs; ours go first.
    pub force: bool,
}

fn current_netns() -> u64 {
    use std::os::unix::fs::MetadataExt;
    fs::metadata("/proc/self/ns/net").map(|m| m.ino()).unwrap_or(0)
}

/// Serializes the changes to one instance (`up`, run-time changes, the
/// agent's installs, `down`): each reads the state file, programs the maps
/// and writes the state back, so two must not interleave. An exclusive
/// lock on `NAME.lock` beside the state file, held while it lives.
pub struct InstanceLock {
    _file: fs::File,
}

pub fn lock_path(name: &str) -> PathBuf {
    crate::bpffs::run_dir().join(format!("{name}.lock"))
}

pub fn lock(name: &str) -> Result<InstanceLock> {
    use std::os::fd::AsRawFd;
    fs::create_dir_all(crate::bpffs::run_dir())?;
    let f = fs::OpenOptions::new().create(true).truncate(false).write(true).open(lock_path(name))?;
    // SAFETY: flock on a descriptor we own; blocks until the holder is done.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    Ok(InstanceLock { _file: f })
}

/// Whether instance `name` is up (its state file exists).
pub fn state_path_exists(name: &str) -> bool {
    state_path(name).exists()
}

pub fn load_state(name: &str) -> Result<Option<State>> {
    Ok(load_state_version(name)?.map(|(s, _)| s))
}

/// The state and which write of the state file it is (see [`statefile`]).
pub fn load_state_version(name: &str) -> Result<Option<(State, statefile::Version)>> {
    let p = state_path(name);
    let Some((bytes, v)) = statefile::read(&p)? else { return Ok(None) };
    let s = serde_json::from_slice(&bytes).map_err(|source| Error::StateFile { path: p.clone(), source })?;
    Ok(Some((s, v)))
}

fn save_state(s: &State) -> Result<()> {
    let p = state_path(&s.config.name);
    let bytes = serde_json::to_vec(s).map_err(|source| Error::StateFile { path: p.clone(), source })?;
    Ok(statefile::replace(&p, &bytes)?)
}

/// Instances that are up in this network namespace (by name, sorted).
pub fn instances_here() -> Vec<String> {
    let mut found = Vec::new();
    if let Ok(rd) = fs::read_dir(crate::bpffs::run_dir()) {
        for e in rd.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "json")
                && let Some(n) = p.file_stem().and_then(|n| n.to_str())
                && require_state(n).is_ok()
            {
                found.push(n.to_string());
            }
        }
    }
    found.sort();
    found
}

/// The state of an instance that must be up, checked to be in this netns.
pub fn require_state(name: &str) -> Result<State> {
    require_state_version(name).map(|(s, _)| s)
}

/// [`require_state`] and which write of the state file it is.
pub fn require_state_version(name: &str) -> Result<(State, statefile::Version)> {
    let (s, v) = load_state_version(name)?.ok_or_else(|| Error::NotUp(name.into(), state_path(name)))?;
    if s.netns != current_netns() {
        return Err(Error::OtherNetns {
            name: name.into(),
            what: "lives in another network namespace; run overlayctl there (ip netns exec ...)",
        });
    }
    Ok((s, v))
}

/// Resolves every interface of `cfg` in this namespace, naming the first
/// that is missing.
fn resolve(cfg: &Config) -> Result<Resolved> {
    let u = netlink::link_info(&cfg.underlay.interface)
        .map_err(Error::field(format!("underlay.interface {:?}", cfg.underlay.interface)))?;
    let (mut ports, mut peer_elsewhere) = (BTreeMap::new(), std::collections::BTreeSet::new());
    for (i, p) in cfg.ports.iter().enumerate() {
        let l =
            netlink::link_info(&p.interface).map_err(Error::field(format!("port[{i}] {:?}", p.interface)))?;
        ports.insert(p.interface.clone(), l.index);
        if l.veth_peer_elsewhere {
            peer_elsewhere.insert(l.index);
        }
    }
    Ok(Resolved {
        underlay_ifindex: u.index,
        underlay_mtu: u.mtu,
        underlay_mac: u.mac,
        ports,
        peer_elsewhere,
    })
}

/// Brings the instance to the config file `file` plus the run-time changes
/// made since the last `up`. Everything is checked before anything changes;
/// re-running with another file applies only the difference.
pub fn up(file: &Config, opts: UpOptions) -> Result<()> {
    file.validate()?;
    let _lock = lock(&file.name)?;
    let old = load_state(&file.name)?;
    let runtime = old.as_ref().map(|s| s.runtime.clone()).unwrap_or_default();
    // What the control plane installed stays while there is one.
    let remote = old.filter(|_| file.control.is_some()).map(|s| s.remote).unwrap_or_default();
    apply_config(file, &runtime, &remote, opts)
}

/// Replaces what the control plane installed (`overlayctl agent`) and
/// programs the maps accordingly; the config and run-time changes stay.
/// Returns the state this wrote and its version, read under the lock: a
/// change that follows (`port add`, a CNI ADD) is another version.
pub fn set_remote(name: &str, remote: &Remote) -> Result<(State, statefile::Version)> {
    let _lock = lock(name)?;
    let s = require_state(name)?;
    apply_config(&s.file, &s.runtime, remote, UpOptions::default())?;
    require_state_version(name)
}

/// Changes the run-time additions of a running instance and applies them.
/// `f` may refuse with its own error type (the CLI uses anyhow).
pub fn change_runtime<E: From<Error>>(
    name: &str,
    f: impl FnOnce(&State, &mut Runtime) -> std::result::Result<(), E>,
) -> std::result::Result<(), E> {
    let _lock = lock(name)?;
    let s = require_state(name)?;
    let mut rt = s.runtime.clone();
    f(&s, &mut rt)?;
    // A change that cannot be kept is refused, not dropped with a warning.
    let (_, kept, warnings) = rt.merge(&s.file);
    if kept != rt {
        return Err(Error::Config(warnings.join("; ")).into());
    }
    Ok(apply_config(&s.file, &rt, &s.remote, UpOptions::default())?)
}

/// Run-time ports on interfaces overlayctl made (a container's veth, a
/// tap) that no longer exist: their container or VM is gone, so the port
/// goes with its static entries, instead of every later change failing on
/// the missing interface.
fn without_vanished(runtime: &Runtime, old: Option<&State>) -> Runtime {
    let mut rt = runtime.clone();
    let Some(o) = old.filter(|o| o.netns == current_netns()) else { return rt };
    let gone: Vec<String> = rt
        .ports
        .iter()
        .filter(|p| o.created.contains_key(&p.interface) && !netlink::link_exists(&p.interface))
        .map(|p| p.interface.clone())
        .collect();
    for g in &gone {
        log::warn!("port {g}: its interface is gone (the container or VM went away); port dropped");
    }
    rt.ports.retain(|p| !gone.contains(&p.interface));
    rt.fdb.retain(|f| f.port.as_ref().is_none_or(|p| !gone.contains(p)));
    rt
}

/// `State::created` value of the GSO tunnel device.
const GSO_TUNNEL: &str = "gso-tunnel";

/// The kernel VXLAN device an instance hands GSO super-packets to: over
/// IPv6 with outer UDP checksums (a BPF program cannot ask segmentation
/// for them). Named from the instance name (15 characters at most).
fn gso_tunnel_name(cfg: &Config) -> Option<String> {
    if !cfg.underlay.address.is_ipv6() || cfg.underlay.udp6_zero_checksum {
        return None;
    }
    // FNV-1a: stable across builds, unlike the std hasher.
    let h = cfg.name.bytes().fold(0x811c_9dc5u32, |h, b| (h ^ b as u32).wrapping_mul(0x0100_0193));
    Some(format!("ovx{h:08x}"))
}

fn apply_config(file: &Config, runtime: &Runtime, remote: &Remote, opts: UpOptions) -> Result<()> {
    let old = load_state(&file.name)?;
    let runtime = without_vanished(runtime, old.as_ref());
    let (merged, runtime, warnings) = runtime.merge(file);
    for w in &warnings {
        log::warn!("{w}");
    }
    let cfg = &merged;
    cfg.validate()?;
    if let Some(o) = &old
        && o.netns != current_netns()
    {
        return Err(Error::OtherNetns {
            name: cfg.name.clone(),
            what: "is already up in another network namespace; pick another name",
        });
    }
    let resolved = resolve(cfg)?;
    let old_ids = old.as_ref().map(|o| o.net_ids.clone()).unwrap_or_default();
    let ids = assign_net_ids(cfg, &old_ids)?;
    let mut want = desired(cfg, &ids, &resolved, remote)?;
    want.fresh = fresh_ids(&old_ids, &ids);
    ensure_bpffs()?;
    let dir = pin_dir(&cfg.name);
    fs::create_dir_all(&dir)?;
    check_pins(&dir, &cfg.name, cfg.fdb_size)?;
    let mut ifaces: Vec<&str> = vec![cfg.underlay.interface.as_str()];
    ifaces.extend(cfg.ports.iter().map(|p| p.interface.as_str()));
    if !opts.force {
        for i in &ifaces {
            loader::check_foreign(&dir, i)?;
        }
    }

    // From here on the kernel is changed.
    let gso_tunnel = gso_tunnel_name(cfg);
    if let Some(t) = &gso_tunnel {
        want.maps.global.gso_tunnel_ifindex = netlink::ensure_gso_tunnel(t, cfg.underlay.port)
            .map_err(Error::field(format!("GSO tunnel device {t}")))?;
    }
    let mut progs = loader::load(&dir, &object_path(&cfg.name), cfg.fdb_size)?;
    let mut maps = Maps::open(&dir)?;
    apply(&mut maps, &want)?;
    for p in &cfg.ports {
        let mtu = match p.mtu {
            Some(0) => None,
            Some(m) => Some(m),
            None => Some(cfg.default_port_mtu(p, resolved.underlay_mtu)),
        };
        if let Some(m) = mtu {
            let idx = resolved.ports[&p.interface];
            if netlink::link_info(&p.interface)?.mtu != m {
                netlink::set_mtu(idx, m)
                    .map_err(Error::field(format!("port {:?}: set mtu {m}", p.interface)))?;
            }
        }
    }
    netlink::enable_forwarding(&cfg.underlay.interface, cfg.underlay.address.is_ipv6())?;
    let mut attached = BTreeMap::new();
    loader::attach_tc(&mut progs, &dir, PROG_VTEP, &cfg.underlay.interface, opts.force)?;
    match loader::XdpAttach::from_config(cfg.underlay.xdp) {
        Some(how) => loader::attach_xdp(&mut progs, &dir, &cfg.underlay.interface, how)?,
        None => loader::detach_xdp(&dir, &cfg.underlay.interface)?,
    }
    attached.insert(cfg.underlay.interface.clone(), resolved.underlay_ifindex);
    for p in &cfg.ports {
        loader::attach_tc(&mut progs, &dir, PROG_TENANT, &p.interface, opts.force)?;
        attached.insert(p.interface.clone(), resolved.ports[&p.interface]);
    }
    // Links pinned for interfaces that are no longer ours go, whether the
    // last state file knew them or not (an `up` killed after attaching, before
    // saving its state, leaves such a pin).
    let mut keep: Vec<PathBuf> = attached.keys().map(|i| loader::link_pin(&dir, i)).collect();
    keep.extend(
        loader::xdp_attached(&dir, &cfg.underlay.interface)
            .map(|h| loader::xdp_pin(&dir, &cfg.underlay.interface, h)),
    );
    loader::detach_all_but(&dir, &keep)?;
    let mut created = BTreeMap::new();
    if let Some(o) = &old {
        for (name, ns) in &o.created {
            if attached.contains_key(name) {
                created.insert(name.clone(), ns.clone());
            } else if ns == GSO_TUNNEL && gso_tunnel.as_ref() != Some(name) {
                // No longer needed (the underlay changed family or checksums).
                if let Ok(l) = netlink::link_info(name) {
                    netlink::delete_link(l.index)?;
                }
            }
        }
    }
    if let Some(t) = gso_tunnel {
        created.insert(t, GSO_TUNNEL.into());
    }
    prime_peers(cfg, resolved.underlay_ifindex, old.as_ref().map(|o| &o.remote), remote);
    save_state(&State {
        config: cfg.clone(),
        file: file.clone(),
        runtime,
        net_ids: ids,
        created,
        attached,
        netns: current_netns(),
        remote: remote.clone(),
        flood_overflow: want.flood_overflow,
    })
}

/// Starts ARP (IPv6: NDP) resolution of every configured peer's next hop, and of the
/// VTEPs the control plane registered since `before` (best effort; each
/// address once).
pub fn prime_peers(cfg: &Config, underlay_ifindex: u32, before: Option<&Remote>, remote: &Remote) {
    let known = |net: &str, p: &std::net::IpAddr| {
        before.and_then(|b| b.vteps.get(net)).is_some_and(|v| v.contains(p))
    };
    let mut seen = std::collections::BTreeSet::new();
    for n in &cfg.networks {
        let registered = remote.vteps.get(&n.name).into_iter().flatten().filter(|p| !known(&n.name, p));
        for p in n.peers.iter().chain(registered) {
            if seen.insert(*p)
                && let Err(e) = netlink::prime_neighbour(underlay_ifindex, *p)
            {
                log::warn!("neighbour for peer {p}: {e}");
            }
        }
    }
}

pub fn record_created(name: &str, iface: &str, netns: &str) -> Result<()> {
    let _lock = lock(name)?;
    let mut s = require_state(name)?;
    s.created.insert(iface.into(), netns.into());
    save_state(&s)
}

/// Detaches everything, deletes interfaces we created, removes pins and
/// state. Safe to run twice, and after a crash (works from pins alone).
pub fn down(name: &str) -> Result<()> {
    let state = match load_state(name) {
        Ok(s) => s,
        Err(e) => {
            log::warn!("{e}: cleaning up from the pins alone");
            None
        }
    };
    let dir = pin_dir(name);
    // The control plane first: the other hosts drop this one at once.
    if let Some(c) = state.as_ref().and_then(|s| s.file.control.as_ref())
        && let Err(e) = crate::agent::leave(name, c)
    {
        log::warn!("control plane: revoking the lease: {e} (the other hosts drop this host when it expires)");
    }
    // After the agent stopped (it may have been installing).
    let _lock = lock(name)?;
    if let Some(s) = &state {
        for iface in s.attached.keys() {
            loader::detach_tc(&dir, iface)?;
        }
        // Interfaces are deleted by name: only in the instance's own
        // namespace, never in another one that has the same names.
        if s.netns == current_netns() {
            for iface in s.created.keys() {
                if let Ok(l) = netlink::link_info(iface) {
                    let _ = netlink::delete_link(l.index);
                }
            }
        }
    }
    remove_pins(&dir)?;
    // Attachments of the CNI plugin went with the interfaces above.
    match fs::remove_dir_all(crate::cni::record::dir(name)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
        _ => {}
    }
    for f in [
        object_path(name),
        state_path(name),
        lock_path(name),
        crate::monitor::lock_path(name),
        crate::dplog::path(name),
    ] {
        match fs::remove_file(f) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
            _ => {}
        }
    }
    Ok(())
}

/// Detaches pinned links and removes pinned maps in `dir`, then `dir`.
pub fn remove_pins(dir: &Path) -> Result<()> {
    let Ok(rd) = fs::read_dir(dir) else {
        return Ok(());
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("link_")) {
            loader::detach_pin(&p)?;
        } else {
            fs::remove_file(&p)?;
        }
    }
    fs::remove_dir(dir)?;
    Ok(())
}

/// Opens the maps of an instance that is up.
pub fn open_maps(name: &str) -> Result<(State, Maps)> {
    let s = require_state(name)?;
    let m = Maps::open(&pin_dir(name))?;
    Ok((s, m))
}
