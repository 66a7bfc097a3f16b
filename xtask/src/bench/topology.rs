//! The benchmark's namespaces: two tenants, two hosts, one underlay veth,
//! and each variant's datapath between them.

use anyhow::{Context, Result};

use super::Variant;
use crate::{
    cmd::root,
    lab::{self, sh_in, sh_root},
};

/// overlayctl instance of a variant's host.
pub fn instance(v: &str, me: u32) -> String {
    format!("ovbench-{v}-h{me}")
}
pub const ROLES: [&str; 4] = ["ta", "ha", "hb", "tb"];

pub fn ns(v: &str, role: &str) -> String {
    format!("ovbench-{v}-{role}")
}

pub struct Bench {
    pub ctl: std::path::PathBuf,
}

impl Drop for Bench {
    fn drop(&mut self) {
        let _ = sh_in("ovbench-cp", &format!("{} down --name ovbench-cp", self.ctl.display()));
        lab::delete_namespaces(["ovbench-cp"]);
        for v in ["overlay", "overlayx", "overlay6"] {
            for (role, me) in [("ha", 1), ("hb", 2)] {
                let _ =
                    sh_in(&ns(v, role), &format!("{} down --name {}", self.ctl.display(), instance(v, me)));
            }
        }
        let names: Vec<String> =
            Variant::ALL.iter().flat_map(|v| ROLES.iter().map(move |r| ns(v.key(), r))).collect();
        lab::delete_namespaces(names.iter().map(String::as_str));
    }
}

pub fn build(b: &Bench, variant: Variant) -> Result<()> {
    let v = variant.key();
    for r in ROLES {
        sh_root(&format!("ip netns add {}", ns(v, r)))?;
        // br_netfilter (when the machine has it) would run iptables hooks on
        // bridged frames in (a) and (b): off, as on a host without it.
        sh_in(
            &ns(v, r),
            "ip link set lo up; sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1; \
             for f in /proc/sys/net/bridge/bridge-nf-call-*; do [ -e \"$f\" ] && echo 0 > \"$f\"; done; true",
        )?;
    }
    let (ta, ha, hb, tb) = (ns(v, "ta"), ns(v, "ha"), ns(v, "hb"), ns(v, "tb"));
    // The underlay's addresses: 192.0.2.i, or 2001:db8::i (IPv6 on for the
    // hosts then; the tenants stay IPv4 only).
    let addr = |i: u32| if variant.v6() { format!("2001:db8::{i}") } else { format!("192.0.2.{i}") };
    if variant.v6() {
        for h in [&ha, &hb] {
            sh_in(h, "sysctl -qw net.ipv6.conf.all.disable_ipv6=0 net.ipv6.conf.default.disable_ipv6=0")?;
        }
    }
    sh_root(&format!("ip link add u netns {ha} type veth peer name u netns {hb}"))?;
    for (t, h, i) in [(&ta, &ha, 1), (&tb, &hb, 2)] {
        sh_root(&format!("ip link add vm netns {h} type veth peer name eth0 netns {t}"))?;
        sh_in(
            t,
            &format!(
                "ip link set eth0 address 02:00:00:00:00:0{i} mtu 1500 up && ip addr add 203.0.113.{i}/24 dev eth0"
            ),
        )?;
        let a = if variant.v6() {
            format!("-6 addr add {}/64 dev u nodad", addr(i))
        } else {
            format!("addr add {}/24 dev u", addr(i))
        };
        sh_in(h, &format!("ip link set u mtu 1600 up && ip link set vm up && ip {a}"))?;
    }
    for (h, me, peer, rmac) in [(&ha, 1, 2, 2), (&hb, 2, 1, 1)] {
        match variant {
            Variant::Bridge => {
                sh_in(
                    h,
                    "ip link add br0 type bridge && ip link set vm master br0 && ip link set u master br0 && ip link set br0 up",
                )?;
            }
            Variant::KernelVxlan | Variant::KernelVxlan6 => {
                let (local, dst) = (addr(me), addr(peer));
                sh_in(
                    h,
                    &format!(
                        "ip link add vx type vxlan id 100 local {local} dstport 4789 dev u nolearning && ip link set vx mtu 1500 && \
                     ip link add br0 type bridge && ip link set vm master br0 && ip link set vx master br0 && \
                     ip link set vx up && ip link set br0 up && \
                     bridge fdb append 00:00:00:00:00:00 dev vx dst {dst} && \
                     bridge fdb add 02:00:00:00:00:0{rmac} dev vx dst {dst} self permanent"
                    ),
                )?;
            }
            Variant::Overlay | Variant::OverlayXdp | Variant::Overlay6 => {
                let (local, dst) = (addr(me), addr(peer));
                let xdp = if variant == Variant::OverlayXdp { "native" } else { "off" };
                let cfg = root().join(format!("lab/bench-{v}-h{me}.toml"));
                std::fs::create_dir_all(root().join("lab"))?;
                std::fs::write(
                    &cfg,
                    format!(
                        "name = \"{}\"\n[underlay]\ninterface = \"u\"\naddress = \"{local}\"\nxdp = \"{xdp}\"\n\
                         [[network]]\nname = \"t\"\nvni = 100\npeers = [\"{dst}\"]\n\
                         [[port]]\ninterface = \"vm\"\nnetwork = \"t\"\nmtu = 1500\nxdp_target = {}\n\
                         [[fdb]]\nmac = \"02:00:00:00:00:0{rmac}\"\nnetwork = \"t\"\nremote = \"{dst}\"\n",
                        instance(v, me),
                        variant == Variant::OverlayXdp
                    ),
                )?;
                sh_in(h, &format!("{} up -c {}", b.ctl.display(), cfg.display()))?;
            }
        }
    }
    if variant == Variant::OverlayXdp {
        // Veth specifics of the XDP path: NAPI on the redirect target's far
        // end, and full checksums from the tenants (README, Known limits).
        for t in [&ta, &tb] {
            sh_in(t, "ethtool -K eth0 gro on tx off >/dev/null")?;
        }
    }
    // Polled with a deadline: the first ARP request is flooded, and a flood
    // copy to a peer whose underlay neighbour is not resolved yet is
    // dropped (`drop_no_neighbour`). Over IPv6 the neighbour solicitation
    // that `up` starts waits for the underlay's link-local address to pass
    // DAD, up to about 2 s after the veth came up.
    netns_lab::wait_until(&format!("{v}: 203.0.113.2 answers a ping from {ta}"), 15, || {
        sh_in(&ta, "ping -c 1 -W 1 203.0.113.2 >/dev/null").is_ok()
    })
    .map_err(anyhow::Error::msg)
    .with_context(|| format!("{v}: no connectivity"))
}
