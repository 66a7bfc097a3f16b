//! BPF_PROG_TEST_RUN fixture: the real object, maps programmed from a real
//! config through the real `apply`, run on a thread inside a private
//! network namespace (so `bpf_fib_lookup` and clone redirects only ever see
//! interfaces the test made).

use std::{collections::BTreeMap, path::PathBuf};

use aya::{
    Ebpf,
    programs::{SchedClassifier, TestRun, TestRunOptions},
};
use overlay_common::{
    counters::{Counter, net_row, stats_index},
    maps::{PeerKey, PeerState},
};
use overlay_user::{
    apply::{Resolved, apply, assign_net_ids, desired},
    bpffs,
    config::{Config, Network},
    loader,
    maps::Maps,
    netlink, trace,
};

use crate::{conf, netns::unique};

pub const TC_ACT_OK: u32 = 0;
pub const TC_ACT_SHOT: u32 = 2;
pub const TC_ACT_STOLEN: u32 = 4;
pub const TC_ACT_REDIRECT: u32 = 7;

/// Runs `f` on a thread in a new, private network namespace that vanishes
/// with the thread. Panics in `f` fail the calling test.
pub fn in_private_netns<F: FnOnce() + Send + 'static>(f: F) {
    let r = std::thread::spawn(move || {
        // SAFETY: unshare affects only this thread.
        assert_eq!(unsafe { libc::unshare(libc::CLONE_NEWNET) }, 0, "unshare(CLONE_NEWNET)");
        f();
    })
    .join();
    if let Err(p) = r {
        std::panic::resume_unwind(p);
    }
}

/// Runs a shell command in the calling thread's network namespace.
pub fn sh(cmd: &str) -> String {
    let o = std::process::Command::new("sh").arg("-c").arg(cmd).output().expect("spawn sh");
    assert!(
        o.status.success(),
        "`{cmd}`: {}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The datapath tests' and progcost's config. blue: VNI 100 / VLAN 10 with
/// peer 192.0.2.2; red: VLAN 20 only. p1, p2 access blue; p3 trunk (blue
/// tagged, red tagged); p4 access red. Static: VM2 (02:..:02) on p2,
/// 02:..:09 behind 192.0.2.2.
pub fn dp_config() -> Config {
    Config {
        networks: vec![
            Network { vlan: Some(10), ..conf::vxlan("blue", 100, &["192.0.2.2"]) },
            conf::vlan("red", 20),
        ],
        ports: vec![
            conf::access("p1", "blue"),
            conf::access("p2", "blue"),
            conf::trunk("p3", &["blue", "red"]),
            conf::access("p4", "red"),
        ],
        fdb: vec![
            conf::fdb_port("02:00:00:00:00:02", "blue", "p2"),
            conf::fdb_remote("02:00:00:00:00:09", "blue", "192.0.2.2"),
        ],
        ..conf::config("192.0.2.1")
    }
}

/// Runs `test` with a [`Fixture`] of [`dp_config`], in a private network
/// namespace (see [`in_private_netns`]).
pub fn with_fixture(test: impl FnOnce(Fixture) + Send + 'static) {
    in_private_netns(move || test(Fixture::new(&dp_config())));
}

/// Underlay `u1` (198.51.100.1/24) with `n` peer VTEPs 198.51.100.2.. whose
/// neighbours are permanent (02:00:00:00:bb:i); returns a config with one
/// network "big" (VNI 7) flooding to all of them and port `p1`.
pub fn many_peers(n: usize) -> Config {
    sh("ip link add u1 type veth peer name u1b; ip link set u1 up; ip link set u1b up; \
        ip addr add 198.51.100.1/24 dev u1; sysctl -qw net.ipv4.conf.u1.forwarding=1");
    sh(&format!(
        "for i in $(seq 1 {n}); do ip neigh add 198.51.100.$((i+1)) lladdr 02:00:00:00:bb:$(printf %02x $i) dev u1 nud permanent; done"
    ));
    let peers: Vec<String> = (0..n).map(|i| format!("198.51.100.{}", i + 2)).collect();
    let peers: Vec<&str> = peers.iter().map(String::as_str).collect();
    let mut c = Config {
        networks: vec![conf::vxlan("big", 7, &peers)],
        ports: vec![conf::access("p1", "big")],
        ..conf::config("198.51.100.1")
    };
    c.underlay.interface = "u1".into();
    c
}

pub struct Fixture {
    pub ebpf: Ebpf,
    pub maps: Maps,
    pub dir: PathBuf,
    pub cfg: Config,
    pub ids: BTreeMap<String, u32>,
    pub ifindex: BTreeMap<String, u32>,
}

/// Interfaces every fixture has: underlay `u0` (192.0.2.1/24, peer
/// 192.0.2.2 at 02:00:00:00:aa:02 permanently), ports `p1`..`p4` (veths).
pub const BASE_SETUP: &str = "ip link set lo up; \
    ip link add u0 type veth peer name u0b; ip link set u0 address 02:00:00:00:aa:01 up; ip link set u0b up; \
    ip addr add 192.0.2.1/24 dev u0; ip neigh add 192.0.2.2 lladdr 02:00:00:00:aa:02 dev u0 nud permanent; \
    sysctl -qw net.ipv4.conf.u0.forwarding=1; \
    for i in 1 2 3 4; do ip link add p$i type veth peer name p${i}b; ip link set p$i up; ip link set p${i}b up; done";

impl Fixture {
    /// Loads the programs and applies `config` (its name replaced by a
    /// unique one).
    pub fn new(config: &Config) -> Fixture {
        sh(BASE_SETUP);
        let name = unique("pt");
        let cfg = Config { name: name.clone(), ..config.clone() };
        cfg.validate().expect("config");
        let u = netlink::link_info(&cfg.underlay.interface).expect("underlay");
        let mut ports = BTreeMap::new();
        for p in &cfg.ports {
            ports.insert(p.interface.clone(), netlink::link_info(&p.interface).expect("port").index);
        }
        let mut ifindex = ports.clone();
        ifindex.insert(cfg.underlay.interface.clone(), u.index);
        let ids = assign_net_ids(&cfg, &BTreeMap::new()).expect("net ids");
        let r = Resolved {
            underlay_ifindex: u.index,
            underlay_mtu: u.mtu,
            underlay_mac: u.mac,
            ports,
            peer_elsewhere: Default::default(),
        };
        let want = desired(&cfg, &ids, &r, &Default::default()).expect("desired");
        bpffs::ensure_bpffs().expect("bpffs");
        let dir = bpffs::pin_dir(&name);
        std::fs::create_dir_all(&dir).expect("pin dir");
        // Removes the pins if anything below panics (e.g. the verifier
        // refuses the object) before the Fixture, whose Drop does it, exists.
        let mut guard = PinGuard(Some(dir.clone()));
        let ebpf = loader::load_object(&dir, cfg.fdb_size).expect("load BPF object (verifier)");
        let mut maps = Maps::open(&dir).expect("maps");
        apply(&mut maps, &want).expect("apply");
        guard.0 = None; // the Fixture owns the pins now
        Fixture { ebpf, maps, dir, cfg, ids, ifindex }
    }

    /// Runs `prog` on `frame` as if received on `dev`; returns the verdict
    /// and the frame as the program left it.
    pub fn run(&self, prog: &str, dev: &str, frame: &[u8]) -> (u32, Vec<u8>) {
        let (v, out, _) = self.run_timed(prog, dev, frame);
        (v, out)
    }

    /// [`Fixture::run`], plus the kernel-measured duration of the run.
    pub fn run_timed(&self, prog: &str, dev: &str, frame: &[u8]) -> (u32, Vec<u8>, std::time::Duration) {
        self.run_ctx(prog, dev, frame, 0)
    }

    /// The underlay program on `frame` as a GSO super-packet (`gso_size`
    /// set in the skb, as GRO or a veth peer's TSO leaves it).
    pub fn underlay_gso(&self, frame: &[u8], gso_size: u32) -> (u32, Vec<u8>) {
        let (v, out, _) = self.run_ctx(loader::PROG_VTEP, "u0", frame, gso_size);
        (v, out)
    }

    fn run_ctx(
        &self,
        prog: &str,
        dev: &str,
        frame: &[u8],
        gso_size: u32,
    ) -> (u32, Vec<u8>, std::time::Duration) {
        let p: &SchedClassifier = self.ebpf.program(prog).expect("program").try_into().expect("classifier");
        let mut ctx = [0u8; 192];
        let idx = self.ifindex[dev];
        ctx[40..44].copy_from_slice(&idx.to_ne_bytes()); // __sk_buff.ifindex
        ctx[176..180].copy_from_slice(&gso_size.to_ne_bytes()); // __sk_buff.gso_size
        let mut out = vec![0u8; 4096];
        let r = p
            .test_run(TestRunOptions {
                data_in: Some(frame),
                data_out: Some(&mut out),
                ctx_in: Some(&ctx),
                ..Default::default()
            })
            .unwrap_or_else(|e| panic!("BPF_PROG_TEST_RUN ({} bytes): {e:?}", frame.len()));
        out.truncate(r.data_size_out as usize);
        (r.return_value, out, r.duration)
    }

    pub fn tenant(&self, dev: &str, frame: &[u8]) -> (u32, Vec<u8>) {
        self.run(loader::PROG_TENANT, dev, frame)
    }

    pub fn underlay(&self, frame: &[u8]) -> (u32, Vec<u8>) {
        self.run(loader::PROG_VTEP, "u0", frame)
    }

    /// A counter summed over CPUs: row 0 plus every network.
    pub fn count(&self, c: Counter) -> u64 {
        let mut rows = vec![0];
        rows.extend(self.ids.values().map(|id| net_row(*id)));
        rows.iter()
            .map(|row| self.maps.stats.get(&stats_index(*row, c), 0).expect("stats").iter().sum::<u64>())
            .sum()
    }

    /// A counter of one network, summed over CPUs.
    pub fn net_count(&self, net: &str, c: Counter) -> u64 {
        let i = stats_index(net_row(self.net(net)), c);
        self.maps.stats.get(&i, 0).expect("stats").iter().sum()
    }

    /// The datapath's count of learned entries of `net` (NET_FDB).
    pub fn learned(&self, net: &str) -> u64 {
        self.maps.net_fdb.get(&self.net(net), 0).expect("NET_FDB").learned
    }

    /// Every non-zero counter, for exact assertions.
    pub fn nonzero(&self) -> BTreeMap<&'static str, u64> {
        Counter::ALL.iter().map(|c| (c.name(), self.count(*c))).filter(|(_, v)| *v != 0).collect()
    }

    pub fn reset(&mut self) {
        overlay_user::stats::reset(&mut self.maps).expect("reset");
    }

    /// The interfaces of this fixture, as `apply` wants them.
    pub fn resolved(&self) -> Resolved {
        let u = netlink::link_info(&self.cfg.underlay.interface).expect("underlay");
        let ports =
            self.cfg.ports.iter().map(|p| (p.interface.clone(), self.ifindex[&p.interface])).collect();
        Resolved {
            underlay_ifindex: u.index,
            underlay_mtu: u.mtu,
            underlay_mac: u.mac,
            ports,
            peer_elsewhere: Default::default(),
        }
    }

    pub fn net(&self, name: &str) -> u32 {
        self.ids[name]
    }

    /// The `PEERS` entry of VTEP `vtep` in network `net` (what the datapath
    /// caches about that peer), if it is a peer.
    pub fn peer(&self, net: &str, vtep: [u8; 4]) -> Option<PeerState> {
        let k = PeerKey { net_id: self.net(net), vtep_be: overlay_common::pktbuild::vtep4(vtep) };
        self.maps.peers.get(&k, 0).ok()
    }

    /// Next hops the datapath caches: peers' in their `PEERS` entries (for
    /// unicast), others' and flood copies' in `NEXT_HOP`.
    pub fn cached_hops(&self) -> usize {
        let peers = self.maps.peers.iter().filter_map(|r| r.ok()).filter(|(_, v)| v.hop.ifindex != 0).count();
        peers + self.maps.next_hop.keys().count()
    }

    /// Forgets every cached next hop and reverse-path pass, as `up` does
    /// (its own step).
    pub fn forget_caches(&mut self) {
        overlay_user::apply::execute(&mut self.maps, &[overlay_user::apply::Op::ClearCaches])
            .expect("clear caches");
    }

    /// Loads the trace programs (`overlayctl trace`) next to the live ones.
    pub fn load_trace(&mut self) {
        loader::load_tc(&mut self.ebpf, loader::TRACE_PROGRAMS).expect("load the trace programs (verifier)");
    }

    /// The trace of `frame` arriving on `dev` (the underlay program when
    /// `dev` is the underlay), as `overlayctl trace` runs it.
    pub fn trace(&self, dev: &str, frame: &[u8]) -> trace::Raw {
        let hook =
            if dev == self.cfg.underlay.interface { trace::Hook::Underlay } else { trace::Hook::Tenant };
        trace::run(&self.ebpf, hook, self.ifindex[dev], frame).expect("trace")
    }

    /// The live program for `dev` (as [`Fixture::trace`] picks it).
    pub fn live(&self, dev: &str, frame: &[u8]) -> (u32, Vec<u8>) {
        if dev == self.cfg.underlay.interface { self.underlay(frame) } else { self.tenant(dev, frame) }
    }

    /// Every map entry the datapath writes, with timestamps, and every
    /// counter: what a trace must leave as it was.
    pub fn snapshot(&self) -> Snapshot {
        let mut counters = BTreeMap::new();
        let mut rows = vec![0];
        rows.extend(self.ids.values().map(|id| net_row(*id)));
        for row in rows {
            for c in Counter::ALL {
                let v: u64 = self.maps.stats.get(&stats_index(row, *c), 0).expect("stats").iter().sum();
                if v != 0 {
                    counters.insert((row, c.name()), v);
                }
            }
        }
        let sorted = |mut v: Vec<String>| {
            v.sort();
            v
        };
        Snapshot {
            counters,
            fdb: sorted(self.maps.fdb.iter().map(|r| format!("{:?}", r.expect("fdb"))).collect()),
            neigh: sorted(self.maps.neigh.iter().map(|r| format!("{:?}", r.expect("neigh"))).collect()),
            peers: sorted(self.maps.peers.iter().map(|r| format!("{:?}", r.expect("peers"))).collect()),
            next_hop: sorted(
                self.maps.next_hop.iter().map(|r| format!("{:?}", r.expect("next hop"))).collect(),
            ),
            rp_cache: sorted(
                self.maps.rp_cache.iter().map(|r| format!("{:?}", r.expect("rp cache"))).collect(),
            ),
            net_fdb: self
                .ids
                .values()
                .map(|id| format!("{:?}", self.maps.net_fdb.get(id, 0).expect("NET_FDB")))
                .collect(),
        }
    }
}

/// See [`Fixture::snapshot`].
#[derive(Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// (stats row, counter) -> value, non-zero only.
    pub counters: BTreeMap<(u32, &'static str), u64>,
    pub fdb: Vec<String>,
    pub neigh: Vec<String>,
    pub peers: Vec<String>,
    pub next_hop: Vec<String>,
    pub rp_cache: Vec<String>,
    pub net_fdb: Vec<String>,
}

impl Snapshot {
    /// Counters that grew from `before` to `self`.
    pub fn counter_delta(&self, before: &Snapshot) -> BTreeMap<(u32, &'static str), u64> {
        self.counters
            .iter()
            .filter_map(|(k, v)| {
                let d = v - before.counters.get(k).copied().unwrap_or(0);
                (d != 0).then_some((*k, d))
            })
            .collect()
    }
}

struct PinGuard(Option<PathBuf>);

impl Drop for PinGuard {
    fn drop(&mut self) {
        if let Some(d) = self.0.take() {
            let _ = overlay_user::instance::remove_pins(&d);
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = overlay_user::instance::remove_pins(&self.dir);
    }
}

/// Builds the expected counter map for exact comparisons.
pub fn counts(pairs: &[(Counter, u64)]) -> BTreeMap<&'static str, u64> {
    pairs.iter().map(|(c, v)| (c.name(), *v)).collect()
}
