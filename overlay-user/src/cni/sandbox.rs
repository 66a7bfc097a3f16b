//! The container's side of an attachment: a veth pair whose far end moves
//! into `CNI_NETNS` as `CNI_IFNAME`, with the IPAM result's addresses and
//! routes; and reading it back for CHECK.

use std::{
    fs::File,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    os::fd::AsRawFd,
};

use futures::TryStreamExt;
use netlink_packet_route::{
    address::AddressAttribute,
    route::{RouteAddress, RouteAttribute, RouteScope},
};
use rtnetlink::{LinkUnspec, LinkVeth, RouteMessageBuilder};

use super::types::Cidr;
use crate::{
    error::{Error, Result},
    netlink::{self, in_netns, nl, with_handle},
};

/// A route as the container's main table holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteSpec {
    pub dst: Cidr,
    pub gw: Option<IpAddr>,
}

/// What CHECK compares with the previous result.
#[derive(Clone, Debug)]
pub struct Observed {
    pub mac: [u8; 6],
    pub mtu: u32,
    pub addrs: Vec<Cidr>,
    pub routes: Vec<RouteSpec>,
}

/// Creates `host` here (up) and `temp` in `ns`, both with `mtu`. Nothing
/// is left when it fails.
pub fn create_pair(host: &str, temp: &str, ns: &File, mtu: u32) -> Result<()> {
    let (host_s, temp_s, fd) = (host.to_string(), temp.to_string(), ns.as_raw_fd());
    let made = with_handle(|h| async move {
        h.link()
            .add(LinkVeth::new(&host_s, &temp_s).mtu(mtu).build())
            .execute()
            .await
            .map_err(nl("add veth pair"))?;
        h.link()
            .set(LinkUnspec::new_with_name(&temp_s).setns_by_fd(fd).mtu(mtu).build())
            .execute()
            .await
            .map_err(nl("move veth end into the container's namespace"))?;
        h.link()
            .set(LinkUnspec::new_with_name(&host_s).up().build())
            .execute()
            .await
            .map_err(nl("set veth up"))
    });
    if made.is_err()
        && let Ok(l) = netlink::link_info(host)
    {
        let _ = netlink::delete_link(l.index);
    }
    made
}

/// In `ns`: renames `temp` to `ifname`, brings it up (GRO on, so the XDP
/// fast path can redirect into it), adds `addrs` and `routes`. Returns its
/// MAC address.
pub fn configure(
    ns: &File,
    temp: &str,
    ifname: &str,
    addrs: Vec<Cidr>,
    routes: Vec<RouteSpec>,
) -> Result<[u8; 6]> {
    let (temp, ifname) = (temp.to_string(), ifname.to_string());
    in_netns(ns, move || {
        if netlink::link_exists(&ifname) {
            return Err(Error::Config(format!("interface {ifname} already exists in the container")));
        }
        let index = netlink::link_info(&temp)?.index;
        let name = ifname.clone();
        with_handle(|h| async move {
            h.link()
                .set(LinkUnspec::new_with_index(index).name(name).up().build())
                .execute()
                .await
                .map_err(nl("rename and set up the container's interface"))?;
            for a in &addrs {
                h.address().add(index, a.addr, a.prefix).execute().await.map_err(nl("add address"))?;
            }
            for r in &routes {
                let msg =
                    route_message(r, index).map_err(|e| Error::Config(format!("route {}: {e}", r.dst)))?;
                h.route().add(msg).execute().await.map_err(nl("add route"))?;
            }
            Ok(())
        })?;
        netlink::set_gro(&ifname, true)?;
        Ok(netlink::link_info(&ifname)?.mac)
    })
}

fn route_message(
    r: &RouteSpec,
    oif: u32,
) -> std::result::Result<netlink_packet_route::route::RouteMessage, String> {
    let b = RouteMessageBuilder::<IpAddr>::new()
        .destination_prefix(r.dst.addr, r.dst.prefix)
        .map_err(|e| e.to_string())?
        .output_interface(oif);
    Ok(match r.gw {
        Some(g) => b.gateway(g).map_err(|e| e.to_string())?.build(),
        None => b.scope(RouteScope::Link).build(),
    })
}

/// Reads `ifname` in `ns`: its MAC, MTU, addresses and the main table's
/// routes through it.
pub fn observe(ns: &File, ifname: &str) -> Result<Observed> {
    let ifname = ifname.to_string();
    in_netns(ns, move || {
        let l = netlink::link_info(&ifname)?;
        let index = l.index;
        let (addrs, routes) = with_handle(|h| async move {
            let mut addrs = Vec::new();
            let mut s = h.address().get().set_link_index_filter(index).execute();
            while let Some(m) = s.try_next().await.map_err(nl("list addresses"))? {
                for a in &m.attributes {
                    if let AddressAttribute::Address(ip) = a {
                        addrs.push(Cidr { addr: *ip, prefix: m.header.prefix_len });
                    }
                }
            }
            let mut routes = Vec::new();
            for msg in [
                RouteMessageBuilder::<Ipv4Addr>::new().build(),
                RouteMessageBuilder::<Ipv6Addr>::new().build(),
            ] {
                let mut s = h.route().get(msg).execute();
                while let Some(m) = s.try_next().await.map_err(nl("list routes"))? {
                    let (mut dst, mut gw, mut oif) = (None, None, None);
                    for a in &m.attributes {
                        match a {
                            RouteAttribute::Destination(d) => dst = ip_of(d),
                            RouteAttribute::Gateway(g) => gw = ip_of(g),
                            RouteAttribute::Oif(o) => oif = Some(*o),
                            _ => {}
                        }
                    }
                    if oif != Some(index) || m.header.table != 254 {
                        continue;
                    }
                    let unspecified = if m.header.address_family == netlink_packet_route::AddressFamily::Inet6
                    {
                        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
                    } else {
                        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
                    };
                    let dst =
                        Cidr { addr: dst.unwrap_or(unspecified), prefix: m.header.destination_prefix_length };
                    routes.push(RouteSpec { dst, gw });
                }
            }
            Ok((addrs, routes))
        })?;
        Ok(Observed { mac: l.mac, mtu: l.mtu, addrs, routes })
    })
}

fn ip_of(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v) => Some(IpAddr::V4(*v)),
        RouteAddress::Inet6(v) => Some(IpAddr::V6(*v)),
        _ => None,
    }
}
