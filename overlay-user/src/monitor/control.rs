//! Control-plane installs for `overlayctl monitor --learn`: what the agent
//! installed from etcd (other hosts' VTEPs and MACs) lives in the state
//! file (`State.remote`); the monitor compares it with what it saw last,
//! when the file changed, and reports each difference as an event.

use std::net::IpAddr;

use crate::{instance, remote::Remote, statefile};

use super::decode::Event;

pub struct Watch {
    /// Which write of the state file `last` came from (none: not up).
    version: Option<statefile::Version>,
    last: Remote,
}

impl Watch {
    /// Starts from the state file as it is.
    pub fn new(name: &str) -> Watch {
        match instance::load_state_version(name).ok().flatten() {
            Some((s, v)) => Watch { version: Some(v), last: s.remote },
            None => Watch { version: None, last: Remote::default() },
        }
    }

    /// The differences since the last call (nothing when the state file is
    /// unchanged); only network `network`'s when given.
    pub fn poll(&mut self, name: &str, network: Option<&str>) -> Vec<Event> {
        if self.version.as_ref().is_some_and(statefile::Version::is_current) {
            return Vec::new();
        }
        let Ok(Some((state, v))) = instance::load_state_version(name) else { return Vec::new() };
        self.version = Some(v);
        let vni = |n: &str| state.config.network(n).and_then(|x| x.vni);
        let mut out = diff(&self.last, &state.remote, &vni);
        out.retain(|e| network.is_none_or(|n| e.network.as_deref() == Some(n)));
        self.last = state.remote;
        out
    }
}

/// Events for what `new` has and `old` has not (`vtep_added`,
/// `installed`) and the reverse (`vtep_removed`, `withdrawn`). A MAC that
/// moved to another VTEP is installed again.
pub fn diff(old: &Remote, new: &Remote, vni: &dyn Fn(&str) -> Option<u32>) -> Vec<Event> {
    let mut out = Vec::new();
    let ev = |kind: &'static str, net: &str, vtep: std::net::IpAddr| Event {
        kind,
        network: Some(net.into()),
        vni: vni(net),
        location: Some(format!("remote:{vtep}")),
        ..Default::default()
    };
    let nets = old.vteps.keys().chain(new.vteps.keys()).chain(old.macs.keys()).chain(new.macs.keys());
    let mut nets: Vec<&String> = nets.collect();
    nets.sort();
    nets.dedup();
    let empty_v = Default::default();
    let empty_m = Default::default();
    for net in nets {
        let (ov, nv) = (old.vteps.get(net).unwrap_or(&empty_v), new.vteps.get(net).unwrap_or(&empty_v));
        out.extend(nv.difference(ov).map(|v| ev("vtep_added", net, *v)));
        let (om, nm) = (old.macs.get(net).unwrap_or(&empty_m), new.macs.get(net).unwrap_or(&empty_m));
        for (mac, m) in nm {
            if om.get(mac) != Some(m) {
                let ips: Vec<IpAddr> = m.ips.clone();
                out.push(Event {
                    mac: Some(*mac),
                    ips: (!ips.is_empty()).then_some(ips),
                    ..ev("installed", net, m.vtep)
                });
            }
        }
        for (mac, m) in om {
            if !nm.contains_key(mac) {
                out.push(Event { mac: Some(*mac), ..ev("withdrawn", net, m.vtep) });
            }
        }
        out.extend(ov.difference(nv).map(|v| ev("vtep_removed", net, *v)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::RemoteMac;

    #[test]
    fn differences_become_events_in_a_stable_order() {
        let v = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        let mac = |s: &str| s.parse::<crate::mac::MacAddr>().unwrap();
        let mut old = Remote::default();
        old.vteps.entry("blue".into()).or_default().insert(v("192.0.2.2"));
        old.macs
            .entry("blue".into())
            .or_default()
            .insert(mac("02:00:00:00:00:02"), RemoteMac { vtep: v("192.0.2.2"), ips: vec![] });
        let mut new = Remote::default();
        new.vteps.entry("blue".into()).or_default().insert(v("192.0.2.3"));
        new.macs.entry("blue".into()).or_default().insert(
            mac("02:00:00:00:00:03"),
            RemoteMac { vtep: v("192.0.2.3"), ips: vec!["203.0.113.3".parse().unwrap()] },
        );
        let got: Vec<(&str, String, Option<String>)> = diff(&old, &new, &|_| Some(100))
            .iter()
            .map(|e| (e.kind, e.location.clone().unwrap(), e.mac.map(|m| m.to_string())))
            .collect();
        assert_eq!(
            got,
            [
                ("vtep_added", "remote:192.0.2.3".into(), None),
                ("installed", "remote:192.0.2.3".into(), Some("02:00:00:00:00:03".into())),
                ("withdrawn", "remote:192.0.2.2".into(), Some("02:00:00:00:00:02".into())),
                ("vtep_removed", "remote:192.0.2.2".into(), None),
            ]
        );
        assert!(diff(&new, &new, &|_| None).is_empty());
    }
}
