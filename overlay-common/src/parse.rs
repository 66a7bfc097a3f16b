//! Header parsing shared by the kernel programs and the host tests.
//!
//! Each parser returns what it found or the [`Counter`] that explains the
//! verdict; the caller turns that into a pass or a counted drop.

use crate::counters::Counter;
use crate::frame::Frame;
use crate::headers::{EthHdr, Ipv4Hdr, UdpHdr, VXLAN_FLAG_I, VlanHdr, VxlanHdr};
use crate::{
    ETH_HLEN, ETH_P_8021AD, ETH_P_8021Q, ETH_P_IPV4, IPPROTO_UDP, IPV4_HLEN, NO_VLAN, UDP_HLEN, VXLAN_HLEN,
};

/// Why a frame was not accepted by a parser.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reject {
    /// Not for us: hand it to the host stack untouched (counted as the reason).
    Pass(Counter),
    /// Ours but bad: drop and count.
    Drop(Counter),
}

/// A VXLAN packet addressed to this VTEP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VxlanRx {
    /// Outer destination MAC (the XDP path, which has no `pkt_type`,
    /// compares it with the underlay's own).
    pub outer_dst: [u8; 6],
    pub src_vtep_be: u32,
    pub vni: u32,
    /// Offset of the inner Ethernet header from the start of the frame.
    pub inner_off: usize,
    /// Length of the inner frame, from the outer UDP length: bytes past it
    /// (Ethernet padding, trailing junk) are never the tenant's.
    pub inner_len: usize,
    pub inner: EthHdr,
}

/// Least IPv4 total length of a VXLAN packet with header length `ihl`.
const fn min_vxlan_ip_len(ihl: usize) -> usize {
    ihl + UDP_HLEN + VXLAN_HLEN + ETH_HLEN
}

/// Whether the IPv4 header (`ihl` bytes at [`ETH_HLEN`], the first 20 in
/// `ip`) sums to 0xffff, as `ip_rcv` requires. Options (rare) are read
/// four bytes at a time at constant offsets: a loop bounded by `ihl` is
/// turned by the compiler into a trip count the verifier cannot follow.
#[inline(always)]
fn ipv4_header_ok<F: Frame + ?Sized>(f: &F, ip: &Ipv4Hdr, ihl: usize) -> bool {
    // SAFETY: Ipv4Hdr is 20 plain bytes. The ones' complement sum does not
    // depend on byte order, so native-order words are summed as they are.
    let words: [u16; 10] = unsafe { core::mem::transmute(*ip) };
    let mut sum: u32 = 0;
    let mut i = 0;
    while i < 10 {
        sum += words[i] as u32;
        i += 1;
    }
    let options = ihl - IPV4_HLEN;
    let mut n = 0;
    while n < 10 {
        if n * 4 < options {
            let Some(w) = f.read::<u32>(ETH_HLEN + IPV4_HLEN + n * 4) else { return false };
            sum += (w & 0xffff) + (w >> 16);
        }
        n += 1;
    }
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum == 0xffff
}

/// Parses a frame received on the underlay.
///
/// Only IPv4/UDP to `local_vtep_be`:`port_be` concerns us; anything else is
/// [`Reject::Pass`]. Outer fragments are passed (never decapsulated). For
/// what is ours the rules of the kernel's receive path apply: a valid IPv4
/// header checksum, IP total length and UDP length consistent with each
/// other and with the frame (also for GSO super-packets, which must carry
/// nothing past the UDP payload). The outer UDP checksum is not verified
/// (RFC 7348 allows zero; a non-zero checksum is trusted to the NIC, as
/// the inner frame carries its own).
#[inline(always)]
pub fn parse_underlay<F: Frame + ?Sized>(
    f: &F,
    local_vtep_be: u32,
    port_be: u16,
    gso: bool,
) -> Result<VxlanRx, Reject> {
    let eth: EthHdr = f.read(0).ok_or(Reject::Pass(Counter::PassHost))?;
    if eth.ethertype_be != ETH_P_IPV4.to_be() {
        return Err(Reject::Pass(Counter::PassHost));
    }
    let ip: Ipv4Hdr = f.read(ETH_HLEN).ok_or(Reject::Pass(Counter::PassHost))?;
    if ip.version() != 4 || ip.protocol != IPPROTO_UDP || ip.daddr_be != local_vtep_be {
        return Err(Reject::Pass(Counter::PassHost));
    }
    let ihl = ip.header_len();
    if ihl < IPV4_HLEN {
        return Err(Reject::Drop(Counter::DropMalformed));
    }
    if ip.is_fragment() {
        return Err(Reject::Pass(Counter::PassFragment));
    }
    // Summed before the UDP header is read: that read's bounds check would
    // let the compiler drop the option reads' own, which the verifier needs.
    let checksum_ok = ipv4_header_ok(f, &ip, ihl);
    let udp_off = ETH_HLEN + ihl;
    let udp: UdpHdr = f.read(udp_off).ok_or(Reject::Drop(Counter::DropMalformed))?;
    if udp.dest_be != port_be {
        return Err(Reject::Pass(Counter::PassHost));
    }
    if !checksum_ok {
        return Err(Reject::Drop(Counter::DropBadIpChecksum));
    }
    let vx_off = udp_off + UDP_HLEN;
    let inner_off = vx_off + VXLAN_HLEN;
    let tot_len = u16::from_be(ip.tot_len_be) as usize;
    let udp_len = u16::from_be(udp.len_be) as usize;
    let wire = f.wire_len();
    if tot_len < min_vxlan_ip_len(ihl)
        || tot_len + ETH_HLEN > wire
        || udp_len < UDP_HLEN + VXLAN_HLEN + ETH_HLEN
        || udp_len > tot_len - ihl
        // A super-packet cannot be trimmed: it must end where UDP ends.
        || (gso && (tot_len + ETH_HLEN != wire || udp_len != tot_len - ihl))
    {
        return Err(Reject::Drop(Counter::DropMalformed));
    }
    let vx: VxlanHdr = f.read(vx_off).ok_or(Reject::Drop(Counter::DropMalformed))?;
    // Reserved bits are ignored on receipt (RFC 7348 §5).
    if vx.flags & VXLAN_FLAG_I == 0 {
        return Err(Reject::Drop(Counter::DropVxlanNoIFlag));
    }
    let inner: EthHdr = f.read(inner_off).ok_or(Reject::Drop(Counter::DropMalformed))?;
    let inner_len = udp_len - UDP_HLEN - VXLAN_HLEN;
    Ok(VxlanRx { outer_dst: eth.dst, src_vtep_be: ip.saddr_be, vni: vx.vni(), inner_off, inner_len, inner })
}

/// An Ethernet frame from a tenant-facing port, tag resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct L2Rx {
    pub eth: EthHdr,
    /// VID of the frame's 802.1Q tag, [`NO_VLAN`] if untagged or priority-tagged.
    pub vid: u16,
    /// A tag (in the data or in skb metadata) must be removed before forwarding.
    pub has_tag: bool,
}

/// Parses the L2 header of a frame from a tenant port.
///
/// `hw_tag` is the tag the kernel already took off (skb `vlan_present`):
/// `(tpid, tci)` in host order. `prio_ok` accepts VID 0 as untagged.
/// Deeper stacks (a tag behind a tag, or 802.1ad) are refused.
#[inline(always)]
pub fn parse_l2<F: Frame + ?Sized>(f: &F, hw_tag: Option<(u16, u16)>, prio_ok: bool) -> Result<L2Rx, Reject> {
    let eth: EthHdr = f.read(0).ok_or(Reject::Drop(Counter::DropMalformed))?;
    let ethertype = u16::from_be(eth.ethertype_be);
    let tci = match hw_tag {
        Some((tpid, tci)) => {
            if tpid != ETH_P_8021Q || ethertype == ETH_P_8021Q || ethertype == ETH_P_8021AD {
                return Err(Reject::Drop(Counter::DropVlanQinq));
            }
            Some(tci)
        }
        None if ethertype == ETH_P_8021AD => return Err(Reject::Drop(Counter::DropVlanQinq)),
        None if ethertype == ETH_P_8021Q => {
            let tag: VlanHdr = f.read(ETH_HLEN).ok_or(Reject::Drop(Counter::DropMalformed))?;
            let inner = u16::from_be(tag.ethertype_be);
            if inner == ETH_P_8021Q || inner == ETH_P_8021AD {
                return Err(Reject::Drop(Counter::DropVlanQinq));
            }
            Some(u16::from_be(tag.tci_be))
        }
        None => None,
    };
    let (vid, has_tag) = match tci {
        None => (NO_VLAN, false),
        Some(tci) => match tci & 0x0fff {
            0 if prio_ok => (NO_VLAN, true),
            0 => return Err(Reject::Drop(Counter::DropVlanPriorityTagged)),
            0x0fff => return Err(Reject::Drop(Counter::DropVlan4095)),
            vid => (vid, true),
        },
    };
    if crate::is_group_mac(&eth.src) || crate::is_zero_mac(&eth.src) {
        return Err(Reject::Drop(Counter::DropSrcMacInvalid));
    }
    Ok(L2Rx { eth, vid, has_tag })
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod props;
