//! Types and logic shared by the BPF programs and userspace.
//!
//! Everything here is `no_std`, allocation-free and panic-free so that the BPF
//! programs can use it. Map keys and values are plain bytes: `#[repr(C)]`,
//! explicit padding, a compile-time size assertion, byte order in the field
//! name (`_be` = network order; everything else is host order).
#![no_std]

pub mod counters;
pub mod encap;
pub mod frame;
pub mod headers;
pub mod maps;
pub mod monitor;
pub mod neigh;
pub mod offsets;
pub mod parse;
pub mod trace;
pub mod vtep;

/// Default VXLAN UDP port (IANA).
pub const VXLAN_PORT: u16 = 4789;
/// GENEVE UDP port (IANA, RFC 8926).
pub const GENEVE_PORT: u16 = 6081;
pub const ETH_HLEN: usize = 14;
/// IPv4 header without options.
pub const IPV4_HLEN: usize = 20;
pub const IPV6_HLEN: usize = 40;
pub const UDP_HLEN: usize = 8;
pub const VXLAN_HLEN: usize = 8;
/// GRE header with the key field (RFC 2890), no checksum, no sequence number.
pub const GRE_HLEN: usize = 8;
/// GENEVE header without options (RFC 8926).
pub const GENEVE_HLEN: usize = 8;

/// A network's encapsulation (`[[network]] encap`), as kept in the
/// datapath's network flags.
pub const ENCAP_VXLAN: u8 = 0;
pub const ENCAP_GRE: u8 = 1;
pub const ENCAP_GENEVE: u8 = 2;

/// Outer Ethernet + IPv4 (no options) + UDP + VXLAN.
pub const VXLAN_OVERHEAD: u32 = (ETH_HLEN + IPV4_HLEN + UDP_HLEN + VXLAN_HLEN) as u32;
/// Outer Ethernet + IPv4 + GRE with key.
pub const GRE_OVERHEAD: u32 = (ETH_HLEN + IPV4_HLEN + GRE_HLEN) as u32;
/// Outer Ethernet + IPv4 + UDP + GENEVE without options.
pub const GENEVE_OVERHEAD: u32 = (ETH_HLEN + IPV4_HLEN + UDP_HLEN + GENEVE_HLEN) as u32;
/// Bytes added in front of the inner Ethernet header by encapsulation,
/// measured after the outer MAC header: IPv4 + UDP + VXLAN (or GENEVE) +
/// inner Ethernet.
pub const ENCAP_ROOM: u32 = (IPV4_HLEN + UDP_HLEN + VXLAN_HLEN + ETH_HLEN) as u32;
/// Outer Ethernet + IPv6 + UDP + VXLAN.
pub const VXLAN6_OVERHEAD: u32 = (ETH_HLEN + IPV6_HLEN + UDP_HLEN + VXLAN_HLEN) as u32;
/// [`ENCAP_ROOM`] over IPv6: IPv6 + UDP + VXLAN + inner Ethernet.
pub const ENCAP_ROOM6: u32 = (IPV6_HLEN + UDP_HLEN + VXLAN_HLEN + ETH_HLEN) as u32;
/// The same for GRE: IPv4 + GRE with key + inner Ethernet.
pub const GRE_ENCAP_ROOM: u32 = (IPV4_HLEN + GRE_HLEN + ETH_HLEN) as u32;

/// Bytes an encapsulation (`ENCAP_*`) adds to a tenant frame on the wire:
/// the tenant MTU default is the underlay MTU minus this.
pub const fn encap_overhead(encap: u8) -> u32 {
    match encap {
        ENCAP_GRE => GRE_OVERHEAD,
        ENCAP_GENEVE => GENEVE_OVERHEAD,
        _ => VXLAN_OVERHEAD,
    }
}
pub const ETH_P_IPV4: u16 = 0x0800;
pub const ETH_P_ARP: u16 = 0x0806;
pub const ETH_P_IPV6: u16 = 0x86dd;
pub const ETH_P_8021Q: u16 = 0x8100;
pub const ETH_P_8021AD: u16 = 0x88a8;
/// Transparent Ethernet bridging: the protocol of Ethernet carried in GRE
/// and GENEVE.
pub const ETH_P_TEB: u16 = 0x6558;
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;
pub const IPPROTO_GRE: u8 = 47;
/// IPv6 fragment extension header.
pub const IPPROTO_FRAGMENT: u8 = 44;

/// Version of the pinned map layout. Bumped whenever a key or value type
/// changes; `overlayctl up` refuses to reuse pins written with another one.
pub const LAYOUT_VERSION: u32 = 15;

/// Upper bounds compiled into the programs (loops must be bounded).
pub const MAX_NETWORKS: u32 = 1024;
pub const MAX_FLOOD_PORTS: usize = 64;
pub const MAX_FLOOD_PEERS: usize = 128;

/// `skb->pkt_type` (linux/if_packet.h): addressed to this host, and to
/// another host's MAC address.
pub const PACKET_HOST: u32 = 0;
pub const PACKET_OTHERHOST: u32 = 3;

/// "No network" marker in port configuration.
pub const NO_NET: u32 = u32::MAX;
/// "Untagged" marker for a VLAN ID.
pub const NO_VLAN: u16 = 0xffff;

pub use vtep::{VtepAddr, is_unicast_vtep};

/// A MAC address is group (multicast or broadcast) when the I/G bit is set.
#[inline(always)]
pub const fn is_group_mac(mac: &[u8; 6]) -> bool {
    mac[0] & 1 == 1
}

#[inline(always)]
pub const fn is_zero_mac(mac: &[u8; 6]) -> bool {
    (mac[0] | mac[1] | mac[2] | mac[3] | mac[4] | mac[5]) == 0
}

#[cfg(any(test, feature = "user"))]
extern crate std;

#[cfg(any(test, feature = "user"))]
pub mod pktbuild;
