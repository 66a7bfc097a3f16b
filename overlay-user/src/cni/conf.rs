//! What a runtime hands the plugin: the `CNI_*` environment and the network
//! configuration on stdin.

use std::path::PathBuf;

use serde::Deserialize;
use serde_json::Value;

use super::error::{CniError, CniResult, Code};

/// Versions of the spec this plugin speaks (results are written in the
/// version the configuration asks for).
pub const SUPPORTED_VERSIONS: &[&str] = &["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    Add,
    Del,
    Check,
    Version,
    Status,
    Gc,
}

/// The `CNI_*` variables.
#[derive(Clone, Debug)]
pub struct Env {
    pub command: Command,
    pub container_id: Option<String>,
    pub netns: Option<PathBuf>,
    pub ifname: Option<String>,
    pub path: Vec<PathBuf>,
}

impl Env {
    /// Reads the variables through `get` (the process environment in the
    /// binary, a map in unit tests).
    pub fn read(get: impl Fn(&str) -> Option<String>) -> CniResult<Env> {
        let bad = |m: String| CniError::new(Code::InvalidEnvironment, m);
        let command = match get("CNI_COMMAND").as_deref() {
            Some("ADD") => Command::Add,
            Some("DEL") => Command::Del,
            Some("CHECK") => Command::Check,
            Some("VERSION") => Command::Version,
            Some("STATUS") => Command::Status,
            Some("GC") => Command::Gc,
            Some(c) => {
                return Err(bad(format!("CNI_COMMAND {c:?} is not ADD, DEL, CHECK, VERSION, STATUS or GC")));
            }
            None => return Err(bad("CNI_COMMAND is not set".into())),
        };
        let nonempty = |k: &str| get(k).filter(|v| !v.is_empty());
        let env = Env {
            command,
            container_id: nonempty("CNI_CONTAINERID"),
            netns: nonempty("CNI_NETNS").map(PathBuf::from),
            ifname: nonempty("CNI_IFNAME"),
            path: get("CNI_PATH")
                .unwrap_or_default()
                .split(':')
                .filter(|d| !d.is_empty())
                .map(PathBuf::from)
                .collect(),
        };
        let needs = |k: &str, present: bool| -> CniResult<()> {
            if present { Ok(()) } else { Err(bad(format!("{k} is required for this command"))) }
        };
        if matches!(command, Command::Add | Command::Del | Command::Check) {
            needs("CNI_CONTAINERID", env.container_id.is_some())?;
            needs("CNI_IFNAME", env.ifname.is_some())?;
        }
        if matches!(command, Command::Add | Command::Check) {
            needs("CNI_NETNS", env.netns.is_some())?;
        }
        if let Some(id) = &env.container_id
            && !id.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        {
            return Err(bad(format!("CNI_CONTAINERID {id:?}: only letters, digits, '_', '.' and '-'")));
        }
        if let Some(i) = &env.ifname
            && !valid_ifname(i)
        {
            return Err(bad(format!("CNI_IFNAME {i:?} is not a valid interface name")));
        }
        Ok(env)
    }

    pub fn container_id(&self) -> &str {
        self.container_id.as_deref().unwrap_or_default()
    }

    pub fn ifname(&self) -> &str {
        self.ifname.as_deref().unwrap_or_default()
    }
}

/// Linux's rules for a name (`dev_valid_name`).
pub fn valid_ifname(n: &str) -> bool {
    !n.is_empty()
        && n.len() < 16
        && n != "."
        && n != ".."
        && !n.chars().any(|c| c == '/' || c == ':' || c.is_whitespace())
}

/// One attachment named in a GC request.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "camelCase")]
pub struct Attachment {
    #[serde(rename = "containerID")]
    pub container_id: String,
    pub ifname: String,
}

/// The network configuration. Keys the plugin does not use (`dns`, `args`,
/// `runtimeConfig`, `capabilities`, ...) are accepted and ignored, as the
/// spec asks.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetConf {
    pub cni_version: String,
    pub name: String,
    #[serde(rename = "type")]
    pub plugin_type: String,
    /// The overlayctl instance; may be left out when one is up here.
    pub instance: Option<String>,
    /// The instance's network the container joins.
    pub network: Option<String>,
    /// MTU of both ends; default the instance's underlay MTU - 50.
    pub mtu: Option<u32>,
    pub ipam: Option<Value>,
    pub prev_result: Option<Value>,
    #[serde(rename = "cni.dev/valid-attachments")]
    pub valid_attachments: Option<Vec<Attachment>>,
}

impl NetConf {
    pub fn parse(stdin: &[u8]) -> CniResult<NetConf> {
        let c: NetConf = serde_json::from_slice(stdin)
            .map_err(|e| CniError::with(Code::Decode, "network configuration is not valid", e))?;
        if !SUPPORTED_VERSIONS.contains(&c.cni_version.as_str()) {
            return Err(CniError::new(
                Code::IncompatibleVersion,
                format!(
                    "cniVersion {:?} is not supported (supported: {})",
                    c.cni_version,
                    SUPPORTED_VERSIONS.join(", ")
                ),
            ));
        }
        if let Some(m) = c.mtu
            && !(68..=65535).contains(&m)
        {
            return Err(CniError::new(Code::InvalidConfig, format!("mtu {m}: must be 68..=65535")));
        }
        Ok(c)
    }

    /// The `network` key, which ADD and CHECK need.
    pub fn network(&self) -> CniResult<&str> {
        self.network.as_deref().ok_or_else(|| {
            CniError::new(
                Code::InvalidConfig,
                "network configuration has no \"network\" (the overlay network to join)",
            )
        })
    }

    /// The IPAM plugin named in `ipam.type`, if there is an `ipam` section.
    pub fn ipam_type(&self) -> CniResult<Option<&str>> {
        let Some(ipam) = &self.ipam else { return Ok(None) };
        match ipam.get("type").and_then(Value::as_str) {
            Some(t) if !t.is_empty() && !t.contains('/') => Ok(Some(t)),
            _ => {
                Err(CniError::new(Code::InvalidConfig, "ipam: \"type\" must name a plugin found in CNI_PATH"))
            }
        }
    }

    /// Results before 1.0.0 carry `"version"` in each IP entry.
    pub fn pre_1_0(&self) -> bool {
        self.cni_version.starts_with("0.")
    }

    /// CHECK exists from 0.4.0 on.
    pub fn has_check(&self) -> bool {
        !self.cni_version.starts_with("0.3")
    }
}
