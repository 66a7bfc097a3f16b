//! Run-time changes of a running instance (`overlayctl peer|fdb|port
//! add|del`): the rules for what may change, checked before anything does.
//! Each change is kept beside the config file's contents (see `runtime`)
//! and applied like `up`.

use std::net::IpAddr;

use crate::{
    config::{MacAddr, Port, StaticFdb, StaticNeigh},
    error::{Error, Result},
    instance::{self, change_runtime},
    netlink,
};

/// Why a run-time change is refused.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("unknown network {0:?}")]
    UnknownNetwork(String),
    #[error("peer {peer} is already in {network}")]
    PeerPresent { peer: IpAddr, network: String },
    #[error("peer {peer} is not in {network}")]
    PeerAbsent { peer: IpAddr, network: String },
    #[error("{what} comes from the config file: change it there and run up")]
    InConfigFile { what: String },
    #[error("no entry for {mac} in {network}")]
    NoEntry { mac: MacAddr, network: String },
    #[error("no neighbour entry for {ip} in {network}")]
    NoNeighbour { ip: IpAddr, network: String },
    #[error("{0} is already a port")]
    PortPresent(String),
    #[error("{0} is not a port")]
    PortAbsent(String),
    #[error("interface {0} already exists; --netns and --tap create a new one")]
    InterfaceExists(String),
}

fn refuse(r: Refusal) -> Error {
    Error::Refused(r)
}

/// `peer add|del IP --network N`.
pub fn peer(name: &str, network: &str, peer: IpAddr, add: bool) -> Result<()> {
    change_runtime(name, |s, rt| {
        let n = s.config.network(network).ok_or_else(|| refuse(Refusal::UnknownNetwork(network.into())))?;
        let in_file = s.file.network(network).is_some_and(|f| f.peers.contains(&peer));
        let network = network.to_string();
        match (add, n.peers.contains(&peer)) {
            (true, true) => return Err(refuse(Refusal::PeerPresent { peer, network })),
            (true, false) => rt.peers.push((network, peer)),
            (false, false) => return Err(refuse(Refusal::PeerAbsent { peer, network })),
            (false, true) if in_file => {
                return Err(refuse(Refusal::InConfigFile { what: format!("peer {peer} of {network}") }));
            }
            (false, true) => rt.peers.retain(|(n, p)| !(*n == network && *p == peer)),
        }
        Ok(())
    })
}

/// `fdb add MAC --network N (--remote IP | --port IF)`: a static entry
/// (replacing a run-time one for the same MAC).
pub fn fdb_add(name: &str, entry: StaticFdb) -> Result<()> {
    change_runtime(name, |s, rt| {
        let same = |f: &StaticFdb| f.network == entry.network && f.mac == entry.mac;
        if s.file.fdb.iter().any(same) {
            let what = format!("the static entry {} in {}", entry.mac, entry.network);
            return Err(refuse(Refusal::InConfigFile { what }));
        }
        rt.fdb.retain(|f| !same(f));
        rt.fdb.push(entry.clone());
        Ok(())
    })
}

/// `fdb del MAC --network N`: a run-time static entry, or a learned one.
pub fn fdb_del(name: &str, network: &str, mac: MacAddr) -> Result<()> {
    let s = instance::require_state(name)?;
    let same = |f: &StaticFdb| f.network == network && f.mac == mac;
    if s.file.fdb.iter().any(same) {
        return Err(refuse(Refusal::InConfigFile { what: format!("the static entry {mac} in {network}") }));
    }
    if s.runtime.fdb.iter().any(same) {
        return change_runtime(name, |_, rt| {
            rt.fdb.retain(|f| !same(f));
            Ok(())
        });
    }
    let (s, mut maps) = instance::open_maps(name)?;
    let id = *s.net_ids.get(network).ok_or_else(|| refuse(Refusal::UnknownNetwork(network.into())))?;
    let key = overlay_common::maps::FdbKey::new(id, mac.0);
    maps.fdb.remove(&key).map_err(|_| refuse(Refusal::NoEntry { mac, network: network.into() }))?;
    crate::apply::recount_learned(&mut maps)
}

/// `neigh add IP MAC --network N`: a configured pair (replacing a run-time
/// one for the same address, and any learned one).
pub fn neigh_add(name: &str, pair: StaticNeigh) -> Result<()> {
    change_runtime(name, |s, rt| {
        let same = |p: &StaticNeigh| p.network == pair.network && p.ip == pair.ip;
        if s.file.neighbours().iter().any(same) {
            let what = format!("the neighbour entry {} in {}", pair.ip, pair.network);
            return Err(refuse(Refusal::InConfigFile { what }));
        }
        rt.neigh.retain(|p| !same(p));
        rt.neigh.push(pair.clone());
        Ok(())
    })
}

/// `neigh del IP --network N`: a run-time pair, or a learned one.
pub fn neigh_del(name: &str, network: &str, ip: IpAddr) -> Result<()> {
    let s = instance::require_state(name)?;
    let same = |p: &StaticNeigh| p.network == network && p.ip == ip;
    if s.file.neighbours().iter().any(same) {
        return Err(refuse(Refusal::InConfigFile { what: format!("the neighbour entry {ip} in {network}") }));
    }
    if s.runtime.neigh.iter().any(same) {
        return change_runtime(name, |_, rt| {
            rt.neigh.retain(|p| !same(p));
            Ok(())
        });
    }
    let (s, mut maps) = instance::open_maps(name)?;
    let id = *s.net_ids.get(network).ok_or_else(|| refuse(Refusal::UnknownNetwork(network.into())))?;
    maps.neigh
        .remove(&crate::neigh::key(id, ip))
        .map_err(|_| refuse(Refusal::NoNeighbour { ip, network: network.into() }))
}

/// An interface `port add` makes for the port.
#[derive(Clone, Debug)]
pub enum Create {
    /// A veth pair whose far end goes into network namespace `netns` as `name`.
    Veth { netns: String, name: String },
    /// A persistent tap for a VM, owned by a uid when given.
    Tap { owner: Option<u32> },
}

/// `port add IF ... [--netns NS [--peer-name P] | --tap [--owner UID]]`:
/// checked against the config first; with `create`, the interface is made
/// and, if applying fails, deleted again (nothing half-made).
pub fn port_add(name: &str, port: Port, create: Option<Create>) -> Result<()> {
    let s = instance::require_state(name)?;
    let iface = port.interface.clone();
    if s.config.ports.iter().any(|p| p.interface == iface) {
        return Err(refuse(Refusal::PortPresent(iface)));
    }
    let mut cfg = s.config.clone();
    cfg.ports.push(port.clone());
    cfg.validate()?;
    if create.is_some() && netlink::link_exists(&iface) {
        return Err(refuse(Refusal::InterfaceExists(iface)));
    }
    match &create {
        Some(Create::Veth { netns, name: far }) => {
            let underlay = netlink::link_info(&s.config.underlay.interface)?;
            let mtu = port.mtu.unwrap_or(cfg.default_port_mtu(&port, underlay.mtu));
            netlink::create_veth_into_netns(&iface, far, netns, Some(mtu))?;
        }
        Some(Create::Tap { owner }) => {
            crate::tap::create(&iface, *owner)?;
            let l = netlink::link_info(&iface)?;
            netlink::set_up(l.index)?;
        }
        None => {}
    }
    let remove_made = || {
        if create.is_some()
            && let Ok(l) = netlink::link_info(&iface)
        {
            let _ = netlink::delete_link(l.index);
        }
    };
    let added = change_runtime(name, |_, rt| {
        rt.ports.push(port.clone());
        Ok(())
    });
    if let Err(e) = added {
        remove_made();
        return Err(e);
    }
    let made_where = match &create {
        Some(Create::Veth { netns, .. }) => netns.as_str(),
        Some(Create::Tap { .. }) => "tap",
        None => return Ok(()),
    };
    instance::record_created(name, &iface, made_where)
}

/// `port del IF`: a run-time port, with its static entries; a veth that
/// `port add --netns|--tap` made goes with it.
pub fn port_del(name: &str, iface: &str) -> Result<()> {
    let s = instance::require_state(name)?;
    if s.file.ports.iter().any(|p| p.interface == iface) {
        return Err(refuse(Refusal::InConfigFile { what: format!("port {iface}") }));
    }
    if !s.runtime.ports.iter().any(|p| p.interface == iface) {
        return Err(refuse(Refusal::PortAbsent(iface.into())));
    }
    change_runtime(name, |_, rt| -> Result<()> {
        rt.ports.retain(|p| p.interface != iface);
        rt.fdb.retain(|f| f.port.as_deref() != Some(iface));
        Ok(())
    })?;
    if s.created.contains_key(iface)
        && let Ok(l) = netlink::link_info(iface)
    {
        netlink::delete_link(l.index)?;
    }
    Ok(())
}
