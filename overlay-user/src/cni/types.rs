//! The result types of the spec: interfaces, IPs, routes, DNS.

use std::{fmt, net::IpAddr, str::FromStr};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::error::{CniError, CniResult, Code};

/// An address with its prefix length, written `192.0.2.5/24`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Cidr, String> {
        let (a, p) = s.split_once('/').ok_or_else(|| format!("{s:?}: not ADDRESS/PREFIX"))?;
        let addr: IpAddr = a.parse().map_err(|e| format!("{s:?}: {e}"))?;
        let prefix: u8 = p.parse().map_err(|e| format!("{s:?}: prefix {e}"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return Err(format!("{s:?}: prefix longer than {max}"));
        }
        Ok(Cidr { addr, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl Serialize for Cidr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Cidr, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct Interface {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mac: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct IpConfig {
    pub address: Cidr,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
    /// Index into `interfaces`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<usize>,
    /// "4" or "6": results before 1.0.0 only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct Route {
    pub dst: Cidr,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gw: Option<IpAddr>,
}

/// A result (of ADD, or of the delegated IPAM plugin's ADD).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CniOutput {
    pub cni_version: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<Interface>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ips: Vec<IpConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<Route>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<Value>,
}

impl CniOutput {
    /// Reads a result (`what` names it in errors: "ipam result", "prevResult").
    pub fn from_value(v: Value, what: &str) -> CniResult<CniOutput> {
        serde_json::from_value(v)
            .map_err(|e| CniError::with(Code::Decode, format!("{what} is not a CNI result"), e))
    }

    /// The gateway for routes of `addr`'s family that name none.
    pub fn gateway_for(&self, addr: &IpAddr) -> Option<IpAddr> {
        self.ips.iter().filter_map(|i| i.gateway).find(|g| g.is_ipv4() == addr.is_ipv4())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_parse_and_print() {
        let c: Cidr = "203.0.113.7/24".parse().unwrap();
        assert_eq!(c.to_string(), "203.0.113.7/24");
        assert_eq!("2001:db8::5/64".parse::<Cidr>().unwrap().prefix, 64);
        for bad in ["203.0.113.7", "203.0.113.7/33", "2001:db8::5/129", "x/24", "1.2.3.4/-1"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn host_local_results_of_every_version_are_read() {
        for (v, extra) in [("1.0.0", ""), ("0.4.0", r#","version":"4""#), ("0.3.1", r#","version":"4""#)] {
            let text = format!(
                r#"{{"cniVersion":"{v}","ips":[{{"address":"203.0.113.2/24","gateway":"203.0.113.1"{extra}}}],
                "routes":[{{"dst":"0.0.0.0/0"}}],"dns":{{}}}}"#
            );
            let r = CniOutput::from_value(serde_json::from_str(&text).unwrap(), "ipam result").unwrap();
            assert_eq!(r.ips[0].address.to_string(), "203.0.113.2/24");
            assert_eq!(r.gateway_for(&r.routes[0].dst.addr), Some("203.0.113.1".parse().unwrap()));
        }
    }
}
