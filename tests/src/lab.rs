//! Hosts that run overlayctl, tenant "VMs", and the links between them.

use std::path::PathBuf;

use serde_json::Value;

use crate::{
    conf::Config,
    netns::{Netns, host_sh},
};

/// The overlayctl binary `cargo xtask test` builds before the tests.
pub fn overlayctl() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/debug/overlayctl");
    assert!(
        p.exists(),
        "{} missing: build it with `cargo build -p overlay-user` (cargo xtask test does)",
        p.display()
    );
    p
}

/// A host: a network namespace with an overlayctl instance of its own.
pub struct Host {
    pub ns: Netns,
    pub instance: String,
    config: PathBuf,
}

impl Host {
    pub fn new(tag: &str) -> Host {
        let ns = Netns::new(tag);
        let instance = ns.name.clone();
        let config = std::env::temp_dir().join(format!("{instance}.toml"));
        Host { ns, instance, config }
    }

    pub fn try_ctl(&self, args: &str) -> Result<String, String> {
        self.ns.try_sh(&format!("{} --name {} {args}", overlayctl().display(), self.instance))
    }

    pub fn ctl(&self, args: &str) -> String {
        self.try_ctl(args).unwrap_or_else(|e| panic!("{e}"))
    }

    /// `config` as TOML, under this host's instance name.
    pub fn config_text(&self, config: &Config) -> String {
        Config { name: self.instance.clone(), ..config.clone() }.to_toml()
    }

    /// Writes `config` (under this host's instance name) and runs `up`.
    pub fn try_up(&self, config: &Config) -> Result<String, String> {
        self.try_up_text(&self.config_text(config))
    }

    pub fn up(&self, config: &Config) {
        self.try_up(config).unwrap_or_else(|e| panic!("{e}"));
    }

    /// Writes `text` as the config file and runs `up`: for configs the
    /// types cannot hold (bad input).
    pub fn try_up_text(&self, text: &str) -> Result<String, String> {
        std::fs::write(&self.config, text).expect("write config");
        self.try_ctl(&format!("up -c {}", self.config.display()))
    }

    pub fn stats(&self) -> Value {
        serde_json::from_str(&self.ctl("-j stats")).expect("stats json")
    }

    /// A counter, over all networks.
    pub fn counter(&self, name: &str) -> u64 {
        self.stats()["total"][name].as_u64().unwrap_or_else(|| panic!("no counter {name}"))
    }

    /// A counter of one network (0 when absent).
    pub fn net_counter(&self, net: &str, name: &str) -> u64 {
        self.stats()["networks"][net][name].as_u64().unwrap_or(0)
    }

    pub fn fdb(&self) -> Vec<Value> {
        serde_json::from_str::<Vec<Value>>(&self.ctl("-j fdb show")).expect("fdb json")
    }

    /// The FDB row for `mac` in `network`, if any.
    pub fn fdb_entry(&self, network: &str, mac: &str) -> Option<Value> {
        self.fdb().into_iter().find(|r| r["network"] == network && r["mac"] == mac)
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.try_ctl("down");
        let _ = std::fs::remove_file(&self.config);
        let pins = overlay_user::bpffs::pin_dir(&self.instance);
        if pins.exists() {
            // down failed: still leave no pins or state behind. (Not
            // `instance::down`: it would delete interfaces by name in the
            // namespace this test process runs in.)
            let _ = overlay_user::instance::remove_pins(&pins);
            let _ = std::fs::remove_file(overlay_user::bpffs::state_path(&self.instance));
        }
        // What `down` removes beside the pins, should it have failed.
        for f in [
            overlay_user::bpffs::object_path(&self.instance),
            overlay_user::agent::status::path(&self.instance),
            overlay_user::agent::lock_path(&self.instance),
            overlay_user::instance::lock_path(&self.instance),
            overlay_user::monitor::lock_path(&self.instance),
            overlay_user::dplog::path(&self.instance),
        ] {
            let _ = std::fs::remove_file(f);
        }
        let _ = std::fs::remove_dir_all(overlay_user::cni::record::dir(&self.instance));
    }
}

/// A tenant namespace whose `eth0` is the far end of port `port` on `host`.
pub struct Vm {
    pub ns: Netns,
}

impl Vm {
    pub fn attach(host: &Host, port: &str, mac: &str, cidr: &str) -> Vm {
        let ns = Netns::new("vm");
        host_sh(&format!(
            "ip link add {port} netns {} type veth peer name eth0 netns {}",
            host.ns.name, ns.name
        ));
        host.ns.sh(&format!("ip link set {port} up"));
        ns.sh(&format!("ip link set eth0 address {mac} mtu 1450 up && ip addr add {cidr} dev eth0"));
        Vm { ns }
    }

    pub fn ping(&self, ip: &str) -> Result<String, String> {
        self.ns.try_sh(&format!("ping -c 2 -i 0.2 -W 1 {ip}"))
    }
}

/// Turns off br_netfilter's hooks in the calling namespace (per-namespace
/// sysctls; absent when the module is not loaded).
pub const NO_BRIDGE_NETFILTER: &str =
    "for f in /proc/sys/net/bridge/bridge-nf-call-*; do [ -e \"$f\" ] && echo 0 > \"$f\"; done; true";

/// Joins hosts on one L2 underlay segment (a bridge in a switch namespace).
/// Host `i` gets interface `u0` with address `prefix.(i+1)/24`.
pub struct Underlay {
    pub sw: Netns,
}

impl Underlay {
    pub fn new(hosts: &[&Host], prefix: &str) -> Underlay {
        let sw = Netns::new("sw");
        // The switch itself sends nothing (with multicast snooping on, the
        // bridge joins 224.0.0.106 and sends IGMP reports), so hosts count
        // only what the test sends.
        sw.sh("ip link add br0 type bridge mcast_snooping 0 && ip link set br0 up");
        // A plain switch: no iptables on bridged frames (br_netfilter, when
        // the machine has it, would drop malformed IPv4 before a VTEP sees it).
        sw.sh(NO_BRIDGE_NETFILTER);
        for (i, h) in hosts.iter().enumerate() {
            host_sh(&format!(
                "ip link add p{i} netns {} type veth peer name u0 netns {}",
                sw.name, h.ns.name
            ));
            sw.sh(&format!("ip link set p{i} master br0 up"));
            h.ns.sh(&format!("ip addr add {prefix}.{}/24 dev u0 && ip link set u0 up", i + 1));
        }
        Underlay { sw }
    }
}

impl Underlay {
    /// A namespace on the underlay segment with interface `eth0` and no
    /// address: it sends raw frames and answers nothing (an attacker).
    pub fn attacker(&self) -> Netns {
        let a = self.plug("atk", "atk0");
        a.sh("ip link set eth0 address 02:00:00:00:66:66 up");
        a
    }

    /// A new namespace whose `eth0` (down, no address) is plugged into the
    /// switch as port `port`.
    pub fn plug(&self, tag: &str, port: &str) -> Netns {
        let ns = Netns::new(tag);
        host_sh(&format!(
            "ip link add {port} netns {} type veth peer name eth0 netns {}",
            self.sw.name, ns.name
        ));
        self.sw.sh(&format!("ip link set {port} master br0 up"));
        ns
    }
}

/// Sends one Ethernet frame from `ns`'s `dev` with scapy (Debian's python).
pub fn send_frame(ns: &Netns, dev: &str, scapy_expr: &str) {
    ns.sh(&format!(
        "/usr/bin/python3 -c \"from scapy.all import *; sendp({scapy_expr}, iface='{dev}', verbose=0)\""
    ));
}

/// Polls `f` every 50 ms until it holds; panics with `what` after `secs`.
pub fn wait_until(what: &str, secs: u64, f: impl FnMut() -> bool) {
    netns_lab::wait_until(what, secs, f).unwrap_or_else(|e| panic!("{e}"));
}

/// `tcpdump ARGS` in `ns`, returned once it captures: see
/// [`netns_lab::tcpdump`]. Stdout is piped for `wait_with_output`.
pub fn tcpdump(ns: &Netns, args: &str) -> std::process::Child {
    netns_lab::tcpdump(&ns.name, args).unwrap_or_else(|e| panic!("{e}"))
}

/// Starts `iperf3 -s -1` on port 5201 in `server` and returns once it
/// listens.
pub fn iperf3_server(server: &Netns) -> std::process::Child {
    let srv = server.spawn("exec iperf3 -s -1 -p 5201");
    netns_lab::wait_listening(&server.name, "t", 5201).unwrap_or_else(|e| panic!("iperf3 server: {e}"));
    srv
}

/// Runs a short iperf3 test from `client` to `server_ip` served by
/// `server`; returns the bytes the receiver got.
pub fn iperf3(server: &Netns, client: &Netns, server_ip: &str, extra: &str) -> u64 {
    let mut srv = iperf3_server(server);
    let out = client.try_sh(&format!("timeout 20 iperf3 -J -c {server_ip} -p 5201 -t 1 {extra}"));
    let _ = srv.kill();
    let _ = srv.wait();
    let out = out.unwrap_or_else(|e| panic!("iperf3 {extra}: {e}"));
    let v: Value = serde_json::from_str(&out).expect("iperf3 json");
    let end = &v["end"];
    end["sum_received"]["bytes"].as_u64().or_else(|| end["sum"]["bytes"].as_u64()).expect("iperf3 bytes")
}

/// One host alone on an underlay segment, as 192.0.2.1.
pub fn one_host() -> (Host, Underlay) {
    let h = Host::new("h");
    let u = Underlay::new(&[&h], "192.0.2");
    (h, u)
}

/// `n` hosts on one underlay segment (192.0.2.1..n), each with a tenant
/// on port `vm1`: MAC 02:00:00:00:00:0i, address 203.0.113.i/24.
pub fn hosts_with_vms(n: usize) -> (Vec<Host>, Underlay, Vec<Vm>) {
    let hosts: Vec<Host> = (0..n).map(|_| Host::new("h")).collect();
    let u = Underlay::new(&hosts.iter().collect::<Vec<_>>(), "192.0.2");
    let vms = hosts
        .iter()
        .enumerate()
        .map(|(i, h)| {
            Vm::attach(h, "vm1", &format!("02:00:00:00:00:{:02x}", i + 1), &format!("203.0.113.{}/24", i + 1))
        })
        .collect();
    (hosts, u, vms)
}
