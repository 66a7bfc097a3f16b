//! Frames for `overlayctl trace`: from hex, or built from MACs, a VLAN,
//! addresses (UDP over IPv4 or IPv6, or an ARP request), and for the
//! underlay wrapped in VXLAN from a peer VTEP.

use std::net::{IpAddr, Ipv4Addr};

use overlay_common::{
    ETH_P_8021Q, ETH_P_ARP, ETH_P_IPV6, IPPROTO_UDP,
    encap::EncapParams,
    pktbuild::{eth, push_tag, udp4, vxlan},
};

use crate::{error::Error, error::Result, mac::MacAddr};

/// Ethertype of a frame built without addresses (IEEE local experimental).
pub const ETH_P_EXPERIMENTAL: u16 = 0x88b5;
/// Bytes of UDP payload in a built frame.
const PAYLOAD: usize = 32;

fn bad(what: impl Into<String>) -> Error {
    Error::Config(what.into())
}

/// A frame given as hex (spaces, colons and a `0x` prefix allowed).
pub fn from_hex(s: &str) -> Result<Vec<u8>> {
    let s = s.trim().trim_start_matches("0x");
    let digits: String = s.chars().filter(|c| !c.is_whitespace() && *c != ':').collect();
    if !digits.len().is_multiple_of(2) {
        return Err(bad("--frame: an odd number of hex digits"));
    }
    let bytes = (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16))
        .collect::<std::result::Result<Vec<u8>, _>>()
        .map_err(|_| bad("--frame: not hex"))?;
    if bytes.len() < 14 {
        return Err(bad(format!("--frame: {} bytes is shorter than an Ethernet header", bytes.len())));
    }
    Ok(bytes)
}

/// What a built tenant frame holds.
#[derive(Clone, Debug)]
pub struct FrameSpec {
    pub src: MacAddr,
    /// Default: broadcast for ARP, else required.
    pub dst: Option<MacAddr>,
    /// An 802.1Q tag (VID).
    pub vlan: Option<u16>,
    /// Source and destination address (UDP 1000 -> 2000), or with `arp`
    /// the sender and the address asked for.
    pub ips: Option<(IpAddr, IpAddr)>,
    pub arp: bool,
}

/// The tenant frame of `spec`.
pub fn tenant(spec: &FrameSpec) -> Result<Vec<u8>> {
    let src = spec.src.0;
    let frame = if spec.arp {
        let Some((IpAddr::V4(a), IpAddr::V4(b))) = spec.ips else {
            return Err(bad("--arp needs --ip SENDER,TARGET (IPv4)"));
        };
        let dst = spec.dst.map(|m| m.0).unwrap_or([0xff; 6]);
        arp_request(dst, src, a, b)
    } else {
        let dst = spec.dst.ok_or_else(|| bad("--to MAC is needed (or --arp)"))?.0;
        match spec.ips {
            Some((IpAddr::V4(a), IpAddr::V4(b))) => {
                udp4(dst, src, a.octets(), b.octets(), 1000, 2000, PAYLOAD)
            }
            Some((IpAddr::V6(a), IpAddr::V6(b))) => udp6(dst, src, a.octets(), b.octets()),
            Some(_) => return Err(bad("--ip: both addresses of one family")),
            None => {
                let mut f = eth(dst, src, ETH_P_EXPERIMENTAL);
                f.extend(std::iter::repeat_n(0u8, 46));
                f
            }
        }
    };
    Ok(match spec.vlan {
        Some(v) if v == 0 || v > 4094 => return Err(bad(format!("--vlan {v}: not 1..4094"))),
        Some(v) => push_tag(&frame, ETH_P_8021Q, v),
        None => frame,
    })
}

fn arp_request(dst: [u8; 6], src: [u8; 6], sender: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    let mut f = eth(dst, src, ETH_P_ARP);
    f.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&src);
    f.extend_from_slice(&sender.octets());
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&target.octets());
    f.extend(std::iter::repeat_n(0u8, 18));
    f
}

fn udp6(dst: [u8; 6], src: [u8; 6], a: [u8; 16], b: [u8; 16]) -> Vec<u8> {
    let udp_len = (8 + PAYLOAD) as u16;
    let payload: Vec<u8> = (0..PAYLOAD).map(|i| i as u8).collect();
    let mut udp = Vec::with_capacity(udp_len as usize);
    udp.extend_from_slice(&1000u16.to_be_bytes());
    udp.extend_from_slice(&2000u16.to_be_bytes());
    udp.extend_from_slice(&udp_len.to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(&payload);
    // Checksum over the pseudo-header (addresses, length, next header).
    let mut sum: u32 = 0;
    let mut add = |b: &[u8]| {
        for c in b.chunks(2) {
            sum += u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32;
        }
    };
    add(&a);
    add(&b);
    add(&(udp_len as u32).to_be_bytes());
    add(&[0, 0, 0, IPPROTO_UDP]);
    add(&udp);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    let c = match !(sum as u16) {
        0 => 0xffff,
        c => c,
    };
    udp[6..8].copy_from_slice(&c.to_be_bytes());
    let mut f = eth(dst, src, ETH_P_IPV6);
    f.extend_from_slice(&[0x60, 0, 0, 0]);
    f.extend_from_slice(&udp_len.to_be_bytes());
    f.extend_from_slice(&[IPPROTO_UDP, 64]);
    f.extend_from_slice(&a);
    f.extend_from_slice(&b);
    f.extend_from_slice(&udp);
    f
}

/// The outer headers of a frame a peer VTEP sends.
#[derive(Clone, Copy, Debug)]
pub struct Outer {
    /// The sending VTEP.
    pub vtep: IpAddr,
    /// This host's VTEP address (the same family).
    pub local: IpAddr,
    pub vni: u32,
    /// The encapsulation of the network with that VNI (VXLAN when none).
    pub encap: crate::config::Encap,
    /// UDP destination port of VXLAN (GENEVE always uses 6081).
    pub port: u16,
    /// The underlay's MAC (the outer destination).
    pub dst_mac: MacAddr,
    pub src_mac: MacAddr,
}

/// `inner` in VXLAN, GENEVE or GRE (`o.encap`) as `o.vtep` sends it.
pub fn tunnel_from(o: &Outer, inner: &[u8]) -> Result<Vec<u8>> {
    if o.vni > o.encap.max_id() {
        return Err(bad(format!("--vni {}: not 0..={} ({})", o.vni, o.encap.max_id(), o.encap)));
    }
    if o.vtep.is_ipv6() != o.local.is_ipv6() {
        return Err(bad(format!("--vtep {}: not of the underlay's family ({})", o.vtep, o.local)));
    }
    let geneve = o.encap == crate::config::Encap::Geneve;
    let p = EncapParams {
        src_be: overlay_common::vtep::vtep_from_ip(o.vtep),
        dst_be: overlay_common::vtep::vtep_from_ip(o.local),
        vni: o.vni,
        ttl: 64,
        src_port: 50000,
        dst_port_be: if geneve { overlay_common::GENEVE_PORT } else { o.port }.to_be(),
        encap: o.encap.code(),
    };
    Ok(vxlan(o.dst_mac.0, o.src_mac.0, &p, inner))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mac(s: &str) -> MacAddr {
        s.parse().unwrap()
    }

    #[test]
    fn hex_frames_parse_with_separators_and_refuse_junk() {
        let f = from_hex("0x ffff ffff ffff 0200:0000:0001 0806").unwrap();
        assert_eq!(f.len(), 14);
        assert!(from_hex("fff").is_err());
        assert!(from_hex("zz").is_err());
        assert!(from_hex("ffff").is_err(), "shorter than a header");
    }

    #[test]
    fn built_frames_carry_what_was_asked() {
        let spec = FrameSpec {
            src: mac("02:00:00:00:00:01"),
            dst: Some(mac("02:00:00:00:00:02")),
            vlan: Some(10),
            ips: Some(("2001:db8::1".parse().unwrap(), "2001:db8::2".parse().unwrap())),
            arp: false,
        };
        let f = tenant(&spec).unwrap();
        assert_eq!(&f[12..16], &[0x81, 0x00, 0, 10]);
        assert_eq!(&f[16..18], &[0x86, 0xdd]);
        assert_eq!(f.len(), 18 + 40 + 8 + PAYLOAD);
        let arp = tenant(&FrameSpec {
            dst: None,
            vlan: None,
            ips: Some(("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap())),
            arp: true,
            ..spec.clone()
        })
        .unwrap();
        assert_eq!(&arp[..6], &[0xff; 6]);
        assert_eq!(&arp[38..42], &[192, 0, 2, 2]);
        assert!(tenant(&FrameSpec { vlan: Some(4095), ..spec.clone() }).is_err());
        assert!(tenant(&FrameSpec { dst: None, ..spec }).is_err());
    }
}
