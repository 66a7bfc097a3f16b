//! `[control]`: the etcd cluster `overlayctl agent` publishes to and
//! watches (see `crate::agent`).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Control {
    /// etcd client URLs, `http://HOST:PORT` or `https://HOST:PORT`.
    pub etcd: Vec<String>,
    /// Every key lives under `PREFIX/v1/`.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// Seconds the host's keys outlive its agent.
    #[serde(default = "default_lease_ttl")]
    pub lease_ttl: u32,
    /// CA certificate (PEM) that signed the etcd servers' certificates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<PathBuf>,
    /// Client certificate and key (PEM), for etcd's `--client-cert-auth`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<PathBuf>,
    /// etcd user (RBAC); its password is read from `password_file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
}

fn default_prefix() -> String {
    "/overlay".into()
}

fn default_lease_ttl() -> u32 {
    10
}

fn bad(msg: String) -> Error {
    Error::Config(format!("control.{msg}"))
}

impl Control {
    pub fn validate(&self) -> Result<()> {
        if self.etcd.is_empty() {
            return Err(bad("etcd: list at least one endpoint (http://HOST:PORT)".into()));
        }
        let tls = self.ca.is_some() || self.cert.is_some();
        for e in &self.etcd {
            let rest = match (e.strip_prefix("http://"), e.strip_prefix("https://")) {
                (Some(r), _) if !tls => r,
                (_, Some(r)) => r,
                (Some(_), _) => return Err(bad(format!("etcd {e:?}: ca/cert are set, so use https://"))),
                _ => return Err(bad(format!("etcd {e:?}: must start with http:// or https://"))),
            };
            let ok = rest.rsplit_once(':').is_some_and(|(host, port)| {
                !host.is_empty() && !host.contains('/') && port.parse::<u16>().is_ok_and(|p| p != 0)
            });
            if !ok {
                return Err(bad(format!("etcd {e:?}: give HOST:PORT after the scheme, no path")));
            }
        }
        let p = &self.prefix;
        if !p.starts_with('/') || p.ends_with('/') || p.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad(format!(
                "prefix {p:?}: must start with '/', not end with '/', and hold no whitespace"
            )));
        }
        if !(2..=3600).contains(&self.lease_ttl) {
            return Err(bad(format!("lease_ttl {}: must be 2..=3600 seconds", self.lease_ttl)));
        }
        if self.cert.is_some() != self.key.is_some() {
            return Err(bad("cert, key: give both or neither".into()));
        }
        if self.username.is_some() != self.password_file.is_some() {
            return Err(bad("username, password_file: give both or neither".into()));
        }
        Ok(())
    }
}
