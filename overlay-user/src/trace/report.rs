//! A trace as `overlayctl trace` prints it: the frame, each step with the
//! instance's names, the counters the live program would add to, and the
//! verdict, like `ovs-appctl ofproto/trace`.

use std::{collections::BTreeMap, fmt::Write as _, net::IpAddr};

use overlay_common::{NO_VLAN, counters::Counter, maps::FDB_KIND_PORT, trace::*};
use serde::Serialize;

use super::{Hook, Raw};
use crate::{
    instance::State,
    monitor::decode::{self, Event},
};

const TC_ACT_OK: u32 = 0;
const TC_ACT_SHOT: u32 = 2;
const TC_ACT_STOLEN: u32 = 4;
const TC_ACT_REDIRECT: u32 = 7;

/// One step of the path (JSON: `step` names the kind; the other fields
/// appear where they apply).
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Step {
    /// `network`, `pop`, `learn`, `fdb`, `egress`, `encap`, `next_hop`,
    /// `flood_local`, `flood_remote`, `count`, `rp_filter`, `decap`,
    /// `neigh_reply`.
    pub step: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vlan: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vni: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vtep: Option<IpAddr>,
    /// learn: `new`, `move`, `refresh`, `known`, `static`,
    /// `static_elsewhere`, `limit`; fdb: `port`, `remote`, `miss`,
    /// `expired`, `group`; next_hop: `cached`, `fib`, `unresolved`,
    /// `unreachable`, `gso_device` (handed to the kernel VXLAN device for
    /// segmentation with checksums); flood_remote: `copy` (a clone) or `frame` (the frame
    /// itself, to the last peer); flood_local: `sent`, `not_member`;
    /// rp_filter: `pass`, `pass_cached`, `fail`; encap: `vxlan`, `gre`,
    /// `geneve`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<&'static str>,
    /// count: the counter, as `stats` names it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counter: Option<&'static str>,
    /// egress: handed to the veth peer's ingress.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer: Option<bool>,
    /// next_hop: the address resolved (peer or gateway).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via: Option<IpAddr>,
}

/// The whole trace.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// `tenant_tc` or `vtep_tc`.
    pub hook: &'static str,
    pub interface: String,
    pub frame: Event,
    pub steps: Vec<Step>,
    /// The first steps of a path longer than the record (not shown).
    pub steps_lost: u32,
    /// The counters the live program would add to: network ("-" for none)
    /// -> counter -> how much.
    pub counters: BTreeMap<String, BTreeMap<&'static str, u64>>,
    /// `redirect`, `drop`, `pass` (to the host stack) or `consumed` (only
    /// flood copies go out).
    pub verdict: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drop_reason: Option<&'static str>,
    /// redirect: the interface the frame leaves by.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub out_interface: Option<String>,
    /// The frame as it would leave (hex).
    pub frame_out: String,
}

fn ip(a: &overlay_common::VtepAddr) -> IpAddr {
    overlay_common::vtep::vtep_to_ip(a)
}

fn counter(id: u8) -> Option<Counter> {
    Counter::ALL.iter().copied().find(|c| *c as u32 == id as u32)
}

fn vlan(vid: u16) -> Option<u16> {
    (vid != NO_VLAN).then_some(vid)
}

struct Namer<'a> {
    state: &'a State,
    ifnames: &'a BTreeMap<u32, String>,
}

impl Namer<'_> {
    fn iface(&self, ifindex: u32) -> String {
        self.ifnames.get(&ifindex).cloned().unwrap_or_else(|| format!("ifindex {ifindex}"))
    }

    fn network(&self, net_id: u32) -> String {
        self.state
            .net_ids
            .iter()
            .find(|(_, id)| **id == net_id)
            .map(|(n, _)| n.clone())
            .unwrap_or_else(|| format!("network id {net_id}"))
    }

    /// The network of a stats row ("-" for row 0).
    fn row(&self, row: u32) -> String {
        if row == 0 { "-".into() } else { self.network(row - 1) }
    }

    fn step(&self, s: &TraceStep) -> Step {
        let mut v = Step::default();
        match s.kind {
            STEP_NETWORK => {
                v.step = "network";
                v.network = Some(self.network(s.a));
                v.interface = Some(self.iface(s.b));
                v.vlan = vlan(s.vid);
                v.vni = (s.c != 0).then_some(s.c);
            }
            STEP_POP => {
                v.step = "pop";
                v.vlan = vlan(s.vid);
            }
            STEP_LEARN => {
                v.step = "learn";
                v.result = Some(match s.a {
                    LEARN_NEW => "new",
                    LEARN_MOVE => "move",
                    LEARN_REFRESH => "refresh",
                    LEARN_KNOWN => "known",
                    LEARN_STATIC => "static",
                    LEARN_STATIC_ELSEWHERE => "static_elsewhere",
                    _ => "limit",
                });
                if s.b == FDB_KIND_PORT as u32 {
                    v.interface = Some(self.iface(s.c));
                } else {
                    v.vtep = Some(ip(&s.addr));
                }
            }
            STEP_FDB => {
                v.step = "fdb";
                v.result = Some(match s.a {
                    FDB_HIT_PORT => "port",
                    FDB_HIT_REMOTE => "remote",
                    FDB_EXPIRED => "expired",
                    FDB_GROUP => "group",
                    _ => "miss",
                });
                match s.a {
                    FDB_HIT_PORT => v.interface = Some(self.iface(s.b)),
                    FDB_HIT_REMOTE => v.vtep = Some(ip(&s.addr)),
                    _ => {}
                }
            }
            STEP_EGRESS => {
                v.step = "egress";
                v.interface = Some(self.iface(s.a));
                v.vlan = vlan(s.vid);
                v.peer = Some(s.b != 0);
            }
            STEP_ENCAP => {
                v.step = "encap";
                v.vtep = Some(ip(&s.addr));
                v.vni = Some(s.b);
                v.result = Some(match s.c as u8 {
                    overlay_common::ENCAP_GRE => "gre",
                    overlay_common::ENCAP_GENEVE => "geneve",
                    _ => "vxlan",
                });
            }
            STEP_NEXT_HOP => {
                v.step = "next_hop";
                v.result = Some(match s.b {
                    HOP_CACHED => "cached",
                    HOP_FIB => "fib",
                    HOP_UNRESOLVED => "unresolved",
                    HOP_DEVICE => "gso_device",
                    _ => "unreachable",
                });
                v.interface = (s.a != 0).then(|| self.iface(s.a));
                v.via = Some(ip(&s.addr));
            }
            STEP_FLOOD_REMOTE => {
                v.step = "flood_remote";
                v.vtep = Some(ip(&s.addr));
                v.result = Some(if s.b == FLOOD_FRAME { "frame" } else { "copy" });
            }
            STEP_FLOOD_LOCAL => {
                v.step = "flood_local";
                v.interface = Some(self.iface(s.a));
                v.vlan = vlan(s.vid);
                v.result = Some(if s.b != 0 { "sent" } else { "not_member" });
            }
            STEP_COUNT => {
                v.step = "count";
                v.counter = counter(s.counter).map(|c| c.name());
                v.network = Some(self.row(s.a));
            }
            STEP_RPF => {
                v.step = "rp_filter";
                v.vtep = Some(ip(&s.addr));
                v.result = Some(match (s.a, s.b) {
                    (0, _) => "fail",
                    (_, 0) => "pass",
                    _ => "pass_cached",
                });
            }
            STEP_DECAP => v.step = "decap",
            STEP_NEIGH_REPLY => v.step = "neigh_reply",
            _ => v.step = "unknown",
        }
        v
    }
}

impl Report {
    pub fn new(
        state: &State,
        ifnames: &BTreeMap<u32, String>,
        hook: Hook,
        ifname: &str,
        frame: &[u8],
        raw: &Raw,
    ) -> Report {
        let namer = Namer { state, ifnames };
        let steps: Vec<Step> = raw.steps.iter().map(|s| namer.step(s)).collect();
        let mut counters: BTreeMap<String, BTreeMap<&'static str, u64>> = BTreeMap::new();
        let mut drop_reason = None;
        for s in raw.steps.iter().filter(|s| s.kind == STEP_COUNT) {
            let Some(c) = counter(s.counter) else { continue };
            *counters.entry(namer.row(s.a)).or_default().entry(c.name()).or_default() += 1;
            if c.is_drop() {
                drop_reason = Some(c.name());
            }
        }
        // The interface a redirect goes to: the last egress or next hop.
        let out_interface = steps
            .iter()
            .rev()
            .find(|s| s.step == "egress" || s.step == "next_hop")
            .and_then(|s| s.interface.clone());
        let verdict = match raw.verdict {
            TC_ACT_REDIRECT => "redirect",
            TC_ACT_SHOT => "drop",
            TC_ACT_STOLEN => "consumed",
            TC_ACT_OK => "pass",
            _ => "other",
        };
        Report {
            hook: match hook {
                Hook::Tenant => "tenant_tc",
                Hook::Underlay => "vtep_tc",
            },
            interface: ifname.into(),
            frame: decode::frame(frame, state.config.underlay.port),
            steps,
            steps_lost: raw.lost,
            counters,
            verdict,
            drop_reason: if verdict == "drop" { drop_reason } else { None },
            out_interface: if verdict == "redirect" { out_interface } else { None },
            frame_out: raw.frame_out.iter().map(|b| format!("{b:02x}")).collect(),
        }
    }

    /// The counters summed over networks.
    pub fn totals(&self) -> BTreeMap<&'static str, u64> {
        let mut t = BTreeMap::new();
        for per in self.counters.values() {
            for (c, n) in per {
                *t.entry(*c).or_default() += n;
            }
        }
        t
    }

    /// The text `overlayctl trace` prints.
    pub fn text(&self) -> String {
        let f = &self.frame;
        let o = |v: Option<String>| v.unwrap_or_else(|| "-".into());
        let mut s = format!(
            "frame: {} bytes in on {} ({}), {} > {}",
            f.len.unwrap_or(0),
            self.interface,
            self.hook,
            o(f.src_mac.map(|m| m.to_string())),
            o(f.dst_mac.map(|m| m.to_string())),
        );
        if let Some(v) = f.vlan {
            let _ = write!(s, " vlan {v}");
        }
        if let (Some(a), Some(b)) = (f.src_ip, f.dst_ip) {
            let _ = write!(s, " {a} > {b}");
        }
        if let (Some(a), Some(b), Some(v)) = (f.outer_src, f.outer_dst, f.vni) {
            let _ = write!(s, " (VXLAN {a} > {b} vni {v})");
        }
        s.push('\n');
        if self.steps_lost != 0 {
            let _ = writeln!(s, "     ... {} earlier steps not recorded", self.steps_lost);
        }
        for (i, st) in self.steps.iter().enumerate() {
            let _ = writeln!(s, "{:3}. {}", self.steps_lost as usize + i + 1, step_text(st, f));
        }
        let _ = write!(s, "verdict: {}", self.verdict);
        match self.verdict {
            "redirect" => {
                let _ = write!(s, " to {}", o(self.out_interface.clone()));
            }
            "drop" => {
                let _ = write!(s, " ({})", self.drop_reason.unwrap_or("?"));
            }
            "pass" => s.push_str(" (to the host stack)"),
            "consumed" => s.push_str(" (the flood copies above went out)"),
            _ => {}
        }
        s.push('\n');
        s
    }
}

fn step_text(s: &Step, f: &Event) -> String {
    let o = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let tag = |v: Option<u16>| v.map(|v| format!("tagged {v}")).unwrap_or_else(|| "untagged".into());
    let mac = |m: Option<crate::mac::MacAddr>| m.map(|m| m.to_string()).unwrap_or_else(|| "-".into());
    let at = || match (&s.interface, s.vtep) {
        (Some(i), _) => format!("port {i}"),
        (None, Some(v)) => format!("remote {v}"),
        _ => "-".into(),
    };
    match s.step {
        "network" => match s.vni {
            Some(v) => format!("network {} (vni {v}) from underlay {}", o(&s.network), o(&s.interface)),
            None => format!("network {} from port {}, {}", o(&s.network), o(&s.interface), tag(s.vlan)),
        },
        "pop" => format!("pop vlan tag {}", s.vlan.map(|v| v.to_string()).unwrap_or_default()),
        "learn" => format!("learn source {} at {}: {}", mac(f.src_mac), at(), s.result.unwrap_or("?")),
        "fdb" => match s.result {
            Some("port") | Some("remote") => format!("fdb {}: hit, {}", mac(f.dst_mac), at()),
            Some("expired") => format!("fdb {}: expired (deleted: a miss)", mac(f.dst_mac)),
            Some("group") => format!("fdb {}: group address, flood", mac(f.dst_mac)),
            _ => format!("fdb {}: miss", mac(f.dst_mac)),
        },
        "egress" => format!(
            "out {} {}{}",
            o(&s.interface),
            tag(s.vlan),
            if s.peer == Some(true) { " (to the veth peer's ingress)" } else { "" }
        ),
        "encap" => format!(
            "{} encap vni {} to {}",
            s.result.unwrap_or("vxlan"),
            s.vni.unwrap_or(0),
            s.vtep.map(|v| v.to_string()).unwrap_or_default()
        ),
        "next_hop" => format!(
            "next hop {} via {} ({})",
            s.via.map(|v| v.to_string()).unwrap_or_default(),
            o(&s.interface),
            s.result.unwrap_or("?")
        ),
        "flood_local" => {
            format!("flood copy to {} {}: {}", o(&s.interface), tag(s.vlan), s.result.unwrap_or("?"))
        }
        "flood_remote" => {
            let vtep = s.vtep.map(|v| v.to_string()).unwrap_or_default();
            match s.result {
                Some("frame") => format!("flood: the frame itself to vtep {vtep}"),
                _ => format!("flood copy to vtep {vtep}"),
            }
        }
        "count" => format!("count {} [{}]", s.counter.unwrap_or("?"), o(&s.network)),
        "rp_filter" => format!(
            "rp_filter source {}: {}",
            s.vtep.map(|v| v.to_string()).unwrap_or_default(),
            s.result.unwrap_or("?")
        ),
        "decap" => "vxlan decap".into(),
        "neigh_reply" => "answered from the neighbour table: the reply goes back out of the port".into(),
        other => other.into(),
    }
}
