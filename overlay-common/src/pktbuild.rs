//! Frame builders for tests, benchmarks and the fuzz replay (host only).

use std::vec::Vec;

use crate::encap::{EncapParams, OuterHdrs, build_gre_outer, build_outer, build_outer6};
use crate::headers::{Ipv4Hdr, UdpHdr};

pub fn eth(dst: [u8; 6], src: [u8; 6], ethertype: u16) -> Vec<u8> {
    let mut v = Vec::with_capacity(64);
    v.extend_from_slice(&dst);
    v.extend_from_slice(&src);
    v.extend_from_slice(&ethertype.to_be_bytes());
    v
}

/// Inserts an 802.1Q (or other TPID) tag after the MAC addresses.
pub fn push_tag(frame: &[u8], tpid: u16, tci: u16) -> Vec<u8> {
    let mut v = frame[..12].to_vec();
    v.extend_from_slice(&tpid.to_be_bytes());
    v.extend_from_slice(&tci.to_be_bytes());
    v.extend_from_slice(&frame[12..]);
    v
}

/// An Ethernet + IPv4 + UDP frame with `payload_len` bytes of payload.
pub fn udp4(
    dst: [u8; 6],
    src: [u8; 6],
    saddr: [u8; 4],
    daddr: [u8; 4],
    sport: u16,
    dport: u16,
    payload_len: usize,
) -> Vec<u8> {
    let mut v = eth(dst, src, crate::ETH_P_IPV4);
    let udp_len = 8 + payload_len;
    let mut ip = Ipv4Hdr {
        version_ihl: 0x45,
        tos: 0,
        tot_len_be: ((20 + udp_len) as u16).to_be(),
        id_be: 0,
        frag_off_be: 0,
        ttl: 64,
        protocol: crate::IPPROTO_UDP,
        check_be: 0,
        saddr_be: u32::from_ne_bytes(saddr),
        daddr_be: u32::from_ne_bytes(daddr),
    };
    ip.check_be = crate::encap::ipv4_checksum(&ip).to_be();
    v.extend_from_slice(as_bytes(&ip));
    let udp = UdpHdr {
        source_be: sport.to_be(),
        dest_be: dport.to_be(),
        len_be: (udp_len as u16).to_be(),
        check_be: 0,
    };
    v.extend_from_slice(as_bytes(&udp));
    v.extend((0..payload_len).map(|i| i as u8));
    v
}

/// A complete tunnelled frame: outer Ethernet, IPv4, then UDP and VXLAN
/// (or GENEVE) or GRE as `p.encap` says, then `inner`. With IPv6
/// addresses in `p`: [`vxlan6`] with flow label 0.
pub fn vxlan(outer_dst: [u8; 6], outer_src: [u8; 6], p: &EncapParams, inner: &[u8]) -> Vec<u8> {
    if !crate::vtep::vtep_is_v4(&p.src_be) {
        return vxlan6(outer_dst, outer_src, p, 0, inner);
    }
    let mut v = eth(outer_dst, outer_src, crate::ETH_P_IPV4);
    if p.encap == crate::ENCAP_GRE {
        v.extend_from_slice(as_bytes(&build_gre_outer(p, inner.len() as u32)));
    } else {
        let o: OuterHdrs = build_outer(p, inner.len() as u32);
        v.extend_from_slice(as_bytes(&o));
    }
    v.extend_from_slice(inner);
    v
}

/// A VXLAN (or GENEVE) frame over IPv6, flow label `flow`, with its UDP
/// checksum filled in as RFC 8200 requires.
pub fn vxlan6(outer_dst: [u8; 6], outer_src: [u8; 6], p: &EncapParams, flow: u32, inner: &[u8]) -> Vec<u8> {
    let mut v = eth(outer_dst, outer_src, crate::ETH_P_IPV6);
    v.extend_from_slice(as_bytes(&build_outer6(p, flow, inner.len() as u32)));
    v.extend_from_slice(inner);
    let check = udp6_sum(&v).map(|s| !s).unwrap_or(0);
    let at = crate::offsets::UDP6_CHECK;
    v[at..at + 2].copy_from_slice(&(if check == 0 { 0xffff } else { check }).to_be_bytes());
    v
}

/// The folded one's-complement sum of an Ethernet + IPv6 (no extension
/// headers) + UDP frame's pseudo-header and datagram (checksum field as
/// it is); `None` when the frame is too short for its UDP length.
pub fn udp6_sum(frame: &[u8]) -> Option<u16> {
    let udp = crate::offsets::UDP6;
    let udp_len = u16::from_be_bytes([*frame.get(udp + 4)?, *frame.get(udp + 5)?]) as usize;
    let seg = frame.get(udp..udp + udp_len)?;
    let mut sum: u32 = 0;
    let mut add = |b: &[u8]| {
        for c in b.chunks(2) {
            sum += u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32;
        }
    };
    add(frame.get(crate::offsets::IP6_SRC..udp)?); // source and destination
    add(&(udp_len as u32).to_be_bytes());
    add(&[0, 0, 0, 17]);
    add(seg);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    Some(sum as u16)
}

/// Whether the UDP checksum of an Ethernet + IPv6 + UDP frame is valid
/// (zero, "none", is not).
pub fn udp6_checksum_valid(frame: &[u8]) -> bool {
    let at = crate::offsets::UDP6_CHECK;
    frame.get(at..at + 2).is_some_and(|c| c != [0, 0]) && udp6_sum(frame) == Some(0xffff)
}

/// The receive side's view of the global config: local VTEP `local`, the
/// default VXLAN port, `flags` (which of GRE and GENEVE are claimed).
pub fn rx_config(local: [u8; 4], flags: u8) -> crate::maps::GlobalConfig {
    crate::maps::GlobalConfig {
        local_vtep_be: crate::vtep::vtep_v4(ip_be(local)),
        udp_port_be: crate::VXLAN_PORT.to_be(),
        flags,
        ..Default::default()
    }
}

/// A frame as a peer sends it over `encap` (`ENCAP_*`): outer IPv4 `src`
/// -> `dst`, VNI or key `vni`, UDP source port 50000 where there is one.
pub fn tunnel_from(
    encap: u8,
    outer: ([u8; 6], [u8; 6]),
    src: [u8; 4],
    dst: [u8; 4],
    vni: u32,
    inner: &[u8],
) -> Vec<u8> {
    let port = if encap == crate::ENCAP_GENEVE { crate::GENEVE_PORT } else { crate::VXLAN_PORT };
    let p = EncapParams {
        src_be: crate::vtep::vtep_v4(ip_be(src)),
        dst_be: crate::vtep::vtep_v4(ip_be(dst)),
        vni,
        ttl: 64,
        src_port: 50000,
        dst_port_be: port.to_be(),
        encap,
    };
    vxlan(outer.0, outer.1, &p, inner)
}

/// Rewrites the checksum of the IPv4 header that follows the Ethernet
/// header (options included), after a test edited the header.
pub fn fix_ipv4_checksum(frame: &mut [u8]) {
    let ihl = ((frame[crate::ETH_HLEN] & 0x0f) as usize) * 4;
    let hdr = crate::ETH_HLEN..crate::ETH_HLEN + ihl;
    frame[crate::ETH_HLEN + 10..crate::ETH_HLEN + 12].copy_from_slice(&[0, 0]);
    let mut sum: u32 = frame[hdr].chunks(2).map(|c| u16::from_be_bytes([c[0], c[1]]) as u32).sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    frame[crate::ETH_HLEN + 10..crate::ETH_HLEN + 12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
}

/// A VXLAN frame as a peer VTEP sends it: outer IPv4 `src` -> `dst`, VNI
/// `vni`, UDP 50000 -> 4789, TTL 64, between the given outer MACs.
pub fn vxlan_from(
    outer_dst: [u8; 6],
    outer_src: [u8; 6],
    src: [u8; 4],
    dst: [u8; 4],
    vni: u32,
    inner: &[u8],
) -> Vec<u8> {
    tunnel_from(crate::ENCAP_VXLAN, (outer_dst, outer_src), src, dst, vni, inner)
}

pub fn as_bytes<T: Copy>(t: &T) -> &[u8] {
    // SAFETY: only used with the repr(C) header types, which have no padding.
    unsafe { core::slice::from_raw_parts(t as *const T as *const u8, core::mem::size_of::<T>()) }
}

/// IPv4 address in network order as a `u32` (the `_be` convention).
pub const fn ip_be(a: [u8; 4]) -> u32 {
    u32::from_ne_bytes(a)
}

/// IPv4 address as a VTEP address (IPv4-mapped, network order).
pub const fn vtep4(a: [u8; 4]) -> crate::VtepAddr {
    crate::vtep::vtep_v4(ip_be(a))
}

/// Whether the UDP checksum of an Ethernet + IPv4 (no options) + UDP frame
/// is valid (a zero checksum counts as "none", so as invalid here).
pub fn udp4_checksum_valid(frame: &[u8]) -> bool {
    if frame.len() < 42 || frame[40..42] == [0, 0] {
        return false;
    }
    let udp_len = u16::from_be_bytes([frame[38], frame[39]]) as usize;
    let Some(seg) = frame.get(34..34 + udp_len) else { return false };
    let mut sum: u32 = 0;
    let mut add = |b: &[u8]| {
        for c in b.chunks(2) {
            sum += u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32;
        }
    };
    add(&frame[26..34]); // source and destination address
    add(&[0, 17]);
    add(&(udp_len as u16).to_be_bytes());
    add(seg);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum == 0xffff
}

/// A small deterministic generator (xorshift64*), so a fuzz corpus is the
/// same on every run and a failing case is named by its seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// Values that sit on parser decisions (IHL, ethertypes, flags, zero).
const INTERESTING: &[u8] =
    &[0, 1, 0x40, 0x44, 0x45, 0x46, 0x4f, 0x08, 0x81, 0x88, 0xa8, 0x11, 0x12, 0x20, 0x3f, 0x7f, 0x80, 0xff];

/// `base` with 1 to 4 mutations chosen by `seed`: a header byte (first 80
/// bytes, 3 times in 4) set to a random or boundary value, a truncation,
/// or extra trailing bytes.
pub fn mutate(base: &[u8], seed: u64) -> Vec<u8> {
    let mut r = Rng::new(seed);
    let mut v = base.to_vec();
    for _ in 0..1 + r.below(4) {
        match r.below(8) {
            0 => {
                let n = r.below(v.len() + 1);
                v.truncate(n);
            }
            1 => {
                let n = r.below(32);
                v.extend((0..n).map(|_| r.next_u64() as u8));
            }
            _ if v.is_empty() => {}
            op => {
                let span = if r.below(4) < 3 { v.len().min(80) } else { v.len() };
                let at = r.below(span);
                v[at] =
                    if op % 2 == 0 { INTERESTING[r.below(INTERESTING.len())] } else { r.next_u64() as u8 };
            }
        }
    }
    v
}
