//! Interface and neighbour management over rtnetlink.

use std::{
    fs::File,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    os::fd::AsRawFd,
};

use futures::TryStreamExt;
use netlink_packet_route::{
    link::{self, LinkAttribute},
    neighbour::NeighbourFlags,
    route::{RouteAddress, RouteAttribute},
};
use rtnetlink::{Handle, LinkMessageBuilder, LinkUnspec, LinkVeth, LinkVxlan, RouteMessageBuilder};

use crate::error::{Error, Result};

/// What we need to know about an interface.
#[derive(Clone, Debug)]
pub struct LinkInfo {
    pub index: u32,
    pub mtu: u32,
    pub mac: [u8; 6],
    /// A veth whose peer lives in another network namespace (a container's
    /// or VM's end): frames for it can skip the veth with
    /// `bpf_redirect_peer`.
    pub veth_peer_elsewhere: bool,
}

pub(crate) fn nl(op: &'static str) -> impl FnOnce(rtnetlink::Error) -> Error {
    move |source| Error::Netlink { op: op.into(), source }
}

/// Runs `f` with an rtnetlink handle on a private current-thread runtime.
pub(crate) fn with_handle<T, F, Fut>(f: F) -> Result<T>
where
    F: FnOnce(Handle) -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let rt = tokio::runtime::Builder::new_current_thread().enable_io().build()?;
    rt.block_on(async move {
        let (conn, handle, _) = rtnetlink::new_connection()?;
        let task = tokio::spawn(conn);
        let r = f(handle).await;
        task.abort();
        r
    })
}

pub fn link_info(name: &str) -> Result<LinkInfo> {
    let name_s = name.to_string();
    with_handle(|h| async move {
        let mut links = h.link().get().match_name(name_s.clone()).execute();
        let msg = links
            .try_next()
            .await
            .map_err(|e| Error::Interface {
                name: name_s.clone(),
                source: std::io::Error::other(e.to_string()),
            })?
            .ok_or_else(|| Error::Interface {
                name: name_s.clone(),
                source: std::io::ErrorKind::NotFound.into(),
            })?;
        let mut info = LinkInfo { index: msg.header.index, mtu: 0, mac: [0; 6], veth_peer_elsewhere: false };
        let (mut veth, mut netns_id) = (false, false);
        for a in &msg.attributes {
            match a {
                LinkAttribute::Mtu(m) => info.mtu = *m,
                LinkAttribute::Address(a) if a.len() == 6 => info.mac.copy_from_slice(a),
                LinkAttribute::LinkInfo(i) => {
                    veth = i.iter().any(|x| matches!(x, link::LinkInfo::Kind(link::InfoKind::Veth)))
                }
                // Set only when the peer is in another namespace.
                LinkAttribute::LinkNetNsId(_) => netns_id = true,
                _ => {}
            }
        }
        info.veth_peer_elsewhere = veth && netns_id;
        Ok(info)
    })
}

/// Whether an interface of that name exists in this network namespace.
pub fn link_exists(name: &str) -> bool {
    let Ok(c) = std::ffi::CString::new(name) else {
        return false;
    };
    // SAFETY: valid C string.
    unsafe { libc::if_nametoindex(c.as_ptr()) != 0 }
}

pub fn set_mtu(index: u32, mtu: u32) -> Result<()> {
    with_handle(|h| async move {
        h.link()
            .set(LinkUnspec::new_with_index(index).mtu(mtu).build())
            .execute()
            .await
            .map_err(nl("set mtu"))
    })
}

pub fn set_up(index: u32) -> Result<()> {
    with_handle(|h| async move {
        h.link()
            .set(LinkUnspec::new_with_index(index).up().build())
            .execute()
            .await
            .map_err(nl("set link up"))
    })
}

pub fn delete_link(index: u32) -> Result<()> {
    with_handle(|h| async move { h.link().del(index).execute().await.map_err(nl("delete link")) })
}

/// The kernel VXLAN device an IPv6 instance hands GSO super-packets to
/// (`external`: the datapath sets each frame's tunnel key), so that their
/// segments carry outer UDP checksums: created (up, IPv6 off on the device
/// itself, no learning) unless it exists. Its socket takes VXLAN on the
/// port too, so it filters VNIs with an empty list: it receives nothing
/// (our TC hook handles what is ours; a frame it passes to the host, an
/// outer fragment say, must not reach the host stack through this device).
/// Returns its ifindex.
pub fn ensure_gso_tunnel(name: &str, port: u16) -> Result<u32> {
    if !link_exists(name) {
        let n = name.to_string();
        with_handle(|h| async move {
            let msg = LinkMessageBuilder::<LinkVxlan>::new(&n)
                .collect_metadata(true)
                .port(port)
                .learning(false)
                .udp_zero_csum6_tx(false)
                .udp_zero_csum6_rx(false)
                .vnifilter(true)
                .build();
            h.link().add(msg).execute().await.map_err(nl("add the GSO vxlan device"))
        })?;
    }
    let p = format!("/proc/sys/net/ipv6/conf/{name}/disable_ipv6");
    std::fs::write(&p, "1").map_err(Error::os(format!("write {p}")))?;
    let l = link_info(name)?;
    set_up(l.index)?;
    Ok(l.index)
}

/// Creates a veth pair: `host` stays here (up), `peer` moves into the named
/// network namespace (`/run/netns/NAME`) and is brought up there.
pub fn create_veth_into_netns(host: &str, peer: &str, netns: &str, mtu: Option<u32>) -> Result<()> {
    let ns_path = format!("/run/netns/{netns}");
    let ns = File::open(&ns_path).map_err(Error::os(format!("network namespace {netns}")))?;
    let (host_s, peer_s) = (host.to_string(), peer.to_string());
    let fd = ns.as_raw_fd();
    with_handle(|h| async move {
        let mut b = LinkVeth::new(&host_s, &peer_s);
        if let Some(m) = mtu {
            b = b.mtu(m);
        }
        h.link().add(b.build()).execute().await.map_err(nl("add veth pair"))?;
        let mut peer_b = LinkUnspec::new_with_name(&peer_s).setns_by_fd(fd);
        if let Some(m) = mtu {
            peer_b = peer_b.mtu(m);
        }
        h.link().set(peer_b.build()).execute().await.map_err(nl("move veth end into its namespace"))?;
        h.link()
            .set(LinkUnspec::new_with_name(&host_s).up().build())
            .execute()
            .await
            .map_err(nl("set veth up"))
    })?;
    in_netns(&ns, {
        let peer = peer.to_string();
        move || {
            let i = link_info(&peer)?;
            set_up(i.index)?;
            // GRO on runs NAPI on this end: XDP_REDIRECT into the veth
            // from the underlay fast path is then delivered, not dropped.
            // (Set after up: veth starts NAPI when GRO is switched on while
            // the device is up.)
            set_gro(&peer, true)
        }
    })
}

/// Turns GRO on or off (`ETHTOOL_SGRO`) on an interface of this thread's
/// network namespace.
pub(crate) fn set_gro(ifname: &str, on: bool) -> Result<()> {
    #[repr(C)]
    struct EthtoolValue {
        cmd: u32,
        data: u32,
    }
    const ETHTOOL_SGRO: u32 = 0x2c;
    const SIOCETHTOOL: libc::c_ulong = 0x8946;
    let mut v = EthtoolValue { cmd: ETHTOOL_SGRO, data: on as u32 };
    // SAFETY: zeroed ifreq; the name fits (checked below); the ioctl reads
    // the ethtool_value through ifr_data while `v` is alive.
    unsafe {
        let mut ifr: libc::ifreq = std::mem::zeroed();
        let name = ifname.as_bytes();
        if name.len() >= ifr.ifr_name.len() {
            return Err(Error::Config(format!("interface name {ifname:?} too long")));
        }
        for (d, s) in ifr.ifr_name.iter_mut().zip(name) {
            *d = *s as libc::c_char;
        }
        ifr.ifr_ifru.ifru_data = &mut v as *mut EthtoolValue as *mut libc::c_char;
        let sock = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if sock < 0 {
            return Err(Error::Io(std::io::Error::last_os_error()));
        }
        let r = libc::ioctl(sock, SIOCETHTOOL, &mut ifr);
        let err = std::io::Error::last_os_error();
        libc::close(sock);
        if r != 0 {
            return Err(Error::Os { op: format!("{ifname}: ethtool set GRO"), source: err });
        }
    }
    Ok(())
}

/// Runs `f` on a thread that has joined the network namespace `ns`.
pub(crate) fn in_netns<T: Send + 'static>(
    ns: &File,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    let fd = ns.try_clone()?;
    std::thread::spawn(move || {
        // SAFETY: setns on this thread only.
        if unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(Error::Io(std::io::Error::last_os_error()));
        }
        f()
    })
    .join()
    .map_err(|_| Error::Os { op: "netns worker".into(), source: std::io::Error::other("panicked") })?
}

/// Starts neighbour resolution for the next hop towards `peer` on the
/// underlay (`NTF_USE`), so the datapath's FIB lookups find a neighbour
/// even for frames (ARP) that cannot trigger resolution themselves.
/// Over IPv6 the neighbour is found by NDP the same way.
pub fn prime_neighbour(underlay_index: u32, peer: IpAddr) -> Result<()> {
    with_handle(|h| async move {
        let msg = match peer {
            IpAddr::V4(p) => RouteMessageBuilder::<Ipv4Addr>::new().destination_prefix(p, 32).build(),
            IpAddr::V6(p) => RouteMessageBuilder::<Ipv6Addr>::new().destination_prefix(p, 128).build(),
        };
        let mut routes = h.route().get(msg).execute();
        let mut next = peer;
        let mut oif = underlay_index;
        if let Ok(Some(r)) = routes.try_next().await {
            for a in &r.attributes {
                match a {
                    RouteAttribute::Gateway(RouteAddress::Inet(g)) => next = IpAddr::V4(*g),
                    RouteAttribute::Gateway(RouteAddress::Inet6(g)) => next = IpAddr::V6(*g),
                    RouteAttribute::Oif(i) => oif = *i,
                    _ => {}
                }
            }
        }
        if oif != underlay_index {
            log::warn!("route to peer {peer} leaves through ifindex {oif}, not the underlay");
        }
        h.neighbours()
            .add(oif, next)
            .flags(NeighbourFlags::Use)
            .replace()
            .execute()
            .await
            .map_err(nl("prime neighbour"))
    })
}

/// Enables forwarding of the underlay's family on one interface.
/// `bpf_fib_lookup`, which the datapath uses to find the outer next hop,
/// refuses to answer for an interface without it
/// (`BPF_FIB_LKUP_RET_FWD_DISABLED`). Over IPv6 forwarding also stops the
/// interface taking router advertisements at `accept_ra = 1`: that becomes
/// 2 (taken while forwarding), so the host keeps its default route.
pub fn enable_forwarding(ifname: &str, v6: bool) -> Result<()> {
    let conf = |key: &str| format!("/proc/sys/net/{}/conf/{ifname}/{key}", if v6 { "ipv6" } else { "ipv4" });
    let p = conf("forwarding");
    if std::fs::read_to_string(&p).map(|v| v.trim() == "1").unwrap_or(false) {
        return Ok(());
    }
    if v6 {
        let ra = conf("accept_ra");
        if std::fs::read_to_string(&ra).map(|v| v.trim() == "1").unwrap_or(false) {
            std::fs::write(&ra, "2").map_err(Error::os(format!("write {ra}")))?;
        }
    }
    std::fs::write(&p, "1").map_err(Error::os(format!("write {p}")))
}
