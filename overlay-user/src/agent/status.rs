//! The agent's state as `overlayctl status` shows it, kept beside the
//! instance's state file (`/run/overlayctl/NAME.agent.json`). It also
//! carries the lease id from one agent run to the next, so an agent
//! restarted within `lease_ttl` keeps its keys (peers see no change).

use std::{collections::BTreeMap, fs, path::PathBuf};

use serde::{Deserialize, Serialize};

use crate::bpffs::run_dir;

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
pub struct AgentStatus {
    /// Process id of the agent that wrote this.
    pub pid: u32,
    /// Whether that agent is still running (computed when read).
    #[serde(default)]
    pub running: bool,
    pub endpoints: Vec<String>,
    /// The member the agent talks to (one per session).
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Watching etcd right now.
    pub connected: bool,
    pub lease_id: Option<i64>,
    /// etcd revision the agent's view is at.
    pub revision: i64,
    /// The last error talking to etcd (kept after reconnecting, with when).
    pub last_error: Option<String>,
    /// Failed attempts since the last success (backing off between them).
    pub retries: u32,
    /// Sessions with etcd so far (a new one after each failure).
    #[serde(default)]
    pub sessions: u64,
    /// Full lists of the prefix (at start, and when etcd had compacted the
    /// revision the agent would have watched from).
    #[serde(default)]
    pub relists: u32,
    /// Other hosts' VTEPs (network, VTEP pairs) and MACs installed.
    pub remote_vteps: usize,
    pub remote_macs: usize,
    /// MACs of this host published.
    pub local_macs: usize,
    /// Keys under the prefix refused, per reason (see the README).
    pub ignored: BTreeMap<String, u64>,
    /// Networks with more VTEPs than a flood set holds: VTEPs not flooded to.
    pub flood_overflow: BTreeMap<String, usize>,
}

pub fn path(instance: &str) -> PathBuf {
    run_dir().join(format!("{instance}.agent.json"))
}

/// The last status an agent wrote for `instance`, with `running` set.
pub fn read(instance: &str) -> Option<AgentStatus> {
    let mut s: AgentStatus = serde_json::from_slice(&fs::read(path(instance)).ok()?).ok()?;
    s.running = s.running && is_agent(s.pid);
    Some(s)
}

/// Whether `pid` is a live overlayctl process.
fn is_agent(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "overlayctl")
}

pub fn write(instance: &str, s: &AgentStatus) -> std::io::Result<()> {
    let p = path(instance);
    let tmp = p.with_extension("json.tmp");
    fs::write(&tmp, serde_json::to_vec_pretty(s)?)?;
    fs::rename(tmp, p)
}

pub fn remove(instance: &str) {
    let _ = fs::remove_file(path(instance));
}
