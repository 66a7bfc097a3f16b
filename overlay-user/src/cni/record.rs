//! What the plugin attached, one file per attachment in
//! `/run/overlayctl/NAME.cni/HOSTIF.json`: DEL finds the instance by it, GC
//! knows which ports are the plugin's. `overlayctl down` removes the
//! directory with the instance.

use std::{fs, net::IpAddr, path::PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::MacAddr;

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct Record {
    pub container_id: String,
    pub ifname: String,
    pub netns: String,
    /// `name` of the network configuration that made it.
    pub config_name: String,
    pub network: String,
    pub host_ifname: String,
    pub mac: MacAddr,
    pub ips: Vec<IpAddr>,
}

pub fn dir(instance: &str) -> PathBuf {
    crate::bpffs::run_dir().join(format!("{instance}.cni"))
}

fn path(instance: &str, host_ifname: &str) -> PathBuf {
    dir(instance).join(format!("{host_ifname}.json"))
}

pub fn save(instance: &str, r: &Record) -> std::io::Result<()> {
    fs::create_dir_all(dir(instance))?;
    let p = path(instance, &r.host_ifname);
    let tmp = p.with_extension("tmp");
    fs::write(&tmp, serde_json::to_vec(r).map_err(std::io::Error::other)?)?;
    fs::rename(tmp, p)
}

pub fn load(instance: &str, host_ifname: &str) -> Option<Record> {
    serde_json::from_slice(&fs::read(path(instance, host_ifname)).ok()?).ok()
}

pub fn remove(instance: &str, host_ifname: &str) -> std::io::Result<()> {
    match fs::remove_file(path(instance, host_ifname)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Every record of `instance`.
pub fn all(instance: &str) -> Vec<Record> {
    let Ok(rd) = fs::read_dir(dir(instance)) else { return Vec::new() };
    let mut v: Vec<Record> = rd
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .filter_map(|e| serde_json::from_slice(&fs::read(e.path()).ok()?).ok())
        .collect();
    v.sort_by(|a, b| a.host_ifname.cmp(&b.host_ifname));
    v
}

/// The instance holding an attachment on `host_ifname`, among those up here.
pub fn find(host_ifname: &str) -> Option<(String, Record)> {
    crate::instance::instances_here().into_iter().find_map(|i| load(&i, host_ifname).map(|r| (i, r)))
}
