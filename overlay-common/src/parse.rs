//! Header parsing shared by the kernel programs and the host tests.
//!
//! Each parser returns what it found or the [`Counter`] that explains the
//! verdict; the caller turns that into a pass or a counted drop.

use crate::counters::Counter;
use crate::frame::Frame;
use crate::headers::{
    EthHdr, GENEVE_F_CRITICAL, GENEVE_F_OAM, GRE_F_KEY, GRE_F_SEQ, GeneveHdr, GreHdr, Ipv4Hdr, Ipv6Hdr,
    UdpHdr, VXLAN_FLAG_I, VlanHdr, VxlanHdr,
};
use crate::maps::{CFG_F_GENEVE, CFG_F_GRE, CFG_F_IPV6, CFG_F_UDP6_ZERO_CSUM, GlobalConfig};
use crate::vtep::{VtepAddr, vtep_eq, vtep_v4, vtep_v4_be};
use crate::{
    ENCAP_GENEVE, ENCAP_GRE, ENCAP_VXLAN, ETH_HLEN, ETH_P_8021AD, ETH_P_8021Q, ETH_P_IPV4, ETH_P_IPV6,
    ETH_P_TEB, GENEVE_HLEN, GENEVE_PORT, GRE_HLEN, IPPROTO_FRAGMENT, IPPROTO_GRE, IPPROTO_UDP, IPV4_HLEN,
    IPV6_HLEN, NO_VLAN, UDP_HLEN, VXLAN_HLEN,
};

/// Why a frame was not accepted by a parser.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reject {
    /// Not for us: hand it to the host stack untouched (counted as the reason).
    Pass(Counter),
    /// Ours but bad: drop and count.
    Drop(Counter),
}

/// A VXLAN, GENEVE or GRE packet addressed to this VTEP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TunnelRx {
    /// Outer destination MAC (the XDP path, which has no `pkt_type`,
    /// compares it with the underlay's own).
    pub outer_dst: [u8; 6],
    /// Outer source address (IPv4-mapped on an IPv4 underlay).
    pub src_vtep_be: VtepAddr,
    /// Offset of the outer UDP (or GRE) header.
    pub l4_off: usize,
    /// `ENCAP_VXLAN`, `ENCAP_GRE` or `ENCAP_GENEVE`.
    pub encap: u8,
    /// VXLAN or GENEVE VNI, or GRE key.
    pub vni: u32,
    /// Offset of the inner Ethernet header from the start of the frame.
    pub inner_off: usize,
    /// Length of the inner frame, from the outer UDP length (GRE: the IP
    /// packet's length): bytes past it (Ethernet padding, trailing junk) are
    /// never the tenant's.
    pub inner_len: usize,
    pub inner: EthHdr,
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

/// The tunnel header after the outer IPv4 header: encapsulation, VNI (or
/// key), bytes from the L4 header to the inner Ethernet header, and the
/// L4 length the header claims (UDP length; GRE has none: 0).
struct Tunnel {
    encap: u8,
    vni: u32,
    hdr_len: usize,
    udp_len: usize,
    /// The UDP checksum field (GRE: 0).
    check_be: u16,
}

/// GRE at `off`: key present, protocol 0x6558. A keyless or non-Ethernet
/// GRE packet is not ours (some other tunnel of the host may take it);
/// what is ours must have version 0 and no checksum (not verified here, so
/// not accepted), routing or reserved bits. A sequence number is skipped
/// (never checked, as Open vSwitch does by default).
#[inline(always)]
fn gre<F: Frame + ?Sized>(f: &F, off: usize) -> Result<Tunnel, Reject> {
    let g: GreHdr = f.read(off).ok_or(Reject::Drop(Counter::DropMalformed))?;
    let flags = u16::from_be(g.flags_be);
    if flags & GRE_F_KEY == 0 || g.protocol_be != ETH_P_TEB.to_be() {
        return Err(Reject::Pass(Counter::PassHost));
    }
    if flags & !(GRE_F_KEY | GRE_F_SEQ) != 0 {
        return Err(Reject::Drop(Counter::DropTunnelHeader));
    }
    let key: u32 = f.read(off + 4).ok_or(Reject::Drop(Counter::DropMalformed))?;
    let hdr_len = if flags & GRE_F_SEQ != 0 { GRE_HLEN + 4 } else { GRE_HLEN };
    Ok(Tunnel { encap: ENCAP_GRE, vni: u32::from_be(key), hdr_len, udp_len: 0, check_be: 0 })
}

/// UDP at `off` to the VXLAN port or (when GENEVE is claimed) 6081.
#[inline(always)]
fn udp_tunnel<F: Frame + ?Sized>(f: &F, off: usize, cfg: &GlobalConfig) -> Result<Tunnel, Reject> {
    let udp: UdpHdr = f.read(off).ok_or(Reject::Drop(Counter::DropMalformed))?;
    let udp_len = u16::from_be(udp.len_be) as usize;
    let check_be = udp.check_be;
    if udp.dest_be == cfg.udp_port_be {
        let vx: VxlanHdr = f.read(off + UDP_HLEN).ok_or(Reject::Drop(Counter::DropMalformed))?;
        // Reserved bits are ignored on receipt (RFC 7348 §5).
        if vx.flags & VXLAN_FLAG_I == 0 {
            return Err(Reject::Drop(Counter::DropVxlanNoIFlag));
        }
        let hdr_len = UDP_HLEN + VXLAN_HLEN;
        return Ok(Tunnel { encap: ENCAP_VXLAN, vni: vx.vni(), hdr_len, udp_len, check_be });
    }
    if udp.dest_be != GENEVE_PORT.to_be() || cfg.flags & CFG_F_GENEVE == 0 {
        return Err(Reject::Pass(Counter::PassHost));
    }
    let g: GeneveHdr = f.read(off + UDP_HLEN).ok_or(Reject::Drop(Counter::DropMalformed))?;
    if g.version() != 0 || g.protocol_be != ETH_P_TEB.to_be() {
        return Err(Reject::Drop(Counter::DropTunnelHeader));
    }
    // Options are skipped, never read: none is processed here, so one
    // marked critical means the frame must not be taken (RFC 8926 §3.5).
    if g.flags & GENEVE_F_CRITICAL != 0 {
        return Err(Reject::Drop(Counter::DropGeneveCritical));
    }
    if g.flags & GENEVE_F_OAM != 0 {
        return Err(Reject::Drop(Counter::DropGeneveOam));
    }
    let hdr_len = UDP_HLEN + GENEVE_HLEN + g.options_len();
    Ok(Tunnel { encap: ENCAP_GENEVE, vni: g.vni(), hdr_len, udp_len, check_be })
}

/// Parses a frame received on the underlay.
///
/// Only IP (the instance's underlay family) to the local VTEP address
/// carrying UDP to the VXLAN port, UDP to the GENEVE port or keyed
/// Ethernet-over-GRE (each of the last two only when `cfg.flags` claims
/// it) concerns us; anything else is [`Reject::Pass`]. Outer fragments are
/// passed (never decapsulated), as are IPv6 packets with extension headers
/// before the UDP header. For what is ours the rules of the kernel's
/// receive path apply: a valid IPv4 header checksum, IP and UDP lengths
/// consistent with each other and with the frame (also for GSO
/// super-packets, which must carry nothing past the tunnel payload), and
/// over IPv6 a non-zero UDP checksum unless `udp6_zero_checksum` allows
/// zero. The UDP checksum's value is not verified here: over IPv4 it is
/// optional (RFC 7348, RFC 8926) and trusted to the NIC; over IPv6 the TC
/// program verifies it ([`TunnelRx::l4_off`]).
#[inline(always)]
pub fn parse_underlay<F: Frame + ?Sized>(f: &F, cfg: &GlobalConfig, gso: bool) -> Result<TunnelRx, Reject> {
    let eth: EthHdr = f.read(0).ok_or(Reject::Pass(Counter::PassHost))?;
    if cfg.flags & CFG_F_IPV6 != 0 { parse_ipv6(f, cfg, gso, eth) } else { parse_ipv4(f, cfg, gso, eth) }
}

/// Where the outer IP header says the packet ends: the L4 header's offset
/// and the L4 length the IP header claims.
struct Outer {
    src: VtepAddr,
    l4_off: usize,
    l4_len: usize,
    is_gre: bool,
}

#[inline(always)]
fn parse_ipv4<F: Frame + ?Sized>(
    f: &F,
    cfg: &GlobalConfig,
    gso: bool,
    eth: EthHdr,
) -> Result<TunnelRx, Reject> {
    if eth.ethertype_be != ETH_P_IPV4.to_be() {
        return Err(Reject::Pass(Counter::PassHost));
    }
    let ip: Ipv4Hdr = f.read(ETH_HLEN).ok_or(Reject::Pass(Counter::PassHost))?;
    let is_gre = ip.protocol == IPPROTO_GRE && cfg.flags & CFG_F_GRE != 0;
    if ip.version() != 4
        || (ip.protocol != IPPROTO_UDP && !is_gre)
        || ip.daddr_be != vtep_v4_be(&cfg.local_vtep_be)
    {
        return Err(Reject::Pass(Counter::PassHost));
    }
    let ihl = ip.header_len();
    if ihl < IPV4_HLEN {
        return Err(Reject::Drop(Counter::DropMalformed));
    }
    if ip.is_fragment() {
        return Err(Reject::Pass(Counter::PassFragment));
    }
    // Summed before the L4 header is read: that read's bounds check would
    // let the compiler drop the option reads' own, which the verifier needs.
    let checksum_ok = ipv4_header_ok(f, &ip, ihl);
    let l4_off = ETH_HLEN + ihl;
    let t = if is_gre { gre(f, l4_off) } else { udp_tunnel(f, l4_off, cfg) };
    // A bad IPv4 header is dropped as `ip_rcv` would, before any verdict
    // on the tunnel header (which may be garbage then); a packet that is
    // not ours goes to the host all the same.
    let t = match t {
        Err(Reject::Pass(c)) => return Err(Reject::Pass(c)),
        _ if !checksum_ok => return Err(Reject::Drop(Counter::DropBadIpChecksum)),
        Err(e) => return Err(e),
        Ok(t) => t,
    };
    let tot_len = u16::from_be(ip.tot_len_be) as usize;
    if tot_len < ihl {
        return Err(Reject::Drop(Counter::DropMalformed));
    }
    let o = Outer { src: vtep_v4(ip.saddr_be), l4_off, l4_len: tot_len - ihl, is_gre };
    tunnel_rx(f, gso, eth, &o, &t)
}

#[inline(always)]
fn parse_ipv6<F: Frame + ?Sized>(
    f: &F,
    cfg: &GlobalConfig,
    gso: bool,
    eth: EthHdr,
) -> Result<TunnelRx, Reject> {
    if eth.ethertype_be != ETH_P_IPV6.to_be() {
        return Err(Reject::Pass(Counter::PassHost));
    }
    let ip: Ipv6Hdr = f.read(ETH_HLEN).ok_or(Reject::Pass(Counter::PassHost))?;
    if ip.version() != 6 || !vtep_eq(&ip.daddr_be, &cfg.local_vtep_be) {
        return Err(Reject::Pass(Counter::PassHost));
    }
    if ip.next_header == IPPROTO_FRAGMENT {
        return Err(Reject::Pass(Counter::PassFragment));
    }
    let is_gre = ip.next_header == IPPROTO_GRE && cfg.flags & CFG_F_GRE != 0;
    if ip.next_header != IPPROTO_UDP && !is_gre {
        return Err(Reject::Pass(Counter::PassHost));
    }
    let l4_off = ETH_HLEN + IPV6_HLEN;
    let t = if is_gre { gre(f, l4_off)? } else { udp_tunnel(f, l4_off, cfg)? };
    // RFC 8200 §8.1: a zero UDP checksum over IPv6 is refused unless the
    // tunnel allows it (RFC 6935; Linux: `udp6zerocsumrx`).
    if !is_gre && t.check_be == 0 && cfg.flags & CFG_F_UDP6_ZERO_CSUM == 0 {
        return Err(Reject::Drop(Counter::DropUdpChecksum));
    }
    let l4_len = u16::from_be(ip.payload_len_be) as usize;
    let o = Outer { src: ip.saddr_be, l4_off, l4_len, is_gre };
    tunnel_rx(f, gso, eth, &o, &t)
}

/// The length checks both families share, and the result.
#[inline(always)]
fn tunnel_rx<F: Frame + ?Sized>(
    f: &F,
    gso: bool,
    eth: EthHdr,
    o: &Outer,
    t: &Tunnel,
) -> Result<TunnelRx, Reject> {
    let inner_off = o.l4_off + t.hdr_len;
    let wire = f.wire_len();
    if o.l4_len < t.hdr_len + ETH_HLEN || o.l4_off + o.l4_len > wire {
        return Err(Reject::Drop(Counter::DropMalformed));
    }
    // GRE has no length of its own: the inner frame ends where IP does.
    let tunnel_len = if o.is_gre { o.l4_len } else { t.udp_len };
    if tunnel_len < t.hdr_len + ETH_HLEN
        || tunnel_len > o.l4_len
        // A super-packet cannot be trimmed: it must end where the tunnel payload ends.
        || (gso && (o.l4_off + o.l4_len != wire || tunnel_len != o.l4_len))
    {
        return Err(Reject::Drop(Counter::DropMalformed));
    }
    let inner: EthHdr = f.read(inner_off).ok_or(Reject::Drop(Counter::DropMalformed))?;
    let inner_len = tunnel_len - t.hdr_len;
    Ok(TunnelRx {
        outer_dst: eth.dst,
        src_vtep_be: o.src,
        l4_off: o.l4_off,
        encap: t.encap,
        vni: t.vni,
        inner_off,
        inner_len,
        inner,
    })
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
