//! Prometheus metrics: `overlayctl metrics --listen ADDR` and `overlayctl
//! agent --metrics ADDR` serve `GET /metrics` in the Prometheus text format
//! (0.0.4), read afresh from the pinned maps and state at each scrape.
//!
//! Families (the README lists them): `overlay_packets_total{network,reason}`
//! (every counter of `stats`, `reason` its label there; `network` empty for
//! frames not attributed to a network), `overlay_fdb_entries{network,type}`,
//! `overlay_fdb_learned{network}`, `overlay_fdb_max_learned{network}`,
//! `overlay_neigh_entries{network,type}`, `overlay_peers{network}`,
//! `overlay_remote_vteps{network}`, `overlay_flood_overflow{network}`,
//! `overlay_ports{network}`, `overlay_interface_attached{interface,role}`,
//! and with `[control]` the agent's `overlay_control_*`.

use std::{collections::BTreeMap, net::SocketAddr};

use prometheus::{Encoder, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder};

use crate::{
    error::{Error, Result},
    fdb, instance, neigh, stats, status,
};

fn prom(e: prometheus::Error) -> Error {
    Error::Os { op: "metrics".into(), source: std::io::Error::other(e) }
}

struct Families {
    reg: Registry,
}

impl Families {
    fn counter(&self, name: &str, help: &str, labels: &[&str]) -> Result<IntCounterVec> {
        let c = IntCounterVec::new(Opts::new(name, help), labels).map_err(prom)?;
        self.reg.register(Box::new(c.clone())).map_err(prom)?;
        Ok(c)
    }

    fn gauge(&self, name: &str, help: &str, labels: &[&str]) -> Result<IntGaugeVec> {
        let g = IntGaugeVec::new(Opts::new(name, help), labels).map_err(prom)?;
        self.reg.register(Box::new(g.clone())).map_err(prom)?;
        Ok(g)
    }

    fn single_counter(&self, name: &str, help: &str, v: u64) -> Result<()> {
        let c = prometheus::IntCounter::new(name, help).map_err(prom)?;
        c.inc_by(v);
        self.reg.register(Box::new(c)).map_err(prom)
    }

    fn single(&self, name: &str, help: &str, v: i64) -> Result<()> {
        let g = IntGauge::new(name, help).map_err(prom)?;
        g.set(v);
        self.reg.register(Box::new(g)).map_err(prom)
    }
}

/// The metrics of instance `name`, in the text format.
pub fn render(name: &str) -> Result<String> {
    let (state, maps) = instance::open_maps(name)?;
    let st = status::read(name)?;
    let f = Families { reg: Registry::new() };

    let packets = f.counter(
        "overlay_packets_total",
        "Datapath counters by reason, as overlayctl stats (network empty: not attributed)",
        &["network", "reason"],
    )?;
    let s = stats::read(&state, &maps)?;
    let mut attributed: BTreeMap<&str, u64> = BTreeMap::new();
    for (net, counts) in &s.networks {
        for (reason, v) in counts {
            packets.with_label_values(&[net.as_str(), reason]).inc_by(*v);
            *attributed.entry(reason).or_default() += v;
        }
    }
    for (reason, total) in &s.total {
        // Every counter appears, the unattributed row included.
        let rest = total - attributed.get(reason).copied().unwrap_or(0);
        packets.with_label_values(&["", reason]).inc_by(rest);
    }

    let fdb_entries =
        f.gauge("overlay_fdb_entries", "FDB entries by network and type", &["network", "type"])?;
    let neigh_entries = f.gauge(
        "overlay_neigh_entries",
        "Neighbour (ARP/ND) entries by network and type",
        &["network", "type"],
    )?;
    let learned =
        f.gauge("overlay_fdb_learned", "Learned FDB entries counted against the limit", &["network"])?;
    let max_learned =
        f.gauge("overlay_fdb_max_learned", "Limit of learned entries (0: none)", &["network"])?;
    let peers = f.gauge("overlay_peers", "Configured peer VTEPs", &["network"])?;
    let remote =
        f.gauge("overlay_remote_vteps", "VTEPs registered through the control plane", &["network"])?;
    let overflow =
        f.gauge("overlay_flood_overflow", "VTEPs not flooded to: more than a flood set holds", &["network"])?;
    let ports = f.gauge("overlay_ports", "Ports carrying the network", &["network"])?;
    for n in &st.networks {
        let l = [n.name.as_str()];
        for t in ["static", "control", "learned"] {
            fdb_entries.with_label_values(&[&n.name, t]).set(0);
        }
        for t in ["static", "learned"] {
            neigh_entries.with_label_values(&[&n.name, t]).set(0);
        }
        learned.with_label_values(&l).set(n.learned as i64);
        max_learned.with_label_values(&l).set(n.max_learned as i64);
        peers.with_label_values(&l).set(n.peers.len() as i64);
        remote.with_label_values(&l).set(n.remote_vteps.len() as i64);
        overflow.with_label_values(&l).set(n.flood_overflow as i64);
        ports.with_label_values(&l).set(n.ports.len() as i64);
    }
    for r in fdb::show(&state, &maps, None)? {
        fdb_entries.with_label_values(&[&r.network, r.kind]).inc();
    }
    for r in neigh::show(&state, &maps, None)? {
        neigh_entries.with_label_values(&[&r.network, r.kind]).inc();
    }
    let attached = f.gauge(
        "overlay_interface_attached",
        "Our program is attached (1) or not (0)",
        &["interface", "role"],
    )?;
    for i in &st.interfaces {
        attached.with_label_values(&[&i.interface, i.role]).set(i.attached as i64);
    }
    if let Some(c) = &st.control {
        f.single(
            "overlay_control_agent_running",
            "An overlayctl agent runs for the instance",
            c.running as i64,
        )?;
        f.single(
            "overlay_control_connected",
            "The agent is connected to etcd",
            (c.running && c.connected) as i64,
        )?;
        f.single("overlay_control_revision", "etcd revision of the agent's view", c.revision)?;
        f.single("overlay_control_retries", "Failed attempts since the last success", c.retries as i64)?;
        f.single("overlay_control_remote_vteps", "(network, VTEP) pairs installed", c.remote_vteps as i64)?;
        f.single("overlay_control_remote_macs", "Other hosts' MACs installed", c.remote_macs as i64)?;
        f.single("overlay_control_local_macs", "This host's MACs published", c.local_macs as i64)?;
        f.single_counter("overlay_control_sessions_total", "Sessions with etcd", c.sessions)?;
        f.single_counter("overlay_control_relists_total", "Full lists of the prefix", c.relists as u64)?;
        let ignored = f.counter("overlay_control_ignored_total", "Keys refused, by reason", &["reason"])?;
        for (r, v) in &c.ignored {
            ignored.with_label_values(&[r]).inc_by(*v);
        }
    }
    drop(state);
    let mut out = Vec::new();
    TextEncoder::new().encode(&f.reg.gather(), &mut out).map_err(prom)?;
    String::from_utf8(out).map_err(|e| Error::Io(std::io::Error::other(e)))
}

/// Serves `GET /metrics` for instance `name` on `listen` until the process
/// ends. Each scrape reads the maps afresh; an instance that is not up
/// answers 503 with the reason.
pub fn serve(name: &str, listen: SocketAddr) -> Result<()> {
    let server = bind(listen)?;
    run(name, &server);
    Ok(())
}

pub fn bind(listen: SocketAddr) -> Result<tiny_http::Server> {
    tiny_http::Server::http(listen).map_err(|e| Error::Os {
        op: format!("metrics: listen on {listen}"),
        source: std::io::Error::other(e),
    })
}

pub fn run(name: &str, server: &tiny_http::Server) {
    let text = tiny_http::Header::from_bytes("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        .expect("static header");
    for req in server.incoming_requests() {
        let resp = match (req.method(), req.url()) {
            (tiny_http::Method::Get, "/metrics") => match render(name) {
                Ok(body) => tiny_http::Response::from_string(body).with_header(text.clone()),
                Err(e) => {
                    tiny_http::Response::from_string(format!("instance {name}: {e}\n")).with_status_code(503)
                }
            },
            (tiny_http::Method::Get, "/") => {
                tiny_http::Response::from_string("overlayctl metrics: GET /metrics\n")
            }
            _ => tiny_http::Response::from_string("not found\n").with_status_code(404),
        };
        if let Err(e) = req.respond(resp) {
            log::debug!("metrics: respond: {e}");
        }
    }
}
