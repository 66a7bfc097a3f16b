//! Wire headers as plain byte structs. Multi-byte fields are in network
//! order and named `_be`; read them with `u16::from_be` / `u32::from_be`.

use core::mem::size_of;

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EthHdr {
    pub dst: [u8; 6],
    pub src: [u8; 6],
    pub ethertype_be: u16,
}

/// An 802.1Q tag as it follows the MAC addresses: TCI, then the inner type.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VlanHdr {
    pub tci_be: u16,
    pub ethertype_be: u16,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Hdr {
    pub version_ihl: u8,
    pub tos: u8,
    pub tot_len_be: u16,
    pub id_be: u16,
    pub frag_off_be: u16,
    pub ttl: u8,
    pub protocol: u8,
    pub check_be: u16,
    pub saddr_be: u32,
    pub daddr_be: u32,
}

/// IPv6 fixed header (RFC 8200).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv6Hdr {
    /// Version (4 bits), traffic class (8), flow label (20).
    pub vtc_flow_be: u32,
    pub payload_len_be: u16,
    pub next_header: u8,
    pub hop_limit: u8,
    /// Source and destination, as [`crate::VtepAddr`] words.
    pub saddr_be: [u32; 4],
    pub daddr_be: [u32; 4],
}

impl Ipv6Hdr {
    #[inline(always)]
    pub const fn version(&self) -> u8 {
        (u32::from_be(self.vtc_flow_be) >> 28) as u8
    }
}

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpHdr {
    pub source_be: u16,
    pub dest_be: u16,
    pub len_be: u16,
    pub check_be: u16,
}

/// RFC 7348 header: flags (I = 0x08), 24 reserved bits, 24-bit VNI, 8 reserved bits.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VxlanHdr {
    pub flags: u8,
    pub reserved1: [u8; 3],
    pub vni_reserved_be: u32,
}

pub const VXLAN_FLAG_I: u8 = 0x08;

/// GRE base header (RFC 2784, RFC 2890): flags and version, protocol.
/// Optional fields (checksum, key, sequence number) follow.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GreHdr {
    pub flags_be: u16,
    pub protocol_be: u16,
}

/// GRE flag bits (host order): checksum, routing, key, sequence number
/// present; strict source route and recursion control (RFC 1701, must be
/// zero since RFC 2784); reserved; version (must be 0).
pub const GRE_F_CSUM: u16 = 0x8000;
pub const GRE_F_ROUTING: u16 = 0x4000;
pub const GRE_F_KEY: u16 = 0x2000;
pub const GRE_F_SEQ: u16 = 0x1000;
pub const GRE_VERSION: u16 = 0x0007;

/// GENEVE header (RFC 8926): version (2 bits) and option length (6 bits,
/// in 4-byte words), O (OAM) and C (critical options) flags, protocol,
/// 24-bit VNI, 8 reserved bits. Options follow.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GeneveHdr {
    pub ver_optlen: u8,
    pub flags: u8,
    pub protocol_be: u16,
    pub vni_reserved_be: u32,
}

pub const GENEVE_F_OAM: u8 = 0x80;
pub const GENEVE_F_CRITICAL: u8 = 0x40;
/// IPv4 "more fragments" flag and fragment offset mask (host order).
pub const IP_MF: u16 = 0x2000;
pub const IP_OFFSET: u16 = 0x1fff;

const _: () = assert!(size_of::<EthHdr>() == 14);
const _: () = assert!(size_of::<VlanHdr>() == 4);
const _: () = assert!(size_of::<Ipv4Hdr>() == 20);
const _: () = assert!(size_of::<Ipv6Hdr>() == 40);
const _: () = assert!(size_of::<UdpHdr>() == 8);
const _: () = assert!(size_of::<VxlanHdr>() == 8);
const _: () = assert!(size_of::<GreHdr>() == 4);
const _: () = assert!(size_of::<GeneveHdr>() == 8);

impl GeneveHdr {
    #[inline(always)]
    pub const fn new(vni: u32) -> Self {
        Self {
            ver_optlen: 0,
            flags: 0,
            protocol_be: crate::ETH_P_TEB.to_be(),
            vni_reserved_be: (vni << 8).to_be(),
        }
    }

    #[inline(always)]
    pub const fn vni(&self) -> u32 {
        u32::from_be(self.vni_reserved_be) >> 8
    }

    #[inline(always)]
    pub const fn version(&self) -> u8 {
        self.ver_optlen >> 6
    }

    /// Bytes of options after the fixed header.
    #[inline(always)]
    pub const fn options_len(&self) -> usize {
        ((self.ver_optlen & 0x3f) as usize) * 4
    }
}

impl VxlanHdr {
    #[inline(always)]
    pub const fn vni(&self) -> u32 {
        u32::from_be(self.vni_reserved_be) >> 8
    }

    #[inline(always)]
    pub const fn new(vni: u32) -> Self {
        Self { flags: VXLAN_FLAG_I, reserved1: [0; 3], vni_reserved_be: (vni << 8).to_be() }
    }
}

impl Ipv4Hdr {
    /// Header length in bytes, from IHL.
    #[inline(always)]
    pub const fn header_len(&self) -> usize {
        ((self.version_ihl & 0x0f) as usize) * 4
    }

    #[inline(always)]
    pub const fn version(&self) -> u8 {
        self.version_ihl >> 4
    }

    #[inline(always)]
    pub const fn is_fragment(&self) -> bool {
        u16::from_be(self.frag_off_be) & (IP_MF | IP_OFFSET) != 0
    }
}
