//! `cargo xtask demo`: the classic OVS/Neutron labs on this datapath, in
//! network namespaces on this machine.
//!
//! Three hosts on an underlay (192.0.2.0/24). VXLAN networks vxlan10
//! (VNI 10) and vxlan11 (VNI 11); dnsmasq on host 1 serves DHCP on VNI 10
//! to a VM on host 3; a router namespace joins both networks like a
//! Neutron router; VLAN 10/20 tenants isolated on host 1 while VLAN 10
//! reaches host 2 over a trunk. The hosts run `overlayctl agent` against a
//! 3-member etcd cluster on the underlay (192.0.2.250-252): no host lists
//! its peers. Everything is torn down at the end (and on Ctrl-C or
//! failure) unless `--keep`.

use std::{path::PathBuf, process::Command, time::Instant};

use anyhow::{Result, bail};

use crate::{
    cmd::{self, clean, root, step},
    lab,
};

const PREFIX: &str = "ovdemo";

fn ns(name: &str) -> String {
    format!("{PREFIX}-{name}")
}

/// Runs `sh -c cmd` in the demo namespace `name` (root namespace for "").
fn sh_in(name: &str, cmd: &str) -> Result<String> {
    if name.is_empty() { lab::sh_root(cmd) } else { lab::sh_in(&ns(name), cmd) }
}

struct Lab {
    dir: PathBuf,
    ctl: PathBuf,
    keep: bool,
    checks: Vec<(String, bool)>,
}

const HOSTS: [&str; 3] = ["h1", "h2", "h3"];
const NAMESPACES: &[&str] = &[
    "sw", "etcd", "h1", "h2", "h3", "dhcp", "router", "vm-a", "vm-b", "vm-c", "v10a", "v20b", "v10c", "v20d",
    "g1", "g3",
];
const ETCD_MEMBERS: usize = 3;

fn etcd_ip(i: usize) -> String {
    format!("192.0.2.{}", 250 + i)
}

impl Lab {
    fn ctl(&self, host: &str, args: &str) -> Result<String> {
        sh_in(host, &format!("{} --name {} {args}", self.ctl.display(), ns(host)))
    }

    fn check(&mut self, what: &str, r: Result<()>) {
        let ok = r.is_ok();
        match &r {
            Ok(()) => println!("    \u{2714} {what}"),
            Err(e) => println!("    \u{2718} {what}: {e:#}"),
        }
        self.checks.push((what.to_string(), ok));
    }

    fn teardown(&self) {
        for h in HOSTS {
            let inside = Command::new("ip")
                .args(["netns", "exec", &ns(h)])
                .arg(&self.ctl)
                .args(["down", "--name", &ns(h)])
                .output();
            if !inside.is_ok_and(|o| o.status.success()) {
                // Namespace already gone: pins and state can still go.
                let _ = Command::new(&self.ctl).args(["down", "--name", &ns(h)]).output();
            }
        }
        // Deleting a namespace kills what runs in it: the agents, etcd.
        let names: Vec<String> = NAMESPACES.iter().map(|n| ns(n)).collect();
        lab::delete_namespaces(names.iter().map(String::as_str));
        let _ = std::fs::remove_dir_all(self.dir.join("etcd"));
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if self.keep && !lab::interrupted() {
            return;
        }
        step("tearing the lab down");
        self.teardown();
    }
}

fn host_config(i: usize) -> String {
    let me = format!("192.0.2.{}", i + 1);
    let etcd: Vec<String> = (0..ETCD_MEMBERS).map(|j| format!("\"http://{}:2379\"", etcd_ip(j))).collect();
    let mut c = format!(
        "# Host {n} of the demo lab: `ip netns exec {p}-h{n} overlayctl agent -c THIS_FILE`\n\
         # No peer lists: the hosts find each other (and each other's MACs) in etcd.\n\
         name = \"{p}-h{n}\"\n\n[underlay]\ninterface = \"u0\"\naddress = \"{me}\"\n\n\
         [control]\netcd = [{etcd}]\nlease_ttl = 10\n\n\
         [[network]]\nname = \"vxlan10\"\nvni = 10\n\n\
         [[network]]\nname = \"vxlan11\"\nvni = 11\n\n\
         [[network]]\nname = \"gre12\"\nencap = \"gre\"\nvni = 12\n",
        n = i + 1,
        p = PREFIX,
        etcd = etcd.join(", "),
    );
    if i < 2 {
        c += "\n[[network]]\nname = \"vlan10\"\nvlan = 10\n\n[[network]]\nname = \"vlan20\"\nvlan = 20\n\n\
              [[port]]\ninterface = \"t0\"\ntrunk = [\"vlan10\", \"vlan20\"]\n";
    }
    c
}

pub fn run(keep: bool) -> Result<()> {
    let started = Instant::now();
    crate::bootstrap::all()?;
    crate::build::ebpf()?;
    step("build overlayctl");
    cmd::run(clean("cargo").args(["build", "--quiet", "--package", "overlay-user", "--bin", "overlayctl"]))?;
    lab::catch_interrupt();
    let dir = root().join("lab");
    std::fs::create_dir_all(&dir)?;
    let mut lab = Lab { dir, ctl: root().join("target/debug/overlayctl"), keep, checks: Vec::new() };
    lab.teardown(); // leftovers of an interrupted run
    build_underlay(&lab)?;
    start_etcd(&mut lab)?;
    bring_up_hosts(&mut lab)?;
    dhcp_over_vxlan(&mut lab)?;
    isolation_and_routing(&mut lab)?;
    vlan_scenario(&mut lab)?;
    gre_scenario(&mut lab)?;
    show_state(&mut lab)?;
    summary(&lab, started.elapsed().as_secs());
    if lab.checks.iter().any(|(_, ok)| !ok) {
        bail!("some checks failed");
    }
    Ok(())
}

fn build_underlay(_lab: &Lab) -> Result<()> {
    step("underlay: three hosts on one L2 segment (192.0.2.0/24), a trunk between host 1 and host 2");
    for n in ["sw", "h1", "h2", "h3"] {
        sh_in("", &format!("ip netns add {}", ns(n)))?;
        sh_in(
            n,
            "ip link set lo up; sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1",
        )?;
    }
    sh_in("sw", "ip link add br0 type bridge && ip link set br0 up")?;
    for (i, h) in HOSTS.iter().enumerate() {
        sh_in("", &format!("ip link add p{i} netns {} type veth peer name u0 netns {}", ns("sw"), ns(h)))?;
        sh_in("sw", &format!("ip link set p{i} master br0 up"))?;
        sh_in(h, &format!("ip addr add 192.0.2.{}/24 dev u0 && ip link set u0 up", i + 1))?;
        // Like a NIC without tunnel offload: VXLAN crosses the underlay as
        // single frames, so traffic the router moves between VNIs can be
        // encapsulated again (see README, "Known limits").
        sh_in(h, "ethtool -K u0 tx-udp_tnl-segmentation off tx-udp_tnl-csum-segmentation off >/dev/null")?;
    }
    sh_in("", &format!("ip link add t0 netns {} type veth peer name t0 netns {}", ns("h1"), ns("h2")))?;
    sh_in("h1", "ip link set t0 up")?;
    sh_in("h2", "ip link set t0 up")?;
    Ok(())
}

/// Three etcd members (Debian's etcd-server) in one namespace on the
/// underlay segment, data under `lab/etcd`.
fn start_etcd(lab: &mut Lab) -> Result<()> {
    step("etcd: a 3-member cluster on the underlay (192.0.2.250-252)");
    sh_in("", &format!("ip netns add {}", ns("etcd")))?;
    sh_in("etcd", "ip link set lo up")?;
    sh_in("", &format!("ip link add e0 netns {} type veth peer name eth0 netns {}", ns("sw"), ns("etcd")))?;
    sh_in("sw", "ip link set e0 master br0 up")?;
    sh_in("etcd", "ip link set eth0 up")?;
    let cluster: Vec<String> =
        (0..ETCD_MEMBERS).map(|j| format!("m{j}=http://{}:2380", etcd_ip(j))).collect();
    let data = lab.dir.join("etcd");
    let _ = std::fs::remove_dir_all(&data);
    for i in 0..ETCD_MEMBERS {
        let ip = etcd_ip(i);
        sh_in("etcd", &format!("ip addr add {ip}/24 dev eth0"))?;
        spawn_logged(
            "etcd",
            &format!(
                "etcd --name m{i} --data-dir {d}/m{i} --listen-client-urls http://{ip}:2379 \
                 --advertise-client-urls http://{ip}:2379 --listen-peer-urls http://{ip}:2380 \
                 --initial-advertise-peer-urls http://{ip}:2380 --initial-cluster {c} \
                 --initial-cluster-state new --initial-cluster-token {PREFIX} --log-level error --logger zap",
                d = data.display(),
                c = cluster.join(","),
            ),
            &lab.dir.join(format!("etcd-m{i}.log")),
        )?;
    }
    let r = netns_lab::wait_until("etcd cluster healthy", 30, || {
        sh_in("etcd", &format!("curl -s -m 2 http://{}:2379/health", etcd_ip(0)))
            .is_ok_and(|o| o.contains("\"health\":\"true\""))
    })
    .map_err(anyhow::Error::msg);
    lab.check("etcd cluster of 3 members healthy", r);
    Ok(())
}

/// Starts `cmd` in the background in demo namespace `name`, output to
/// `log`; it ends when the namespace is deleted.
fn spawn_logged(name: &str, cmd: &str, log: &std::path::Path) -> Result<()> {
    let out = std::fs::File::create(log)?;
    Command::new("ip")
        .args(["netns", "exec", &ns(name), "sh", "-c", &format!("exec {cmd}")])
        .stdout(out.try_clone()?)
        .stderr(out)
        .spawn()?;
    Ok(())
}

fn agent_status(host: &str) -> Option<serde_json::Value> {
    serde_json::from_slice(&std::fs::read(format!("/run/overlayctl/{}.agent.json", ns(host))).ok()?).ok()
}

fn bring_up_hosts(lab: &mut Lab) -> Result<()> {
    step(&format!("overlayctl agent on each host (configs in {})", lab.dir.display()));
    for (i, h) in HOSTS.iter().enumerate() {
        let path = lab.dir.join(format!("{h}.toml"));
        std::fs::write(&path, host_config(i))?;
        let log = lab.dir.join(format!("{h}-agent.log"));
        spawn_logged(h, &format!("{} agent -c {}", lab.ctl.display(), path.display()), &log)?;
        let r = netns_lab::wait_until(&format!("{h}'s agent connected (log: {})", log.display()), 60, || {
            agent_status(h).is_some_and(|s| s["connected"] == true)
        })
        .map_err(anyhow::Error::msg);
        lab.check(&format!("{h}: overlayctl agent up, connected to etcd"), r);
    }
    // Every host finds the other two for both VXLAN networks, from etcd.
    let r = netns_lab::wait_until("each host has the other two as VTEPs of vxlan10 and vxlan11", 10, || {
        HOSTS.iter().all(|h| {
            lab.ctl(h, "-j status")
                .ok()
                .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                .is_some_and(|s| {
                    s["networks"].as_array().is_some_and(|nets| {
                        nets.iter()
                            .filter(|n| n["vni"].is_u64())
                            .all(|n| n["remote_vteps"].as_array().is_some_and(|v| v.len() == 2))
                    })
                })
        })
    })
    .map_err(anyhow::Error::msg);
    lab.check("hosts found each other through etcd (no peer lists)", r);
    Ok(())
}

/// A VM namespace attached with `overlayctl port add --netns`.
fn vm(lab: &Lab, host: &str, port: &str, network: &str, name: &str) -> Result<()> {
    sh_in("", &format!("ip netns add {}", ns(name)))?;
    sh_in(
        name,
        "ip link set lo up; sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1",
    )?;
    lab.ctl(host, &format!("port add {port} --network {network} --netns {}", ns(name)))?;
    println!("    {host}: overlayctl port add {port} --network {network} --netns {}", ns(name));
    Ok(())
}

fn ping(from: &str, to: &str) -> Result<()> {
    sh_in(from, &format!("ping -c 2 -i 0.3 -W 1 {to}")).map(|_| ())
}

fn no_ping(from: &str, to: &str) -> Result<()> {
    match ping(from, to) {
        Ok(()) => bail!("{to} answered"),
        Err(_) => Ok(()),
    }
}

/// A one-second iperf3 run from `client` to `server` (at `ip`).
fn tcp(server: &str, client: &str, ip: &str) -> Result<()> {
    sh_in(server, "iperf3 -s -1 -D -p 5201")?;
    crate::lab::wait_listening(&ns(server), "t", 5201)?;
    let out = sh_in(client, &format!("timeout 20 iperf3 -c {ip} -p 5201 -t 1 -f m"))?;
    let line = out.lines().rfind(|l| l.contains("receiver")).unwrap_or("").to_string();
    println!("    {}", line.split_whitespace().skip(4).collect::<Vec<_>>().join(" "));
    Ok(())
}

fn dhcp_over_vxlan(lab: &mut Lab) -> Result<()> {
    step("DHCP over VXLAN: dnsmasq on host 1 (VNI 10), a real DHCP client on host 3");
    vm(lab, "h1", "dhcp10", "vxlan10", "dhcp")?;
    sh_in("dhcp", "ip addr add 203.0.113.2/24 dev eth0")?;
    let leases = lab.dir.join("dnsmasq.leases");
    let _ = std::fs::remove_file(&leases);
    sh_in(
        "dhcp",
        &format!(
            "dnsmasq --user=root --no-resolv --no-hosts --port=0 --interface=eth0 --bind-interfaces \
             --dhcp-range=203.0.113.100,203.0.113.150,255.255.255.0,1h --dhcp-option=option:router,203.0.113.1 \
             --dhcp-leasefile={} --pid-file={}",
            leases.display(),
            lab.dir.join("dnsmasq.pid").display()
        ),
    )?;
    vm(lab, "h3", "vmb", "vxlan10", "vm-b")?;
    let script = lab.dir.join("dhclient-script");
    std::fs::write(
        &script,
        "#!/bin/sh\n# Applies the lease to the VM's interface only (no resolv.conf changes).\n\
         case \"$reason\" in BOUND|RENEW|REBOOT)\n\
           ip addr add \"$new_ip_address/24\" dev \"$interface\"\n\
           [ -n \"$new_routers\" ] && ip route replace default via \"${new_routers%% *}\"\n\
         esac\nexit 0\n",
    )?;
    cmd::run(Command::new("chmod").args(["755", &script.to_string_lossy()]))?;
    let r = sh_in(
        "vm-b",
        &format!(
            "timeout 40 dhclient -1 -4 -sf {} -lf {} -pf {} eth0 && ip -4 -o addr show eth0",
            script.display(),
            lab.dir.join("vm-b.leases").display(),
            lab.dir.join("vm-b.pid").display()
        ),
    );
    let r = r.and_then(|out| {
        let addr = out.split_whitespace().nth(3).unwrap_or("").to_string();
        if addr.starts_with("203.0.113.1") {
            println!("    vm-b on host 3 leased {addr} from dnsmasq on host 1");
            Ok(())
        } else {
            bail!("no lease: {out}")
        }
    });
    lab.check("DHCP lease obtained over VNI 10 (host 3 <- host 1)", r);
    let r = ping("vm-b", "203.0.113.2");
    lab.check("vm-b (host 3) pings the DHCP server (host 1) on VNI 10", r);
    Ok(())
}

fn isolation_and_routing(lab: &mut Lab) -> Result<()> {
    step("tenant isolation between VNI 10 and VNI 11, then a router between them");
    vm(lab, "h2", "vma", "vxlan10", "vm-a")?;
    sh_in("vm-a", "ip addr add 203.0.113.10/24 dev eth0")?;
    vm(lab, "h3", "vmc", "vxlan11", "vm-c")?;
    sh_in("vm-c", "ip addr add 198.51.100.10/24 dev eth0 && ip addr add 203.0.113.99/24 dev eth0")?;
    let r = ping("vm-a", "203.0.113.2");
    lab.check("vm-a (host 2) pings the DHCP server (host 1) on VNI 10", r);
    let r = no_ping("vm-a", "203.0.113.99");
    lab.check("VNI 10 cannot reach VNI 11, even in the same subnet", r);
    sh_in("vm-c", "ip addr del 203.0.113.99/24 dev eth0")?;
    vm(lab, "h1", "r10", "vxlan10", "router")?;
    lab.ctl("h1", &format!("port add r11 --network vxlan11 --netns {} --peer-name eth1", ns("router")))?;
    println!("    h1: overlayctl port add r11 --network vxlan11 --netns {} --peer-name eth1", ns("router"));
    sh_in(
        "router",
        "ip addr add 203.0.113.1/24 dev eth0 && ip addr add 198.51.100.1/24 dev eth1 && sysctl -qw net.ipv4.ip_forward=1",
    )?;
    sh_in("vm-a", "ip route add default via 203.0.113.1")?;
    sh_in("vm-c", "ip route add default via 198.51.100.1")?;
    let r = ping("vm-a", "198.51.100.10");
    lab.check("vm-a (VNI 10) reaches vm-c (VNI 11) through the router", r);
    let r = ping("vm-b", "198.51.100.10");
    lab.check("vm-b (DHCP, default route from the lease) reaches vm-c", r);
    let r = tcp("vm-c", "vm-a", "198.51.100.10");
    lab.check("TCP from VNI 10 to VNI 11 through the router (iperf3, 1 s)", r);
    Ok(())
}

fn vlan_scenario(lab: &mut Lab) -> Result<()> {
    step("VLANs in BPF (no 8021q): VLAN 10 and 20 on host 1, VLAN 10 across the trunk to host 2");
    let tenants = [
        ("h1", "v10a", "vlan10"),
        ("h1", "v20b", "vlan20"),
        ("h2", "v10c", "vlan10"),
        ("h2", "v20d", "vlan20"),
    ];
    for (i, (host, name, network)) in tenants.into_iter().enumerate() {
        vm(lab, host, name, network, name)?;
        sh_in(name, &format!("ip addr add 203.0.113.{}/24 dev eth0", 21 + i))?;
    }
    let r = no_ping("v10a", "203.0.113.22");
    lab.check("VLAN 10 and VLAN 20 on host 1 are isolated (same subnet)", r);
    // Positive control: v20b itself works, so the check above is isolation,
    // not a dead tenant.
    let r = ping("v20b", "203.0.113.24");
    lab.check("VLAN 20 works: v20b reaches v20d on host 2 across the trunk", r);
    // Each end of the trunk captures what arrives (a frame handed to the
    // veth peer skips the sender's capture); returned once capturing.
    let to_h2 = lab::tcpdump(&ns("h2"), "-nn -e -c 1 -i t0 'icmp[icmptype] = icmp-echo'")?;
    let to_h1 = lab::tcpdump(&ns("h1"), "-nn -e -c 1 -i t0 'icmp[icmptype] = icmp-echoreply'")?;
    let r = ping("v10a", "203.0.113.23");
    lab.check("VLAN 10 reaches host 2 across the trunk", r);
    let mut text = String::new();
    for cap in [to_h2, to_h1] {
        text += &String::from_utf8_lossy(&cap.wait_with_output()?.stdout);
    }
    let tagged = text.lines().filter(|l| l.contains("vlan 10")).count();
    for l in text.lines() {
        println!("    trunk: {}", l.split_once(' ').map(|(_, r)| r).unwrap_or(l));
    }
    let r = if tagged == 2 { Ok(()) } else { Err(anyhow::anyhow!("capture: {text}")) };
    lab.check("the trunk carries 802.1Q VLAN 10 both ways (tcpdump)", r);
    Ok(())
}

fn gre_scenario(lab: &mut Lab) -> Result<()> {
    step("GRE next to VXLAN: network gre12 (encap = \"gre\", key 12) between host 1 and host 3");
    for (i, (host, name)) in [("h1", "g1"), ("h3", "g3")].into_iter().enumerate() {
        vm(lab, host, name, "gre12", name)?;
        sh_in(name, &format!("ip addr add 203.0.113.{}/24 dev eth0", 31 + 2 * i))?;
    }
    // What reaches host 3's underlay interface; returned once capturing.
    let cap = lab::tcpdump(&ns("h3"), "-nn -c 1 -i u0 'ip proto 47 and ip[24:4] = 12'")?;
    let r = ping("g1", "203.0.113.33");
    let text = String::from_utf8_lossy(&cap.wait_with_output()?.stdout).into_owned();
    for l in text.lines() {
        println!("    h3 u0: {}", l.split_once(' ').map(|(_, r)| r).unwrap_or(l));
    }
    lab.check("GRE network: g1 (host 1) pings g3 (host 3), peers found through etcd", r);
    let r = if text.contains("GREv0") && text.contains("key=0xc") {
        Ok(())
    } else {
        Err(anyhow::anyhow!("capture: {text}"))
    };
    lab.check("the underlay carries it as GRE with key 12 (tcpdump)", r);
    Ok(())
}

fn show_state(lab: &mut Lab) -> Result<()> {
    step("overlayctl fdb show (host 1)");
    print!("{}", lab.ctl("h1", "fdb show")?);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&lab.ctl("h1", "-j fdb show")?)?;
    let control = rows.iter().filter(|r| r["type"] == "control").count();
    let r = if control >= 2 { Ok(()) } else { Err(anyhow::anyhow!("{control} control entries")) };
    lab.check("host 1 knows MACs of hosts 2 and 3 from etcd (fdb type control)", r);
    let r = trace_to_vm_b(lab);
    lab.check("overlayctl trace: a frame from the DHCP server to vm-b goes to host 3's VTEP", r);
    step("overlayctl stats (host 1), non-zero totals");
    let st: Vec<String> = lab
        .ctl("h1", "stats")?
        .lines()
        .take_while(|l| !l.is_empty())
        .filter(|l| !l.trim_end().ends_with(" 0"))
        .map(str::to_string)
        .collect();
    println!("{}", st.join("\n"));
    Ok(())
}

/// `overlayctl trace` on host 1: the path a frame from the DHCP server to
/// vm-b (host 3, known from etcd) would take, without sending it.
fn trace_to_vm_b(lab: &Lab) -> Result<()> {
    let mac = |vm: &str| sh_in(vm, "cat /sys/class/net/eth0/address").map(|m| m.trim().to_string());
    let args = format!(
        "trace --port dhcp10 --from {} --to {} --ip 203.0.113.2,203.0.113.100",
        mac("dhcp")?,
        mac("vm-b")?
    );
    step(&format!("overlayctl {args} (host 1)"));
    print!("{}", lab.ctl("h1", &args)?);
    let t: serde_json::Value = serde_json::from_str(&lab.ctl("h1", &format!("-j {args}"))?)?;
    let encap_to =
        t["steps"].as_array().into_iter().flatten().find(|s| s["step"] == "encap").map(|s| &s["vtep"]);
    if t["verdict"] == "redirect" && encap_to == Some(&"192.0.2.3".into()) {
        Ok(())
    } else {
        bail!("verdict {}, encapsulated to {encap_to:?}", t["verdict"])
    }
}

fn summary(lab: &Lab, secs: u64) {
    println!("\n{:-<72}", "");
    for (what, ok) in &lab.checks {
        println!(" {}  {what}", if *ok { "PASS" } else { "FAIL" });
    }
    let passed = lab.checks.iter().filter(|(_, ok)| *ok).count();
    println!("{:-<72}\n {passed}/{} checks passed in {secs}s", "", lab.checks.len());
    if lab.keep {
        println!("\nThe lab stays up (--keep). Explore it by hand:");
    } else {
        println!("\nThe lab is torn down now; run `cargo xtask demo --keep` to explore it by hand:");
    }
    let ctl = lab.ctl.display();
    println!(
        "  ip netns exec {PREFIX}-h1 {ctl} status                 # networks, remote VTEPs, control plane"
    );
    println!("  ip netns exec {PREFIX}-h1 {ctl} fdb show");
    println!("  ip netns exec {PREFIX}-h1 {ctl} stats");
    println!("  ip netns exec {PREFIX}-vm-a ping 198.51.100.10        # VNI 10 -> router -> VNI 11");
    println!("  ip netns exec {PREFIX}-h2 tcpdump -nn -e -i t0           # 802.1Q tags on the trunk");
    println!("  ip netns exec {PREFIX}-h3 tcpdump -nn -i u0 udp port 4789 # VXLAN on the underlay");
    println!("  configs: {}", lab.dir.display());
    if lab.keep {
        println!("Tear it down: cargo xtask demo --down");
    }
}

/// `--down`: remove a lab left with `--keep`.
pub fn down() -> Result<()> {
    let lab = Lab {
        dir: root().join("lab"),
        ctl: root().join("target/debug/overlayctl"),
        keep: true,
        checks: vec![],
    };
    lab.teardown();
    step("demo lab removed");
    Ok(())
}
