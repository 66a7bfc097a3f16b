//! Typed host configs for the tests: `overlay_user::config` values, written
//! as TOML by [`Config::to_toml`] (the serde types `overlayctl up` reads),
//! so a test cannot build a config the CLI would read differently. Text
//! is left to the tests that feed overlayctl bad input on purpose.

use std::net::IpAddr;

pub use overlay_user::config::{
    Config, Encap, MacAddr, Network, Port, RpFilter, StaticFdb, StaticNeigh, XdpMode,
};

/// A host on a [`crate::lab::Underlay`]: underlay `u0` with `address`,
/// every other setting at its default, no networks or ports. The instance
/// name is filled in by [`crate::lab::Host::up`].
pub fn config(address: &str) -> Config {
    Config::parse(&format!("name = \"unset\"\n[underlay]\ninterface = \"u0\"\naddress = \"{address}\"\n"))
        .expect("underlay config")
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

/// A VXLAN network with static flood peers.
pub fn vxlan(name: &str, vni: u32, peers: &[&str]) -> Network {
    Network {
        name: name.into(),
        vni: Some(vni),
        encap: Encap::Vxlan,
        vlan: None,
        peers: peers.iter().map(|p| ip(p)).collect(),
        learn_unknown_peers: false,
        allow_inner_vlan: false,
        max_learned: None,
        suppress: None,
        learn_ip: false,
        flood_unknown: true,
    }
}

/// A GRE or GENEVE (or VXLAN) network with static flood peers.
pub fn tunnel(name: &str, encap: Encap, vni: u32, peers: &[&str]) -> Network {
    Network { encap, ..vxlan(name, vni, peers) }
}

/// A local network identified by its VLAN ID (no VXLAN).
pub fn vlan(name: &str, vid: u16) -> Network {
    Network { vni: None, vlan: Some(vid), ..vxlan(name, 0, &[]) }
}

/// An access port of `network`.
pub fn access(interface: &str, network: &str) -> Port {
    Port {
        interface: interface.into(),
        network: Some(network.into()),
        trunk: None,
        native: None,
        priority_tagged: false,
        mtu: None,
        xdp_target: false,
    }
}

/// A trunk port carrying `networks` tagged.
pub fn trunk(interface: &str, networks: &[&str]) -> Port {
    Port {
        network: None,
        trunk: Some(networks.iter().map(|n| n.to_string()).collect()),
        ..access(interface, "")
    }
}

/// A static FDB entry: `mac` in `network` behind VTEP `remote`.
pub fn fdb_remote(mac: &str, network: &str, remote: &str) -> StaticFdb {
    StaticFdb {
        mac: mac.parse().expect("mac"),
        network: network.into(),
        remote: Some(ip(remote)),
        port: None,
        ip: vec![],
    }
}

/// A static FDB entry: `mac` in `network` on local port `port`.
pub fn fdb_port(mac: &str, network: &str, port: &str) -> StaticFdb {
    StaticFdb {
        mac: mac.parse().expect("mac"),
        network: network.into(),
        remote: None,
        port: Some(port.into()),
        ip: vec![],
    }
}

/// The underlay address of host `i` of an [`crate::lab::Underlay`] on
/// 192.0.2.0/24.
pub fn host_ip(i: usize) -> String {
    format!("192.0.2.{}", i + 1)
}

/// Host `i` of `n` made by [`crate::lab::hosts_with_vms`]: network blue
/// (VNI 100) with every other host as a flood peer, port vm1 in blue.
pub fn blue_host(i: usize, n: usize) -> Config {
    let peers: Vec<String> = (0..n).filter(|&j| j != i).map(host_ip).collect();
    let peers: Vec<&str> = peers.iter().map(String::as_str).collect();
    Config {
        networks: vec![vxlan("blue", 100, &peers)],
        ports: vec![access("vm1", "blue")],
        ..config(&host_ip(i))
    }
}

/// A configured neighbour pair: `ip` in `network` is `mac`'s.
pub fn neigh(network: &str, ip: &str, mac: &str) -> StaticNeigh {
    StaticNeigh {
        network: network.into(),
        ip: ip.parse().unwrap_or_else(|e| panic!("{ip}: {e}")),
        mac: mac.parse().expect("mac"),
    }
}
