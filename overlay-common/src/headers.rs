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
/// IPv4 "more fragments" flag and fragment offset mask (host order).
pub const IP_MF: u16 = 0x2000;
pub const IP_OFFSET: u16 = 0x1fff;

const _: () = assert!(size_of::<EthHdr>() == 14);
const _: () = assert!(size_of::<VlanHdr>() == 4);
const _: () = assert!(size_of::<Ipv4Hdr>() == 20);
const _: () = assert!(size_of::<UdpHdr>() == 8);
const _: () = assert!(size_of::<VxlanHdr>() == 8);

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
