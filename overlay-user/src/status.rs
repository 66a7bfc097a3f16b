//! `overlayctl status`: what an instance is, as plain serializable data
//! (the CLI prints it as a table or JSON; the JSON field names are part of
//! the CLI's contract).

use std::{net::IpAddr, path::PathBuf};

use serde::Serialize;

use crate::{bpffs, config::XdpMode, error::Result, instance, loader, netlink};

#[derive(Clone, Debug, Serialize)]
pub struct Status {
    pub instance: String,
    pub underlay: UnderlayStatus,
    pub pins: PathBuf,
    pub interfaces: Vec<InterfaceStatus>,
    pub networks: Vec<NetworkStatus>,
    /// The control plane (`[control]`): what its agent last reported.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub control: Option<crate::agent::status::AgentStatus>,
    /// The datapath's rare events (aya-log), the last [`LOG_LINES`].
    pub log: Vec<crate::dplog::LogLine>,
}

/// Lines of the datapath log `status` shows.
pub const LOG_LINES: usize = 10;

#[derive(Clone, Debug, Serialize)]
pub struct UnderlayStatus {
    pub interface: String,
    pub address: IpAddr,
    pub port: u16,
    pub xdp: XdpMode,
}

#[derive(Clone, Debug, Serialize)]
pub struct InterfaceStatus {
    pub interface: String,
    pub ifindex: u32,
    /// "underlay" or "port".
    pub role: &'static str,
    /// "tc-ingress (tcx)", "tcx + xdp native" or "tcx + xdp generic".
    pub hook: &'static str,
    pub program_id: Option<u32>,
    pub attached: bool,
    /// The interface exists with the ifindex `up` attached to (a deleted
    /// or re-created interface has lost its program until the next `up`).
    pub present: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct NetworkStatus {
    pub name: String,
    pub id: Option<u32>,
    pub vni: Option<u32>,
    /// `vxlan`, `gre` or `geneve` (absent without a vni).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encap: Option<crate::config::Encap>,
    pub vlan: Option<u16>,
    pub peers: Vec<IpAddr>,
    pub ports: Vec<String>,
    pub learned: u64,
    /// 0 = no limit but `fdb_size`.
    pub max_learned: u32,
    /// ARP/ND suppression on (the datapath answers for known addresses).
    pub suppress: bool,
    /// Address/MAC pairs learned from tenants' announcements.
    pub learn_ip: bool,
    /// VTEPs the control plane registered for this network (beside `peers`).
    pub remote_vteps: Vec<IpAddr>,
    /// Unicast to unknown MACs is flooded (else dropped and counted).
    pub flood_unknown: bool,
    /// VTEPs beyond what the flood set holds: not flooded to.
    pub flood_overflow: usize,
}

/// The status of instance `name`, which must be up in this namespace.
pub fn read(name: &str) -> Result<Status> {
    let (s, maps) = instance::open_maps(name)?;
    let learned = crate::apply::learned_per_network(&maps);
    let dir = bpffs::pin_dir(name);
    let cfg = &s.config;
    let interfaces = s
        .attached
        .iter()
        .map(|(iface, idx)| {
            let present = netlink::link_info(iface).map(|l| l.index == *idx).unwrap_or(false);
            let program_id = loader::pinned_prog_id(&dir, iface).filter(|_| present);
            let underlay = *iface == cfg.underlay.interface;
            let xdp = if underlay { loader::xdp_attached(&dir, iface) } else { None };
            InterfaceStatus {
                interface: iface.clone(),
                ifindex: *idx,
                role: if underlay { "underlay" } else { "port" },
                hook: match xdp {
                    Some(loader::XdpAttach::Native) => "tcx + xdp native",
                    Some(loader::XdpAttach::Generic) => "tcx + xdp generic",
                    None => "tc-ingress (tcx)",
                },
                program_id,
                attached: program_id.is_some(),
                present,
            }
        })
        .collect();
    let suppressing = cfg.suppressing();
    let networks = cfg
        .networks
        .iter()
        .map(|n| {
            let id = s.net_ids.get(&n.name).copied();
            NetworkStatus {
                name: n.name.clone(),
                id,
                vni: n.vni,
                encap: n.vni.map(|_| n.encap),
                vlan: n.vlan,
                peers: n.peers.clone(),
                ports: cfg
                    .ports
                    .iter()
                    .filter(|p| cfg.port_networks(p).is_ok_and(|v| v.iter().any(|(x, _)| **x == n.name)))
                    .map(|p| p.interface.clone())
                    .collect(),
                learned: id.and_then(|i| learned.get(&i)).copied().unwrap_or(0),
                suppress: suppressing.contains(n.name.as_str()),
                learn_ip: n.learn_ip,
                max_learned: n.learn_limit(cfg.fdb_size),
                remote_vteps: s
                    .remote
                    .vteps
                    .get(&n.name)
                    .map(|v| v.iter().copied().collect())
                    .unwrap_or_default(),
                flood_unknown: n.flood_unknown,
                flood_overflow: s.flood_overflow.get(&n.name).copied().unwrap_or(0),
            }
        })
        .collect();
    Ok(Status {
        instance: name.into(),
        underlay: UnderlayStatus {
            interface: cfg.underlay.interface.clone(),
            address: cfg.underlay.address,
            port: cfg.underlay.port,
            xdp: cfg.underlay.xdp,
        },
        pins: dir,
        interfaces,
        networks,
        control: cfg.control.as_ref().map(|c| {
            crate::agent::status::read(name).unwrap_or_else(|| crate::agent::status::AgentStatus {
                endpoints: c.etcd.clone(),
                ..Default::default()
            })
        }),
        log: crate::dplog::tail(name, LOG_LINES)?,
    })
}
