//! Building the outer headers of a VXLAN, GENEVE or GRE packet.

use core::mem::size_of;

use crate::headers::{EthHdr, GRE_F_KEY, GreHdr, Ipv4Hdr, Ipv6Hdr, UdpHdr, VXLAN_FLAG_I};
use crate::vtep::{VtepAddr, vtep_v4_be};
use crate::{
    ENCAP_GENEVE, ETH_HLEN, ETH_P_TEB, GRE_HLEN, IPPROTO_GRE, IPPROTO_UDP, IPV4_HLEN, IPV6_HLEN, UDP_HLEN,
    VXLAN_HLEN,
};

/// First and last UDP source port used for flow entropy (RFC 7348 §5
/// recommends the dynamic range).
pub const SRC_PORT_MIN: u16 = 49152;
pub const SRC_PORT_MAX: u16 = 65535;

/// Maps a flow hash onto the source port range, as the kernel's
/// `udp_flow_src_port` does (multiply-shift, no modulo bias).
#[inline(always)]
pub const fn udp_src_port(hash: u32) -> u16 {
    let span = (SRC_PORT_MAX - SRC_PORT_MIN) as u64 + 1;
    SRC_PORT_MIN + (((hash as u64) * span) >> 32) as u16
}

/// One round of a 32-bit integer hash (the "lowbias32" finalizer): every
/// input bit changes about half the output bits.
#[inline(always)]
pub const fn mix32(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x7feb_352d);
    h ^= h >> 15;
    h = h.wrapping_mul(0x846c_a68b);
    h ^= h >> 16;
    h
}

/// Odd random multipliers of [`flow_hash`], one per flow word.
const FLOW_MUL: [u64; 10] = [
    0x9e37_79b9_7f4a_7c15,
    0xbf58_476d_1ce4_e5b9,
    0x94d0_49bb_1331_11eb,
    0xd6e8_feb8_6659_fd93,
    0xa076_1d64_78bd_642f,
    0xe703_7ed1_a0b4_28db,
    0x8ebc_6af0_9c88_c6e3,
    0x5899_65cc_7537_4cc3,
    0x1d8e_4e27_c47d_124f,
    0xc2b2_ae3d_27d4_eb4f,
];

/// The flow hash of an inner frame that carries none (no socket gave it
/// one): the frame's addresses, protocol and ports as read by
/// [`flow_words`], hashed multilinearly (the high half of the sum of
/// word x multiplier, a universal hash) and finished with [`mix32`].
/// Stable per flow, spread over all 32 bits; the ten products are
/// independent, so the CPU computes them side by side (a chain of ten
/// `mix32` rounds cost ~60 ns a frame).
#[inline(always)]
pub fn flow_hash<F: crate::frame::Frame + ?Sized>(f: &F) -> u32 {
    let w = flow_words(f);
    let mut h = 0u64;
    let mut i = 0;
    while i < w.len() {
        h = h.wrapping_add((w[i] as u64).wrapping_mul(FLOW_MUL[i]));
        i += 1;
    }
    mix32((h >> 32) as u32)
}

/// What identifies the flow of an Ethernet frame: IPv4 source,
/// destination and protocol, plus TCP/UDP ports of an unfragmented
/// packet without options; IPv6 the same from the fixed header (no
/// extension headers are walked: their flows hash by addresses); other
/// frames their MAC addresses and ethertype. Unused words are zero.
#[inline(always)]
pub fn flow_words<F: crate::frame::Frame + ?Sized>(f: &F) -> [u32; 10] {
    use crate::{ETH_HLEN, ETH_P_IPV4, ETH_P_IPV6, IPPROTO_TCP, IPV6_HLEN};
    let mut w = [0u32; 10];
    let Some(eth) = f.read::<crate::headers::EthHdr>(0) else { return w };
    let ethertype = u16::from_be(eth.ethertype_be);
    let l4 = |proto: u8| proto == IPPROTO_TCP || proto == IPPROTO_UDP;
    if ethertype == ETH_P_IPV4
        && let Some(ip) = f.read::<Ipv4Hdr>(ETH_HLEN)
    {
        w[0] = ip.saddr_be;
        w[1] = ip.daddr_be;
        w[2] = ip.protocol as u32;
        if l4(ip.protocol) && ip.header_len() == IPV4_HLEN && !ip.is_fragment() {
            w[3] = f.read::<u32>(ETH_HLEN + IPV4_HLEN).unwrap_or(0);
        }
    } else if ethertype == ETH_P_IPV6
        && let Some(h) = f.read::<[u32; 10]>(ETH_HLEN)
    {
        let next = h[1].to_ne_bytes()[2];
        w[..8].copy_from_slice(&h[2..10]);
        w[8] = next as u32;
        if l4(next) {
            w[9] = f.read::<u32>(ETH_HLEN + IPV6_HLEN).unwrap_or(0);
        }
    } else {
        let m: [u32; 3] = f.read(0).unwrap_or([0; 3]);
        w[..3].copy_from_slice(&m);
        w[3] = ethertype as u32;
    }
    w
}

/// Internet checksum of an IPv4 header (the `check` field is summed as is,
/// so call it with `check_be = 0`).
#[inline(always)]
pub fn ipv4_checksum(ip: &Ipv4Hdr) -> u16 {
    // SAFETY: Ipv4Hdr is 20 plain bytes.
    let words: [u16; 10] = unsafe { core::mem::transmute(*ip) };
    let mut sum: u32 = 0;
    let mut i = 0;
    while i < 10 {
        sum += u16::from_be(words[i]) as u32;
        i += 1;
    }
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    !(sum as u16)
}

/// The 36 bytes that precede the inner Ethernet header of VXLAN and of
/// GENEVE without options: both tunnel headers are 8 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OuterHdrs {
    pub ip: Ipv4Hdr,
    pub udp: UdpHdr,
    /// The VXLAN or GENEVE header ([`tunnel_hdr`]).
    pub tunnel: [u8; 8],
}

const _: () = assert!(core::mem::size_of::<OuterHdrs>() == 36);

/// The 28 bytes that precede the inner Ethernet header of GRE with a key
/// (as Open vSwitch's `gre` ports with `key=` send it: no checksum, no
/// sequence number).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GreOuterHdrs {
    pub ip: Ipv4Hdr,
    pub gre: GreHdr,
    pub key_be: u32,
}

const _: () = assert!(core::mem::size_of::<GreOuterHdrs>() == IPV4_HLEN + GRE_HLEN);

/// The 56 bytes that precede the inner Ethernet header of VXLAN (or
/// GENEVE without options) over IPv6.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OuterHdrs6 {
    pub ip: Ipv6Hdr,
    pub udp: UdpHdr,
    pub tunnel: [u8; 8],
}

const _: () = assert!(core::mem::size_of::<OuterHdrs6>() == IPV6_HLEN + UDP_HLEN + VXLAN_HLEN);

/// What encapsulation writes, in one store from the start of the frame:
/// the outer MAC addresses (the next hop's), the outer ethertype, the
/// outer headers `T` ([`OuterHdrs`], [`OuterHdrs6`] or [`GreOuterHdrs`])
/// and the inner Ethernet header (`bpf_skb_adjust_room` inserts the room
/// after the frame's own, which becomes the outer one).
#[repr(C, packed)]
#[derive(Clone, Copy, Debug)]
pub struct EncapHead<T: Copy> {
    /// Destination, then source MAC address (zero when the next hop is
    /// not resolved yet: `bpf_redirect_neigh` writes them then).
    pub macs: [u8; 12],
    pub ethertype_be: u16,
    pub outer: T,
    pub inner_eth: EthHdr,
}

const _: () = {
    use crate::offsets as off;
    assert!(off::ETH_DST == 0 && off::ETH_SRC == 6 && off::ETH_TYPE == 12);
    assert!(size_of::<EncapHead<OuterHdrs>>() == off::INNER_ETH + ETH_HLEN);
    assert!(size_of::<EncapHead<OuterHdrs6>>() == off::INNER_ETH6 + ETH_HLEN);
    assert!(size_of::<EncapHead<GreOuterHdrs>>() == off::GRE_INNER_ETH + ETH_HLEN);
};

/// Parameters of one encapsulation.
#[derive(Clone, Copy, Debug)]
pub struct EncapParams {
    /// Outer source and destination (IPv4-mapped for the IPv4 builders).
    pub src_be: VtepAddr,
    pub dst_be: VtepAddr,
    /// VXLAN or GENEVE VNI, or GRE key.
    pub vni: u32,
    pub ttl: u8,
    pub src_port: u16,
    /// UDP destination port (VXLAN, GENEVE).
    pub dst_port_be: u16,
    /// `ENCAP_VXLAN` or `ENCAP_GENEVE` for [`build_outer`].
    pub encap: u8,
}

/// The 8-byte VXLAN header (I flag) or GENEVE header (version 0, no
/// options, protocol 0x6558) carrying `vni`.
#[inline(always)]
pub const fn tunnel_hdr(encap: u8, vni: u32) -> [u8; 8] {
    let v = vni.to_be_bytes();
    if encap == ENCAP_GENEVE {
        let p = ETH_P_TEB.to_be_bytes();
        [0, 0, p[0], p[1], v[1], v[2], v[3], 0]
    } else {
        [VXLAN_FLAG_I, 0, 0, 0, v[1], v[2], v[3], 0]
    }
}

/// Outer IPv4 header carrying `payload_len` bytes of `protocol`. DF is
/// set: an encapsulated frame is never fragmented.
#[inline(always)]
fn outer_ip(p: &EncapParams, protocol: u8, payload_len: u32) -> Ipv4Hdr {
    let mut ip = Ipv4Hdr {
        version_ihl: 0x45,
        tos: 0,
        tot_len_be: ((IPV4_HLEN as u32 + payload_len) as u16).to_be(),
        id_be: 0,
        frag_off_be: 0x4000u16.to_be(),
        ttl: p.ttl,
        protocol,
        check_be: 0,
        saddr_be: vtep_v4_be(&p.src_be),
        daddr_be: vtep_v4_be(&p.dst_be),
    };
    ip.check_be = ipv4_checksum(&ip).to_be();
    ip
}

/// The outer UDP header of VXLAN or GENEVE, checksum zero.
#[inline(always)]
const fn outer_udp(p: &EncapParams, udp_len: u32) -> UdpHdr {
    UdpHdr {
        source_be: p.src_port.to_be(),
        dest_be: p.dst_port_be,
        len_be: (udp_len as u16).to_be(),
        check_be: 0,
    }
}

/// Outer IPv6/UDP/VXLAN (or GENEVE) headers for an inner Ethernet frame
/// of `inner_len` bytes. The flow label is `flow` (the UDP source port's
/// entropy, as Linux's vxlan derives it from the flow hash too); the UDP
/// checksum is zero, to be filled in (RFC 8200) unless the peers accept
/// zero (RFC 6935).
#[inline(always)]
pub fn build_outer6(p: &EncapParams, flow: u32, inner_len: u32) -> OuterHdrs6 {
    let udp_len = (UDP_HLEN + VXLAN_HLEN) as u32 + inner_len;
    OuterHdrs6 {
        ip: Ipv6Hdr {
            vtc_flow_be: (6 << 28 | (flow & 0x000f_ffff)).to_be(),
            payload_len_be: (udp_len as u16).to_be(),
            next_header: IPPROTO_UDP,
            hop_limit: p.ttl,
            saddr_be: p.src_be,
            daddr_be: p.dst_be,
        },
        udp: outer_udp(p, udp_len),
        tunnel: tunnel_hdr(p.encap, p.vni),
    }
}

/// Outer IPv4/UDP/VXLAN (or GENEVE) headers for an inner Ethernet frame
/// of `inner_len` bytes. The UDP checksum is zero (allowed for IPv4 by
/// RFC 7348 and RFC 8926).
#[inline(always)]
pub fn build_outer(p: &EncapParams, inner_len: u32) -> OuterHdrs {
    let udp_len = (UDP_HLEN + VXLAN_HLEN) as u32 + inner_len;
    OuterHdrs {
        ip: outer_ip(p, IPPROTO_UDP, udp_len),
        udp: outer_udp(p, udp_len),
        tunnel: tunnel_hdr(p.encap, p.vni),
    }
}

/// Outer IPv4/GRE headers (key = `p.vni`, protocol 0x6558) for an inner
/// Ethernet frame of `inner_len` bytes.
#[inline(always)]
pub fn build_gre_outer(p: &EncapParams, inner_len: u32) -> GreOuterHdrs {
    GreOuterHdrs {
        ip: outer_ip(p, IPPROTO_GRE, GRE_HLEN as u32 + inner_len),
        gre: GreHdr { flags_be: GRE_F_KEY.to_be(), protocol_be: ETH_P_TEB.to_be() },
        key_be: p.vni.to_be(),
    }
}

/// Incrementally updates an IPv4 checksum for a 32-bit field change (RFC 1624).
#[inline(always)]
pub const fn csum_replace4(check_be: u16, old_be: u32, new_be: u32) -> u16 {
    let old = u32::from_be(old_be);
    let new = u32::from_be(new_be);
    let mut sum: u32 = (!u16::from_be(check_be)) as u32;
    sum += (!(old >> 16) as u16) as u32 + (!(old as u16)) as u32;
    sum += (new >> 16) + (new & 0xffff);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    (!(sum as u16)).to_be()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn src_port_covers_range() {
        assert_eq!(udp_src_port(0), SRC_PORT_MIN);
        assert_eq!(udp_src_port(u32::MAX), SRC_PORT_MAX);
        assert_eq!(udp_src_port(1 << 31), 49152 + 8192);
    }

    #[test]
    fn flow_hash_follows_the_flow_and_spreads() {
        use crate::pktbuild::udp4;
        let m = ([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
        let a = udp4(m.0, m.1, [203, 0, 113, 1], [203, 0, 113, 2], 1000, 2000, 10);
        let mut b = udp4(m.0, m.1, [203, 0, 113, 1], [203, 0, 113, 2], 1000, 2000, 50);
        assert_eq!(flow_hash(&a[..]), flow_hash(&b[..]), "payload is not the flow");
        b[6] = 9; // another source MAC, same IP flow
        assert_eq!(flow_hash(&a[..]), flow_hash(&b[..]));
        // 4096 flows (source ports) over the 16,384 UDP source ports: no
        // port takes more than a few, every 1/16 of the range gets some.
        let mut per_port = std::collections::BTreeMap::new();
        let mut sixteenths = [0u32; 16];
        for sport in 0..4096u16 {
            let f = udp4(m.0, m.1, [203, 0, 113, 1], [203, 0, 113, 2], sport, 2000, 10);
            let p = udp_src_port(flow_hash(&f[..]));
            *per_port.entry(p).or_insert(0u32) += 1;
            sixteenths[((p - SRC_PORT_MIN) / 1024) as usize] += 1;
        }
        assert!(per_port.values().all(|n| *n <= 4), "{:?}", per_port.values().max());
        assert!(sixteenths.iter().all(|n| (160..=352).contains(n)), "{sixteenths:?}");
        // Fragments and non-IP frames hash too, without ports.
        let mut frag = a.clone();
        frag[20] = 0x20;
        assert_eq!(flow_words(&frag[..])[3], 0);
        let arp = crate::pktbuild::eth([0xff; 6], m.1, crate::ETH_P_ARP);
        assert_ne!(flow_hash(&arp[..]), flow_hash(&a[..]));
    }

    #[test]
    fn checksum_matches_known_header() {
        // 192.0.2.1 -> 192.0.2.2, UDP, len 84, DF, TTL 64: checked with scapy.
        let p = EncapParams {
            src_be: crate::vtep::vtep_v4(u32::from_be_bytes([192, 0, 2, 1]).to_be()),
            dst_be: crate::vtep::vtep_v4(u32::from_be_bytes([192, 0, 2, 2]).to_be()),
            vni: 100,
            ttl: 64,
            src_port: 50000,
            dst_port_be: 4789u16.to_be(),
            encap: crate::ENCAP_VXLAN,
        };
        let o = build_outer(&p, 48);
        assert_eq!(u16::from_be(o.ip.tot_len_be), 84);
        assert_eq!(u16::from_be(o.ip.check_be), 0xb695);
        assert_eq!(ipv4_checksum(&o.ip), 0, "a valid header sums to zero");
        assert_eq!(u16::from_be(o.udp.len_be), 64);
        assert_eq!(o.tunnel, [0x08, 0, 0, 0, 0, 0, 100, 0]);
    }

    #[test]
    fn geneve_and_gre_headers_are_those_of_the_rfcs() {
        assert_eq!(tunnel_hdr(ENCAP_GENEVE, 0x123456), [0, 0, 0x65, 0x58, 0x12, 0x34, 0x56, 0]);
        let p = EncapParams {
            src_be: crate::vtep::vtep_v4(u32::from_be_bytes([192, 0, 2, 1]).to_be()),
            dst_be: crate::vtep::vtep_v4(u32::from_be_bytes([192, 0, 2, 2]).to_be()),
            vni: 0xdead_beef,
            ttl: 64,
            src_port: 0,
            dst_port_be: 0,
            encap: crate::ENCAP_GRE,
        };
        let g = build_gre_outer(&p, 48);
        assert_eq!(u16::from_be(g.ip.tot_len_be), 20 + 8 + 48);
        assert_eq!(g.ip.protocol, 47);
        assert_eq!(ipv4_checksum(&g.ip), 0);
        assert_eq!((u16::from_be(g.gre.flags_be), u16::from_be(g.gre.protocol_be)), (0x2000, 0x6558));
        assert_eq!(u32::from_be(g.key_be), 0xdead_beef, "the key is 32 bits wide");
    }

    #[test]
    fn incremental_checksum_equals_full() {
        let mut p = EncapParams {
            src_be: crate::vtep::vtep_v4(0x0100_00c0),
            dst_be: crate::vtep::vtep_v4(0x0200_00c0),
            vni: 7,
            ttl: 64,
            src_port: 60000,
            dst_port_be: 4789u16.to_be(),
            encap: crate::ENCAP_VXLAN,
        };
        let a = build_outer(&p, 1000);
        for d in [0x0300_00c0u32, 0xfe71_33cb, 0xffff_ffff, 0] {
            p.dst_be = crate::vtep::vtep_v4(d);
            let b = build_outer(&p, 1000);
            assert_eq!(csum_replace4(a.ip.check_be, a.ip.daddr_be, d), b.ip.check_be, "dst {d:#x}");
        }
    }
}
