//! Byte offsets in a frame this VTEP encapsulated (outer Ethernet, IPv4
//! without options, UDP, VXLAN, inner Ethernet), named once from the header
//! structs, for the programs that write and rewrite those bytes.

use core::mem::offset_of;

use crate::{
    ETH_HLEN, GRE_HLEN, IPV4_HLEN, IPV6_HLEN, UDP_HLEN, VXLAN_HLEN,
    headers::{EthHdr, Ipv4Hdr, Ipv6Hdr, UdpHdr},
};

/// Outer ethertype.
pub const ETH_TYPE: usize = offset_of!(EthHdr, ethertype_be);
/// Outer destination and source MAC.
pub const ETH_DST: usize = offset_of!(EthHdr, dst);
pub const ETH_SRC: usize = offset_of!(EthHdr, src);
/// Outer IPv4 header.
pub const IP: usize = ETH_HLEN;
pub const IP_CHECK: usize = IP + offset_of!(Ipv4Hdr, check_be);
pub const IP_DST: usize = IP + offset_of!(Ipv4Hdr, daddr_be);
/// Outer IPv4 source address (the destination follows it).
pub const IP_SRC: usize = IP + offset_of!(Ipv4Hdr, saddr_be);
/// Outer UDP header.
pub const UDP: usize = IP + IPV4_HLEN;
pub const UDP_CHECK: usize = UDP + offset_of!(UdpHdr, check_be);
/// Inner Ethernet header, its ethertype, and the inner L3 header.
pub const INNER_ETH: usize = UDP + UDP_HLEN + VXLAN_HLEN;
pub const INNER_ETH_TYPE: usize = INNER_ETH + ETH_TYPE;
pub const INNER_L3: usize = INNER_ETH + ETH_HLEN;
/// Inner Ethernet header behind GRE with a key.
pub const GRE_INNER_ETH: usize = IP + IPV4_HLEN + GRE_HLEN;

/// How much further every offset past the outer IP header is over an
/// IPv6 underlay.
pub const V6_SHIFT: usize = IPV6_HLEN - IPV4_HLEN;
/// Outer IPv6 source address (the destination follows it).
pub const IP6_SRC: usize = IP + offset_of!(Ipv6Hdr, saddr_be);
/// Outer IPv6 destination address.
pub const IP6_DST: usize = IP + offset_of!(Ipv6Hdr, daddr_be);
/// Outer UDP header and its checksum over IPv6.
pub const UDP6: usize = UDP + V6_SHIFT;
pub const UDP6_CHECK: usize = UDP_CHECK + V6_SHIFT;
/// Inner Ethernet header behind IPv6/UDP/VXLAN.
pub const INNER_ETH6: usize = INNER_ETH + V6_SHIFT;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_those_of_the_wire() {
        assert_eq!((ETH_DST, ETH_SRC, ETH_TYPE), (0, 6, 12));
        assert_eq!((IP, IP_CHECK, IP_DST), (14, 24, 30));
        assert_eq!((UDP, UDP_CHECK), (34, 40));
        assert_eq!((INNER_ETH, INNER_ETH_TYPE, INNER_L3), (50, 62, 64));
        assert_eq!(crate::VXLAN_OVERHEAD as usize, INNER_ETH);
        assert_eq!(crate::ENCAP_ROOM as usize, INNER_L3 - ETH_HLEN);
        assert_eq!(GRE_INNER_ETH, 42);
        assert_eq!(crate::GRE_OVERHEAD as usize, GRE_INNER_ETH);
        assert_eq!(crate::GRE_ENCAP_ROOM as usize, GRE_INNER_ETH + ETH_HLEN - ETH_HLEN);
        assert_eq!((IP6_SRC, IP6_DST, UDP6, UDP6_CHECK, INNER_ETH6), (22, 38, 54, 60, 70));
        assert_eq!((IP_SRC, IP_DST), (26, 30));
        assert_eq!(crate::VXLAN6_OVERHEAD as usize, INNER_ETH6);
        assert_eq!(crate::ENCAP_ROOM6 as usize, INNER_ETH6);
    }
}
