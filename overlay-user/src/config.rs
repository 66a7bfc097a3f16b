//! The host configuration file (TOML) and its validation.
//!
//! Validation runs completely before anything in the kernel is touched; an
//! error names the offending field.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
    path::Path,
};

use serde::{Deserialize, Serialize};

pub use self::{
    control::Control,
    neigh::{StaticNeigh, is_host_address, is_v4_mapped},
};
use crate::error::{Error, Result};
pub use crate::mac::MacAddr;
use overlay_common::{MAX_FLOOD_PEERS, MAX_FLOOD_PORTS, MAX_NETWORKS};

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Instance name; pins live in a bpffs directory of that name.
    pub name: String,
    /// FDB capacity (entries); fixed for the lifetime of the instance.
    #[serde(default = "default_fdb_size")]
    pub fdb_size: u32,
    /// Ageing time of learned FDB entries, seconds (0 = never).
    #[serde(default = "default_ageing")]
    pub ageing: u32,
    pub underlay: Underlay,
    #[serde(default, rename = "network")]
    pub networks: Vec<Network>,
    #[serde(default, rename = "port")]
    pub ports: Vec<Port>,
    #[serde(default, rename = "fdb")]
    pub fdb: Vec<StaticFdb>,
    /// Neighbour pairs without an FDB entry (`[[neigh]]`).
    #[serde(default, rename = "neigh", skip_serializing_if = "Vec::is_empty")]
    pub neigh: Vec<StaticNeigh>,
    /// The control plane (`overlayctl agent`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control: Option<Control>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Underlay {
    pub interface: String,
    /// This VTEP's address, IPv4 or IPv6: the instance's underlay family
    /// (peers and remotes must be of the same).
    pub address: IpAddr,
    #[serde(default = "default_port")]
    pub port: u16,
    #[serde(default = "default_ttl")]
    pub ttl: u8,
    /// XDP fast path for known-unicast VXLAN on the underlay: "off" (TC
    /// only), "native" (driver mode) or "generic" (skb mode).
    #[serde(default)]
    pub xdp: XdpMode,
    /// Compute the outer UDP checksum over IPv4 (default: zero, as RFC
    /// 7348 allows). Single frames only: GSO super-packets keep zero. Over
    /// IPv6 the checksum is always computed (RFC 8200).
    #[serde(default)]
    pub udp_checksum: bool,
    /// Over IPv6: send VXLAN with a zero UDP checksum and accept it (RFC
    /// 6935), for peers set up that way (Linux: `udp6zerocsumtx` and
    /// `udp6zerocsumrx`). Default: checksums sent, zero ones dropped.
    #[serde(default)]
    pub udp6_zero_checksum: bool,
    /// Reverse-path check of VXLAN sources, as the kernel's `rp_filter`
    /// (which our hooks run before): "strict" (default), "loose" or "off".
    #[serde(default)]
    pub rp_filter: RpFilter,
}

/// `[underlay] xdp`.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum XdpMode {
    /// TC only.
    #[default]
    Off,
    /// Driver mode.
    Native,
    /// skb mode (any driver).
    Generic,
}

impl std::fmt::Display for XdpMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            XdpMode::Off => "off",
            XdpMode::Native => "native",
            XdpMode::Generic => "generic",
        })
    }
}

/// `[underlay] rp_filter`.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RpFilter {
    /// The route back to the outer source must use the underlay interface.
    #[default]
    Strict,
    /// Some route back to the outer source must exist.
    Loose,
    Off,
}

/// `[[network]] encap`: how a network's frames cross the underlay.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Encap {
    /// UDP to `[underlay] port` (RFC 7348).
    #[default]
    Vxlan,
    /// Ethernet over GRE with the key carrying the network id (as Open
    /// vSwitch's `type=gre` ports with `key=`).
    Gre,
    /// UDP to port 6081 (RFC 8926), no options sent.
    Geneve,
}

impl Encap {
    /// The datapath's `ENCAP_*` value.
    pub fn code(self) -> u8 {
        match self {
            Encap::Vxlan => overlay_common::ENCAP_VXLAN,
            Encap::Gre => overlay_common::ENCAP_GRE,
            Encap::Geneve => overlay_common::ENCAP_GENEVE,
        }
    }

    /// Bytes added to a tenant frame on the wire (outer Ethernet included).
    pub fn overhead(self) -> u32 {
        overlay_common::encap_overhead(self.code())
    }

    /// The UDP destination port of this encapsulation for an instance whose
    /// VXLAN port is `vxlan_port` (GRE: 0, it has no ports).
    pub fn udp_port(self, vxlan_port: u16) -> u16 {
        match self {
            Encap::Vxlan => vxlan_port,
            Encap::Gre => 0,
            Encap::Geneve => overlay_common::GENEVE_PORT,
        }
    }

    pub fn is_vxlan(&self) -> bool {
        *self == Encap::Vxlan
    }

    /// Largest id: the VXLAN and GENEVE VNI have 24 bits, the GRE key 32.
    pub fn max_id(self) -> u32 {
        if self == Encap::Gre { u32::MAX } else { 0xff_ffff }
    }
}

impl std::fmt::Display for Encap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Encap::Vxlan => "vxlan",
            Encap::Gre => "gre",
            Encap::Geneve => "geneve",
        })
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Network {
    pub name: String,
    /// The VXLAN VNI, GRE key or GENEVE VNI (as `encap` says): unique
    /// among the instance's networks whatever their encapsulation.
    pub vni: Option<u32>,
    /// Encapsulation of the network's frames between VTEPs (default vxlan).
    #[serde(default, skip_serializing_if = "Encap::is_vxlan")]
    pub encap: Encap,
    pub vlan: Option<u16>,
    #[serde(default)]
    pub peers: Vec<IpAddr>,
    /// Accept (and learn from) VXLAN sent by VTEPs not listed in `peers`.
    #[serde(default)]
    pub learn_unknown_peers: bool,
    /// Accept 802.1Q-tagged inner frames arriving over VXLAN.
    #[serde(default)]
    pub allow_inner_vlan: bool,
    /// Learned FDB entries this network may hold (like the bridge's
    /// `fdb_max_learned` or OVS's `mac-table-size`), so a MAC flood in one
    /// network leaves the others room. Default: [`DEFAULT_MAX_LEARNED`] or
    /// `fdb_size` if smaller; 0 = limited only by `fdb_size`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_learned: Option<u32>,
    /// Answer tenants' ARP requests and neighbour solicitations for known
    /// addresses (default: when the network has neighbour entries or
    /// `learn_ip`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppress: Option<bool>,
    /// Learn address/MAC pairs from tenants' ARP replies, gratuitous ARP
    /// and neighbour advertisements (never over a configured pair).
    #[serde(default)]
    pub learn_ip: bool,
    /// Flood unicast to unknown MACs (default). `false` (with `[control]`):
    /// drop and count it, as l2population and EVPN do; broadcast and
    /// multicast still flood.
    #[serde(default = "yes")]
    pub flood_unknown: bool,
}

fn yes() -> bool {
    true
}

/// Default per-network learning limit.
pub const DEFAULT_MAX_LEARNED: u32 = 8192;

impl Network {
    /// The learning limit written to the datapath (0 = none).
    pub fn learn_limit(&self, fdb_size: u32) -> u32 {
        self.max_learned.unwrap_or(DEFAULT_MAX_LEARNED.min(fdb_size))
    }

    /// Bytes its encapsulation adds on the wire (0 without a vni: the
    /// network never leaves the host).
    pub fn overhead(&self) -> u32 {
        if self.vni.is_some() { self.encap.overhead() } else { 0 }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Port {
    pub interface: String,
    /// Access port: the network its untagged frames belong to.
    pub network: Option<String>,
    /// Trunk port: networks carried tagged with their VLAN ID.
    pub trunk: Option<Vec<String>>,
    /// Trunk port: network carried untagged.
    pub native: Option<String>,
    /// Accept priority-tagged frames (VID 0) as untagged.
    #[serde(default)]
    pub priority_tagged: bool,
    /// MTU to set; default the underlay MTU minus the largest overhead of
    /// the port's networks' encapsulations (VXLAN, GENEVE 50, GRE 42).
    /// 0 = leave the interface alone.
    pub mtu: Option<u32>,
    /// The XDP fast path may redirect frames here: the far end of this veth
    /// runs NAPI (GRO on, or an XDP program), or it is a tap. Ports made by
    /// `port add --netns` are set up that way and marked automatically.
    #[serde(default)]
    pub xdp_target: bool,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(deny_unknown_fields)]
pub struct StaticFdb {
    pub mac: MacAddr,
    pub network: String,
    pub remote: Option<IpAddr>,
    pub port: Option<String>,
    /// Addresses of this MAC, answered for by the datapath (one or a list).
    #[serde(default, deserialize_with = "neigh::one_or_many", skip_serializing_if = "Vec::is_empty")]
    pub ip: Vec<std::net::IpAddr>,
}

fn default_fdb_size() -> u32 {
    overlay_common::maps::DEFAULT_FDB_ENTRIES
}
fn default_ageing() -> u32 {
    300
}
fn default_port() -> u16 {
    overlay_common::VXLAN_PORT
}
fn default_ttl() -> u8 {
    64
}

/// A network's VNI or VLAN ID (`what`): in `range` and used by no other
/// network (`seen` maps the ids so far to their networks).
fn unique_id<'a>(
    at: &str,
    what: &str,
    v: u32,
    range: std::ops::RangeInclusive<u32>,
    seen: &mut BTreeMap<u32, &'a str>,
    network: &'a str,
) -> Result<()> {
    if !range.contains(&v) {
        return Err(bad(format!("{at}: {what} {v} out of range {}..={}", range.start(), range.end())));
    }
    if let Some(o) = seen.insert(v, network) {
        return Err(bad(format!("{at}: {what} {v} already used by network {o:?}")));
    }
    Ok(())
}

fn bad(msg: impl Into<String>) -> Error {
    Error::Config(msg.into())
}

/// Instance and network names: `[A-Za-z0-9_-]`, also valid in bpffs
/// (which refuses dots) and in file names.
pub fn valid_name(s: &str, max: usize) -> bool {
    !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Interface names as the kernel accepts them (up to 15 bytes, no `/`,
/// whitespace or `:`).
pub fn valid_ifname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 15
        && s != "."
        && s != ".."
        && s.bytes().all(|b| b.is_ascii_graphic() && b != b'/' && b != b':')
}

impl Config {
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).map_err(|e| bad(format!("{}: {e}", path.display())))?;
        Self::parse(&text)
            .map_err(|e| bad(format!("{}: {}", path.display(), e.to_string().trim_start_matches("config: "))))
    }

    pub fn parse(text: &str) -> Result<Config> {
        let c: Config = toml::from_str(text).map_err(|e| bad(e.to_string()))?;
        c.validate()?;
        Ok(c)
    }

    /// The config as TOML that [`Config::parse`] reads back to the same
    /// value (defaults written out).
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a Config always serializes")
    }

    pub fn network(&self, name: &str) -> Option<&Network> {
        self.networks.iter().find(|n| n.name == name)
    }

    /// Checks everything that can be checked without the kernel.
    pub fn validate(&self) -> Result<()> {
        if !valid_name(&self.name, 32) {
            return Err(bad(format!("name {:?}: use 1-32 characters [A-Za-z0-9_-]", self.name)));
        }
        if self.fdb_size < 16 || self.fdb_size > 16 << 20 {
            return Err(bad(format!("fdb_size {}: must be 16..=16777216", self.fdb_size)));
        }
        let u = &self.underlay;
        if !valid_ifname(&u.interface) {
            return Err(bad(format!("underlay.interface {:?}: not an interface name", u.interface)));
        }
        if let Some(why) = vtep_address_problem(&u.address) {
            return Err(bad(format!("underlay.address {}: {why}", u.address)));
        }
        let v6 = u.address.is_ipv6();
        if v6 && u.udp_checksum {
            return Err(bad("underlay.udp_checksum: over IPv6 the outer UDP checksum is always computed \
                 (udp6_zero_checksum = true opts out)"));
        }
        if !v6 && u.udp6_zero_checksum {
            return Err(bad("underlay.udp6_zero_checksum: only for an IPv6 underlay address"));
        }
        if u.port == 0 {
            return Err(bad("underlay.port: must be 1..=65535"));
        }
        if u.ttl == 0 {
            return Err(bad("underlay.ttl: must be 1..=255"));
        }
        if self.networks.len() > MAX_NETWORKS as usize {
            return Err(bad(format!("at most {MAX_NETWORKS} networks")));
        }
        let (mut names, mut vnis, mut vlans) = (BTreeSet::new(), BTreeMap::new(), BTreeMap::new());
        for (i, n) in self.networks.iter().enumerate() {
            let at = format!("network[{i}] {:?}", n.name);
            if !valid_name(&n.name, 32) {
                return Err(bad(format!("{at}: name must be 1-32 characters [A-Za-z0-9_-]")));
            }
            if !names.insert(n.name.as_str()) {
                return Err(bad(format!("{at}: duplicate network name")));
            }
            if n.vni.is_none() && n.vlan.is_none() {
                return Err(bad(format!("{at}: needs a vni, a vlan, or both")));
            }
            if v6 && n.encap != Encap::Vxlan {
                return Err(bad(format!(
                    "{at}: encap = \"{}\" is not supported over an IPv6 underlay (VXLAN is)",
                    n.encap
                )));
            }
            if let Some(v) = n.vni {
                unique_id(&at, "vni", v, 1..=n.encap.max_id(), &mut vnis, &n.name)?;
            } else if !n.peers.is_empty() {
                return Err(bad(format!("{at}: peers need a vni")));
            } else if n.encap != Encap::Vxlan {
                return Err(bad(format!(
                    "{at}: encap = \"{}\" needs a vni (the network id on the wire)",
                    n.encap
                )));
            }
            if let Some(v) = n.vlan {
                unique_id(&at, "vlan", v.into(), 1..=4094, &mut vlans, &n.name)?;
            }
            if let Some(m) = n.max_learned
                && m > self.fdb_size
            {
                return Err(bad(format!("{at}: max_learned {m} exceeds fdb_size {}", self.fdb_size)));
            }
            if !n.flood_unknown && self.control.is_none() {
                return Err(bad(format!(
                    "{at}: flood_unknown = false needs [control]: without a control plane, \
                     unknown MACs are found by flooding"
                )));
            }
            if n.peers.len() > MAX_FLOOD_PEERS {
                return Err(bad(format!("{at}: at most {MAX_FLOOD_PEERS} peers")));
            }
            let mut seen = BTreeSet::new();
            for p in &n.peers {
                if *p == u.address {
                    return Err(bad(format!("{at}: peer {p} is the local VTEP address")));
                }
                if let Some(why) = vtep_address_problem(p) {
                    return Err(bad(format!("{at}: peer {p}: {why}")));
                }
                same_family(&format!("{at}: peer {p}"), p, &u.address)?;
                if !seen.insert(*p) {
                    return Err(bad(format!("{at}: peer {p} listed twice")));
                }
            }
        }
        let mut ifaces = BTreeSet::new();
        ifaces.insert(u.interface.as_str());
        let mut members: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, p) in self.ports.iter().enumerate() {
            let at = format!("port[{i}] {:?}", p.interface);
            if !valid_ifname(&p.interface) {
                return Err(bad(format!("{at}: not an interface name")));
            }
            if !ifaces.insert(p.interface.as_str()) {
                return Err(bad(format!("{at}: interface used twice (or is the underlay)")));
            }
            let nets = self.port_networks(p).map_err(|e| bad(format!("{at}: {e}")))?;
            for (net, tagged) in &nets {
                let n = self.network(net).ok_or_else(|| bad(format!("{at}: unknown network {net:?}")))?;
                if p.native.as_ref() == Some(*net) && n.allow_inner_vlan {
                    // Its tagged inner frames would leave the trunk with the
                    // peer's tag as the outer one (VLAN hopping).
                    return Err(bad(format!(
                        "{at}: native = {net:?}, but network {net:?} has allow_inner_vlan = true: \
                         a tagged inner frame would leave this trunk carrying the sender's tag; \
                         carry {net:?} tagged (trunk list) or turn allow_inner_vlan off"
                    )));
                }
                if *tagged && n.vlan.is_none() {
                    return Err(bad(format!(
                        "{at}: network {net:?} has no vlan, so it cannot be tagged on a trunk"
                    )));
                }
                let m = members.entry(net.as_str()).or_default();
                *m += 1;
                if *m > MAX_FLOOD_PORTS {
                    return Err(bad(format!("network {net:?}: at most {MAX_FLOOD_PORTS} local ports")));
                }
            }
        }
        let mut keys = BTreeSet::new();
        for (i, f) in self.fdb.iter().enumerate() {
            let at = format!("fdb[{i}] {:?}", f.mac);
            let mac = f.mac;
            if !mac.is_unicast() {
                return Err(bad(format!("{at}: must be a unicast MAC")));
            }
            let n = self
                .network(&f.network)
                .ok_or_else(|| bad(format!("{at}: unknown network {:?}", f.network)))?;
            match (&f.remote, &f.port) {
                (Some(r), None) => {
                    if n.vni.is_none() {
                        return Err(bad(format!("{at}: network {:?} has no vni, so no remote", f.network)));
                    }
                    if *r == u.address {
                        return Err(bad(format!("{at}: remote {r} is the local VTEP")));
                    }
                    if let Some(why) = vtep_address_problem(r) {
                        return Err(bad(format!("{at}: remote {r}: {why}")));
                    }
                    same_family(&format!("{at}: remote {r}"), r, &u.address)?;
                }
                (None, Some(port)) => {
                    let p = self
                        .ports
                        .iter()
                        .find(|p| &p.interface == port)
                        .ok_or_else(|| bad(format!("{at}: port {port:?} is not a configured port")))?;
                    if !self.port_networks(p)?.iter().any(|(net, _)| **net == f.network) {
                        return Err(bad(format!("{at}: port {port:?} is not in network {:?}", f.network)));
                    }
                }
                _ => return Err(bad(format!("{at}: give exactly one of remote or port"))),
            }
            if !keys.insert((f.network.clone(), mac)) {
                return Err(bad(format!("{at}: duplicate entry in network {:?}", f.network)));
            }
        }
        if let Some(c) = &self.control {
            c.validate()?;
        }
        self.validate_neighbours()
    }

    /// The tenant MTU a port gets by default under an underlay MTU of
    /// `underlay_mtu`: room for the largest encapsulation among its
    /// networks (VXLAN's when none is known).
    pub fn default_port_mtu(&self, p: &Port, underlay_mtu: u32) -> u32 {
        let nets = self.port_networks(p).unwrap_or_default();
        self.tenant_mtu(nets.iter().map(|(n, _)| n.as_str()), underlay_mtu)
    }

    /// The tenant MTU default for frames of networks `nets` under an
    /// underlay MTU of `underlay_mtu`: room for the largest encapsulation
    /// among them (VXLAN's when none is tunnelled or known).
    pub fn tenant_mtu<'a>(&self, nets: impl IntoIterator<Item = &'a str>, underlay_mtu: u32) -> u32 {
        let over = nets
            .into_iter()
            .filter_map(|n| self.network(n))
            .map(Network::overhead)
            .max()
            .filter(|o| *o > 0)
            .unwrap_or(overlay_common::VXLAN_OVERHEAD);
        underlay_mtu.saturating_sub(over + self.underlay_extra())
    }

    /// Bytes an IPv6 outer header adds over an IPv4 one (the overheads
    /// are named for IPv4).
    pub fn underlay_extra(&self) -> u32 {
        if self.underlay.address.is_ipv6() {
            overlay_common::VXLAN6_OVERHEAD - overlay_common::VXLAN_OVERHEAD
        } else {
            0
        }
    }

    /// The networks of a port, each with whether it is carried tagged.
    pub fn port_networks<'a>(&self, p: &'a Port) -> Result<Vec<(&'a String, bool)>> {
        match (&p.network, &p.trunk) {
            (Some(n), None) => {
                if p.native.is_some() {
                    return Err(bad("native is only for trunk ports"));
                }
                Ok(vec![(n, false)])
            }
            (None, Some(t)) => {
                let mut v: Vec<(&String, bool)> = t.iter().map(|n| (n, true)).collect();
                if let Some(native) = &p.native {
                    if t.contains(native) {
                        return Err(bad(format!("native network {native:?} is also in trunk")));
                    }
                    v.push((native, false));
                }
                let mut s = BTreeSet::new();
                if let Some((dup, _)) = v.iter().find(|(n, _)| !s.insert(*n)) {
                    return Err(bad(format!("network {dup:?} listed twice")));
                }
                if v.is_empty() {
                    return Err(bad("trunk lists no network"));
                }
                Ok(v)
            }
            _ => Err(bad("give exactly one of network (access) or trunk")),
        }
    }
}

mod control;
mod neigh;
#[cfg(test)]
mod tests;

/// Why `ip` cannot be a VTEP address (the datapath's rule,
/// `is_unicast_vtep`), if it cannot.
pub fn vtep_address_problem(ip: &IpAddr) -> Option<&'static str> {
    if is_v4_mapped(ip) {
        return Some("an IPv4-mapped IPv6 address: write it as IPv4");
    }
    if overlay_common::is_unicast_vtep(&overlay_common::vtep::vtep_from_ip(*ip)) {
        return None;
    }
    Some(match ip {
        IpAddr::V4(_) => "not a unicast address",
        IpAddr::V6(_) => {
            "not a unicast address a VTEP can have (unspecified, loopback, multicast, link-local \
             and ::/96 cannot be)"
        }
    })
}

/// An instance's underlay is one family: `ip` must be of `underlay`'s.
fn same_family(what: &str, ip: &IpAddr, underlay: &IpAddr) -> Result<()> {
    if ip.is_ipv6() == underlay.is_ipv6() {
        return Ok(());
    }
    let fam = |a: &IpAddr| if a.is_ipv6() { "IPv6" } else { "IPv4" };
    Err(bad(format!(
        "{what} is {} but underlay.address {underlay} is {} (an instance's underlay is one family)",
        fam(ip),
        fam(underlay)
    )))
}
