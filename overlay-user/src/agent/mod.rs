//! `overlayctl agent`: the control plane. Publishes this host's VTEP and
//! local MACs to etcd on a lease, watches the other hosts' keys, and
//! installs them ([`crate::remote::Remote`]: peers, flood sets, `control`
//! FDB entries, neighbour pairs) through the same apply path as `up`.
//!
//! The datapath never waits on it: everything it installed stays in the
//! pinned maps when it stops or etcd goes away; it reconciles when etcd
//! comes back (watch from its last revision, a full list when that
//! revision was compacted).

pub mod keys;
mod local;
pub mod status;
pub mod view;

use std::{
    collections::BTreeMap,
    os::fd::AsRawFd,
    time::{Duration, Instant},
};

use aya::maps::{Map, MapData, RingBuf};
use etcd_client::{
    Certificate, Client, Compare, CompareOp, ConnectOptions, EventType, GetOptions, Identity, PutOptions,
    TlsOptions, Txn, TxnOp, WatchOptions,
};
use overlay_common::maps::{FdbEvent, MAP_FDB_EVENTS};
use tokio::{io::unix::AsyncFd, signal::unix::SignalKind};

use self::{status::AgentStatus, view::View};
use crate::{
    bpffs::pin_dir,
    config::{Config, Control},
    error::{Error, Result},
    instance::{self, State},
    maps::Maps,
    remote::Remote,
};

#[derive(Clone, Copy, Debug, Default)]
pub struct AgentOptions {
    /// Revoke the lease on exit: the other hosts drop this one at once.
    pub leave: bool,
    /// Serve Prometheus metrics (`GET /metrics`) on this address.
    pub metrics: Option<std::net::SocketAddr>,
}

/// How long one etcd request may take before the session is restarted.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Installs and publications are batched over this long.
const BATCH: Duration = Duration::from_millis(100);
const BACKOFF_MIN: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Runs `up -c FILE`, then the control plane until SIGTERM or SIGINT.
pub fn run(file: &Config, opts: AgentOptions) -> Result<()> {
    let control = file
        .control
        .clone()
        .ok_or_else(|| Error::Config("the agent needs a [control] table (etcd endpoints)".into()))?;
    let _lock = lock(&file.name)?;
    // Bound before up: a taken address is an error before anything changes.
    let metrics = opts.metrics.map(crate::metrics::bind).transpose()?;
    instance::up(file, instance::UpOptions::default())?;
    if let Some(server) = metrics {
        let name = file.name.clone();
        std::thread::spawn(move || crate::metrics::run(&name, &server));
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    // Inside the runtime: the ring buffer registers with its reactor.
    rt.block_on(async { Agent::new(file, control, opts)?.run().await })
}

/// Path of the lock an agent holds while it runs.
pub fn lock_path(name: &str) -> std::path::PathBuf {
    crate::bpffs::run_dir().join(format!("{name}.agent.lock"))
}

/// One agent per instance: an exclusive lock on `NAME.agent.lock`, held
/// while it runs (the open file holds it); the file goes with it.
struct Lock {
    _file: std::fs::File,
    path: std::path::PathBuf,
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn lock(name: &str) -> Result<Lock> {
    use std::os::unix::fs::MetadataExt;
    let p = lock_path(name);
    std::fs::create_dir_all(crate::bpffs::run_dir())?;
    let f = std::fs::File::create(&p)?;
    // SAFETY: flock on a file descriptor we own.
    let locked = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
    // Locked, and still the file at that path (not one an exiting agent
    // removed meanwhile).
    let same = std::fs::metadata(&p).is_ok_and(|m| f.metadata().is_ok_and(|n| n.ino() == m.ino()));
    if !locked || !same {
        return Err(Error::Config(format!("an agent already runs for instance {name} ({})", p.display())));
    }
    Ok(Lock { _file: f, path: p })
}

fn etcd_err(what: &str) -> impl Fn(etcd_client::Error) -> String + '_ {
    move |e| format!("{what}: {e}")
}

async fn timed<T>(
    what: &str,
    f: impl Future<Output = std::result::Result<T, etcd_client::Error>>,
) -> Session<T> {
    match tokio::time::timeout(REQUEST_TIMEOUT, f).await {
        Ok(r) => r.map_err(etcd_err(what)),
        Err(_) => Err(format!("{what}: no answer within {}s", REQUEST_TIMEOUT.as_secs())),
    }
}

/// A session's result: an error ends the session (the agent backs off and
/// starts another).
type Session<T> = std::result::Result<T, String>;

enum Exit {
    Signal,
    /// The instance went down (`overlayctl down` revoked the lease).
    Down,
}

struct Agent {
    name: String,
    control: Control,
    opts: AgentOptions,
    state: State,
    maps: Maps,
    events: AsyncFd<RingBuf<MapData>>,
    view: View,
    local: view::Local,
    ageing: local::Ageing,
    /// Our keys as etcd holds them (key -> value), on `lease`.
    published: BTreeMap<String, String>,
    lease: Option<i64>,
    /// The revision the view is at (0: never listed).
    revision: i64,
    /// The endpoint the next session tries first.
    next: usize,
    status: AgentStatus,
    /// What the status file holds (written only when it changes).
    written: Option<AgentStatus>,
    installed: Remote,
    /// Which write of the state file `state` is; another one is reloaded.
    state_version: crate::statefile::Version,
    /// The datapath log could not be read (said once).
    dplog_failed: bool,
}

impl Agent {
    fn new(file: &Config, control: Control, opts: AgentOptions) -> Result<Agent> {
        let (state, version) = instance::require_state_version(&file.name)?;
        let dir = pin_dir(&file.name);
        let maps = Maps::open(&dir)?;
        let data = MapData::from_pin(dir.join(MAP_FDB_EVENTS)).map_err(Error::map(MAP_FDB_EVENTS))?;
        let ring: RingBuf<MapData> = Map::RingBuf(data).try_into().map_err(Error::map(MAP_FDB_EVENTS))?;
        // SAFETY: the ring buffer owns its descriptor, which stays open and
        // the same until the AsyncFd (which owns the ring buffer) is dropped.
        let events = unsafe { AsyncFd::register_with_interest(ring, tokio::io::Interest::READABLE) }
            .map_err(|e| Error::Io(std::io::Error::other(e.to_string())))?;
        let vnis = View::vnis_of(&state.config);
        let u = &state.config.underlay;
        let view = View::new(&control.prefix, u.address, u.port, &state.config.name, vnis);
        let previous = status::read(&file.name);
        let status = AgentStatus {
            pid: std::process::id(),
            running: true,
            endpoints: control.etcd.clone(),
            ..Default::default()
        };
        let installed = state.remote.clone();
        let mut a = Agent {
            name: file.name.clone(),
            control,
            opts,
            local: view::Local::new(),
            ageing: local::Ageing::default(),
            state,
            maps,
            events,
            view,
            published: BTreeMap::new(),
            // A lease of an earlier run is reused if it is still alive.
            lease: previous.and_then(|p| p.lease_id),
            revision: 0,
            next: 0,
            status,
            written: None,
            installed,
            state_version: version,
            dplog_failed: false,
        };
        a.rescan()?;
        Ok(a)
    }

    async fn run(mut self) -> Result<()> {
        let mut term = tokio::signal::unix::signal(SignalKind::terminate())?;
        let mut int = tokio::signal::unix::signal(SignalKind::interrupt())?;
        let mut backoff = BACKOFF_MIN;
        let exit = loop {
            let started = Instant::now();
            let r = tokio::select! {
                r = self.session() => r,
                _ = term.recv() => Ok(Exit::Signal),
                _ = int.recv() => Ok(Exit::Signal),
            };
            match r {
                Ok(e) => break e,
                Err(e) => {
                    log::warn!("control plane: {e}; retrying in {} ms", backoff.as_millis());
                    // The next session starts at the next member.
                    self.next = (self.next + 1) % self.control.etcd.len();
                    self.status.connected = false;
                    self.status.retries += 1;
                    self.status.last_error = Some(e);
                    self.write_status();
                }
            }
            if started.elapsed() > BACKOFF_MAX * 2 {
                backoff = BACKOFF_MIN; // the session had been up a while
            }
            let pause = tokio::time::sleep(backoff);
            tokio::select! {
                _ = pause => {}
                _ = term.recv() => break Exit::Signal,
                _ = int.recv() => break Exit::Signal,
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
            if !instance::state_path_exists(&self.name) {
                break Exit::Down;
            }
        };
        self.status.connected = false;
        self.status.running = false;
        if let Exit::Signal = exit
            && self.opts.leave
            && let Some(id) = self.lease.take()
        {
            match revoke(&self.control, id).await {
                Ok(()) => self.status.lease_id = None,
                Err(e) => log::warn!("control plane: --leave: {e}"),
            }
        }
        match exit {
            Exit::Signal => self.write_status(),
            Exit::Down => status::remove(&self.name),
        }
        Ok(())
    }

    /// One connection to etcd: lease, list or catch up, publish, then
    /// follow the watch, the datapath's events and the timers.
    async fn session(&mut self) -> Session<Exit> {
        let (mut client, endpoint) = connect(&self.control, &mut self.next).await?;
        self.status.endpoint = Some(endpoint);
        self.status.sessions += 1;
        // Events may have been lost while no session ran (the ring is only
        // read in one): local MACs are read afresh, once.
        self.rescan().map_err(|e| e.to_string())?;
        let lease = self.ensure_lease(&mut client).await?;
        let (mut keeper, mut alive) = timed("lease keep-alive", client.lease_keep_alive(lease)).await?;
        let root = keys::root(&self.control.prefix);
        let mut watch = match self.revision {
            0 => self.relist(&mut client, &root).await?,
            rev => {
                let opts = WatchOptions::new().with_prefix().with_start_revision(rev + 1);
                timed("watch", client.watch(root.as_str(), Some(opts))).await?
            }
        };
        // Local MACs read again by the install change what is remote: once
        // more on the first tick.
        let again = self.install().await?;
        self.sync_own(&mut client, lease).await?;
        self.status.connected = true;
        self.status.retries = 0;
        self.write_status();
        let ka_every = Duration::from_millis(u64::from(self.control.lease_ttl) * 1000 / 3);
        let mut keep = tokio::time::interval(ka_every);
        let mut tick = tokio::time::interval(BATCH);
        let (mut dirty, mut local_dirty) = (again, false);
        loop {
            tokio::select! {
                _ = keep.tick() => {
                    keeper.keep_alive().await.map_err(etcd_err("lease keep-alive"))?;
                    // The datapath's rare events, into NAME.log and the agent's log.
                    match crate::dplog::drain(&self.name) {
                        Ok(lines) => lines.iter().for_each(|l| log::warn!("datapath: {}", l.message)),
                        Err(e) if !self.dplog_failed => {
                            log::warn!("datapath log not readable: {e}");
                            self.dplog_failed = true;
                        }
                        Err(_) => {}
                    }
                }
                m = alive.message() => match m.map_err(etcd_err("lease keep-alive"))? {
                    Some(r) if r.ttl() > 0 => {}
                    _ => {
                        // Expired (etcd was away longer than lease_ttl):
                        // a new lease, and everything published again.
                        self.lease = None;
                        self.published.clear();
                        return Err("lease expired; granting a new one".into());
                    }
                },
                m = watch.message() => {
                    let r = m.map_err(etcd_err("watch"))?.ok_or("watch closed by etcd")?;
                    if r.canceled() {
                        if r.compact_revision() > 0 {
                            // Our revision is gone from etcd's history.
                            watch = self.relist(&mut client, &root).await?;
                            dirty = true;
                            local_dirty = true; // our keys as etcd has them now
                            continue;
                        }
                        return Err(format!("watch canceled: {}", r.cancel_reason()));
                    }
                    for ev in r.events() {
                        let Some(kv) = ev.kv() else { continue };
                        let key = String::from_utf8_lossy(kv.key());
                        let claimed = serde_json::from_slice::<keys::MacValue>(kv.value()).is_ok();
                        if let Some(ours) = self.published.get(key.as_ref())
                            && ours.as_bytes() != kv.value()
                        {
                            // One of our keys deleted or overwritten with
                            // garbage is put back; another host's claim on a
                            // MAC (both have it locally) is left to it, and
                            // counted as `local_mac` here, so two hosts never
                            // fight over a key.
                            self.published.remove(key.as_ref());
                            local_dirty |= ev.event_type() == EventType::Delete || !claimed;
                        }
                        match ev.event_type() {
                            EventType::Put => self.view.put(kv.key(), kv.value(), kv.mod_revision(), &self.local),
                            EventType::Delete => self.view.delete(kv.key()),
                        }
                        self.revision = self.revision.max(kv.mod_revision());
                        dirty = true;
                    }
                    if let Some(h) = r.header() {
                        self.revision = self.revision.max(h.revision());
                    }
                }
                g = self.events.readable_mut() => {
                    let mut g = g.map_err(|e| format!("FDB events: {e}"))?;
                    let mut batch = Vec::new();
                    while let Some(item) = g.get_inner_mut().next() {
                        if item.len() >= size_of::<FdbEvent>() {
                            // SAFETY: the datapath writes whole FdbEvents; read unaligned.
                            batch.push(unsafe { std::ptr::read_unaligned(item.as_ptr() as *const FdbEvent) });
                        }
                    }
                    g.clear_ready();
                    local_dirty |= local::apply_events(&self.state, &self.maps, &mut self.local, &mut self.ageing, &batch)
                        .map_err(|e| e.to_string())?;
                }
                _ = tick.tick() => {
                    if !instance::state_path_exists(&self.name) {
                        return Ok(Exit::Down);
                    }
                    if self.state_changed() {
                        self.reload_state().map_err(|e| e.to_string())?;
                        local_dirty = true;
                        dirty = true;
                    }
                    local_dirty |= self.ageing.expire(&self.state, &self.maps, &mut self.local);
                    if dirty {
                        // Again on the next tick when the local MACs were
                        // read again (they decide which claims are remote).
                        dirty = self.install().await?;
                        local_dirty |= dirty;
                    }
                    if local_dirty {
                        self.sync_own(&mut client, lease).await?;
                        local_dirty = false;
                    }
                    self.write_status();
                }
            }
        }
    }

    /// The saved lease if etcd still has it, else a new one.
    async fn ensure_lease(&mut self, client: &mut Client) -> Session<i64> {
        if let Some(id) = self.lease {
            let r = timed("lease time-to-live", client.lease_time_to_live(id, None)).await?;
            if r.ttl() > 0 {
                self.status.lease_id = Some(id);
                return Ok(id);
            }
            self.published.clear();
        }
        let r = timed("lease grant", client.lease_grant(self.control.lease_ttl.into(), None)).await?;
        self.lease = Some(r.id());
        self.status.lease_id = Some(r.id());
        self.write_status(); // a restarted agent finds it here
        Ok(r.id())
    }

    /// Reads every key under the prefix afresh and watches from there.
    async fn relist(&mut self, client: &mut Client, root: &str) -> Session<etcd_client::WatchStream> {
        let r = timed("list", client.get(root, Some(GetOptions::new().with_prefix()))).await?;
        self.status.relists += 1;
        let rev = r.header().map(|h| h.revision()).unwrap_or(0);
        self.view.clear();
        let lease = self.lease.unwrap_or(0);
        self.published.clear();
        for kv in r.kvs() {
            self.view.put(kv.key(), kv.value(), kv.mod_revision(), &self.local);
            if kv.lease() == lease {
                let v = String::from_utf8_lossy(kv.value()).into_owned();
                self.published.insert(String::from_utf8_lossy(kv.key()).into_owned(), v);
            }
        }
        self.revision = rev;
        let opts = WatchOptions::new().with_prefix().with_start_revision(rev + 1);
        timed("watch", client.watch(root, Some(opts))).await
    }

    /// The keys this host should have in etcd.
    fn own_keys(&self) -> BTreeMap<String, String> {
        let c = &self.state.config;
        let (me, prefix) = (c.underlay.address, &self.control.prefix);
        let mut want = BTreeMap::new();
        for n in &c.networks {
            let Some(vni) = n.vni else { continue };
            let v = keys::VtepValue {
                host: c.name.clone(),
                address: me,
                port: n.encap.udp_port(c.underlay.port),
                encap: n.encap,
            };
            want.insert(keys::vtep_key(prefix, vni, me), serde_json::to_string(&v).expect("json"));
            for (mac, ips) in self.local.get(&n.name).into_iter().flatten() {
                let v = keys::MacValue { vtep: me, ips: ips.clone() };
                want.insert(keys::mac_key(prefix, vni, *mac), serde_json::to_string(&v).expect("json"));
            }
        }
        want
    }

    /// Puts what changed and deletes what went, on our lease (a key that
    /// another host took over meanwhile is left alone).
    async fn sync_own(&mut self, client: &mut Client, lease: i64) -> Session<()> {
        let want = self.own_keys();
        let puts: Vec<(&String, &String)> =
            want.iter().filter(|(k, v)| self.published.get(*k) != Some(*v)).collect();
        // In transactions of up to 100 puts (etcd allows 128 operations).
        for chunk in puts.chunks(100) {
            let ops: Vec<TxnOp> = chunk
                .iter()
                .map(|(k, v)| TxnOp::put(k.as_str(), v.as_str(), Some(PutOptions::new().with_lease(lease))))
                .collect();
            timed("put", client.txn(Txn::new().and_then(ops))).await?;
            for (k, v) in chunk {
                self.published.insert((*k).clone(), (*v).clone());
            }
        }
        let gone: Vec<String> = self.published.keys().filter(|k| !want.contains_key(*k)).cloned().collect();
        for k in gone {
            let txn = Txn::new()
                .when([Compare::lease(k.as_str(), CompareOp::Equal, lease)])
                .and_then([TxnOp::delete(k.as_str(), None)]);
            timed("delete", client.txn(txn)).await?;
            self.published.remove(&k);
        }
        self.status.local_macs = self.local.values().map(BTreeMap::len).sum();
        Ok(())
    }

    /// Installs the view's remote VTEPs and MACs, when they changed;
    /// returns whether the local MACs were read again (the instance had
    /// changed under us) and must be published.
    async fn install(&mut self) -> Session<bool> {
        let remote = self.view.remote(&self.local);
        self.status.ignored = self.view.refusals.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        self.status.revision = self.revision;
        (self.status.remote_vteps, self.status.remote_macs) = remote.counts();
        if remote == self.installed {
            return Ok(false);
        }
        let name = self.name.clone();
        let r = remote.clone();
        let (state, version) = tokio::task::spawn_blocking(move || instance::set_remote(&name, &r))
            .await
            .map_err(|e| format!("install: {e}"))?
            .map_err(|e| format!("install: {e}"))?;
        self.status.flood_overflow = state.flood_overflow.clone();
        for (net, n) in &state.flood_overflow {
            log::warn!(
                "network {net}: {n} VTEPs beyond the flood set's {} are not flooded to",
                overlay_common::MAX_FLOOD_PEERS
            );
        }
        // The state read back under the lock also holds what others
        // changed before this install (a CNI ADD, `port add`): that write is
        // behind us now, so its ports and MACs are taken in here.
        let theirs = state.config != self.state.config || state.net_ids != self.state.net_ids;
        (self.state, self.state_version) = (state, version);
        self.installed = remote;
        if theirs {
            self.view.vnis = View::vnis_of(&self.state.config);
            self.rescan().map_err(|e| e.to_string())?;
        }
        Ok(theirs)
    }

    fn state_changed(&self) -> bool {
        !self.state_version.is_current()
    }

    /// The instance changed under us (`up`, `port add`...): new ports,
    /// networks, MACs to publish.
    fn reload_state(&mut self) -> Result<()> {
        let (state, version) = instance::require_state_version(&self.name)?;
        (self.state, self.state_version) = (state, version);
        self.view.vnis = View::vnis_of(&self.state.config);
        self.rescan()
    }

    fn rescan(&mut self) -> Result<()> {
        self.local = local::scan(&self.state, &self.maps)?;
        self.ageing.watch_all(&self.state, &self.maps)
    }

    fn write_status(&mut self) {
        self.status.flood_overflow = self.state.flood_overflow.clone();
        if self.written.as_ref() == Some(&self.status) {
            return;
        }
        match status::write(&self.name, &self.status) {
            Ok(()) => self.written = Some(self.status.clone()),
            Err(e) => log::warn!("agent status file: {e}"),
        }
    }
}

/// Client options from `[control]`: TLS and authentication as configured.
fn options(c: &Control) -> Session<ConnectOptions> {
    let mut o = ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(2))
        .with_keep_alive(Duration::from_secs(2), Duration::from_secs(2))
        .with_keep_alive_while_idle(true)
        // A member cut off from the others answers with an error, and the
        // next session moves on to another member.
        .with_require_leader(true);
    if let (Some(u), Some(pf)) = (&c.username, &c.password_file) {
        let pw = std::fs::read_to_string(pf).map_err(|e| format!("password_file {}: {e}", pf.display()))?;
        o = o.with_user(u, pw.trim_end_matches(['\r', '\n']));
    }
    if c.ca.is_some() || c.cert.is_some() {
        let mut t = TlsOptions::new();
        let read = |p: &std::path::Path| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
        if let Some(ca) = &c.ca {
            t = t.ca_certificate(Certificate::from_pem(read(ca)?));
        }
        if let (Some(cert), Some(key)) = (&c.cert, &c.key) {
            t = t.identity(Identity::from_pem(read(cert)?, read(key)?));
        }
        o = o.with_tls(t);
    }
    Ok(o)
}

/// A client of one member of the cluster in `[control]`: the first
/// endpoint, from `*next` on, that accepts a TCP connection (`*next` is
/// left at it). One member per session: when it fails, the session ends
/// and the next one moves on. (A client balancing over every endpoint
/// kept sending requests to a member that had died, one failed session
/// after another.)
pub async fn connect(c: &Control, next: &mut usize) -> Session<(Client, String)> {
    let opts = options(c)?;
    let mut errors = Vec::new();
    for k in 0..c.etcd.len() {
        let i = (*next + k) % c.etcd.len();
        let e = &c.etcd[i];
        let host_port = e.split_once("://").map_or(e.as_str(), |(_, r)| r);
        match tokio::time::timeout(Duration::from_secs(1), tokio::net::TcpStream::connect(host_port)).await {
            Ok(Ok(_)) => {}
            Ok(Err(err)) => {
                errors.push(format!("{e}: {err}"));
                continue;
            }
            Err(_) => {
                errors.push(format!("{e}: no answer within 1 s"));
                continue;
            }
        }
        match tokio::time::timeout(REQUEST_TIMEOUT, Client::connect([e.as_str()], Some(opts.clone()))).await {
            Ok(Ok(client)) => {
                *next = i;
                return Ok((client, e.clone()));
            }
            Ok(Err(err)) => errors.push(format!("{e}: {err}")),
            Err(_) => errors.push(format!("{e}: no answer within {} s", REQUEST_TIMEOUT.as_secs())),
        }
    }
    Err(format!("connect: no etcd endpoint reachable ({})", errors.join("; ")))
}

async fn revoke(c: &Control, id: i64) -> Session<()> {
    let (mut client, _) = connect(c, &mut 0).await?;
    timed("lease revoke", client.lease_revoke(id)).await.map(|_| ())
}

/// Stops the agent of `instance` if one runs (SIGTERM, waiting up to 5 s
/// for it to exit, so it cannot publish again), then revokes the lease it
/// held (`overlayctl down`): the other hosts drop this one at once instead
/// of after `lease_ttl`. Best effort: etcd may be unreachable (then the
/// lease simply expires).
pub fn leave(instance: &str, c: &Control) -> std::result::Result<(), String> {
    if let Some(s) = status::read(instance).filter(|s| s.running) {
        // SAFETY: signalling a process that `status::read` found to be an
        // overlayctl (the agent that wrote the status file).
        unsafe { libc::kill(s.pid as i32, libc::SIGTERM) };
        let end = Instant::now() + Duration::from_secs(5);
        while status::read(instance).is_some_and(|s| s.running) && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    // An agent killed with -9 left its lock file.
    let _ = std::fs::remove_file(lock_path(instance));
    let Some(id) = status::read(instance).and_then(|s| s.lease_id) else {
        status::remove(instance);
        return Ok(());
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    let r = rt.block_on(revoke(c, id));
    status::remove(instance);
    r
}
