//! Run-time changes (`overlayctl port|peer|fdb add`) kept beside the
//! config file's contents, so that re-running `up -c FILE` keeps them, as
//! `ovs-vsctl add-port` survives in OVS.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::config::{Config, Port, StaticFdb, StaticNeigh};

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
pub struct Runtime {
    #[serde(default)]
    pub ports: Vec<Port>,
    /// (network, peer VTEP)
    #[serde(default)]
    pub peers: Vec<(String, IpAddr)>,
    #[serde(default)]
    pub fdb: Vec<StaticFdb>,
    #[serde(default)]
    pub neigh: Vec<StaticNeigh>,
}

impl Runtime {
    /// The file's configuration plus these changes. Changes that no longer
    /// fit the file (their network is gone, or the file now has the same
    /// item) are left out and returned as warnings.
    pub fn merge(&self, file: &Config) -> (Config, Runtime, Vec<String>) {
        let mut cfg = file.clone();
        let mut kept = Runtime::default();
        let mut warnings = Vec::new();
        for p in &self.ports {
            if cfg.ports.iter().any(|q| q.interface == p.interface) {
                warnings.push(format!(
                    "port {}: now in the config file; the file's definition applies",
                    p.interface
                ));
                continue;
            }
            match admit(&mut cfg, |c| c.ports.push(p.clone())) {
                Ok(()) => kept.ports.push(p.clone()),
                Err(e) => warnings.push(format!("port {} added at run time dropped: {e}", p.interface)),
            }
        }
        for (net, ip) in &self.peers {
            let Some(n) = cfg.networks.iter_mut().find(|n| &n.name == net) else {
                warnings.push(format!("peer {ip} dropped: network {net:?} is gone"));
                continue;
            };
            if !n.peers.contains(ip) && n.vni.is_some() {
                n.peers.push(*ip);
                kept.peers.push((net.clone(), *ip));
            }
        }
        let fdb_same = |a: &StaticFdb, b: &StaticFdb| a.network == b.network && a.mac == b.mac;
        let out = (&mut kept.fdb, &mut warnings);
        merge_entries(&mut cfg, &self.fdb, |c| &mut c.fdb, fdb_same, |f| format!("fdb {}", f.mac), out);
        let neigh_same = |a: &StaticNeigh, b: &StaticNeigh| a.network == b.network && a.ip == b.ip;
        let out = (&mut kept.neigh, &mut warnings);
        merge_entries(
            &mut cfg,
            &self.neigh,
            |c| &mut c.neigh,
            neigh_same,
            |p| format!("neigh {}", p.ip),
            out,
        );
        (cfg, kept, warnings)
    }
}

/// Adds run-time entries of one kind to `cfg`: those the file has already
/// are left out quietly, those that no longer validate with a warning; the
/// ones added go to `out.0`.
fn merge_entries<T: Clone>(
    cfg: &mut Config,
    entries: &[T],
    list: fn(&mut Config) -> &mut Vec<T>,
    same: fn(&T, &T) -> bool,
    name: fn(&T) -> String,
    out: (&mut Vec<T>, &mut Vec<String>),
) {
    for e in entries {
        if list(cfg).iter().any(|o| same(o, e)) {
            continue;
        }
        match admit(cfg, |c| list(c).push(e.clone())) {
            Ok(()) => out.0.push(e.clone()),
            Err(err) => out.1.push(format!("{} added at run time dropped: {err}", name(e))),
        }
    }
}

/// Applies `add` to `cfg` if the result validates; otherwise leaves `cfg`
/// as it was and returns why.
fn admit(cfg: &mut Config, add: impl FnOnce(&mut Config)) -> crate::error::Result<()> {
    let mut trial = cfg.clone();
    add(&mut trial);
    trial.validate()?;
    *cfg = trial;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(extra: &str) -> Config {
        Config::parse(&format!(
            "name = \"t\"\n[underlay]\ninterface = \"u\"\naddress = \"192.0.2.1\"\n\
             [[network]]\nname = \"blue\"\nvni = 1\n{extra}"
        ))
        .unwrap()
    }

    fn port(name: &str, net: &str) -> Port {
        Port {
            interface: name.into(),
            network: Some(net.into()),
            trunk: None,
            native: None,
            priority_tagged: false,
            mtu: None,
            xdp_target: false,
        }
    }

    #[test]
    fn runtime_changes_survive_and_stale_ones_are_dropped() {
        let rt = Runtime {
            ports: vec![port("vm9", "blue"), port("vm8", "gone")],
            peers: vec![
                ("blue".into(), "192.0.2.9".parse().unwrap()),
                ("gone".into(), "192.0.2.8".parse().unwrap()),
            ],
            fdb: vec![],
            neigh: vec![],
        };
        let (cfg, kept, warnings) = rt.merge(&file(""));
        assert!(cfg.ports.iter().any(|p| p.interface == "vm9"));
        assert_eq!(kept.ports.len(), 1);
        assert_eq!(cfg.network("blue").unwrap().peers, vec!["192.0.2.9".parse::<IpAddr>().unwrap()]);
        assert_eq!(warnings.len(), 2, "{warnings:?}");
    }

    #[test]
    fn the_file_wins_over_a_runtime_port_of_the_same_name() {
        let rt = Runtime { ports: vec![port("vm9", "blue")], ..Default::default() };
        let (cfg, kept, warnings) = rt.merge(&file("[[port]]\ninterface = \"vm9\"\nnetwork = \"blue\"\n"));
        assert_eq!(cfg.ports.len(), 1);
        assert!(kept.ports.is_empty());
        assert_eq!(warnings.len(), 1);
    }
}
