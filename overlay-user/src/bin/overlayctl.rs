//! overlayctl: manage an eBPF VXLAN/VLAN overlay instance.

use std::{net::IpAddr, path::PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use overlay_user::{
    agent, bpffs, changes,
    config::{Config, Port, StaticFdb, StaticNeigh},
    fdb, instance,
    mac::MacAddr,
    neigh, stats, status,
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
    /// Run `up -c FILE`, then the control plane ([control]: etcd) until SIGTERM/SIGINT.
    Agent {
        #[arg(short, long)]
        config: PathBuf,
        /// On exit, revoke the lease: the other hosts drop this one at once.
        #[arg(long)]
        leave: bool,
        /// Also serve Prometheus metrics (GET /metrics) on ADDR (ip:port).
        #[arg(long, value_name = "ADDR")]
        metrics: Option<std::net::SocketAddr>,
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
    /// Neighbour table: the addresses the datapath answers ARP and NS for.
    #[command(subcommand)]
    Neigh(NeighCmd),
    /// Stream datapath events until interrupted: drops with their reason,
    /// and with --learn FDB learns, moves and age-outs (default: drops).
    Monitor {
        /// Drop events (the default when neither --drops nor --learn is given).
        #[arg(long)]
        drops: bool,
        /// Learn, move and age-out events.
        #[arg(long)]
        learn: bool,
        /// Only events of this network.
        #[arg(long)]
        network: Option<String>,
        /// Events per second per CPU; the rest is counted as monitor_lost.
        #[arg(long, default_value = "1000/s", value_parser = parse_rate)]
        rate: u32,
    },
    /// Serve Prometheus metrics (GET /metrics: counters, FDB and neighbour
    /// entries, peers, control plane) on ADDR until interrupted.
    Metrics {
        #[arg(long, value_name = "ADDR")]
        listen: std::net::SocketAddr,
    },
    /// Run the datapath on one frame against the live maps, without side
    /// effects (no learning, no counters, no copies sent), and print the
    /// path it takes: network, FDB, port or VTEP, flood copies, verdict.
    Trace(TraceArgs),
    /// Per-reason counters, total and per network.
    Stats {
        #[arg(long)]
        reset: bool,
    },
}

#[derive(Args)]
struct TraceArgs {
    /// The tenant port the frame arrives on.
    #[arg(long, required_unless_present = "underlay", conflicts_with = "underlay")]
    port: Option<String>,
    /// The frame arrives on the underlay, in the encapsulation of the
    /// network with --vni (a built frame is sent from --vtep to this host's
    /// VTEP address and MAC).
    #[arg(long)]
    underlay: bool,
    /// The frame's bytes in hex, exactly as received (with --underlay the
    /// outer headers too).
    #[arg(long, conflicts_with_all = ["from", "to", "vlan", "ip", "arp", "vtep", "vni"])]
    frame: Option<String>,
    /// Source MAC of a built frame.
    #[arg(long, required_unless_present = "frame")]
    from: Option<MacAddr>,
    /// Destination MAC (default with --arp: broadcast).
    #[arg(long)]
    to: Option<MacAddr>,
    /// An 802.1Q tag with this VID.
    #[arg(long)]
    vlan: Option<u16>,
    /// Source and destination address, A,B: UDP over IPv4 or IPv6 (with
    /// --arp: the sender and the address asked for).
    #[arg(long, value_parser = parse_ip_pair, value_name = "A,B")]
    ip: Option<(IpAddr, IpAddr)>,
    /// An ARP request (needs --ip).
    #[arg(long)]
    arp: bool,
    /// --underlay: the peer VTEP that sends it (outer source).
    #[arg(long, requires = "underlay")]
    vtep: Option<IpAddr>,
    /// --underlay: the VNI (or GRE key).
    #[arg(long, requires = "underlay")]
    vni: Option<u32>,
}

fn parse_ip_pair(s: &str) -> std::result::Result<(IpAddr, IpAddr), String> {
    let (a, b) = s.split_once(',').ok_or_else(|| format!("{s:?}: expected two addresses, A,B"))?;
    let ip = |t: &str| t.trim().parse::<IpAddr>().map_err(|_| format!("{t:?} is not an IP address"));
    Ok((ip(a)?, ip(b)?))
}

/// The frame `overlayctl trace` runs, and the interface it arrives on.
fn trace_frame(t: &TraceArgs, state: &instance::State) -> Result<(Vec<u8>, String)> {
    use overlay_user::trace::build;
    let underlay = &state.config.underlay;
    let ifname = if t.underlay { underlay.interface.clone() } else { t.port.clone().unwrap_or_default() };
    if let Some(hex) = &t.frame {
        return Ok((build::from_hex(hex)?, ifname));
    }
    let spec = build::FrameSpec {
        src: t.from.context("--from MAC is needed (or --frame)")?,
        dst: t.to,
        vlan: t.vlan,
        ips: t.ip,
        arp: t.arp,
    };
    let inner = build::tenant(&spec)?;
    if !t.underlay {
        return Ok((inner, ifname));
    }
    let link = overlay_user::netlink::link_info(&underlay.interface)
        .with_context(|| format!("underlay {}", underlay.interface))?;
    let vni = t.vni.context("--underlay needs --vni")?;
    let encap =
        state.config.networks.iter().find(|n| n.vni == Some(vni)).map(|n| n.encap).unwrap_or_default();
    let outer = build::Outer {
        vtep: t.vtep.context("--underlay needs --vtep (the sending VTEP)")?,
        local: underlay.address,
        vni,
        encap,
        port: underlay.port,
        dst_mac: MacAddr(link.mac),
        src_mac: MacAddr([0x02, 0, 0, 0, 0, 0xfe]),
    };
    Ok((build::tunnel_from(&outer, &inner)?, ifname))
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
        mac: MacAddr,
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
    mac: MacAddr,
    #[arg(long)]
    network: String,
    #[arg(long, conflicts_with = "port", required_unless_present = "port")]
    remote: Option<IpAddr>,
    #[arg(long)]
    port: Option<String>,
}

#[derive(Subcommand)]
enum NeighCmd {
    /// List pairs (like ip neigh show).
    Show {
        #[arg(long)]
        network: Option<String>,
    },
    /// Add a configured pair: IP (v4 or v6) is MAC's in the network.
    Add {
        ip: IpAddr,
        mac: MacAddr,
        #[arg(long)]
        network: String,
    },
    /// Delete a configured (run-time) or learned pair.
    Del {
        ip: IpAddr,
        #[arg(long)]
        network: String,
    },
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
        /// Create a persistent tap for a VM (libvirt `<interface
        /// type='ethernet'>`, QEMU `-netdev tap,ifname=IF,script=no`).
        #[arg(long, conflicts_with = "netns")]
        tap: bool,
        /// Owner (uid) of the tap, for a hypervisor that runs unprivileged.
        #[arg(long, requires = "tap")]
        owner: Option<u32>,
        #[arg(long)]
        mtu: Option<u32>,
    },
    /// Remove a port (and the veth pair or tap if overlayctl created it).
    Del { interface: String },
}

#[derive(Subcommand)]
enum PeerCmd {
    /// Add a peer VTEP (of the underlay's family) to a network's flood list.
    Add {
        ip: IpAddr,
        #[arg(long)]
        network: String,
    },
    /// Remove a run-time peer.
    Del {
        ip: IpAddr,
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
    let mut found = instance::instances_here();
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
        Cmd::Agent { config, leave, metrics } => {
            let cfg = Config::load(&config)?;
            agent::run(&cfg, agent::AgentOptions { leave, metrics })
                .with_context(|| format!("agent {} ({})", cfg.name, config.display()))?;
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
        Cmd::Neigh(c) => neigh_cmd(&instance_name(&cli.name)?, c, cli.json)?,
        Cmd::Peer(c) => {
            let name = instance_name(&cli.name)?;
            match c {
                PeerCmd::Add { ip, network } => changes::peer(&name, &network, ip, true)?,
                PeerCmd::Del { ip, network } => changes::peer(&name, &network, ip, false)?,
            }
        }
        Cmd::Monitor { drops, learn, network, rate } => {
            let name = instance_name(&cli.name)?;
            let opts =
                overlay_user::monitor::MonitorOptions { drops: drops || !learn, fdb: learn, network, rate };
            let json = cli.json;
            overlay_user::monitor::run(
                &name,
                &opts,
                || eprintln!("monitoring {name} (Ctrl-C to stop)"),
                |e| {
                    use std::io::Write;
                    let text = if json {
                        serde_json::to_string(e).expect("event json")
                    } else {
                        overlay_user::monitor::line(e)
                    };
                    let mut o = std::io::stdout().lock();
                    writeln!(o, "{text}").and_then(|_| o.flush()).is_ok()
                },
            )?;
        }
        Cmd::Trace(t) => {
            use overlay_user::trace::{Hook, trace};
            let name = instance_name(&cli.name)?;
            let state = instance::require_state(&name)?;
            let (frame, ifname) = trace_frame(&t, &state)?;
            let hook = if t.underlay { Hook::Underlay } else { Hook::Tenant };
            let report = trace(&name, hook, &ifname, &frame).with_context(|| format!("trace on {ifname}"))?;
            if cli.json {
                print_json(&report)?;
            } else {
                print!("{}", report.text());
            }
        }
        Cmd::Metrics { listen } => {
            let name = instance_name(&cli.name)?;
            overlay_user::metrics::render(&name)?;
            overlay_user::metrics::serve(&name, listen)?;
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

/// The instance's state and maps, for a listing of `network` (all if none),
/// which must be one of its networks.
fn maps_of(name: &str, network: Option<&str>) -> Result<(instance::State, overlay_user::maps::Maps)> {
    let (s, m) = instance::open_maps(name)?;
    if let Some(n) = network
        && !s.net_ids.contains_key(n)
    {
        bail!("unknown network {n:?}");
    }
    Ok((s, m))
}

fn fdb_cmd(name: &str, c: FdbCmd, json: bool) -> Result<()> {
    match c {
        FdbCmd::Show { network } => {
            let (s, m) = maps_of(name, network.as_deref())?;
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
                StaticFdb { mac: t.mac, network: t.network, remote: t.remote, port: t.port, ip: vec![] };
            changes::fdb_add(name, entry)?;
        }
        FdbCmd::Del { mac, network } => changes::fdb_del(name, &network, mac)?,
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

fn neigh_cmd(name: &str, c: NeighCmd, json: bool) -> Result<()> {
    match c {
        NeighCmd::Show { network } => {
            let (s, m) = maps_of(name, network.as_deref())?;
            let rows = neigh::show(&s, &m, network.as_deref())?;
            if json {
                return print_json(&rows);
            }
            out!("{:<12} {:<39}  {:<17}  {:<8} {:>5}", "network", "ip", "mac", "type", "age");
            for r in rows {
                let age = r.age.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
                out!("{:<12} {:<39}  {:<17}  {:<8} {:>5}", r.network, r.ip, r.mac, r.kind, age);
            }
        }
        NeighCmd::Add { ip, mac, network } => changes::neigh_add(name, StaticNeigh { network, ip, mac })?,
        NeighCmd::Del { ip, network } => changes::neigh_del(name, &network, ip)?,
    }
    Ok(())
}

fn port_cmd(name: &str, c: PortCmd) -> Result<()> {
    match c {
        PortCmd::Add { interface, network, trunk, native, netns, peer_name, tap, owner, mtu } => {
            let port = Port {
                interface,
                network,
                trunk,
                native,
                priority_tagged: false,
                mtu,
                // With --netns we make the far end and turn GRO on there;
                // a tap takes XDP redirects as it is.
                xdp_target: netns.is_some() || tap,
            };
            let create = match (netns, tap) {
                (Some(netns), _) => Some(changes::Create::Veth { netns, name: peer_name }),
                (None, true) => Some(changes::Create::Tap { owner }),
                (None, false) => None,
            };
            changes::port_add(name, port, create)?;
        }
        PortCmd::Del { interface } => changes::port_del(name, &interface)?,
    }
    Ok(())
}

fn status(name: &str, json: bool) -> Result<()> {
    let st = status::read(name)?;
    if json {
        return print_json(&st);
    }
    let u = &st.underlay;
    out!("instance {name}  pins {}", st.pins.display());
    out!("underlay {} vtep {} (xdp {})", u.interface, std::net::SocketAddr::new(u.address, u.port), u.xdp);
    out!("\n{:<16} {:<9} {:<18} {:>8}", "interface", "role", "hook", "prog");
    for i in &st.interfaces {
        let prog = match (i.program_id, i.present) {
            (Some(id), _) => id.to_string(),
            (None, true) => "DETACHED".into(),
            (None, false) => "MISSING (gone or re-created: run up)".into(),
        };
        out!("{:<16} {:<9} {:<18} {:>8}", i.interface, i.role, i.hook, prog);
    }
    out!(
        "\n{:<12} {:>6} {:>10} {:>5} {:>6} {:>15}  ports",
        "network",
        "encap",
        "vni",
        "vlan",
        "peers",
        "learned/max"
    );
    let opt = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    for n in &st.networks {
        let max = if n.max_learned == 0 { "-".to_string() } else { n.max_learned.to_string() };
        out!(
            "{:<12} {:>6} {:>10} {:>5} {:>6} {:>15}  {}",
            n.name,
            opt(n.encap.map(|e| e.to_string())),
            opt(n.vni.map(|v| v.to_string())),
            opt(n.vlan.map(|v| v.to_string())),
            n.peers.len() + n.remote_vteps.len(),
            format!("{}/{max}", n.learned),
            n.ports.join(",")
        );
        if n.flood_overflow > 0 {
            out!("  ERROR: {} VTEPs beyond the flood set's capacity are not flooded to", n.flood_overflow);
        }
    }
    if let Some(c) = &st.control {
        let state = match (c.running, c.connected) {
            (false, _) => "agent not running",
            (true, true) => "connected",
            (true, false) => "DISCONNECTED (retrying)",
        };
        out!("\ncontrol {} ({state})", c.endpoints.join(","));
        let lease = c.lease_id.map(|l| format!("{l:x}")).unwrap_or_else(|| "-".into());
        out!(
            "  lease {lease}  revision {}  remote vteps {}  remote macs {}  local macs {}",
            c.revision,
            c.remote_vteps,
            c.remote_macs,
            c.local_macs
        );
        if let Some(e) = &c.last_error {
            out!("  last error: {e} ({} retries)", c.retries);
        }
        for (why, n) in &c.ignored {
            out!("  ignored {why}: {n}");
        }
    }
    if !st.log.is_empty() {
        out!("\ndatapath log (last {}):", overlay_user::status::LOG_LINES);
        for l in &st.log {
            out!("  {} {:<5} {}", l.time, l.level, l.message);
        }
    }
    Ok(())
}

/// `N/s` or `N`: events per second (1..=1,000,000).
fn parse_rate(s: &str) -> std::result::Result<u32, String> {
    let n: u32 =
        s.strip_suffix("/s").unwrap_or(s).parse().map_err(|e| format!("{s:?}: {e} (expected N/s)"))?;
    if (1..=1_000_000).contains(&n) { Ok(n) } else { Err(format!("{n}: must be 1..=1000000 per second")) }
}
