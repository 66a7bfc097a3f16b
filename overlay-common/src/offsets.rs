//! Byte offsets in a frame this VTEP encapsulated (outer Ethernet, IPv4
//! without options, UDP, VXLAN, inner Ethernet), named once from the header
//! structs, for the programs that write and rewrite those bytes.

use core::mem::offset_of;

use crate::{
    ETH_HLEN, GRE_HLEN, IPV4_HLEN, UDP_HLEN, VXLAN_HLEN,
    headers::{EthHdr, Ipv4Hdr, UdpHdr},
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
/// Outer UDP header.
pub const UDP: usize = IP + IPV4_HLEN;
pub const UDP_CHECK: usize = UDP + offset_of!(UdpHdr, check_be);
/// Inner Ethernet header, its ethertype, and the inner L3 header.
pub const INNER_ETH: usize = UDP + UDP_HLEN + VXLAN_HLEN;
pub const INNER_ETH_TYPE: usize = INNER_ETH + ETH_TYPE;
pub const INNER_L3: usize = INNER_ETH + ETH_HLEN;
/// Inner Ethernet header behind GRE with a key.
pub const GRE_INNER_ETH: usize = IP + IPV4_HLEN + GRE_HLEN;

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
    }
}
