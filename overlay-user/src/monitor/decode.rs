//! What a monitor event says, decoded from its record and the first bytes
//! of its frame: interface, network, VNI, VLAN, inner MACs and addresses,
//! outer addresses (and encapsulation) for VXLAN, GENEVE and GRE.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::Serialize;

use overlay_common::{counters::Counter, monitor::*};

use crate::mac::MacAddr;

/// One event as `monitor` prints it (and `-j` writes it, one object a line).
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Event {
    /// `drop`, `learned`, `moved`, `aged`, `log` (the datapath's rare
    /// events, e.g. a network reaching `max_learned`).
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// log: `warn`, `error`, ...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
    /// log: what happened.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Drops: the counter's label, as `stats` names it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    /// Drops: `tenant_tc` or `vtep_tc`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hook: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    pub ifindex: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vni: Option<u32>,
    /// Underlay frames: `vxlan`, `gre` or `geneve`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encap: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vlan: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub src_mac: Option<MacAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dst_mac: Option<MacAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ethertype: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub src_ip: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dst_ip: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outer_src: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outer_dst: Option<IpAddr>,
    /// Drops: the frame's length.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub len: Option<u32>,
    /// FDB events: the MAC and where it is (`port:IF`, `remote:IP`);
    /// control-plane events (`installed`, `withdrawn`, `vtep_added`,
    /// `vtep_removed`): the MAC (none for VTEPs) and `remote:IP`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac: Option<MacAddr>,
    /// `installed`: the addresses published with the MAC.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ips: Option<Vec<IpAddr>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

/// What the decoder needs to know about the instance.
pub trait Names {
    fn interface(&self, ifindex: u32) -> Option<String>;
    /// Network name and VNI of a stats row (network id + 1).
    fn network(&self, row: u32) -> Option<(String, Option<u32>)>;
    /// The VXLAN UDP port.
    fn vxlan_port(&self) -> u16;
}

fn be16(b: &[u8], o: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(o)?, *b.get(o + 1)?]))
}

fn mac_at(b: &[u8], o: usize) -> Option<MacAddr> {
    Some(MacAddr(b.get(o..o + 6)?.try_into().ok()?))
}

/// Ethernet (and one 802.1Q tag) at `o`: fills MACs, VLAN, ethertype, and
/// the addresses of IPv4, IPv6 or ARP behind it.
fn inner(e: &mut Event, b: &[u8], o: usize) {
    e.dst_mac = mac_at(b, o);
    e.src_mac = mac_at(b, o + 6);
    let Some(mut et) = be16(b, o + 12) else { return };
    let mut l3 = o + 14;
    if et == 0x8100 {
        e.vlan = be16(b, o + 14).map(|t| t & 0x0fff);
        let Some(t) = be16(b, o + 16) else { return };
        et = t;
        l3 += 4;
    }
    e.ethertype = Some(format!("0x{et:04x}"));
    let ip4 = |at: usize| -> Option<IpAddr> {
        Some(IpAddr::V4(<[u8; 4]>::try_from(b.get(at..at + 4)?).ok()?.into()))
    };
    let ip6 = |at: usize| -> Option<IpAddr> {
        Some(IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(b.get(at..at + 16)?).ok()?)))
    };
    let (s, d) = match et {
        0x0800 => (ip4(l3 + 12), ip4(l3 + 16)),
        0x86dd => (ip6(l3 + 8), ip6(l3 + 24)),
        0x0806 => (ip4(l3 + 14), ip4(l3 + 24)),
        _ => (None, None),
    };
    e.src_ip = s;
    e.dst_ip = d;
}

/// The tunnel in an IPv4 frame whose L4 header is at `l4`: encapsulation,
/// VNI (or GRE key) and where the inner frame starts. VXLAN to `port`,
/// GENEVE to 6081 (options skipped), GRE with a key.
fn tunnel(b: &[u8], proto: u8, l4: usize, port: u16) -> Option<(&'static str, u32, usize)> {
    let u32_at = |at: usize| Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?));
    match proto {
        17 if be16(b, l4 + 2)? == port => Some(("vxlan", u32_at(l4 + 12)? >> 8, l4 + 16)),
        17 if be16(b, l4 + 2)? == overlay_common::GENEVE_PORT => {
            let opts = (*b.get(l4 + 8)? & 0x3f) as usize * 4;
            Some(("geneve", u32_at(l4 + 12)? >> 8, l4 + 16 + opts))
        }
        47 => {
            let flags = be16(b, l4)?;
            if flags & 0x2000 == 0 {
                return None;
            }
            let csum = if flags & 0x8000 != 0 { 4 } else { 0 };
            let seq = if flags & 0x1000 != 0 { 4 } else { 0 };
            Some(("gre", u32_at(l4 + 4 + csum)?, l4 + 8 + csum + seq))
        }
        _ => None,
    }
}

/// VXLAN, GENEVE or GRE over IPv4, or VXLAN or GENEVE over IPv6 (no
/// extension headers), at the start of `b`: outer addresses, VNI and the
/// inner frame; anything else is decoded as a plain frame.
fn underlay(e: &mut Event, b: &[u8], port: u16) {
    let ihl = b.get(14).map(|v| (v & 0x0f) as usize * 4).unwrap_or(0);
    let v4 = be16(b, 12) == Some(0x0800) && ihl >= 20;
    let v6 = be16(b, 12) == Some(0x86dd) && b.get(20) == Some(&17);
    let found = if v4 {
        tunnel(b, *b.get(23).unwrap_or(&0), 14 + ihl, port)
    } else if v6 {
        tunnel(b, 17, 54, port)
    } else {
        None
    };
    let Some((encap, vni, at)) = found else {
        return inner(e, b, 0);
    };
    if v4 {
        let a = |r: std::ops::Range<usize>| b.get(r).and_then(|s| <[u8; 4]>::try_from(s).ok());
        e.outer_src = a(26..30).map(|x| IpAddr::V4(Ipv4Addr::from(x)));
        e.outer_dst = a(30..34).map(|x| IpAddr::V4(Ipv4Addr::from(x)));
    } else {
        let a = |r: std::ops::Range<usize>| b.get(r).and_then(|s| <[u8; 16]>::try_from(s).ok());
        e.outer_src = a(22..38).map(|x| IpAddr::V6(Ipv6Addr::from(x)));
        e.outer_dst = a(38..54).map(|x| IpAddr::V6(Ipv6Addr::from(x)));
    }
    e.encap = Some(encap);
    e.vni = Some(vni);
    inner(e, b, at);
}

/// What a frame holds (type `frame`): MACs, VLAN, ethertype, addresses,
/// and for VXLAN to `port`, GENEVE or GRE the outer addresses, encapsulation
/// and VNI (`overlayctl trace`).
pub fn frame(b: &[u8], port: u16) -> Event {
    let mut e = Event { kind: "frame", len: Some(b.len() as u32), ..Default::default() };
    underlay(&mut e, b, port);
    e
}

fn counter(id: u16) -> Option<&'static str> {
    Counter::ALL.iter().find(|c| **c as u16 == id).map(|c| c.name())
}

pub fn decode(ev: &MonitorEvent, names: &impl Names) -> Event {
    let cap = (ev.cap as usize).min(MONITOR_SNAP);
    let data = &ev.data[..cap];
    let mut e = Event {
        ifindex: ev.ifindex,
        interface: (ev.ifindex != 0).then(|| names.interface(ev.ifindex)).flatten(),
        ..Default::default()
    };
    let net = names.network(ev.row);
    e.network = net.as_ref().map(|(n, _)| n.clone());
    match ev.kind {
        MON_EV_DROP => {
            e.kind = "drop";
            e.reason = counter(ev.reason);
            e.len = Some(ev.len);
            match ev.hook {
                HOOK_VTEP_TC => {
                    e.hook = Some("vtep_tc");
                    underlay(&mut e, data, names.vxlan_port());
                }
                _ => {
                    e.hook = Some("tenant_tc");
                    e.vni = net.and_then(|(_, v)| v);
                    // Dropped after encapsulation (drop_mtu, no route, ...):
                    // the outer headers are there too.
                    underlay(&mut e, data, names.vxlan_port());
                }
            }
            if ev.vlan & VLAN_PRESENT != 0 && e.vlan.is_none() {
                e.vlan = Some((ev.vlan & 0x0fff) as u16);
            }
        }
        k => {
            e.kind = match k {
                MON_EV_LEARNED => "learned",
                MON_EV_MOVED => "moved",
                _ => "aged",
            };
            e.vni = net.and_then(|(_, v)| v);
            e.mac = mac_at(data, 0);
            let vtep: Option<[u8; 16]> = data.get(6..22).and_then(|s| s.try_into().ok());
            e.location = Some(if let Some(v) = vtep.filter(|v| *v != [0; 16]) {
                let w = |i: usize| u32::from_ne_bytes([v[i], v[i + 1], v[i + 2], v[i + 3]]);
                format!("remote:{}", overlay_common::vtep::vtep_to_ip(&[w(0), w(4), w(8), w(12)]))
            } else {
                format!("port:{}", e.interface.clone().unwrap_or_else(|| ev.ifindex.to_string()))
            });
        }
    }
    e
}

/// One line of text for `e`.
pub fn line(e: &Event) -> String {
    let o = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    let net = format!(
        "{} vni={} vlan={}",
        o(e.network.clone()),
        o(e.vni.map(|v| v.to_string())),
        o(e.vlan.map(|v| v.to_string()))
    );
    if e.kind == "log" {
        return format!("log     {} {}", o(e.level.clone()), o(e.message.clone()));
    }
    if e.kind != "drop" {
        return format!(
            "{:<7} {net} {} at {}",
            e.kind,
            o(e.mac.map(|m| m.to_string())),
            o(e.location.clone())
        );
    }
    let mut s = format!(
        "drop    {} {} {} {net} {} > {} {}",
        e.reason.unwrap_or("?"),
        e.hook.unwrap_or("?"),
        o(e.interface.clone()),
        o(e.src_mac.map(|m| m.to_string())),
        o(e.dst_mac.map(|m| m.to_string())),
        o(e.ethertype.clone()),
    );
    if let (Some(a), Some(b)) = (e.src_ip, e.dst_ip) {
        s += &format!(" {a} > {b}");
    }
    if let (Some(a), Some(b)) = (e.outer_src, e.outer_dst) {
        s += &format!(" outer {a} > {b}");
        if let Some(x) = e.encap.filter(|x| *x != "vxlan") {
            s += &format!(" {x}");
        }
    }
    s + &format!(" len={}", e.len.unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use overlay_common::pktbuild;

    struct N;
    impl Names for N {
        fn interface(&self, i: u32) -> Option<String> {
            (i == 7).then(|| "eth0".into())
        }
        fn network(&self, row: u32) -> Option<(String, Option<u32>)> {
            (row == 1).then(|| ("blue".into(), Some(100)))
        }
        fn vxlan_port(&self) -> u16 {
            4789
        }
    }

    fn event(kind: u8, hook: u8, row: u32, frame: &[u8]) -> MonitorEvent {
        let mut data = [0u8; MONITOR_SNAP];
        let cap = frame.len().min(MONITOR_SNAP);
        data[..cap].copy_from_slice(&frame[..cap]);
        MonitorEvent {
            kind,
            hook,
            reason: Counter::DropUnknownVni as u16,
            ifindex: 7,
            row,
            len: frame.len() as u32,
            cap: cap as u32,
            vlan: 0,
            ts_ns: 0,
            data,
        }
    }

    #[test]
    fn a_vxlan_drop_names_outer_and_inner_fields() {
        let inner = pktbuild::udp4(
            [2, 0, 0, 0, 0, 2],
            [2, 0, 0, 0, 0, 1],
            [203, 0, 113, 1],
            [203, 0, 113, 2],
            1,
            2,
            64,
        );
        let f = pktbuild::vxlan_from([2; 6], [4; 6], [192, 0, 2, 9], [192, 0, 2, 1], 999, &inner);
        let e = decode(&event(MON_EV_DROP, HOOK_VTEP_TC, 0, &f), &N);
        assert_eq!(e.reason, Some("drop_unknown_vni"));
        assert_eq!(e.hook, Some("vtep_tc"));
        assert_eq!(e.interface.as_deref(), Some("eth0"));
        assert_eq!(e.vni, Some(999));
        assert_eq!(e.outer_src, Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9))));
        assert_eq!(e.src_mac, Some(MacAddr([2, 0, 0, 0, 0, 1])));
        assert_eq!(e.dst_ip, Some("203.0.113.2".parse().unwrap()));
        assert!(line(&e).contains("outer 192.0.2.9 > 192.0.2.1"), "{}", line(&e));
    }

    #[test]
    fn gre_and_geneve_drops_name_their_key_and_inner_frame() {
        let inner = pktbuild::udp4(
            [2, 0, 0, 0, 0, 2],
            [2, 0, 0, 0, 0, 1],
            [203, 0, 113, 1],
            [203, 0, 113, 2],
            1,
            2,
            64,
        );
        for (encap, name, vni) in
            [(overlay_common::ENCAP_GRE, "gre", 0xdead_beef), (overlay_common::ENCAP_GENEVE, "geneve", 77)]
        {
            let f =
                pktbuild::tunnel_from(encap, ([2; 6], [4; 6]), [192, 0, 2, 9], [192, 0, 2, 1], vni, &inner);
            let e = decode(&event(MON_EV_DROP, HOOK_VTEP_TC, 0, &f), &N);
            assert_eq!((e.encap, e.vni), (Some(name), Some(vni)));
            assert!(line(&e).contains(&format!("outer 192.0.2.9 > 192.0.2.1 {name}")), "{}", line(&e));
            assert_eq!(e.outer_src, Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9))));
            assert_eq!(e.src_mac, Some(MacAddr([2, 0, 0, 0, 0, 1])));
            assert_eq!(e.dst_ip, Some("203.0.113.2".parse().unwrap()));
        }
    }
}
