//! ARP and IPv6 neighbour discovery as the datapath sees them: which
//! messages it answers for addresses it knows (suppression) and which it
//! learns from, and the exact replies. Parsing and building are shared by
//! the programs and the host (tests, scapy comparisons), like [`crate::parse`].
//!
//! The rules follow the kernel bridge's `neigh_suppress`
//! (`net/bridge/br_arp_nd_proxy.c`); where they differ it is said here and
//! in the README:
//! - Only requests sent to a group address (broadcast ARP, NS to the
//!   solicited-node group) are answered. Unicast ones are the sender's
//!   reachability probes and go to the owner as before (the bridge answers
//!   those too, and forwards them as well).
//! - Never answered: ARP probes (sender 0.0.0.0) and DAD (NS from `::`),
//!   gratuitous ARP (sender = target, which covers a request for the asker's
//!   own address), an NS from the target address itself, targets that are
//!   loopback or multicast. These are flooded as before. (The bridge also
//!   keeps probes and gratuitous ARP off suppressing ports, because EVPN
//!   spreads moves for it; without a control plane they must reach the
//!   peers, or DAD across hosts and MAC moves would break.)
//! - An NS is answered only when its ICMPv6 checksum is right and it carries
//!   at most one 8-byte option (what Linux, Windows and BSD send); others
//!   are flooded as before.

use core::mem::size_of;

use crate::{
    ETH_HLEN, ETH_P_ARP, ETH_P_IPV6, IPV6_HLEN,
    frame::{Frame, fold16},
    headers::EthHdr,
};

/// ARP for IPv4 over Ethernet.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArpHdr {
    pub htype_be: u16,
    pub ptype_be: u16,
    pub hlen: u8,
    pub plen: u8,
    pub op_be: u16,
    pub sha: [u8; 6],
    pub spa: [u8; 4],
    pub tha: [u8; 6],
    pub tpa: [u8; 4],
}

pub const ARP_HLEN: usize = size_of::<ArpHdr>();
/// An ARP reply as the kernel builds it: Ethernet + ARP, no padding.
pub const ARP_FRAME_LEN: usize = ETH_HLEN + ARP_HLEN;
pub const ARP_OP_REQUEST: u16 = 1;
pub const ARP_OP_REPLY: u16 = 2;

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv6Hdr {
    /// Version (4 bits), traffic class (8), flow label (20).
    pub vtcfl: [u8; 4],
    pub payload_len_be: u16,
    pub nexthdr: u8,
    pub hop_limit: u8,
    pub saddr: [u8; 16],
    pub daddr: [u8; 16],
}

/// ICMPv6 neighbour solicitation or advertisement, without options.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NdHdr {
    pub icmp_type: u8,
    pub code: u8,
    pub checksum_be: u16,
    /// NA: R (0x80), S (0x40), O (0x20); NS: zero.
    pub flags: u8,
    pub reserved: [u8; 3],
    pub target: [u8; 16],
}

/// A link-layer address option (source 1, target 2), 8 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NdLlOpt {
    pub kind: u8,
    /// In units of 8 bytes.
    pub len: u8,
    pub mac: [u8; 6],
}

pub const IPPROTO_ICMPV6: u8 = 58;
pub const ND_NS: u8 = 135;
pub const ND_NA: u8 = 136;
pub const ND_OPT_SLLA: u8 = 1;
pub const ND_OPT_TLLA: u8 = 2;
pub const NA_F_SOLICITED: u8 = 0x40;
pub const NA_F_OVERRIDE: u8 = 0x20;
const ND_LEN: usize = size_of::<NdHdr>();
const OPT_LEN: usize = size_of::<NdLlOpt>();
/// Offset of the ICMPv6 message in an untagged frame.
pub const ND_OFF: usize = ETH_HLEN + IPV6_HLEN;
/// A neighbour advertisement as the kernel bridge builds it: with the
/// target link-layer address option.
pub const NA_FRAME_LEN: usize = ND_OFF + ND_LEN + OPT_LEN;

/// A tenant's ARP message (untagged frame: tags were taken off before).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arp {
    pub op: u16,
    pub sha: [u8; 6],
    pub spa: [u8; 4],
    pub tpa: [u8; 4],
}

/// ARP for IPv4 over Ethernet, request or reply; `None` for anything else.
#[inline(always)]
pub fn parse_arp<F: Frame + ?Sized>(f: &F) -> Option<Arp> {
    let eth: EthHdr = f.read(0)?;
    if eth.ethertype_be != ETH_P_ARP.to_be() {
        return None;
    }
    let a: ArpHdr = f.read(ETH_HLEN)?;
    let op = u16::from_be(a.op_be);
    if a.htype_be != 1u16.to_be()
        || a.ptype_be != crate::ETH_P_IPV4.to_be()
        || a.hlen != 6
        || a.plen != 4
        || (op != ARP_OP_REQUEST && op != ARP_OP_REPLY)
    {
        return None;
    }
    Some(Arp { op, sha: a.sha, spa: a.spa, tpa: a.tpa })
}

/// Whether an IPv4 address can be a tenant's own: not zero, loopback,
/// multicast or broadcast/reserved.
#[inline(always)]
pub const fn is_host_ipv4(a: [u8; 4]) -> bool {
    let zero = a[0] == 0 && a[1] == 0 && a[2] == 0 && a[3] == 0;
    !zero && a[0] != 127 && a[0] < 224
}

/// An IPv6 address as two big-endian 64-bit numbers: two registers in
/// BPF, where 16 bytes would be 16 values to keep and spill (and `u128` is
/// not reliably lowered by the BPF backend).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ip6 {
    pub hi: u64,
    pub lo: u64,
}

impl Ip6 {
    #[inline(always)]
    pub const fn from_octets(a: [u8; 16]) -> Ip6 {
        let mut hi = [0u8; 8];
        let mut lo = [0u8; 8];
        let mut i = 0;
        while i < 8 {
            hi[i] = a[i];
            lo[i] = a[8 + i];
            i += 1;
        }
        Ip6 { hi: u64::from_be_bytes(hi), lo: u64::from_be_bytes(lo) }
    }

    #[inline(always)]
    pub fn octets(&self) -> [u8; 16] {
        // SAFETY: two u64 are sixteen bytes, any pattern valid; in BPF two
        // stores instead of sixteen.
        unsafe { core::mem::transmute::<[u64; 2], [u8; 16]>([self.hi.to_be(), self.lo.to_be()]) }
    }

    /// Whether it can be a tenant's own address: not `::`, loopback or
    /// multicast.
    #[inline(always)]
    pub const fn is_host(&self) -> bool {
        let unspecified_or_loopback = self.hi == 0 && self.lo <= 1;
        !unspecified_or_loopback && (self.hi >> 56) != 0xff
    }
}

impl Arp {
    /// The target address, if this request may be answered for it.
    #[inline(always)]
    pub fn answerable(&self) -> Option<[u8; 4]> {
        let probe_or_gratuitous = self.spa == [0; 4] || self.spa == self.tpa;
        if self.op != ARP_OP_REQUEST || probe_or_gratuitous || !is_host_ipv4(self.tpa) {
            return None;
        }
        Some(self.tpa)
    }

    /// The (address, MAC) pair a reply or gratuitous ARP announces, if it
    /// is one to learn: sent by `eth_src` itself, about a host address.
    #[inline(always)]
    pub fn announces(&self, eth_src: &[u8; 6]) -> Option<([u8; 4], [u8; 6])> {
        let gratuitous = self.spa == self.tpa;
        let ok = (self.op == ARP_OP_REPLY || gratuitous) && self.sha == *eth_src && is_host_ipv4(self.spa);
        if ok { Some((self.spa, self.sha)) } else { None }
    }

    /// Rewrites the request in `r` (the frame, [`ARP_FRAME_LEN`] bytes)
    /// into the reply for `mac`, byte for byte as the kernel's `arp_create`
    /// makes it: to the asker's hardware address, from `mac`. In place, so
    /// the programs need no copy of the frame on their small stack.
    #[inline(always)]
    pub fn reply_in_place(&self, mac: &[u8; 6], r: &mut [u8; ARP_FRAME_LEN]) {
        put(r, 0, &self.sha);
        put(r, 6, mac);
        put(r, 12, &ETH_P_ARP.to_be_bytes());
        put(r, 14, &[0, 1, 0x08, 0x00, 6, 4, 0, ARP_OP_REPLY as u8]);
        put(r, 22, mac);
        put(r, 28, &self.tpa);
        put(r, 32, &self.sha);
        put(r, 38, &self.spa);
    }
}

/// Copies `src` into `r` at `at` (constant offsets: bounds known at
/// compile time).
#[inline(always)]
fn put<const N: usize, const M: usize>(r: &mut [u8; N], at: usize, src: &[u8; M]) {
    let mut i = 0;
    while i < M {
        r[at + i] = src[i];
        i += 1;
    }
}

/// A tenant's neighbour solicitation or advertisement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Nd {
    pub icmp_type: u8,
    /// The high nibble of the traffic class (the kernel's `priority`
    /// field, which its reply copies; the rest of the class is not).
    pub priority: u8,
    /// Checksum right and options as described in the module docs.
    pub plain: bool,
    /// Sent from `::` (duplicate address detection).
    pub from_unspecified: bool,
    /// Sent from the target address itself.
    pub from_target: bool,
    pub target: Ip6,
    /// The source (NS) or target (NA) link-layer address option; zero if
    /// none. (Not an `Option`: its `None` leaves bytes undefined, which
    /// LLVM copies and the verifier refuses to read.)
    pub lladdr: [u8; 6],
}

/// Offsets in an untagged IPv6 frame.
const IP6_SADDR: usize = ETH_HLEN + 8;
const IP6_DADDR: usize = IP6_SADDR + 16;
const ND_TARGET: usize = ND_OFF + 8;
const ND_OPT: usize = ND_OFF + ND_LEN;

/// The ICMPv6 checksum of a frame holding an ND message of `N` bytes
/// (addresses and message summed in one run, plus the rest of the pseudo
/// header), as it must be stored; the stored one is summed too, so a
/// frame whose checksum is right gives 0.
#[inline(always)]
fn icmp6_sum<F: Frame + ?Sized, const N: usize>(f: &F) -> Option<u16> {
    let s = f.sum16::<N>(IP6_SADDR)? as u32 + (N - 32) as u32 + IPPROTO_ICMPV6 as u32;
    Some(!fold16(s))
}

/// An IPv6 address read as two 64-bit words (in BPF, two loads instead of
/// sixteen byte values).
#[inline(always)]
fn read_ip6<F: Frame + ?Sized>(f: &F, off: usize) -> Option<Ip6> {
    let w: [u64; 2] = f.read(off)?;
    Some(Ip6 { hi: u64::from_be(w[0]), lo: u64::from_be(w[1]) })
}

/// IPv6 neighbour solicitation or advertisement (no extension headers,
/// hop limit 255, code 0); `None` for anything else. Reads the addresses
/// one at a time (the programs' stack is small).
#[inline(always)]
pub fn parse_nd<F: Frame + ?Sized>(f: &F) -> Option<Nd> {
    let eth: EthHdr = f.read(0)?;
    if eth.ethertype_be != ETH_P_IPV6.to_be() {
        return None;
    }
    // Version/class/flow (4), payload length (2), next header, hop limit.
    let h: [u8; 8] = f.read(ETH_HLEN)?;
    let plen = u16::from_be_bytes([h[4], h[5]]) as usize;
    if h[0] >> 4 != 6
        || h[6] != IPPROTO_ICMPV6
        || h[7] != 255
        || plen < ND_LEN
        || ND_OFF + plen > f.wire_len()
    {
        return None;
    }
    // type, code, checksum, flags, reserved
    let m: [u8; 8] = f.read(ND_OFF)?;
    if (m[0] != ND_NS && m[0] != ND_NA) || m[1] != 0 {
        return None;
    }
    let saddr = read_ip6(f, IP6_SADDR)?;
    let target = read_ip6(f, ND_TARGET)?;
    let mut lladdr = [0u8; 6];
    let plain = if plen == ND_LEN {
        icmp6_sum::<F, { 32 + ND_LEN }>(f)? == 0
    } else if plen == ND_LEN + OPT_LEN {
        let o: NdLlOpt = f.read(ND_OPT)?;
        let want = if m[0] == ND_NS { ND_OPT_SLLA } else { ND_OPT_TLLA };
        if o.kind == want && o.len == 1 {
            lladdr = o.mac;
        }
        o.len == 1 && icmp6_sum::<F, { 32 + ND_LEN + OPT_LEN }>(f)? == 0
    } else {
        false
    };
    Some(Nd {
        icmp_type: m[0],
        priority: h[0] & 0x0f,
        plain,
        from_unspecified: saddr.hi == 0 && saddr.lo == 0,
        from_target: saddr == target,
        target,
        lladdr,
    })
}

impl Nd {
    /// The target address, if this solicitation may be answered for it.
    #[inline(always)]
    pub fn answerable(&self) -> Option<Ip6> {
        let refused = self.from_unspecified || self.from_target || !self.target.is_host();
        if self.icmp_type != ND_NS || !self.plain || refused {
            return None;
        }
        Some(self.target)
    }

    /// The (address, MAC) pair an advertisement announces, if it is one to
    /// learn: sent by `eth_src` itself (its option, if any, agrees).
    #[inline(always)]
    pub fn announces(&self, eth_src: &[u8; 6]) -> Option<(Ip6, [u8; 6])> {
        let own = crate::is_zero_mac(&self.lladdr) || self.lladdr == *eth_src;
        let ok = self.icmp_type == ND_NA && self.plain && own && self.target.is_host();
        if ok { Some((self.target, *eth_src)) } else { None }
    }

    /// Rewrites the solicitation in `r` (the frame, made [`NA_FRAME_LEN`]
    /// bytes long) into the advertisement answering it for `mac`, byte for
    /// byte as the kernel bridge's `br_nd_send` makes it, but for the
    /// checksum (zero here; then [`na_checksum`]): to the asker's
    /// link-layer address (its option, else its Ethernet source), from
    /// `mac`; IPv6 from the target to the asker, hop limit 255, the
    /// request's priority; Solicited and Override set, Router clear; the
    /// target link-layer address option. In place: the programs' stack
    /// holds no copy of the frame.
    #[inline(always)]
    pub fn reply_in_place(&self, mac: &[u8; 6], r: &mut [u8; NA_FRAME_LEN]) {
        if !crate::is_zero_mac(&self.lladdr) {
            put(r, 0, &self.lladdr);
        } else {
            let mut i = 0;
            while i < 6 {
                r[i] = r[6 + i];
                i += 1;
            }
        }
        put(r, 6, mac);
        let plen = (ND_LEN + OPT_LEN) as u16;
        put(r, ETH_HLEN, &[0x60 | self.priority, 0, 0, 0]);
        put(r, ETH_HLEN + 4, &plen.to_be_bytes());
        put(r, ETH_HLEN + 6, &[IPPROTO_ICMPV6, 255]);
        // The asker becomes the destination, the target the source.
        let mut i = 0;
        while i < 16 {
            r[IP6_DADDR + i] = r[IP6_SADDR + i];
            i += 1;
        }
        let target = self.target.octets();
        put(r, IP6_SADDR, &target);
        let flags = NA_F_SOLICITED | NA_F_OVERRIDE;
        put(r, ND_OFF, &[ND_NA, 0, 0, 0, flags, 0, 0, 0]);
        put(r, ND_TARGET, &target);
        put(r, ND_OPT, &[ND_OPT_TLLA, 1]);
        put(r, ND_OPT + 2, mac);
    }
}

/// The checksum of the advertisement [`Nd::reply_in_place`] wrote into
/// `f` (whose checksum field is still zero), to store at [`NA_CHECKSUM`].
#[inline(always)]
pub fn na_checksum<F: Frame + ?Sized>(f: &F) -> Option<[u8; 2]> {
    Some(icmp6_sum::<F, { NA_FRAME_LEN - IP6_SADDR }>(f)?.to_be_bytes())
}

/// Offset of the ICMPv6 checksum.
pub const NA_CHECKSUM: usize = ND_OFF + 2;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_those_of_the_wire() {
        assert_eq!((ARP_HLEN, ARP_FRAME_LEN), (28, 42));
        assert_eq!((size_of::<Ipv6Hdr>(), ND_LEN, OPT_LEN), (IPV6_HLEN, 24, 8));
        assert_eq!((ND_OFF, NA_FRAME_LEN), (54, 86));
    }

    #[test]
    fn host_addresses() {
        assert!(is_host_ipv4([203, 0, 113, 1]));
        for a in [[0, 0, 0, 0], [127, 0, 0, 1], [224, 0, 0, 1], [255, 255, 255, 255]] {
            assert!(!is_host_ipv4(a), "{a:?}");
        }
        let v6 = |s: &str| Ip6::from_octets(s.parse::<std::net::Ipv6Addr>().unwrap().octets());
        assert!(!v6("::").is_host());
        assert!(!v6("::1").is_host());
        assert!(!v6("ff02::1").is_host(), "multicast");
        assert!(v6("2001:db8::5").is_host());
        assert_eq!(v6("2001:db8::5").octets(), "2001:db8::5".parse::<std::net::Ipv6Addr>().unwrap().octets());
    }
}
