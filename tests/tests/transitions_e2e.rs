//! Property test over config transitions, end to end. From a fixed seed,
//! two hosts go through random config changes (networks added and
//! removed, VNIs changed, ports access <-> trunk <-> absent, trunk lists
//! and native changed, peers added and removed), each applied with `up`
//! while every station keeps sending broadcast and unicast (to stale MACs
//! too) on every tag. A model says which station may receive what:
//! - frames sent while `up` runs: a receiver's network (by its port and the
//!   frame's tag, under its host's old or new config) must be the sender's
//!   (under the sender host's old or new config);
//! - then, with the config settled: each broadcast reaches exactly the
//!   stations of its network (local ones, and remote ones where both hosts
//!   list each other as peers), once, with the right tag; each unicast
//!   reaches its destination exactly once if that is in the network, and
//!   nobody outside the network ever.
//!
//! 200 transitions (OVERLAY_LONG=1: 2,000); OVERLAY_SEED picks the seed.
//! A failure prints the seed, the step, the frame and both configs.

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use overlay_common::pktbuild::Rng;
use overlay_tests::{
    blast::PacketSocket,
    conf,
    lab::*,
    netns::{Netns, host_sh},
};

const HOSTS: usize = 2;
const PORTS: usize = 3;
const NETS: usize = 4;
/// Tags a station sends with: untagged, then each network's VLAN.
const TAGS: [Option<u16>; 5] = [None, Some(10), Some(11), Some(12), Some(13)];
const MAGIC: &[u8; 4] = b"OVTX";

#[derive(Clone, Debug)]
enum PortCfg {
    Absent,
    Access(usize),
    Trunk(Vec<usize>, Option<usize>),
}

/// One host's config at one step.
#[derive(Clone, Debug)]
struct HostCfg {
    /// Network i present: its VNI, and whether it lists the other host.
    nets: [Option<(u32, bool)>; NETS],
    ports: [PortCfg; PORTS],
}

impl HostCfg {
    /// The network a frame with `tag` belongs to on port `p`.
    fn classify(&self, p: usize, tag: Option<u16>) -> Option<usize> {
        let n = match (&self.ports[p], tag) {
            (PortCfg::Access(n), None) => *n,
            (PortCfg::Trunk(_, Some(n)), None) => *n,
            (PortCfg::Trunk(list, _), Some(v)) => *list.iter().find(|n| vlan(**n) == v)?,
            _ => return None,
        };
        self.nets[n].map(|_| n)
    }

    fn config(&self, me: usize) -> conf::Config {
        let mut c = conf::config(&conf::host_ip(me));
        for (i, n) in self.nets.iter().enumerate() {
            if let Some((vni, peer)) = n {
                let other = conf::host_ip(1 - me);
                let peers: &[&str] = if *peer { &[&other] } else { &[] };
                let net = conf::vxlan(&format!("n{i}"), *vni, peers);
                c.networks.push(conf::Network { vlan: Some(vlan(i)), ..net });
            }
        }
        for (p, pc) in self.ports.iter().enumerate() {
            let name = format!("p{p}");
            c.ports.push(match pc {
                PortCfg::Absent => continue,
                PortCfg::Access(n) => conf::access(&name, &format!("n{n}")),
                PortCfg::Trunk(list, native) => {
                    let nets: Vec<String> = list.iter().map(|n| format!("n{n}")).collect();
                    let nets: Vec<&str> = nets.iter().map(String::as_str).collect();
                    conf::Port { native: native.map(|n| format!("n{n}")), ..conf::trunk(&name, &nets) }
                }
            });
        }
        c
    }
}

fn vlan(n: usize) -> u16 {
    10 + n as u16
}

fn pick(rng: &mut Rng, percent: usize) -> bool {
    rng.below(100) < percent
}

/// The fleet's next config: one set of networks (a VNI of each network's
/// own range, so a VNI never passes to another network), per-host peers
/// and ports.
fn random_fleet(rng: &mut Rng) -> [HostCfg; HOSTS] {
    let present: Vec<Option<u32>> =
        (0..NETS).map(|i| pick(rng, 75).then(|| 1000 * (i as u32 + 1) + rng.below(3) as u32)).collect();
    let names: Vec<usize> = (0..NETS).filter(|i| present[*i].is_some()).collect();
    std::array::from_fn(|_| {
        let nets = std::array::from_fn(|i| present[i].map(|vni| (vni, pick(rng, 80))));
        let ports = std::array::from_fn(|_| {
            if names.is_empty() || pick(rng, 20) {
                return PortCfg::Absent;
            }
            if pick(rng, 50) {
                return PortCfg::Access(names[rng.below(names.len())]);
            }
            let list: Vec<usize> = names.iter().copied().filter(|_| pick(rng, 50)).collect();
            let native = names.iter().copied().find(|n| !list.contains(n) && pick(rng, 40));
            if list.is_empty() && native.is_none() {
                PortCfg::Access(names[0])
            } else {
                PortCfg::Trunk(list, native)
            }
        });
        HostCfg { nets, ports }
    })
}

fn station_mac(h: usize, p: usize) -> [u8; 6] {
    [2, 0, 0, 1, h as u8, p as u8]
}

/// What a test frame carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Sent {
    step: u32,
    /// 0 = while `up` runs, 1 = settled.
    steady: u8,
    from: (usize, usize),
    tag: Option<u16>,
    /// Destination station, or None for broadcast.
    to: Option<(usize, usize)>,
    seq: u32,
}

fn build(s: &Sent) -> Vec<u8> {
    let dst = s.to.map(|(h, p)| station_mac(h, p)).unwrap_or([0xff; 6]);
    let mut f = Vec::with_capacity(64);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&station_mac(s.from.0, s.from.1));
    if let Some(v) = s.tag {
        f.extend_from_slice(&[0x81, 0x00]);
        f.extend_from_slice(&v.to_be_bytes());
    }
    f.extend_from_slice(&[0x88, 0xb5]);
    f.extend_from_slice(MAGIC);
    f.extend_from_slice(&s.step.to_be_bytes());
    let to = s.to.map(|(h, p)| (h * PORTS + p) as u8).unwrap_or(0xff);
    f.extend_from_slice(&[s.steady, s.from.0 as u8, s.from.1 as u8, to]);
    f.extend_from_slice(&s.tag.unwrap_or(0xffff).to_be_bytes());
    f.extend_from_slice(&s.seq.to_be_bytes());
    f.resize(f.len().max(60), 0);
    f
}

/// A received test frame: what was sent, and the tag it arrived with.
fn parse(frame: &[u8], meta_vid: Option<u16>) -> Option<(Sent, Option<u16>)> {
    let (mut off, mut vid) = (12, meta_vid);
    if frame.get(12..14)? == [0x81, 0x00] {
        vid = Some(u16::from_be_bytes([frame[14], frame[15]]) & 0xfff);
        off = 16;
    }
    if frame.get(off..off + 2)? != [0x88, 0xb5] || frame.get(off + 2..off + 6)? != MAGIC {
        return None;
    }
    let b = frame.get(off + 6..off + 20)?;
    let step = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    let to = (b[7] != 0xff).then(|| (b[7] as usize / PORTS, b[7] as usize % PORTS));
    let tag = u16::from_be_bytes([b[8], b[9]]);
    let seq = u32::from_be_bytes([b[10], b[11], b[12], b[13]]);
    let sent = Sent {
        step,
        steady: b[4],
        from: (b[5] as usize, b[6] as usize),
        tag: (tag != 0xffff).then_some(tag),
        to,
        seq,
    };
    Some((sent, vid))
}

/// Where a frame arrived: (station, tag it arrived with).
type Deliveries = Vec<((usize, usize), Option<u16>)>;

/// Received frames, per receiving station.
type Inbox = Arc<Mutex<Vec<((usize, usize), Sent, Option<u16>)>>>;

struct Fleet {
    hosts: Vec<Host>,
    _u: Underlay,
    _stations: Vec<Netns>,
    socks: Vec<Arc<PacketSocket>>,
    inbox: Inbox,
    stop: Arc<AtomicBool>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Fleet {
    fn new() -> Fleet {
        let hosts: Vec<Host> = (0..HOSTS).map(|_| Host::new("h")).collect();
        let u = Underlay::new(&hosts.iter().collect::<Vec<_>>(), "192.0.2");
        let (mut stations, mut socks) = (Vec::new(), Vec::new());
        let inbox: Inbox = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let mut readers = Vec::new();
        for (h, host) in hosts.iter().enumerate() {
            for p in 0..PORTS {
                let ns = Netns::new("st");
                host_sh(&format!(
                    "ip link add p{p} netns {} type veth peer name eth0 netns {}",
                    host.ns.name, ns.name
                ));
                host.ns.sh(&format!("ip link set p{p} up"));
                let m = station_mac(h, p).map(|b| format!("{b:02x}")).join(":");
                ns.sh(&format!("ip link set eth0 address {m} up"));
                let s = Arc::new(PacketSocket::open_in(&ns, "eth0", Duration::from_millis(100)));
                let (s2, inbox2, stop2) = (s.clone(), inbox.clone(), stop.clone());
                readers.push(std::thread::spawn(move || {
                    while !stop2.load(Ordering::Relaxed) {
                        if let Some((f, vid)) = s2.recv()
                            && let Some((sent, tag)) = parse(&f, vid)
                        {
                            inbox2.lock().unwrap().push(((h, p), sent, tag));
                        }
                    }
                }));
                stations.push(ns);
                socks.push(s);
            }
        }
        Fleet { hosts, _u: u, _stations: stations, socks, inbox, stop, readers }
    }

    fn send(&self, s: &Sent) {
        self.socks[s.from.0 * PORTS + s.from.1].send(&build(s));
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
    }
}

/// Who must receive `s` once the fleet is at `cfg`: (station, tag).
fn expected(cfg: &[HostCfg; HOSTS], s: &Sent) -> Deliveries {
    let (h, p) = s.from;
    let Some(n) = cfg[h].classify(p, s.tag) else { return vec![] };
    let mut out = Vec::new();
    for (h2, c) in cfg.iter().enumerate() {
        let reachable = h2 == h || (cfg[h].nets[n].is_some_and(|x| x.1) && c.nets[n].is_some_and(|x| x.1));
        if !reachable {
            continue;
        }
        for p2 in 0..PORTS {
            if (h2, p2) == (h, p) {
                continue;
            }
            for tag in TAGS {
                if c.classify(p2, tag) == Some(n) {
                    out.push(((h2, p2), tag));
                }
            }
        }
    }
    out
}

/// Whether a frame sent while `up` ran may arrive at `at` with `tag`:
/// some old-or-new config of each host puts both ends in one network.
fn allowed_in_window(
    old: &[HostCfg; HOSTS],
    new: &[HostCfg; HOSTS],
    s: &Sent,
    at: (usize, usize),
    tag: Option<u16>,
) -> bool {
    if at == s.from {
        return false;
    }
    let senders = [old[s.from.0].classify(s.from.1, s.tag), new[s.from.0].classify(s.from.1, s.tag)];
    let receivers = [old[at.0].classify(at.1, tag), new[at.0].classify(at.1, tag)];
    senders.iter().flatten().any(|n| receivers.contains(&Some(*n)))
}

#[test]
fn isolation_holds_across_random_config_transitions() {
    let seed: u64 = std::env::var("OVERLAY_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(2026);
    let steps: u32 = if std::env::var("OVERLAY_LONG").is_ok_and(|v| v == "1") { 2000 } else { 200 };
    let mut rng = Rng::new(seed);
    let fleet = Fleet::new();
    let mut cfgs: Vec<[HostCfg; HOSTS]> = vec![std::array::from_fn(|_| HostCfg {
        nets: [None; NETS],
        ports: std::array::from_fn(|_| PortCfg::Absent),
    })];
    let mut seq = 0u32;
    let (mut window_frames, mut steady_frames, mut leaks_checked) = (0u64, 0u64, 0u64);
    for step in 1..=steps {
        let next = random_fleet(&mut rng);
        let fail = |what: String| -> ! {
            panic!(
                "seed {seed} step {step}: {what}\nconfig before: {:#?}\nconfig now: {next:#?}",
                cfgs.last().unwrap()
            )
        };
        // Traffic while each host's `up` runs: every station, every tag,
        // broadcast and unicast to any station (stale MACs included).
        let sending = Arc::new(AtomicBool::new(true));
        let socks: Vec<Arc<PacketSocket>> = fleet.socks.clone();
        let (sending2, mut wrng) = (sending.clone(), Rng::new(seed ^ (step as u64) << 20));
        let mut wseq = seq;
        let sender = std::thread::spawn(move || {
            let mut n = 0u64;
            while sending2.load(Ordering::Relaxed) {
                for h in 0..HOSTS {
                    for p in 0..PORTS {
                        let to = (wrng.below(4) != 0).then(|| (wrng.below(HOSTS), wrng.below(PORTS)));
                        let s = Sent {
                            step,
                            steady: 0,
                            from: (h, p),
                            tag: TAGS[wrng.below(TAGS.len())],
                            to,
                            seq: wseq,
                        };
                        wseq += 1;
                        socks[h * PORTS + p].send(&build(&s));
                        n += 1;
                    }
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            (n, wseq)
        });
        for (h, host) in fleet.hosts.iter().enumerate() {
            if let Err(e) = host.try_up(&next[h].config(h)) {
                sending.store(false, Ordering::Relaxed);
                fail(format!("up on host {h} failed: {e}"));
            }
        }
        sending.store(false, Ordering::Relaxed);
        let (n, s2) = sender.join().expect("sender");
        window_frames += n;
        seq = s2;
        // Settled: broadcasts first (every station is learned where it is),
        // then unicast to every other station, on every tag.
        let mut want: BTreeMap<Sent, Deliveries> = BTreeMap::new();
        for round in 0..2 {
            for h in 0..HOSTS {
                for p in 0..PORTS {
                    for tag in TAGS {
                        let dests: Vec<Option<(usize, usize)>> = if round == 0 {
                            vec![None]
                        } else {
                            (0..HOSTS * PORTS)
                                .map(|i| (i / PORTS, i % PORTS))
                                .filter(|d| *d != (h, p))
                                .map(Some)
                                .collect()
                        };
                        for to in dests {
                            let s = Sent { step, steady: 1, from: (h, p), tag, to, seq };
                            seq += 1;
                            let mut e = expected(&next, &s);
                            if let Some(d) = to {
                                // Known unicast: the destination only, if it is in the network.
                                e.retain(|(at, _)| *at == d);
                            }
                            want.insert(s, e);
                            fleet.send(&s);
                            steady_frames += 1;
                        }
                    }
                }
            }
            // Wait for every expected frame (deadline), then check all.
            let total: usize = want.values().map(|v| v.len()).sum();
            let end = Instant::now() + Duration::from_secs(10);
            loop {
                let got = fleet
                    .inbox
                    .lock()
                    .unwrap()
                    .iter()
                    .filter(|(_, s, _)| s.step == step && s.steady == 1)
                    .count();
                if got >= total || Instant::now() > end {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        std::thread::sleep(Duration::from_millis(50));
        let old = cfgs.last().unwrap().clone();
        let got: Vec<_> = std::mem::take(&mut *fleet.inbox.lock().unwrap());
        let mut seen: BTreeMap<Sent, Deliveries> = BTreeMap::new();
        for (at, s, tag) in got {
            leaks_checked += 1;
            if s.steady == 0 {
                // A frame of this step's window (or, late, an earlier one).
                let (o, n) = if s.step == step {
                    (&old, &next)
                } else {
                    (&cfgs[s.step as usize - 1], &cfgs[s.step as usize])
                };
                if !allowed_in_window(o, n, &s, at, tag) {
                    fail(format!("frame sent while up ran reached station {at:?} with tag {tag:?}: {s:?}"));
                }
            } else if s.step != step {
                fail(format!("late settled frame of step {} at {at:?}: {s:?}", s.step));
            } else {
                seen.entry(s).or_default().push((at, tag));
            }
        }
        for (s, w) in &want {
            let mut g = seen.remove(s).unwrap_or_default();
            let mut w = w.clone();
            g.sort();
            w.sort();
            // An unknown unicast may also be flooded within its network.
            if s.to.is_some() && w.is_empty() {
                let net = expected(&next, s);
                if let Some(x) = g.iter().find(|x| !net.contains(x)) {
                    fail(format!("unicast {s:?} reached {x:?} outside its network (allowed {net:?})"));
                }
                continue;
            }
            if g != w {
                fail(format!("{s:?}: received by {g:?}, expected exactly {w:?}"));
            }
        }
        if let Some((s, g)) = seen.into_iter().next() {
            fail(format!("unexpected frame {s:?} at {g:?}"));
        }
        cfgs.push(next);
        if step % 50 == 0 {
            eprintln!("seed {seed}: {step} transitions checked");
        }
    }
    eprintln!(
        "seed {seed}: {steps} transitions, {window_frames} frames sent during up, {steady_frames} settled, \
         {leaks_checked} receptions checked"
    );
}
