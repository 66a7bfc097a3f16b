//! overlayctl: manage an eBPF VXLAN/VLAN overlay instance.

use std::{net::Ipv4Addr, path::PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use overlay_user::{
    bpffs,
    config::{self, Config, Port, StaticFdb},
    fdb, instance, loader, netlink,
    runtime::Runtime,
    stats,
};

#[derive(Parser)]
#[command(name = "overlayctl", version, about = "eBPF VXLAN/VLAN overlay: configure, inspect, operate")]
struct Cli {
    /// Instance to act on (default: the only instance in this network namespace).
    #[arg(long, global = true)]
    name: Option<String>,
    /// JSON output.
    #[arg(short = 'j', long = "json", global = true)]
    json: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Validate FILE, then attach programs and program maps (idempotent).
    Up {
        #[arg(short, long)]
        config: PathBuf,
        /// Attach even where another tool already attached a TC program (ours run first).
        #[arg(long)]
        force: bool,
    },
    /// Detach everything and remove the instance's pins (safe to repeat).
    Down {
        #[arg(short, long)]
        config: Option<PathBuf>,
    },
    /// Instance, interfaces, programs and networks.
    Status,
    /// Forwarding database.
    #[command(subcommand)]
    Fdb(FdbCmd),
    /// Tenant ports.
    #[command(subcommand)]
    Port(PortCmd),
    /// Peer VTEPs of a network.
    #[command(subcommand)]
    Peer(PeerCmd),
    /// Per-reason counters, total and per network.
    Stats {
        #[arg(long)]
        reset: bool,
    },
}

#[derive(Subcommand)]
enum FdbCmd {
    /// List entries (like ovs-appctl fdb/show).
    Show {
        #[arg(long)]
        network: Option<String>,
    },
    /// Add a static entry.
    Add(FdbTarget),
    /// Delete a static or learned entry.
    Del {
        mac: String,
        #[arg(long)]
        network: String,
    },
    /// Remove learned entries.
    Flush {
        #[arg(long)]
        network: Option<String>,
    },
}

#[derive(Args)]
struct FdbTarget {
    mac: String,
    #[arg(long)]
    network: String,
    #[arg(long, conflicts_with = "port", required_unless_present = "port")]
    remote: Option<Ipv4Addr>,
    #[arg(long)]
    port: Option<String>,
}

#[derive(Subcommand)]
enum PortCmd {
    /// Add a port: an existing interface, or with --netns a new veth pair
    /// whose other end goes into that namespace.
    Add {
        interface: String,
        #[arg(long, conflicts_with = "trunk", required_unless_present = "trunk")]
        network: Option<String>,
        #[arg(long, value_delimiter = ',')]
        trunk: Option<Vec<String>>,
        #[arg(long, requires = "trunk")]
        native: Option<String>,
        /// Create a veth pair; its peer end goes into this network namespace.
        #[arg(long)]
        netns: Option<String>,
        /// Name of the veth end inside --netns.
        #[arg(long, default_value = "eth0", requires = "netns")]
        peer_name: String,
        #[arg(long)]
        mtu: Option<u32>,
    },
    /// Remove a port (and the veth pair if overlayctl created it).
    Del { interface: String },
}

#[derive(Subcommand)]
enum PeerCmd {
    Add {
        ip: Ipv4Addr,
        #[arg(long)]
        network: String,
    },
    Del {
        ip: Ipv4Addr,
        #[arg(long)]
        network: String,
    },
}

/// `println!` that ends the process quietly when stdout is a closed pipe
/// (`overlayctl fdb show | head -1`), as command-line tools do. Output is
/// printed after the work is done, so nothing is left half-applied.
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write;
        if let Err(e) = writeln!(std::io::stdout().lock(), $($t)*) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
            eprintln!("overlayctl: stdout: {e}");
            std::process::exit(1);
        }
    }};
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = Cli::parse();
    // Before any thread exists (see the function's documentation).
    if let Err(e) = bpffs::join_pin_mount_namespace() {
        eprintln!("overlayctl: {e}");
        std::process::exit(1);
    }
    if let Err(e) = run(cli) {
        eprintln!("overlayctl: {e:#}");
        std::process::exit(1);
    }
}

/// The instance named with --name, or the only one up in this namespace.
fn instance_name(cli_name: &Option<String>) -> Result<String> {
    if let Some(n) = cli_name {
        return Ok(n.clone());
    }
    let mut found = Vec::new();
    if let Ok(rd) = std::fs::read_dir(bpffs::run_dir()) {
        for e in rd.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "json") {
                let n = p.file_stem().unwrap_or_default().to_string_lossy().to_string();
                if instance::require_state(&n).is_ok() {
                    found.push(n);
                }
            }
        }
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => bail!("no instance is up in this network namespace (overlayctl up -c FILE)"),
        _ => bail!("several instances are up here ({}); pick one with --name", found.join(", ")),
    }
}

fn print_json<T: serde::Serialize>(v: &T) -> Result<()> {
    out!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// Applies a change to the run-time additions of an instance (kept across
/// `up -c FILE`, like `ovs-vsctl add-port`).
fn change(name: &str, f: impl FnOnce(&instance::State, &mut Runtime) -> Result<()>) -> Result<()> {
    instance::change_runtime(name, f)
}

fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Up { config, force } => {
            let cfg = Config::load(&config)?;
            instance::up(&cfg, instance::UpOptions { force })
                .with_context(|| format!("up {} ({})", cfg.name, config.display()))?;
            if !cli.json {
                out!(
                    "instance {} up: {} network(s), {} port(s)",
                    cfg.name,
                    cfg.networks.len(),
                    cfg.ports.len()
                );
            }
        }
        Cmd::Down { config } => {
            let name = match (config, &cli.name) {
                (Some(p), _) => Config::load(&p)?.name,
                (None, Some(n)) => n.clone(),
                (None, None) => bail!("down needs -c FILE or --name NAME"),
            };
            instance::down(&name).with_context(|| format!("down {name}"))?;
            if !cli.json {
                out!("instance {name} down");
            }
        }
        Cmd::Status => status(&instance_name(&cli.name)?, cli.json)?,
        Cmd::Fdb(c) => fdb_cmd(&instance_name(&cli.name)?, c, cli.json)?,
        Cmd::Port(c) => port_cmd(&instance_name(&cli.name)?, c)?,
        Cmd::Peer(c) => {
            let name = instance_name(&cli.name)?;
            let (ip, network, add) = match c {
                PeerCmd::Add { ip, network } => (ip, network, true),
                PeerCmd::Del { ip, network } => (ip, network, false),
            };
            change(&name, |s, rt| {
                let n = s.config.network(&network).with_context(|| format!("unknown network {network:?}"))?;
                let in_file = s.file.network(&network).is_some_and(|f| f.peers.contains(&ip));
                match (add, n.peers.contains(&ip)) {
                    (true, true) => bail!("peer {ip} is already in {network}"),
                    (true, false) => rt.peers.push((network.clone(), ip)),
                    (false, false) => bail!("peer {ip} is not in {network}"),
                    (false, true) if in_file => {
                        bail!("peer {ip} of {network} comes from the config file: remove it there and run up")
                    }
                    (false, true) => rt.peers.retain(|(n, p)| !(n == &network && *p == ip)),
                }
                Ok(())
            })?;
        }
        Cmd::Stats { reset } => {
            let name = instance_name(&cli.name)?;
            let (s, mut m) = instance::open_maps(&name)?;
            if reset {
                stats::reset(&mut m)?;
                return Ok(());
            }
            let st = stats::read(&s, &m)?;
            if cli.json {
                return print_json(&st);
            }
            out!("{:<28} {:>14}", "counter", "total");
            for (k, v) in &st.total {
                out!("{k:<28} {v:>14}");
            }
            for (net, c) in &st.networks {
                out!("\nnetwork {net}:");
                for (k, v) in c {
                    out!("  {k:<26} {v:>14}");
                }
            }
        }
    }
    Ok(())
}

fn fdb_cmd(name: &str, c: FdbCmd, json: bool) -> Result<()> {
    match c {
        FdbCmd::Show { network } => {
            let (s, m) = instance::open_maps(name)?;
            if let Some(n) = &network
                && !s.net_ids.contains_key(n)
            {
                bail!("unknown network {n:?}");
            }
            let rows = fdb::show(&s, &m, network.as_deref())?;
            if json {
                return print_json(&rows);
            }
            out!(
                "{:<12} {:>8} {:>5}  {:<17}  {:<22} {:<8} {:>5}",
                "network",
                "vni",
                "vlan",
                "mac",
                "location",
                "type",
                "age"
            );
            for r in rows {
                let opt = |v: Option<String>| v.unwrap_or_else(|| "-".into());
                out!(
                    "{:<12} {:>8} {:>5}  {:<17}  {:<22} {:<8} {:>5}",
                    r.network,
                    opt(r.vni.map(|v| v.to_string())),
                    opt(r.vlan.map(|v| v.to_string())),
                    r.mac,
                    r.location,
                    r.kind,
                    opt(r.age.map(|v| v.to_string()))
                );
            }
        }
        FdbCmd::Add(t) => {
            let entry =
                StaticFdb { mac: t.mac.clone(), network: t.network.clone(), remote: t.remote, port: t.port };
            change(name, |s, rt| {
                let mac = config::parse_mac(&entry.mac)
                    .with_context(|| format!("{:?} is not a MAC address", entry.mac))?;
                let same =
                    |f: &StaticFdb| f.network == entry.network && config::parse_mac(&f.mac) == Some(mac);
                if s.file.fdb.iter().any(same) {
                    bail!(
                        "{} in {} is a static entry of the config file: change it there",
                        entry.mac,
                        entry.network
                    );
                }
                rt.fdb.retain(|f| !same(f));
                rt.fdb.push(entry);
                Ok(())
            })?;
        }
        FdbCmd::Del { mac, network } => {
            let m = config::parse_mac(&mac).with_context(|| format!("{mac:?} is not a MAC address"))?;
            let s = instance::require_state(name)?;
            let same = |f: &StaticFdb| f.network == network && config::parse_mac(&f.mac) == Some(m);
            if s.file.fdb.iter().any(same) {
                bail!("{mac} in {network} is a static entry of the config file: remove it there and run up");
            }
            if s.runtime.fdb.iter().any(same) {
                change(name, |_, rt| {
                    rt.fdb.retain(|f| !same(f));
                    Ok(())
                })?;
            } else {
                let (s, mut maps) = instance::open_maps(name)?;
                let id = *s.net_ids.get(&network).with_context(|| format!("unknown network {network:?}"))?;
                let key = overlay_common::maps::FdbKey { net_id: id, mac: m, _pad: [0; 2] };
                maps.fdb.remove(&key).with_context(|| format!("no entry for {mac} in {network}"))?;
                overlay_user::apply::recount_learned(&mut maps)?;
            }
        }
        FdbCmd::Flush { network } => {
            let (s, mut m) = instance::open_maps(name)?;
            let n = fdb::flush(&s, &mut m, network.as_deref())?;
            if !json {
                out!("flushed {n} learned entr{}", if n == 1 { "y" } else { "ies" });
            }
        }
    }
    Ok(())
}

fn port_cmd(name: &str, c: PortCmd) -> Result<()> {
    match c {
        PortCmd::Add { interface, network, trunk, native, netns, peer_name, mtu } => {
            let s = instance::require_state(name)?;
            if s.config.ports.iter().any(|p| p.interface == interface) {
                bail!("{interface} is already a port");
            }
            let port = Port {
                interface: interface.clone(),
                network,
                trunk,
                native,
                priority_tagged: false,
                mtu,
                // With --netns we make the far end and turn GRO on there.
                xdp_target: netns.is_some(),
            };
            // Check the change before creating anything.
            let mut cfg = s.config.clone();
            cfg.ports.push(port.clone());
            cfg.validate()?;
            if let Some(ns) = &netns {
                if netlink::link_exists(&interface) {
                    bail!("interface {interface} already exists; --netns creates a new veth pair");
                }
                let underlay = netlink::link_info(&s.config.underlay.interface)?;
                let m = mtu.unwrap_or(underlay.mtu.saturating_sub(overlay_common::VXLAN_OVERHEAD));
                netlink::create_veth_into_netns(&interface, &peer_name, ns, Some(m))
                    .with_context(|| format!("create veth {interface} <-> {ns}:{peer_name}"))?;
            }
            let added = change(name, |_, rt| {
                rt.ports.push(port.clone());
                Ok(())
            });
            if let Err(e) = added {
                if netns.is_some()
                    && let Ok(l) = netlink::link_info(&interface)
                {
                    let _ = netlink::delete_link(l.index);
                }
                return Err(e);
            }
            if let Some(ns) = &netns {
                instance::record_created(name, &interface, ns)?;
            }
        }
        PortCmd::Del { interface } => {
            let s = instance::require_state(name)?;
            if s.file.ports.iter().any(|p| p.interface == interface) {
                bail!("{interface} is a port of the config file: remove it there and run up");
            }
            if !s.runtime.ports.iter().any(|p| p.interface == interface) {
                bail!("{interface} is not a port");
            }
            change(name, |_, rt| {
                rt.ports.retain(|p| p.interface != interface);
                rt.fdb.retain(|f| f.port.as_deref() != Some(interface.as_str()));
                Ok(())
            })?;
            if s.created.contains_key(&interface)
                && let Ok(l) = netlink::link_info(&interface)
            {
                netlink::delete_link(l.index)?;
            }
        }
    }
    Ok(())
}

fn status(name: &str, json: bool) -> Result<()> {
    let (s, maps) = instance::open_maps(name)?;
    let learned = overlay_user::apply::learned_per_network(&maps);
    let dir = bpffs::pin_dir(name);
    let mut ifaces = Vec::new();
    for (iface, idx) in &s.attached {
        // An interface deleted (or re-created with a new ifindex) since `up`
        // has lost its program: reported until `up` runs again.
        let present = netlink::link_info(iface).map(|l| l.index == *idx).unwrap_or(false);
        let prog = loader::pinned_prog_id(&dir, iface).filter(|_| present);
        let underlay = *iface == s.config.underlay.interface;
        let xdp = if underlay { loader::xdp_attached(&dir, iface) } else { None };
        let hook = match xdp {
            Some(loader::XdpAttach::Native) => "tcx + xdp native",
            Some(loader::XdpAttach::Generic) => "tcx + xdp generic",
            None => "tc-ingress (tcx)",
        };
        ifaces.push(serde_json::json!({
            "interface": iface, "ifindex": idx, "role": if underlay { "underlay" } else { "port" },
            "hook": hook, "program_id": prog, "attached": prog.is_some(), "present": present,
        }));
    }
    let nets: Vec<_> = s
        .config
        .networks
        .iter()
        .map(|n| {
            let ports: Vec<&str> = s
                .config
                .ports
                .iter()
                .filter(|p| {
                    s.config.port_networks(p).map(|v| v.iter().any(|(x, _)| **x == n.name)).unwrap_or(false)
                })
                .map(|p| p.interface.as_str())
                .collect();
            let id = s.net_ids.get(&n.name);
            serde_json::json!({"name": n.name, "id": id, "vni": n.vni, "vlan": n.vlan,
                "peers": n.peers, "ports": ports,
                "learned": id.and_then(|i| learned.get(i)).copied().unwrap_or(0),
                "max_learned": n.learn_limit(s.config.fdb_size)})
        })
        .collect();
    let v = serde_json::json!({
        "instance": name,
        "underlay": {"interface": s.config.underlay.interface, "address": s.config.underlay.address,
                     "port": s.config.underlay.port, "xdp": s.config.underlay.xdp},
        "pins": dir, "interfaces": ifaces, "networks": nets,
    });
    if json {
        return print_json(&v);
    }
    out!("instance {name}  pins {}", dir.display());
    out!(
        "underlay {} vtep {}:{} (xdp {})",
        s.config.underlay.interface,
        s.config.underlay.address,
        s.config.underlay.port,
        s.config.underlay.xdp
    );
    out!("\n{:<16} {:<9} {:<18} {:>8}", "interface", "role", "hook", "prog");
    for i in &ifaces {
        out!(
            "{:<16} {:<9} {:<18} {:>8}",
            i["interface"].as_str().unwrap_or(""),
            i["role"].as_str().unwrap_or(""),
            i["hook"].as_str().unwrap_or(""),
            i["program_id"].as_u64().map(|v| v.to_string()).unwrap_or_else(|| {
                if i["present"] == true { "DETACHED" } else { "MISSING (gone or re-created: run up)" }.into()
            })
        );
    }
    out!("\n{:<12} {:>8} {:>5} {:>6} {:>15}  ports", "network", "vni", "vlan", "peers", "learned/max");
    for n in &nets {
        let max = match n["max_learned"].as_u64() {
            Some(0) | None => "-".to_string(),
            Some(m) => m.to_string(),
        };
        out!(
            "{:<12} {:>8} {:>5} {:>6} {:>15}  {}",
            n["name"].as_str().unwrap_or(""),
            n["vni"].as_u64().map(|v| v.to_string()).unwrap_or_else(|| "-".into()),
            n["vlan"].as_u64().map(|v| v.to_string()).unwrap_or_else(|| "-".into()),
            n["peers"].as_array().map(|a| a.len()).unwrap_or(0),
            format!("{}/{max}", n["learned"].as_u64().unwrap_or(0)),
            n["ports"]
                .as_array()
                .map(|a| a.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>().join(","))
                .unwrap_or_default()
        );
    }
    Ok(())
}
