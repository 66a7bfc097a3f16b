//! The keys the agents share in etcd, and what is accepted from them.
//!
//! ```text
//! PREFIX/v1/vni/VNI/vtep/ADDRESS -> {"host": "...", "address": "ADDRESS", "port": 4789}
//!                                   (+ "encap": "gre" | "geneve" for those networks;
//!                                   "port" is then 0 for GRE, 6081 for GENEVE)
//! PREFIX/v1/vni/VNI/mac/MAC      -> {"vtep": "ADDRESS", "ips": ["203.0.113.1", ...]}
//! ```
//!
//! Every key a host writes hangs on its lease. Anything else under
//! `PREFIX/v1/`, and values that do not hold together, are refused with a
//! reason (counted and logged once by the agent, never installed).

use std::net::IpAddr;

use overlay_common::vtep::vtep_from_ip;

use serde::{Deserialize, Serialize};

use crate::{
    config::{Encap, is_host_address, is_v4_mapped},
    mac::MacAddr,
};

/// Value of a VTEP key.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct VtepValue {
    pub host: String,
    pub address: IpAddr,
    /// The UDP port frames go to (GRE: 0).
    pub port: u16,
    /// The network's encapsulation on that host (absent: VXLAN).
    #[serde(default, skip_serializing_if = "Encap::is_vxlan")]
    pub encap: Encap,
}

/// Value of a MAC key.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MacValue {
    pub vtep: IpAddr,
    #[serde(default)]
    pub ips: Vec<IpAddr>,
}

pub fn root(prefix: &str) -> String {
    format!("{prefix}/v1/")
}

pub fn vtep_key(prefix: &str, vni: u32, addr: IpAddr) -> String {
    format!("{prefix}/v1/vni/{vni}/vtep/{addr}")
}

pub fn mac_key(prefix: &str, vni: u32, mac: MacAddr) -> String {
    format!("{prefix}/v1/vni/{vni}/mac/{mac}")
}

/// A key and value that passed the checks that need no local knowledge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    Vtep { vni: u32, value: VtepValue },
    Mac { vni: u32, mac: MacAddr, value: MacValue },
}

/// Why a key under the prefix was not accepted (the label counted in
/// `status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Refused {
    /// Not a key of this layout (or not UTF-8).
    BadKey,
    /// The value is not the JSON this key holds.
    BadValue,
    /// A VTEP key whose value names another address than the key.
    AddressMismatch,
    /// A VTEP on another UDP port than ours: our frames would not reach it.
    PortMismatch,
    /// A VTEP whose network of this VNI uses another encapsulation than
    /// ours (GRE, GENEVE, VXLAN): it would drop what we send.
    EncapMismatch,
    /// Another host claims this host's VTEP address, or a MAC key that
    /// names it as VTEP without this host having published it.
    OwnAddress,
    /// A VNI no network of this host has.
    UnknownVni,
    /// A remote MAC that is local here.
    LocalMac,
    /// A VTEP address of the other family than this host's underlay (an
    /// instance's underlay is IPv4 or IPv6).
    FamilyMismatch,
}

impl Refused {
    pub const fn label(self) -> &'static str {
        match self {
            Refused::BadKey => "bad_key",
            Refused::BadValue => "bad_value",
            Refused::AddressMismatch => "address_mismatch",
            Refused::PortMismatch => "port_mismatch",
            Refused::EncapMismatch => "encap_mismatch",
            Refused::OwnAddress => "own_address",
            Refused::UnknownVni => "unknown_vni",
            Refused::LocalMac => "local_mac",
            Refused::FamilyMismatch => "family_mismatch",
        }
    }
}

/// Whether `a` can be a VTEP's address (an IPv4-mapped IPv6 one would be
/// taken for the IPv4 address).
fn vtep_ok(a: &IpAddr) -> bool {
    !is_v4_mapped(a) && overlay_common::is_unicast_vtep(&vtep_from_ip(*a))
}

/// Parses a key (with the prefix) and its value.
pub fn parse(prefix: &str, key: &[u8], value: &[u8]) -> Result<Entry, Refused> {
    let key = std::str::from_utf8(key).map_err(|_| Refused::BadKey)?;
    let rest = key.strip_prefix(&root(prefix)).ok_or(Refused::BadKey)?;
    let parts: Vec<&str> = rest.split('/').collect();
    let ["vni", vni, kind, name] = parts[..] else { return Err(Refused::BadKey) };
    let vni: u32 = vni.parse().map_err(|_| Refused::BadKey)?;
    // Up to 32 bits: a GRE key (whether a VNI fits its network's
    // encapsulation is checked against this host's networks).
    if vni == 0 || vni.to_string() != parts[1] {
        return Err(Refused::BadKey);
    }
    match kind {
        "vtep" => {
            let addr: IpAddr = name.parse().map_err(|_| Refused::BadKey)?;
            // One spelling per address (IPv6 has many).
            if addr.to_string() != name {
                return Err(Refused::BadKey);
            }
            let value: VtepValue = serde_json::from_slice(value).map_err(|_| Refused::BadValue)?;
            if value.address != addr {
                return Err(Refused::AddressMismatch);
            }
            let port_ok = (value.port == 0) == (value.encap == Encap::Gre);
            if !vtep_ok(&addr) || !port_ok {
                return Err(Refused::BadValue);
            }
            Ok(Entry::Vtep { vni, value })
        }
        "mac" => {
            let mac: MacAddr = name.parse().map_err(|_| Refused::BadKey)?;
            if !mac.is_unicast() || mac.to_string() != name {
                return Err(Refused::BadKey);
            }
            let value: MacValue = serde_json::from_slice(value).map_err(|_| Refused::BadValue)?;
            let ip_ok = |ip: &IpAddr| is_host_address(ip) && !is_v4_mapped(ip);
            if !vtep_ok(&value.vtep) || !value.ips.iter().all(ip_ok) {
                return Err(Refused::BadValue);
            }
            Ok(Entry::Mac { vni, mac, value })
        }
        _ => Err(Refused::BadKey),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(key: &str, value: &str) -> Result<Entry, Refused> {
        parse("/o", key.as_bytes(), value.as_bytes())
    }

    #[test]
    fn keys_round_trip() {
        let v = VtepValue {
            host: "h2".into(),
            address: "192.0.2.2".parse().unwrap(),
            port: 4789,
            encap: Encap::Vxlan,
        };
        assert_eq!(serde_json::to_string(&v).unwrap(), r#"{"host":"h2","address":"192.0.2.2","port":4789}"#);
        let k = vtep_key("/o", 100, v.address);
        assert_eq!(k, "/o/v1/vni/100/vtep/192.0.2.2");
        let e = parse("/o", k.as_bytes(), &serde_json::to_vec(&v).unwrap()).unwrap();
        assert_eq!(e, Entry::Vtep { vni: 100, value: v });
        let mac: MacAddr = "02:00:00:00:00:01".parse().unwrap();
        let m = MacValue { vtep: "192.0.2.2".parse().unwrap(), ips: vec!["203.0.113.1".parse().unwrap()] };
        let k = mac_key("/o", 100, mac);
        assert_eq!(k, "/o/v1/vni/100/mac/02:00:00:00:00:01");
        let e = parse("/o", k.as_bytes(), &serde_json::to_vec(&m).unwrap()).unwrap();
        assert_eq!(e, Entry::Mac { vni: 100, mac, value: m });
    }

    #[test]
    fn bad_data_is_refused_with_its_reason() {
        let vtep = r#"{"host":"h","address":"192.0.2.2","port":4789}"#;
        assert_eq!(p("/o/v1/vni/100/vtep/192.0.2.2", "{garbage"), Err(Refused::BadValue));
        assert_eq!(p("/o/v1/vni/100/vtep/192.0.2.3", vtep), Err(Refused::AddressMismatch));
        assert_eq!(p("/o/v1/vni/0100/vtep/192.0.2.2", vtep), Err(Refused::BadKey));
        assert_eq!(p("/o/v1/vni/4294967296/vtep/192.0.2.2", vtep), Err(Refused::BadKey));
        let gre = r#"{"host":"h","address":"192.0.2.2","port":0,"encap":"gre"}"#;
        assert!(p("/o/v1/vni/4294967295/vtep/192.0.2.2", gre).is_ok(), "a 32-bit GRE key");
        let gre_port = r#"{"host":"h","address":"192.0.2.2","port":4789,"encap":"gre"}"#;
        assert_eq!(p("/o/v1/vni/100/vtep/192.0.2.2", gre_port), Err(Refused::BadValue), "GRE has no port");
        let no_port = r#"{"host":"h","address":"192.0.2.2","port":0}"#;
        assert_eq!(p("/o/v1/vni/100/vtep/192.0.2.2", no_port), Err(Refused::BadValue));
        let stt = r#"{"host":"h","address":"192.0.2.2","port":7471,"encap":"stt"}"#;
        assert_eq!(p("/o/v1/vni/100/vtep/192.0.2.2", stt), Err(Refused::BadValue));
        assert_eq!(p("/o/v1/vni/100/vtep/192.0.2.2/x", vtep), Err(Refused::BadKey));
        assert_eq!(p("/o/v2/vni/100/vtep/192.0.2.2", vtep), Err(Refused::BadKey));
        assert_eq!(p("/o/v1/vni/100/peer/192.0.2.2", vtep), Err(Refused::BadKey));
        let bcast = r#"{"host":"h","address":"255.255.255.255","port":4789}"#;
        assert_eq!(p("/o/v1/vni/100/vtep/255.255.255.255", bcast), Err(Refused::BadValue));
        let extra = r#"{"host":"h","address":"192.0.2.2","port":4789,"x":1}"#;
        assert_eq!(p("/o/v1/vni/100/vtep/192.0.2.2", extra), Err(Refused::BadValue));
        let m = r#"{"vtep":"192.0.2.2","ips":[]}"#;
        assert_eq!(p("/o/v1/vni/100/mac/01:00:5e:00:00:01", m), Err(Refused::BadKey), "group MAC");
        assert_eq!(p("/o/v1/vni/100/mac/02:00:00:00:00:0A", m), Err(Refused::BadKey), "not canonical");
        let bad_ip = r#"{"vtep":"192.0.2.2","ips":["0.0.0.0"]}"#;
        assert_eq!(p("/o/v1/vni/100/mac/02:00:00:00:00:0a", bad_ip), Err(Refused::BadValue));
        assert!(p("/o/v1/vni/100/mac/02:00:00:00:00:0a", m).is_ok());
        assert_eq!(parse("/o", &[0xff, 0xfe], b"{}"), Err(Refused::BadKey));
    }

    #[test]
    fn ipv6_vteps_have_one_spelling_and_must_be_unicast() {
        let v6 = r#"{"host":"h","address":"2001:db8::2","port":4789}"#;
        assert!(p("/o/v1/vni/100/vtep/2001:db8::2", v6).is_ok());
        assert_eq!(p("/o/v1/vni/100/vtep/2001:db8:0::2", v6), Err(Refused::BadKey), "not canonical");
        assert_eq!(p("/o/v1/vni/100/vtep/2001:DB8::2", v6), Err(Refused::BadKey), "not canonical");
        let ll = r#"{"host":"h","address":"fe80::2","port":4789}"#;
        assert_eq!(p("/o/v1/vni/100/vtep/fe80::2", ll), Err(Refused::BadValue), "link-local");
        let mapped = r#"{"host":"h","address":"::ffff:192.0.2.2","port":4789}"#;
        assert_eq!(p("/o/v1/vni/100/vtep/::ffff:192.0.2.2", mapped), Err(Refused::BadValue), "mapped");
        let m = r#"{"vtep":"2001:db8::2","ips":["2001:db8:1::5"]}"#;
        assert!(p("/o/v1/vni/100/mac/02:00:00:00:00:0a", m).is_ok());
        let m = r#"{"vtep":"ff02::1","ips":[]}"#;
        assert_eq!(p("/o/v1/vni/100/mac/02:00:00:00:00:0a", m), Err(Refused::BadValue), "multicast");
    }
}
