//! `overlay-cni`: a CNI plugin (spec 1.0.0; 0.3.x and 0.4.0 accepted,
//! STATUS and GC of 1.1.0 answered) that makes a container's veth a port of
//! an overlay network: the same path as `overlayctl port add`, kept across
//! `up -c FILE` re-runs, with the container's MAC and addresses registered
//! as a static FDB entry (neighbour answers, and the control plane's MAC
//! keys when an agent runs).

pub mod conf;
pub mod error;
pub mod ipam;
pub mod record;
pub mod sandbox;
pub mod types;

use std::{fs::File, net::IpAddr};

use serde_json::{Value, json};

use self::{
    conf::{Command, Env, NetConf, SUPPORTED_VERSIONS},
    error::{CniError, CniResult, Code},
    record::Record,
    sandbox::RouteSpec,
    types::{CniOutput, Interface},
};
use crate::{
    changes,
    config::{MacAddr, Port, StaticFdb},
    instance, netlink,
};

/// Plugin-specific code (the spec leaves 100 and up to plugins): the
/// attachment is not what it should be (CHECK), or ADD found one already.
pub const CODE_ATTACHMENT_STATE: u32 = 100;

/// Runs one CNI command; what to print on stdout when it succeeds.
pub fn run(env: &Env, stdin: &[u8]) -> CniResult<Option<Value>> {
    if env.command == Command::Version {
        return Ok(Some(json!({"cniVersion": "1.1.0", "supportedVersions": SUPPORTED_VERSIONS})));
    }
    let conf = NetConf::parse(stdin)?;
    match env.command {
        Command::Add => add(env, &conf, stdin).map(Some),
        Command::Del => del(env, &conf, stdin).map(|_| None),
        Command::Check => check(env, &conf, stdin).map(|_| None),
        Command::Status => status(&conf).map(|_| None),
        Command::Gc => gc(env, &conf, stdin).map(|_| None),
        Command::Version => unreachable!(),
    }
}

/// The host end of the attachment (container id, interface): a name that
/// fits IFNAMSIZ, the same for every command on that attachment.
pub fn host_ifname(container_id: &str, ifname: &str) -> String {
    format!("ovc{:012x}", fnv1a(container_id, ifname) >> 16)
}

fn temp_ifname(container_id: &str, ifname: &str) -> String {
    format!("ovx{:012x}", fnv1a(container_id, ifname) >> 16)
}

fn fnv1a(container_id: &str, ifname: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in container_id.bytes().chain([0]).chain(ifname.bytes()) {
        h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The instance named by `instance`, or the only one up here.
fn instance_for(conf: &NetConf) -> CniResult<String> {
    match &conf.instance {
        Some(n) => match instance::require_state(n) {
            Ok(_) => Ok(n.clone()),
            Err(e) => Err(CniError::with(Code::InvalidConfig, format!("instance {n:?} is not up here"), e)),
        },
        None => match instance::instances_here().as_slice() {
            [one] => Ok(one.clone()),
            [] => Err(CniError::new(
                Code::InvalidConfig,
                "no overlayctl instance is up in this network namespace",
            )),
            many => Err(CniError::new(
                Code::InvalidConfig,
                format!("several instances are up here ({}): name one with \"instance\"", many.join(", ")),
            )),
        },
    }
}

fn open_netns(env: &Env) -> CniResult<File> {
    let p = env.netns.as_ref().expect("checked by Env::read");
    File::open(p).map_err(|e| CniError::with(Code::UnknownContainer, format!("CNI_NETNS {}", p.display()), e))
}

/// What ADD made so far, undone in reverse when a later step fails.
struct Undo<'a> {
    env: &'a Env,
    stdin: &'a [u8],
    ipam: Option<&'a str>,
    host: Option<String>,
    port: Option<(String, String)>,
}

impl Undo<'_> {
    fn run(self) {
        if let Some((inst, host)) = &self.port
            && let Err(e) = changes::port_del(inst, host)
        {
            log::warn!("undo: port {host}: {e}");
        }
        if let Some(h) = &self.host
            && let Ok(l) = netlink::link_info(h)
        {
            let _ = netlink::delete_link(l.index);
        }
        if let Some(p) = self.ipam
            && let Err(e) = ipam::exec(self.env, p, "DEL", None, self.stdin)
        {
            log::warn!("undo: ipam {p} DEL: {e}");
        }
    }
}

fn add(env: &Env, conf: &NetConf, stdin: &[u8]) -> CniResult<Value> {
    let inst = instance_for(conf)?;
    let network = conf.network()?.to_string();
    let state = instance::require_state(&inst).map_err(CniError::io(format!("instance {inst}")))?;
    if state.config.network(&network).is_none() {
        return Err(CniError::new(
            Code::InvalidConfig,
            format!("instance {inst} has no network {network:?}"),
        ));
    }
    let ipam_type = conf.ipam_type()?;
    if let Some(p) = ipam_type {
        ipam::find(env, p)?;
    }
    let ns = open_netns(env)?;
    let (cid, ifname) = (env.container_id(), env.ifname());
    let host = host_ifname(cid, ifname);
    if netlink::link_exists(&host) {
        return Err(CniError {
            code: CODE_ATTACHMENT_STATE,
            msg: format!("attachment {cid}/{ifname} exists already (host interface {host}); DEL it first"),
            details: String::new(),
        });
    }
    let mtu = match conf.mtu {
        Some(m) => m,
        None => {
            let underlay = netlink::link_info(&state.config.underlay.interface)
                .map_err(CniError::io("underlay interface"))?;
            state.config.tenant_mtu([network.as_str()], underlay.mtu)
        }
    };

    let mut undo = Undo { env, stdin, ipam: None, host: None, port: None };
    let r = (|| -> CniResult<Value> {
        let ip = match ipam_type {
            Some(p) => {
                let v = ipam::exec(env, p, "ADD", None, stdin)?;
                undo.ipam = Some(p);
                let v =
                    v.ok_or_else(|| CniError::new(Code::Decode, format!("ipam {p} printed no result")))?;
                CniOutput::from_value(v, "ipam result")?
            }
            None => CniOutput::default(),
        };
        let temp = temp_ifname(cid, ifname);
        sandbox::create_pair(&host, &temp, &ns, mtu).map_err(CniError::io("create the veth pair"))?;
        undo.host = Some(host.clone());
        let routes = ip
            .routes
            .iter()
            .map(|r| RouteSpec { dst: r.dst, gw: r.gw.or_else(|| ip.gateway_for(&r.dst.addr)) })
            .collect();
        let addrs = ip.ips.iter().map(|i| i.address).collect();
        let mac = sandbox::configure(&ns, &temp, ifname, addrs, routes)
            .map_err(CniError::io("configure the container's interface"))?;
        let ips: Vec<IpAddr> = ip.ips.iter().map(|i| i.address.addr).collect();
        attach_port(&inst, &host, &network, mtu, MacAddr(mac), &ips)?;
        undo.port = Some((inst.clone(), host.clone()));
        let netns = env.netns.as_ref().expect("checked").display().to_string();
        instance::record_created(&inst, &host, &netns).map_err(CniError::io("record the port"))?;
        let rec = Record {
            container_id: cid.into(),
            ifname: ifname.into(),
            netns: netns.clone(),
            config_name: conf.name.clone(),
            network: network.clone(),
            host_ifname: host.clone(),
            mac: MacAddr(mac),
            ips,
        };
        record::save(&inst, &rec).map_err(|e| CniError::with(Code::Io, "save the attachment record", e))?;
        Ok(result(conf, &host, &rec, mtu, ip))
    })();
    if r.is_err() {
        undo.run();
    }
    r
}

/// One run-time change: the port and its static entry (MAC, addresses).
fn attach_port(
    inst: &str,
    host: &str,
    network: &str,
    mtu: u32,
    mac: MacAddr,
    ips: &[IpAddr],
) -> CniResult<()> {
    let port = Port {
        interface: host.into(),
        network: Some(network.into()),
        trunk: None,
        native: None,
        priority_tagged: false,
        mtu: Some(mtu),
        xdp_target: true,
    };
    let entry =
        StaticFdb { mac, network: network.into(), remote: None, port: Some(host.into()), ip: ips.to_vec() };
    instance::change_runtime(inst, |s, rt| -> crate::Result<()> {
        if s.config.ports.iter().any(|p| p.interface == host) {
            return Err(changes::Refusal::PortPresent(host.into()).into());
        }
        rt.ports.push(port);
        rt.fdb.retain(|f| !(f.network == network && f.mac == mac));
        rt.fdb.push(entry);
        Ok(())
    })
    .map_err(|e| CniError::with(Code::Io, format!("make {host} a port of {network}"), e))
}

fn result(conf: &NetConf, host: &str, rec: &Record, mtu: u32, ip: CniOutput) -> Value {
    let mut out = CniOutput {
        cni_version: conf.cni_version.clone(),
        interfaces: vec![
            Interface {
                name: host.into(),
                mac: netlink::link_info(host).map(|l| MacAddr(l.mac).to_string()).unwrap_or_default(),
                mtu: None,
                sandbox: None,
            },
            Interface {
                name: rec.ifname.clone(),
                mac: rec.mac.to_string(),
                mtu: None,
                sandbox: Some(rec.netns.clone()),
            },
        ],
        ips: ip.ips,
        routes: ip.routes,
        dns: ip.dns,
    };
    if conf.cni_version == "1.1.0" {
        out.interfaces.iter_mut().for_each(|i| i.mtu = Some(mtu));
    }
    for i in &mut out.ips {
        i.interface = Some(1);
        i.version = conf.pre_1_0().then(|| if i.address.addr.is_ipv4() { "4" } else { "6" }.to_string());
    }
    serde_json::to_value(out).expect("plain struct")
}

/// DEL: whatever of the attachment is still there goes; absent parts are
/// not an error. IPAM is released last.
fn del(env: &Env, conf: &NetConf, stdin: &[u8]) -> CniResult<()> {
    let host = host_ifname(env.container_id(), env.ifname());
    let inst = record::find(&host).map(|(i, _)| i).or_else(|| instance_for(conf).ok());
    if let Some(inst) = &inst {
        detach(inst, &host)?;
    }
    if let Ok(l) = netlink::link_info(&host) {
        netlink::delete_link(l.index).map_err(CniError::io(format!("delete {host}")))?;
    }
    if let Some(p) = conf.ipam_type()? {
        ipam::exec(env, p, "DEL", None, stdin)?;
    }
    Ok(())
}

/// Removes the port `host` (and its static entry) from `inst`, if it is one,
/// and the record.
fn detach(inst: &str, host: &str) -> CniResult<()> {
    match changes::port_del(inst, host) {
        Ok(()) | Err(crate::Error::Refused(changes::Refusal::PortAbsent(_))) => {}
        Err(crate::Error::NotUp(..)) => {}
        Err(e) => return Err(CniError::with(Code::Io, format!("remove port {host}"), e)),
    }
    record::remove(inst, host).map_err(|e| CniError::with(Code::Io, "remove the attachment record", e))
}

fn mismatch(msg: String) -> CniError {
    CniError { code: CODE_ATTACHMENT_STATE, msg, details: String::new() }
}

/// CHECK: the attachment is what `prevResult` says, and still a port of its
/// network with its static entry.
fn check(env: &Env, conf: &NetConf, stdin: &[u8]) -> CniResult<()> {
    if !conf.has_check() {
        return Err(CniError::new(
            Code::IncompatibleVersion,
            format!("CHECK needs cniVersion 0.4.0 or later, not {}", conf.cni_version),
        ));
    }
    let prev = conf
        .prev_result
        .clone()
        .ok_or_else(|| CniError::new(Code::InvalidConfig, "CHECK needs prevResult"))?;
    let prev = CniOutput::from_value(prev, "prevResult")?;
    let (cid, ifname) = (env.container_id(), env.ifname());
    let host = host_ifname(cid, ifname);
    let netns = env.netns.as_ref().expect("checked").display().to_string();
    let cont = prev
        .interfaces
        .iter()
        .find(|i| i.name == ifname && i.sandbox.as_deref() == Some(netns.as_str()))
        .ok_or_else(|| mismatch(format!("prevResult has no interface {ifname} in {netns}")))?;
    let inst = instance_for(conf)?;
    let network = conf.network()?;
    let s = instance::require_state(&inst).map_err(CniError::io(format!("instance {inst}")))?;
    if !s.config.ports.iter().any(|p| p.interface == host && p.network.as_deref() == Some(network)) {
        return Err(mismatch(format!("{host} is not a port of {network} in instance {inst}")));
    }
    let mac: MacAddr = cont.mac.parse().map_err(|e| CniError::with(Code::Decode, "prevResult", e))?;
    if !s.config.fdb.iter().any(|f| f.mac == mac && f.network == network && f.port.as_deref() == Some(&host))
    {
        return Err(mismatch(format!("no static FDB entry {mac} -> {host} in {network}")));
    }
    if !netlink::link_exists(&host) {
        return Err(mismatch(format!("host interface {host} is gone")));
    }
    let ns = open_netns(env)?;
    let seen = sandbox::observe(&ns, ifname).map_err(|e| mismatch(format!("{ifname} in {netns}: {e}")))?;
    if MacAddr(seen.mac) != mac {
        return Err(mismatch(format!("{ifname} has MAC {}, prevResult says {mac}", MacAddr(seen.mac))));
    }
    for i in &prev.ips {
        if !seen.addrs.contains(&i.address) {
            return Err(mismatch(format!("{ifname} lacks address {}", i.address)));
        }
    }
    for r in &prev.routes {
        let want = RouteSpec { dst: r.dst, gw: r.gw.or_else(|| prev.gateway_for(&r.dst.addr)) };
        if !seen.routes.contains(&want) {
            return Err(mismatch(format!("route {} via {:?} is missing", r.dst, want.gw)));
        }
    }
    if let Some(p) = conf.ipam_type()? {
        ipam::exec(env, p, "CHECK", None, stdin)?;
    }
    Ok(())
}

/// STATUS (1.1.0): ready when the instance is up here.
fn status(conf: &NetConf) -> CniResult<()> {
    instance_for(conf).map(|_| ()).map_err(|e| CniError { code: Code::NotAvailable as u32, ..e })
}

/// GC (1.1.0): attachments this network configuration made that the runtime
/// no longer lists are removed, and their addresses released.
fn gc(env: &Env, conf: &NetConf, stdin: &[u8]) -> CniResult<()> {
    let valid = conf.valid_attachments.clone().unwrap_or_default();
    let Ok(inst) = instance_for(conf) else { return Ok(()) };
    let ipam_type = conf.ipam_type()?;
    for r in record::all(&inst).into_iter().filter(|r| r.config_name == conf.name) {
        if valid.iter().any(|a| a.container_id == r.container_id && a.ifname == r.ifname) {
            continue;
        }
        detach(&inst, &r.host_ifname)?;
        if let Ok(l) = netlink::link_info(&r.host_ifname) {
            let _ = netlink::delete_link(l.index);
        }
        if let Some(p) = ipam_type {
            ipam::exec(env, p, "DEL", Some((&r.container_id, &r.ifname)), stdin)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_fit_and_differ() {
        let a = host_ifname("c0ffee", "eth0");
        assert_eq!(a.len(), 15);
        assert_eq!(a, host_ifname("c0ffee", "eth0"));
        assert_ne!(a, host_ifname("c0ffee", "eth1"));
        assert_ne!(a, host_ifname("c0ffe", "eeth0"));
        assert!(conf::valid_ifname(&a) && conf::valid_ifname(&temp_ifname("c0ffee", "eth0")));
    }

    #[test]
    fn environment_and_config_errors_carry_the_spec_codes() {
        let env = |vars: &[(&str, &str)]| {
            let vars: Vec<(String, String)> =
                vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            Env::read(move |k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
        };
        assert_eq!(env(&[]).unwrap_err().code, 4);
        assert_eq!(env(&[("CNI_COMMAND", "ADD")]).unwrap_err().code, 4);
        assert_eq!(
            env(&[
                ("CNI_COMMAND", "ADD"),
                ("CNI_CONTAINERID", "a/b"),
                ("CNI_IFNAME", "eth0"),
                ("CNI_NETNS", "/x")
            ])
            .unwrap_err()
            .code,
            4
        );
        assert!(env(&[("CNI_COMMAND", "DEL"), ("CNI_CONTAINERID", "abc"), ("CNI_IFNAME", "eth0")]).is_ok());
        assert_eq!(NetConf::parse(b"{").unwrap_err().code, 6);
        assert_eq!(
            NetConf::parse(br#"{"cniVersion":"9.9.9","name":"n","type":"overlay-cni"}"#).unwrap_err().code,
            1
        );
        let c = NetConf::parse(br#"{"cniVersion":"1.0.0","name":"n","type":"overlay-cni"}"#).unwrap();
        assert_eq!(c.network().unwrap_err().code, 7);
        let c =
            NetConf::parse(br#"{"cniVersion":"1.0.0","name":"n","type":"overlay-cni","ipam":{}}"#).unwrap();
        assert_eq!(c.ipam_type().unwrap_err().code, 7);
        assert_eq!(
            NetConf::parse(br#"{"cniVersion":"1.0.0","name":"n","type":"x","mtu":20}"#).unwrap_err().code,
            7
        );
    }

    #[test]
    fn results_before_1_0_carry_the_ip_version() {
        let ip = CniOutput::from_value(
            json!({"cniVersion": "0.4.0", "ips": [{"address": "203.0.113.9/24", "version": "4"}]}),
            "ipam result",
        )
        .unwrap();
        let rec = Record {
            container_id: "c".into(),
            ifname: "eth0".into(),
            netns: "/run/netns/x".into(),
            config_name: "ovl".into(),
            network: "blue".into(),
            host_ifname: "ovc0".into(),
            mac: "02:00:00:00:00:01".parse().unwrap(),
            ips: vec![],
        };
        for (v, version) in [("0.4.0", Some("4")), ("1.0.0", None)] {
            let conf = NetConf::parse(format!(r#"{{"cniVersion":"{v}","name":"n","type":"t"}}"#).as_bytes())
                .unwrap();
            let out = result(&conf, "ovc0", &rec, 1450, ip.clone());
            assert_eq!(out["ips"][0]["version"].as_str(), version, "{v}: {out}");
            assert_eq!(out["ips"][0]["interface"], 1);
            assert_eq!(out["interfaces"][1]["sandbox"], "/run/netns/x");
        }
    }
}
