//! The CNI plugin under test: a private CNI_PATH (overlay-cni and Debian's
//! host-local), private IPAM data, calls with the CNI_* environment the way
//! runtimes make them, and podman with private configuration.

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use serde_json::{Value, json};

use crate::{lab::Host, netns::unique};

/// The plugin `cargo xtask test` builds before the tests.
pub fn plugin_bin() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/debug/overlay-cni");
    assert!(p.exists(), "{} missing: cargo xtask test builds it", p.display());
    p
}

pub const HOST_LOCAL: &str = "/usr/lib/cni/host-local";

/// A private directory: `bin/` (CNI_PATH: overlay-cni, host-local) and
/// `ipam/` (host-local's dataDir). Removed on drop.
pub struct CniDir {
    pub dir: PathBuf,
}

impl CniDir {
    pub fn new() -> CniDir {
        let dir = std::env::temp_dir().join(unique("cni"));
        let bin = dir.join("bin");
        std::fs::create_dir_all(&bin).expect("cni dir");
        std::os::unix::fs::symlink(plugin_bin(), bin.join("overlay-cni")).expect("link plugin");
        std::os::unix::fs::symlink(HOST_LOCAL, bin.join("host-local")).expect("link host-local");
        CniDir { dir }
    }

    pub fn path(&self) -> String {
        self.dir.join("bin").display().to_string()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("ipam")
    }

    /// A network configuration for `network`, addresses from 203.0.113.0/24
    /// between `first` and `last`.
    pub fn conf(&self, version: &str, network: &str, first: u8, last: u8) -> Value {
        json!({
            "cniVersion": version,
            "name": "ovl",
            "type": "overlay-cni",
            "network": network,
            "ipam": {
                "type": "host-local",
                "ranges": [[{"subnet": "203.0.113.0/24",
                             "rangeStart": format!("203.0.113.{first}"),
                             "rangeEnd": format!("203.0.113.{last}")}]],
                "dataDir": self.data_dir().display().to_string(),
            }
        })
    }

    /// Addresses host-local holds for configuration `name`.
    pub fn leases(&self, name: &str) -> Vec<String> {
        let Ok(rd) = std::fs::read_dir(self.data_dir().join(name)) else { return vec![] };
        let mut v: Vec<String> = rd
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| n.parse::<std::net::IpAddr>().is_ok())
            .collect();
        v.sort();
        v
    }
}

impl Default for CniDir {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for CniDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const CALL_TIMEOUT_S: &str = "120";

/// One plugin call from `host`'s network namespace with exactly these
/// variables (PATH aside): Ok(stdout as JSON, or Null), Err(error JSON).
/// A call that hangs (waiting for a lock nobody releases) is killed after
/// `CALL_TIMEOUT_S` and fails the test.
pub fn call(host: &Host, vars: &[(&str, &str)], stdin: &[u8]) -> Result<Value, Value> {
    let mut c = Command::new("timeout");
    c.args([CALL_TIMEOUT_S, "ip", "netns", "exec", &host.ns.name])
        .arg(plugin_bin())
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .envs(vars.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("spawn overlay-cni");
    child.stdin.take().expect("stdin").write_all(stdin).expect("write stdin");
    let out = child.wait_with_output().expect("overlay-cni");
    assert_ne!(out.status.code(), Some(124), "overlay-cni took more than {CALL_TIMEOUT_S} s");
    let text = String::from_utf8_lossy(&out.stdout);
    let v = if text.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("overlay-cni printed no JSON ({e}): {text}"))
    };
    if out.status.success() {
        Ok(v)
    } else {
        assert!(
            v["code"].is_u64(),
            "a failure prints the error JSON: {text} / {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Err(v)
    }
}

/// A command on attachment (container id, netns path, ifname eth0).
pub fn attach_call(
    host: &Host,
    dir: &CniDir,
    cmd: &str,
    id: &str,
    netns: &Path,
    conf: &Value,
) -> Result<Value, Value> {
    let ns = netns.display().to_string();
    let path = dir.path();
    let vars = [
        ("CNI_COMMAND", cmd),
        ("CNI_CONTAINERID", id),
        ("CNI_NETNS", ns.as_str()),
        ("CNI_IFNAME", "eth0"),
        ("CNI_PATH", path.as_str()),
    ];
    call(host, &vars, conf.to_string().as_bytes())
}

/// Interfaces of `host` whose names the plugin uses for host ends.
pub fn host_ends(host: &Host) -> Vec<String> {
    host.ns
        .sh("ls /sys/class/net")
        .split_whitespace()
        .filter(|n| n.starts_with("ovc") || n.starts_with("ovx"))
        .map(String::from)
        .collect()
}
