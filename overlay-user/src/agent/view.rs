//! The agent's copy of the keys under the prefix, checked against this
//! host, and the [`Remote`] it yields.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
};

use super::keys::{self, Entry, Refused};
use crate::{
    config::{Config, Encap},
    mac::MacAddr,
    remote::{Remote, RemoteMac},
};

/// MACs local to this host, per network name, with their addresses.
pub type Local = BTreeMap<String, BTreeMap<MacAddr, Vec<IpAddr>>>;

pub struct View {
    pub prefix: String,
    /// This host's VTEP address, UDP port and name.
    pub me: IpAddr,
    pub port: u16,
    pub host: String,
    /// VNI -> network name and encapsulation, for this host's tunnelled
    /// networks ([`View::vnis_of`]).
    pub vnis: BTreeMap<u32, (String, Encap)>,
    accepted: BTreeMap<String, Entry>,
    /// Refused keys and the revision of the value refused.
    refused: BTreeMap<String, (i64, Refused)>,
    /// Refusals so far, per reason (a value is counted once).
    pub refusals: BTreeMap<&'static str, u64>,
}

impl View {
    /// The tunnelled networks of `c`, by VNI.
    pub fn vnis_of(c: &Config) -> BTreeMap<u32, (String, Encap)> {
        c.networks.iter().filter_map(|n| n.vni.map(|v| (v, (n.name.clone(), n.encap)))).collect()
    }

    pub fn new(
        prefix: &str,
        me: IpAddr,
        port: u16,
        host: &str,
        vnis: BTreeMap<u32, (String, Encap)>,
    ) -> View {
        View {
            prefix: prefix.into(),
            me,
            port,
            host: host.into(),
            vnis,
            accepted: BTreeMap::new(),
            refused: BTreeMap::new(),
            refusals: BTreeMap::new(),
        }
    }

    /// Forgets every key (before a full list).
    pub fn clear(&mut self) {
        self.accepted.clear();
    }

    /// Takes `key` = `value` (written at revision `rev`), if it holds
    /// together for this host; a refused value replaces what the key held.
    pub fn put(&mut self, key: &[u8], value: &[u8], rev: i64, local: &Local) {
        let name = String::from_utf8_lossy(key).into_owned();
        match keys::parse(&self.prefix, key, value).and_then(|e| self.check(e, local)) {
            Ok(e) => {
                self.refused.remove(&name);
                self.accepted.insert(name, e);
            }
            Err(why) => {
                self.accepted.remove(&name);
                let seen = self.refused.get(&name).is_some_and(|(r, w)| *r == rev && *w == why);
                if !seen {
                    *self.refusals.entry(why.label()).or_default() += 1;
                    if !self.refused.contains_key(&name) {
                        log::warn!("control plane: ignoring {name:?} ({})", why.label());
                    }
                    self.refused.insert(name, (rev, why));
                }
            }
        }
    }

    pub fn delete(&mut self, key: &[u8]) {
        let name = String::from_utf8_lossy(key).into_owned();
        self.accepted.remove(&name);
        self.refused.remove(&name);
    }

    /// Checks that need this host: its VNIs, address, port and local MACs.
    fn check(&self, e: Entry, local: &Local) -> Result<Entry, Refused> {
        let vni = match &e {
            Entry::Vtep { vni, .. } | Entry::Mac { vni, .. } => *vni,
        };
        let Some((net, encap)) = self.vnis.get(&vni) else { return Err(Refused::UnknownVni) };
        match &e {
            Entry::Vtep { value, .. } => {
                if value.address.is_ipv6() != self.me.is_ipv6() {
                    return Err(Refused::FamilyMismatch);
                }
                if value.address == self.me && value.host != self.host {
                    return Err(Refused::OwnAddress);
                }
                if value.encap != *encap {
                    return Err(Refused::EncapMismatch);
                }
                if value.port != encap.udp_port(self.port) {
                    return Err(Refused::PortMismatch);
                }
            }
            Entry::Mac { mac, value, .. } => {
                if value.vtep.is_ipv6() != self.me.is_ipv6() {
                    return Err(Refused::FamilyMismatch);
                }
                let is_local = local.get(net).is_some_and(|m| m.contains_key(mac));
                if value.vtep == self.me && !is_local {
                    return Err(Refused::OwnAddress);
                }
                if value.vtep != self.me && is_local {
                    return Err(Refused::LocalMac);
                }
            }
        }
        Ok(e)
    }

    /// What to install: other hosts' VTEPs per network, and their MACs
    /// (those behind a registered VTEP and not local here).
    pub fn remote(&self, local: &Local) -> Remote {
        let mut r = Remote::default();
        for e in self.accepted.values() {
            if let Entry::Vtep { vni, value } = e
                && value.address != self.me
            {
                r.vteps.entry(self.vnis[vni].0.clone()).or_default().insert(value.address);
            }
        }
        let none = BTreeSet::new();
        for e in self.accepted.values() {
            if let Entry::Mac { vni, mac, value } = e {
                let net = &self.vnis[vni].0;
                let registered = r.vteps.get(net).unwrap_or(&none).contains(&value.vtep);
                let is_local = local.get(net).is_some_and(|m| m.contains_key(mac));
                if value.vtep != self.me && registered && !is_local {
                    let m = RemoteMac { vtep: value.vtep, ips: value.ips.clone() };
                    r.macs.entry(net.clone()).or_default().insert(*mac, m);
                }
            }
        }
        r
    }

    /// Keys under the prefix that are this host's (to find stale ones).
    pub fn own_keys(&self) -> impl Iterator<Item = &String> {
        self.accepted.iter().filter_map(|(k, e)| {
            let mine = match e {
                Entry::Vtep { value, .. } => value.address == self.me,
                Entry::Mac { value, .. } => value.vtep == self.me,
            };
            mine.then_some(k)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view() -> View {
        let vnis = [(100, ("blue".to_string(), Encap::Vxlan)), (7, ("green".to_string(), Encap::Gre))];
        View::new("/o", "192.0.2.1".parse().unwrap(), 4789, "h1", vnis.into())
    }

    fn vtep(addr: &str, host: &str) -> (String, String) {
        (
            format!("/o/v1/vni/100/vtep/{addr}"),
            format!(r#"{{"host":"{host}","address":"{addr}","port":4789}}"#),
        )
    }

    fn mac(m: &str, vtep: &str) -> (String, String) {
        (format!("/o/v1/vni/100/mac/{m}"), format!(r#"{{"vtep":"{vtep}","ips":["203.0.113.9"]}}"#))
    }

    #[test]
    fn remote_holds_other_hosts_and_their_macs_only() {
        let mut v = view();
        let mut local = Local::new();
        local.entry("blue".into()).or_default().insert("02:00:00:00:00:01".parse().unwrap(), vec![]);
        for (k, val) in [
            vtep("192.0.2.2", "h2"),
            vtep("192.0.2.1", "h1"),
            mac("02:00:00:00:00:02", "192.0.2.2"),
            mac("02:00:00:00:00:01", "192.0.2.1"),
            mac("02:00:00:00:00:03", "192.0.2.3"), // VTEP not registered (yet)
        ] {
            v.put(k.as_bytes(), val.as_bytes(), 5, &local);
        }
        let r = v.remote(&local);
        assert_eq!(r.vteps["blue"], ["192.0.2.2".parse().unwrap()].into());
        assert_eq!(r.macs["blue"].len(), 1, "{r:?}");
        assert!(v.refusals.is_empty(), "{:?}", v.refusals);
        assert_eq!(v.own_keys().count(), 2);
        // The VTEP leaves: its MACs are no longer installed.
        v.delete(vtep("192.0.2.2", "h2").0.as_bytes());
        assert!(v.remote(&local).is_empty());
    }

    #[test]
    fn bad_data_is_counted_once_and_never_installed() {
        let mut v = view();
        let mut local = Local::new();
        local.entry("blue".into()).or_default().insert("02:00:00:00:00:01".parse().unwrap(), vec![]);
        let puts = [
            ("/o/v1/vni/100/vtep/192.0.2.2".to_string(), "not json".to_string()),
            vtep("192.0.2.1", "impostor"),
            (
                "/o/v1/vni/100/vtep/192.0.2.4".into(),
                r#"{"host":"h4","address":"192.0.2.5","port":4789}"#.into(),
            ),
            (
                "/o/v1/vni/200/vtep/192.0.2.6".into(),
                r#"{"host":"h6","address":"192.0.2.6","port":4789}"#.into(),
            ),
            mac("02:00:00:00:00:01", "192.0.2.2"),
            mac("02:00:00:00:00:07", "192.0.2.1"),
            // green is GRE here: a VXLAN or GENEVE VTEP of VNI 7 cannot join it.
            (
                "/o/v1/vni/7/vtep/192.0.2.8".into(),
                r#"{"host":"h8","address":"192.0.2.8","port":4789}"#.into(),
            ),
            (
                "/o/v1/vni/7/vtep/192.0.2.9".into(),
                r#"{"host":"h9","address":"192.0.2.9","port":6081,"encap":"geneve"}"#.into(),
            ),
            // blue is VXLAN on 4789 here.
            (
                "/o/v1/vni/100/vtep/192.0.2.10".into(),
                r#"{"host":"h10","address":"192.0.2.10","port":4790}"#.into(),
            ),
            // This host's underlay is IPv4.
            (
                "/o/v1/vni/100/vtep/2001:db8::11".into(),
                r#"{"host":"h11","address":"2001:db8::11","port":4789}"#.into(),
            ),
            mac("02:00:00:00:00:12", "2001:db8::11"),
        ];
        for _ in 0..2 {
            for (k, val) in &puts {
                v.put(k.as_bytes(), val.as_bytes(), 7, &local);
            }
        }
        let want: BTreeMap<&str, u64> = [
            ("bad_value", 1),
            ("own_address", 2),
            ("address_mismatch", 1),
            ("unknown_vni", 1),
            ("local_mac", 1),
            ("encap_mismatch", 2),
            ("port_mismatch", 1),
            ("family_mismatch", 2),
        ]
        .into();
        assert_eq!(v.refusals, want, "each value counted once");
        assert!(v.remote(&local).is_empty());
        // A new value of a refused key is counted again; a good one replaces it.
        v.put(puts[0].0.as_bytes(), b"still not json", 8, &local);
        assert_eq!(v.refusals["bad_value"], 2);
        let good = vtep("192.0.2.2", "h2");
        v.put(good.0.as_bytes(), good.1.as_bytes(), 9, &local);
        assert_eq!(v.remote(&local).counts(), (1, 0));
    }
}
