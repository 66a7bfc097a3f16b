//! VXLAN, GENEVE and GRE encapsulation and transmission to peer VTEPs.
//!
//! IP frames are encapsulated with `bpf_skb_adjust_room` and the encap
//! flags, so GSO super-packets stay GSO (the kernel segments them as UDP
//! tunnel or GRE packets, or a NIC does). The helper refuses non-IP frames (ARP),
//! which get their headroom from `bpf_skb_change_head` instead; such frames
//! are never GSO. The outer next hop comes from the kernel FIB and neighbour
//! table (`bpf_fib_lookup`), so routed underlays work; an unresolved
//! neighbour is resolved by `bpf_redirect_neigh` where the helper allows it
//! (IP frames), and userspace primes peer neighbours at `up`.

use core::mem::size_of;

use aya_ebpf::{
    EbpfContext,
    bindings::{
        __sk_buff, BPF_F_ADJ_ROOM_ENCAP_L2_ETH, BPF_F_ADJ_ROOM_ENCAP_L3_IPV4, BPF_F_ADJ_ROOM_ENCAP_L3_IPV6,
        BPF_F_ADJ_ROOM_ENCAP_L4_GRE, BPF_F_ADJ_ROOM_ENCAP_L4_UDP, BPF_F_ADJ_ROOM_FIXED_GSO,
        BPF_FIB_LKUP_RET_NO_NEIGH, BPF_FIB_LKUP_RET_SUCCESS, BPF_FIB_LOOKUP_OUTPUT,
        bpf_adj_room_mode::BPF_ADJ_ROOM_MAC, bpf_check_mtu_flags::BPF_MTU_CHK_SEGS,
        bpf_fib_lookup as FibParams, bpf_redir_neigh,
    },
    cty::c_void,
    helpers::{
        bpf_check_mtu, bpf_fib_lookup, bpf_loop, bpf_redirect, bpf_redirect_neigh, bpf_skb_change_head,
    },
    programs::TcContext,
};
use overlay_common::{
    ENCAP_GENEVE, ENCAP_GRE, ENCAP_ROOM, ENCAP_ROOM6, ETH_HLEN, ETH_P_IPV4, ETH_P_IPV6, GENEVE_PORT,
    GRE_ENCAP_ROOM, MAX_FLOOD_PEERS, UDP_HLEN, VXLAN_HLEN, VtepAddr,
    counters::{Counter, net_row},
    encap::{
        EncapHead, EncapParams, build_gre_outer, build_outer, build_outer6, csum_replace4, flow_hash,
        udp_src_port,
    },
    frame::Frame,
    headers::EthHdr,
    maps::{
        CFG_F_IPV6, CFG_F_UDP_CSUM, CFG_F_UDP6_ZERO_CSUM, FloodSet, GlobalConfig, NEXT_HOP_TTL_NS, NetConfig,
        NextHop as CachedHop, PeerState,
    },
    offsets as off,
    trace::*,
    vtep::{vtep_eq, vtep_v4_be},
};

use crate::{
    access::SkbFrame,
    admit::{Member, update_peer},
    fib::{AF_INET6, family, gateway, set_addrs},
    gso_tunnel,
    maps::{FLOOD, NEXT_HOP, config},
    stats::{Drop, OrDrop, count, helper_ok, redirect_verdict},
    trace::{Mode, step_at},
};

const BPF_ADJ_ROOM_ENCAP_L2_SHIFT: u64 = 56;

/// Whether the instance's underlay is IPv6.
#[inline(always)]
fn is_v6(cfg: &GlobalConfig) -> bool {
    cfg.flags & CFG_F_IPV6 != 0
}

#[inline(always)]
fn skb_protocol(ctx: &TcContext) -> u16 {
    // SAFETY: reading a context field.
    u16::from_be(unsafe { (*ctx.skb.skb).protocol } as u16)
}

#[inline(always)]
fn is_gso(ctx: &TcContext) -> bool {
    // SAFETY: reading a context field.
    unsafe { (*ctx.skb.skb).gso_size != 0 }
}

/// The inner frame's flow hash, for the UDP source port: the one a socket
/// gave the skb when there is one (what `bpf_get_hash_recalc` returns
/// then), else ours from the headers ([`flow_hash`]). The kernel's flow
/// dissector, which `bpf_get_hash_recalc` runs on a frame without a hash
/// (forwarded, or from a packet socket), costs ~300 ns a frame.
#[inline(always)]
fn inner_flow_hash(ctx: &TcContext) -> u32 {
    // SAFETY: reading a context field.
    let h = unsafe { (*ctx.skb.skb).hash };
    if h != 0 { h } else { flow_hash(&SkbFrame(ctx)) }
}

/// How [`encapsulate`] left the frame.
pub enum Encapped {
    /// Outer headers in place, addressed to the next hop: [`send_final`]
    /// (or clones) sends it.
    Outer(Hop),
    /// Still the tenant frame, with its tunnel key: [`send_via_device`]
    /// sends it (see `gso_tunnel`).
    ViaDevice,
}

/// Puts outer Ethernet/IP and UDP/VXLAN, UDP/GENEVE or GRE headers (as
/// the network's encapsulation says) in front of the frame, addressed to
/// `dst_be` and to next hop `hop` ([`lookup_hop`]; its trace step is
/// [`send_final`]'s). Checks the result against the underlay MTU (the
/// one cached with the hop, else by `bpf_check_mtu`).
///
/// Over IPv6 (VXLAN only, the config refuses other encapsulations there)
/// the outer UDP checksum is required: single frames get it here; a GSO
/// super-packet gets its tunnel key instead, for the kernel's VXLAN
/// device (`gso_tunnel`), unless `udp6_zero_checksum` is set.
#[inline(always)]
pub fn encapsulate<M: Mode>(
    ctx: &TcContext,
    cfg: &GlobalConfig,
    net: &NetConfig,
    dst_be: &VtepAddr,
    hop: Hop,
    row: u32,
) -> Result<Encapped, Drop> {
    let encap = net.encap();
    step_at::<M>(STEP_ENCAP, 0, net.vni, encap as u32, dst_be);
    let inner_len = ctx.len();
    let hash = inner_flow_hash(ctx);
    let gre = encap == ENCAP_GRE;
    let v6 = is_v6(cfg);
    let zero_csum6 = cfg.flags & CFG_F_UDP6_ZERO_CSUM != 0;
    if gso_tunnel::wanted(ctx, cfg) {
        if cfg.gso_tunnel_ifindex == 0 || !gso_tunnel::set_key(ctx, cfg, net.vni, dst_be, hash) {
            return Err(Drop::new(row, Counter::DropTunnelGso));
        }
        return Ok(Encapped::ViaDevice);
    }
    let room = encap_room(gre, v6);
    // Known before the room is made: the hop is not needed across the
    // helper calls below.
    let fits = hop.fits(inner_len + room);
    if is_ip(ctx) {
        let l4 = if gre { BPF_F_ADJ_ROOM_ENCAP_L4_GRE } else { BPF_F_ADJ_ROOM_ENCAP_L4_UDP };
        let l3 = if v6 { BPF_F_ADJ_ROOM_ENCAP_L3_IPV6 } else { BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 };
        let flags = BPF_F_ADJ_ROOM_FIXED_GSO as u64
            | l3 as u64
            | l4 as u64
            | BPF_F_ADJ_ROOM_ENCAP_L2_ETH as u64
            | ((ETH_HLEN as u64) << BPF_ADJ_ROOM_ENCAP_L2_SHIFT);
        if ctx.adjust_room(room as i32, BPF_ADJ_ROOM_MAC, flags).is_err() {
            // The helper refuses frames still marked encapsulated: a frame
            // we decapsulated earlier (the kernel keeps the mark, BPF cannot
            // clear it) now routed into another network. Plain room works
            // for a single frame: the payload never moves, so the stale
            // inner-header offsets still point at the inner headers.
            if is_gso(ctx) {
                return Err(Drop::new(row, Counter::DropTunnelGso));
            }
            ctx.adjust_room(room as i32, BPF_ADJ_ROOM_MAC, BPF_F_ADJ_ROOM_FIXED_GSO as u64).or_drop(row)?;
        }
    } else {
        if is_gso(ctx) {
            return Err(Drop::new(row, Counter::DropHelperFailed));
        }
        // SAFETY: helper on our context; the original frame becomes the inner one.
        helper_ok(unsafe { bpf_skb_change_head(ctx.as_ptr() as *mut _, room, 0) }, row)?;
    }
    if put_head(ctx, net, dst_be, hash, &hop.macs()) != 0 {
        return Err(Drop::new(row, Counter::DropHelperFailed));
    }
    // The outer UDP checksum of single frames (optional over IPv4). A GSO
    // super-packet cannot have one from here (no adjust_room flag for
    // SKB_GSO_UDP_TUNNEL_CSUM): over IPv4 it keeps zero; over IPv6 it went
    // to the GSO device above, unless zero checksums are allowed.
    let csum = if v6 { !zero_csum6 } else { cfg.flags & CFG_F_UDP_CSUM != 0 };
    if csum && !gre && !is_gso(ctx) {
        let udp_len = inner_len + (UDP_HLEN + VXLAN_HLEN) as u32;
        crate::udp_csum::write(ctx, udp_len, v6).or_drop(row)?;
    }
    // A single frame within the MTU cached with the hop is not checked
    // again (the helper looks the device up: ~30 ns a frame).
    let mut mtu: u32 = 0;
    // SAFETY: helper on our context with a valid out pointer.
    let r = if fits {
        0
    } else {
        unsafe { bpf_check_mtu(ctx.as_ptr(), cfg.underlay_ifindex, &mut mtu, 0, BPF_MTU_CHK_SEGS as u64) }
    };
    if r != 0 {
        return Err(Drop::new(row, Counter::DropMtu));
    }
    Ok(Encapped::Outer(hop))
}

/// The bytes encapsulation puts in front of the frame.
#[inline(always)]
fn encap_room(gre: bool, v6: bool) -> u32 {
    if gre {
        GRE_ENCAP_ROOM
    } else if v6 {
        ENCAP_ROOM6
    } else {
        ENCAP_ROOM
    }
}

/// Whether the frame is IP (`bpf_skb_adjust_room` makes its room) rather
/// than ARP and the like (`bpf_skb_change_head`).
#[inline(always)]
fn is_ip(ctx: &TcContext) -> bool {
    let proto = skb_protocol(ctx);
    proto == ETH_P_IPV4 || proto == ETH_P_IPV6
}

/// Writes the encapsulation after the room was made, in one store (a
/// helper call each costs ~20 ns): the next hop's MAC addresses `macs`,
/// the ethertype, the outer headers of `net`'s encapsulation to `dst_be`,
/// and the frame's Ethernet header as the inner one (still at the start
/// after `bpf_skb_adjust_room`, already in place after
/// `bpf_skb_change_head`). Returns the helper's code. Not inlined: the
/// headers stay out of the program's frame.
#[inline(never)]
fn put_head(ctx: &TcContext, net: &NetConfig, dst_be: &VtepAddr, hash: u32, macs: &[u8; 12]) -> i64 {
    let Some(cfg) = config() else { return -1 };
    let encap = net.encap();
    let inner_len = ctx.len() - encap_room(encap == ENCAP_GRE, is_v6(cfg));
    // Constant offsets: the verifier bounds a packet read only by one.
    let f = SkbFrame(ctx);
    let eth = if is_ip(ctx) {
        f.read::<EthHdr>(0)
    } else if encap == ENCAP_GRE {
        f.read(off::GRE_INNER_ETH)
    } else if is_v6(cfg) {
        f.read(off::INNER_ETH6)
    } else {
        f.read(off::INNER_ETH)
    };
    let Some(inner_eth) = eth else { return -1 };
    let p = EncapParams {
        src_be: cfg.local_vtep_be,
        dst_be: *dst_be,
        vni: net.vni,
        ttl: cfg.ttl,
        src_port: udp_src_port(hash),
        dst_port_be: if encap == ENCAP_GENEVE { GENEVE_PORT.to_be() } else { cfg.udp_port_be },
        encap,
    };
    let r = if encap == ENCAP_GRE {
        // GRE has no ports: no flow entropy for the underlay's ECMP.
        let outer = build_gre_outer(&p, inner_len);
        let h = EncapHead { macs: *macs, ethertype_be: ETH_P_IPV4.to_be(), outer, inner_eth };
        ctx.store(off::ETH_DST, &h, 0)
    } else if is_v6(cfg) {
        let outer = build_outer6(&p, hash, inner_len);
        let h = EncapHead { macs: *macs, ethertype_be: ETH_P_IPV6.to_be(), outer, inner_eth };
        ctx.store(off::ETH_DST, &h, 0)
    } else {
        let outer = build_outer(&p, inner_len);
        let h = EncapHead { macs: *macs, ethertype_be: ETH_P_IPV4.to_be(), outer, inner_eth };
        ctx.store(off::ETH_DST, &h, 0)
    };
    match r {
        Ok(()) => 0,
        Err(e) => e,
    }
}

/// Sends a frame [`encapsulate`] left for the kernel's VXLAN device there
/// (last action).
#[inline(always)]
pub fn send_via_device<M: Mode>(cfg: &GlobalConfig, dst_be: &VtepAddr, row: u32) -> Result<i32, Drop> {
    step_at::<M>(STEP_NEXT_HOP, cfg.gso_tunnel_ifindex, HOP_DEVICE, 0, dst_be);
    redirect_verdict(gso_tunnel::redirect(cfg), row)
}

/// Where the outer packet goes next. Every variant is the same 20 bytes
/// with no padding, so a copy never moves undefined bytes: LLVM may take
/// an undefined value from any register, even one a call just clobbered,
/// and the verifier refuses that read.
#[derive(Clone, Copy)]
#[repr(C, u32)]
enum NextHop {
    /// `mtu`: the underlay device's when looked up (0: unknown).
    Resolved {
        ifindex: u32,
        smac: [u8; 6],
        dmac: [u8; 6],
        mtu: u32,
    },
    Unresolved {
        ifindex: u32,
        gw_be: VtepAddr,
    },
    Unreachable {
        _pad: [u32; 5],
    },
}

impl NextHop {
    #[inline(always)]
    fn resolved(ifindex: u32, smac: [u8; 6], dmac: [u8; 6], mtu: u32) -> NextHop {
        NextHop::Resolved { ifindex, smac, dmac, mtu }
    }

    const UNREACHABLE: NextHop = NextHop::Unreachable { _pad: [0; 5] };
}

impl NextHop {
    /// Trace step fields: ifindex, `HOP_*`, the address resolved.
    #[inline(always)]
    fn describe(&self, dst_be: &VtepAddr) -> (u32, u32, VtepAddr) {
        match *self {
            NextHop::Resolved { ifindex, .. } => (ifindex, HOP_FIB, *dst_be),
            NextHop::Unresolved { ifindex, gw_be } => (ifindex, HOP_UNRESOLVED, gw_be),
            NextHop::Unreachable { .. } => (0, HOP_UNREACHABLE, *dst_be),
        }
    }
}

/// A next hop and whether it came from the cache.
#[derive(Clone, Copy)]
pub struct Hop {
    nh: NextHop,
    /// 1: from the cache (a `u32`, so that the struct has no padding).
    cached: u32,
}

impl Hop {
    /// No next hop (zero MACs): for a flood, whose copies get theirs each.
    const NONE: Hop = Hop { nh: NextHop::UNREACHABLE, cached: 0 };

    /// The outer destination and source MAC addresses (zero unless
    /// resolved).
    #[inline(always)]
    fn macs(&self) -> [u8; 12] {
        let mut m = [0u8; 12];
        if let NextHop::Resolved { smac, dmac, .. } = self.nh {
            m[..6].copy_from_slice(&dmac);
            m[6..].copy_from_slice(&smac);
        }
        m
    }

    /// Whether the frame, `len` bytes once encapsulated, fits the MTU
    /// cached with this hop as `bpf_check_mtu` would find: length without
    /// the Ethernet header at most the MTU (the helper passes such a
    /// frame before it looks at GSO segments). False when the hop has
    /// none.
    #[inline(always)]
    fn fits(&self, len: u32) -> bool {
        match self.nh {
            NextHop::Resolved { mtu, .. } => mtu != 0 && len <= mtu + ETH_HLEN as u32,
            _ => false,
        }
    }

    /// The trace step of the next hop towards `dst_be`.
    #[inline(always)]
    fn step<M: Mode>(&self, dst_be: &VtepAddr) {
        let (ifindex, how, via) = self.nh.describe(dst_be);
        let how = if self.cached != 0 { HOP_CACHED } else { how };
        step_at::<M>(STEP_NEXT_HOP, ifindex, how, 0, &via);
    }
}

/// [`hop_by_address`] and its trace step.
#[inline(always)]
fn next_hop<M: Mode>(ctx: &TcContext, cfg: &GlobalConfig, dst_be: &VtepAddr, now: u64) -> NextHop {
    let hop = hop_by_address::<M>(ctx, cfg, dst_be, now);
    hop.step::<M>(dst_be);
    hop.nh
}

/// The next hop towards `dst_be`, a `member` of network `net_id`: a
/// peer's from its `PEERS` entry, cached there (the lookup that made it a
/// member answers this too); another VTEP's by [`hop_by_address`].
#[inline(always)]
pub fn lookup_hop<M: Mode>(
    ctx: &TcContext,
    cfg: &GlobalConfig,
    net_id: u32,
    dst_be: &VtepAddr,
    member: Member,
    now: u64,
) -> Hop {
    let Member::Peer(p) = member else {
        return hop_by_address::<M>(ctx, cfg, dst_be, now);
    };
    let c = p.hop;
    if c.ifindex != 0 && now.wrapping_sub(c.looked_up_ns) < NEXT_HOP_TTL_NS {
        return Hop { nh: NextHop::resolved(c.ifindex, c.smac, c.dmac, c.mtu), cached: 1 };
    }
    let (hop, fresh) = fib_hop(ctx, cfg, dst_be, now);
    // A peer that is not resolved keeps its expired hop, never used again
    // (and no write on every frame to it).
    if !M::TRACE && fresh.ifindex != 0 {
        update_peer(net_id, dst_be, &PeerState { hop: fresh, ..*p });
    }
    hop
}

/// The next hop towards `dst_be`, cached by address in `NEXT_HOP` (a VTEP
/// that is no configured peer, and the copies of a flood) while younger
/// than `NEXT_HOP_TTL_NS`, else from the FIB (and cached when resolved; an
/// unresolved or unreachable VTEP is never cached; a trace changes
/// nothing).
#[inline(always)]
fn hop_by_address<M: Mode>(ctx: &TcContext, cfg: &GlobalConfig, dst_be: &VtepAddr, now: u64) -> Hop {
    // SAFETY: plain-bytes value; a concurrent update swaps in a whole new element.
    if let Some(c) = unsafe { NEXT_HOP.get(dst_be) }
        && now.wrapping_sub(c.looked_up_ns) < NEXT_HOP_TTL_NS
    {
        return Hop { nh: NextHop::resolved(c.ifindex, c.smac, c.dmac, c.mtu), cached: 1 };
    }
    let (hop, fresh) = fib_hop(ctx, cfg, dst_be, now);
    if M::TRACE {
        return hop;
    }
    if fresh.ifindex != 0 {
        let _ = NEXT_HOP.insert(dst_be, fresh, 0);
    } else {
        let _ = NEXT_HOP.remove(dst_be);
    }
    hop
}

/// The next hop from the FIB, and what to cache of it (`ifindex` 0 when
/// it is not resolved: nothing).
#[inline(always)]
fn fib_hop(ctx: &TcContext, cfg: &GlobalConfig, dst_be: &VtepAddr, now: u64) -> (Hop, CachedHop) {
    let nh = fib_next_hop(ctx, cfg, dst_be);
    let fresh = match nh {
        NextHop::Resolved { ifindex, smac, dmac, mtu } => {
            CachedHop { ifindex, smac, dmac, looked_up_ns: now, mtu, _pad: 0 }
        }
        _ => CachedHop::default(),
    };
    (Hop { nh, cached: 0 }, fresh)
}

/// The FIB's next hop towards `dst_be`.
#[inline(always)]
fn fib_next_hop(ctx: &TcContext, cfg: &GlobalConfig, dst_be: &VtepAddr) -> NextHop {
    let mut nh = NextHop::UNREACHABLE;
    fib_next_hop_into(ctx, cfg, dst_be, &mut nh);
    nh
}

/// [`fib_next_hop`] as a BPF function of its own: its 64-byte parameter
/// block lives in its own frame, not in those of the programs and the
/// flood's `bpf_loop` callback (512 bytes for a whole call chain). The
/// result goes to `out` (a BPF function cannot return a struct: that would
/// hand back a pointer to its caller's stack).
#[inline(never)]
fn fib_next_hop_into(ctx: &TcContext, cfg: &GlobalConfig, dst_be: &VtepAddr, out: &mut NextHop) {
    *out = fib_lookup_hop(ctx, cfg, dst_be);
}

#[inline(always)]
fn fib_lookup_hop(ctx: &TcContext, cfg: &GlobalConfig, dst_be: &VtepAddr) -> NextHop {
    // SAFETY: all-zero is a valid bpf_fib_lookup.
    let mut params = core::mem::MaybeUninit::<FibParams>::uninit();
    let p = unsafe { crate::access::zero(&mut params) };
    p.l4_protocol = overlay_common::IPPROTO_UDP;
    p.ifindex = cfg.underlay_ifindex;
    set_addrs(p, cfg, &cfg.local_vtep_be, dst_be);
    // tot_len 0: the FIB's MTU check is skipped (bpf_check_mtu handles GSO).
    // SAFETY: helper with a valid parameter block of the declared size.
    let r = unsafe { bpf_fib_lookup(ctx.as_ptr(), p, size_of::<FibParams>() as i32, BPF_FIB_LOOKUP_OUTPUT) };
    if r == BPF_FIB_LKUP_RET_SUCCESS as i64 {
        // The underlay device's MTU, as the check after encapsulation
        // sees it (the helper reports it when the frame at hand fits; 0,
        // unknown, when not).
        let mut mtu: u32 = 0;
        // SAFETY: helper on our context with a valid out pointer.
        let r = unsafe { bpf_check_mtu(ctx.as_ptr(), cfg.underlay_ifindex, &mut mtu, 0, 0) };
        NextHop::resolved(p.ifindex, p.smac, p.dmac, if r == 0 { mtu } else { 0 })
    } else if r == BPF_FIB_LKUP_RET_NO_NEIGH as i64 {
        // The FIB filled in the gateway (or the destination itself).
        NextHop::Unresolved { ifindex: p.ifindex, gw_be: gateway(p) }
    } else {
        NextHop::UNREACHABLE
    }
}

/// The outer MAC addresses, in one store.
#[inline(always)]
fn set_macs(ctx: &TcContext, smac: &[u8; 6], dmac: &[u8; 6]) -> Result<(), ()> {
    const { assert!(off::ETH_DST + 6 == off::ETH_SRC) };
    let mut macs = [0u8; 12];
    macs[..6].copy_from_slice(dmac);
    macs[6..].copy_from_slice(smac);
    ctx.store(off::ETH_DST, &macs, 0).map_err(|_| ())
}

/// Rewrites the outer destination for the next peer, with the IPv4
/// checksum and, when present, the UDP checksum (its pseudo-header holds
/// the destination address; `udp` is false for GRE).
#[inline(always)]
fn retarget(ctx: &TcContext, v6: bool, old: &VtepAddr, new: &VtepAddr, udp: bool) -> Result<(), ()> {
    if v6 {
        return retarget6(ctx, old, new);
    }
    let (old_be, new_be) = (vtep_v4_be(old), vtep_v4_be(new));
    let f = SkbFrame(ctx);
    let mut h: CheckAddrs = f.read(off::IP_CHECK).ok_or(())?;
    let udp_check: u16 = if udp { f.read(off::UDP_CHECK).ok_or(())? } else { 0 };
    h.check_be = csum_replace4(h.check_be, old_be, new_be);
    h.daddr_be = new_be;
    ctx.store(off::IP_CHECK, &h, 0).map_err(|_| ())?;
    if udp_check != 0 {
        let mut c = csum_replace4(udp_check, old_be, new_be);
        if c == 0 {
            c = 0xffff;
        }
        ctx.store(off::UDP_CHECK, &c, 0).map_err(|_| ())?;
    }
    Ok(())
}

/// The end of the outer IPv4 header, which [`retarget`] rewrites in one
/// store (a helper call per copy less): the header checksum, the source
/// (as it is) and the destination.
#[repr(C, packed)]
#[derive(Clone, Copy)]
struct CheckAddrs {
    check_be: u16,
    saddr_be: u32,
    daddr_be: u32,
}

const _: () = assert!(off::IP_CHECK + 2 == off::IP_SRC && off::IP_SRC + 4 == off::IP_DST);

/// [`retarget`] over IPv6: no header checksum; the UDP checksum (when not
/// zero) follows the four words of the new destination.
#[inline(always)]
fn retarget6(ctx: &TcContext, old: &VtepAddr, new: &VtepAddr) -> Result<(), ()> {
    let mut check: u16 = SkbFrame(ctx).read(off::UDP6_CHECK).ok_or(())?;
    ctx.store(off::IP6_DST, new, 0).map_err(|_| ())?;
    if check != 0 {
        let mut i = 0;
        while i < 4 {
            check = csum_replace4(check, old[i], new[i]);
            i += 1;
        }
        if check == 0 {
            check = 0xffff;
        }
        ctx.store(off::UDP6_CHECK, &check, 0).map_err(|_| ())?;
    }
    Ok(())
}

/// Sends the encapsulated frame itself to its destination through `hop`
/// (last action); the outer MAC addresses are the hop's already.
#[inline(always)]
pub fn send_final<M: Mode>(
    ctx: &TcContext,
    cfg: &GlobalConfig,
    dst_be: &VtepAddr,
    hop: Hop,
    row: u32,
) -> Result<i32, Drop> {
    hop.step::<M>(dst_be);
    match hop.nh {
        NextHop::Resolved { ifindex, .. } => {
            // SAFETY: plain helper call.
            redirect_verdict(unsafe { bpf_redirect(ifindex, 0) }, row)
        }
        // The helper resolves IP frames only: the outer protocol is the
        // skb's when adjust_room made the room (not change_head's ARP).
        NextHop::Unresolved { ifindex, gw_be }
            if skb_protocol(ctx) == if is_v6(cfg) { ETH_P_IPV6 } else { ETH_P_IPV4 } =>
        {
            // SAFETY: all-zero is valid; the helper resolves the neighbour.
            let mut params = core::mem::MaybeUninit::<bpf_redir_neigh>::uninit();
            let nh = unsafe { crate::access::zero(&mut params) };
            nh.nh_family = family(cfg) as u32;
            if nh.nh_family == AF_INET6 as u32 {
                nh.__bindgen_anon_1.ipv6_nh = gw_be;
            } else {
                nh.__bindgen_anon_1.ipv4_nh = vtep_v4_be(&gw_be);
            }
            // SAFETY: helper with a valid parameter block.
            let r = unsafe { bpf_redirect_neigh(ifindex, nh, size_of::<bpf_redir_neigh>() as i32, 0) };
            redirect_verdict(r, row)
        }
        NextHop::Unresolved { .. } => Err(Drop::new(row, Counter::DropNoNeighbour)),
        NextHop::Unreachable { .. } => Err(Drop::new(row, Counter::DropNoRoute)),
    }
}

/// Sends a copy of the encapsulated frame; the frame is left as it was.
/// A trace records the copy instead of sending it.
#[inline(always)]
fn send_clone<M: Mode>(ctx: &TcContext, cfg: &GlobalConfig, dst_be: &VtepAddr, row: u32, now: u64) {
    step_at::<M>(STEP_FLOOD_REMOTE, 0, FLOOD_COPY, 0, dst_be);
    match next_hop::<M>(ctx, cfg, dst_be, now) {
        NextHop::Resolved { ifindex, smac, dmac, .. } => {
            if set_macs(ctx, &smac, &dmac).is_ok() && (M::TRACE || ctx.clone_redirect(ifindex, 0).is_ok()) {
                count::<M>(row, Counter::FloodRemoteCopies);
            } else {
                count::<M>(row, Counter::DropHelperFailed);
            }
        }
        NextHop::Unresolved { .. } => count::<M>(row, Counter::DropNoNeighbour),
        NextHop::Unreachable { .. } => count::<M>(row, Counter::DropNoRoute),
    }
}

/// What the `bpf_loop` callback needs to send one copy to a VTEP (small:
/// it is on the program's stack, which a call chain through the UDP
/// checksum callback nearly fills; the config and flood set are looked up
/// again instead).
#[repr(C)]
struct RemoteCtx {
    skb: *mut __sk_buff,
    net_id: u32,
    /// The VTEP the outer header is addressed to now.
    cur_be: VtepAddr,
    /// The outer header has a UDP header (not GRE).
    udp: u32,
    /// The frame's time ([`crate::clock::Ageing`]), for the next hops.
    now_ns: u64,
}

/// `bpf_loop` callback: readdresses the outer header to peer `index` and
/// sends a copy there; stops the loop (1) when it cannot. Verified once,
/// however many peers (a plain loop was walked by the verifier once per
/// peer).
extern "C" fn flood_remote_one<M: Mode>(index: u64, data: *mut c_void) -> i64 {
    // SAFETY: `data` is the RemoteCtx on the caller's stack.
    let c = unsafe { &mut *(data as *mut RemoteCtx) };
    let i = index as usize;
    let (Some(cfg), Some(fs)) = (config(), FLOOD.get(c.net_id)) else { return 1 };
    if i >= MAX_FLOOD_PEERS {
        return 1;
    }
    let ctx = TcContext::new(c.skb);
    let dst = fs.peers_be[i];
    if !vtep_eq(&dst, &c.cur_be) {
        if retarget(&ctx, is_v6(cfg), &c.cur_be, &dst, c.udp != 0).is_err() {
            return 1;
        }
        c.cur_be = dst;
    }
    send_clone::<M>(&ctx, cfg, &dst, net_row(c.net_id), c.now_ns);
    0
}

/// Head-end replication: one encapsulated copy per peer VTEP of the network.
/// The frame itself goes to the last peer. Returns the TC verdict.
#[inline(always)]
pub fn flood_remote<M: Mode>(
    ctx: &TcContext,
    cfg: &GlobalConfig,
    fs: &FloodSet,
    net_id: u32,
    net: &NetConfig,
    row: u32,
    now: u64,
) -> Result<i32, Drop> {
    let n = fs.n_peers as usize;
    if n == 0 || n > MAX_FLOOD_PEERS {
        return Err(Drop::new(row, Counter::DropFloodNoTarget));
    }
    let first = fs.peers_be[0];
    // Each copy, and the frame itself, gets its peer's next hop below.
    if let Encapped::ViaDevice = encapsulate::<M>(ctx, cfg, net, &first, Hop::NONE, row)? {
        return flood_via_device::<M>(ctx, net_id, net.vni, row);
    }
    // Copies to all peers but the last...
    let copies = (n - 1) as u32;
    let udp = net.encap() != ENCAP_GRE;
    let mut c = RemoteCtx { skb: ctx.skb.skb, net_id, cur_be: first, udp: udp as u32, now_ns: now };
    let cb = flood_remote_one::<M> as *mut c_void;
    // SAFETY: callback and context as bpf_loop expects. It returns how
    // many iterations ran: fewer when one stopped the loop.
    if unsafe { bpf_loop(copies, cb, &mut c as *mut RemoteCtx as *mut c_void, 0) } != copies as i64 {
        return Err(Drop::new(row, Counter::DropHelperFailed));
    }
    // ...then the frame itself to the last one.
    let last = fs.peers_be[(n - 1) & (MAX_FLOOD_PEERS - 1)];
    if !vtep_eq(&last, &c.cur_be) && retarget(ctx, is_v6(cfg), &c.cur_be, &last, udp).is_err() {
        return Err(Drop::new(row, Counter::DropHelperFailed));
    }
    step_at::<M>(STEP_FLOOD_REMOTE, 0, FLOOD_FRAME, 0, &last);
    let hop = hop_by_address::<M>(ctx, cfg, &last, now);
    if let NextHop::Resolved { smac, dmac, .. } = hop.nh {
        set_macs(ctx, &smac, &dmac).or_drop(row)?;
    }
    let v = send_final::<M>(ctx, cfg, &last, hop, row);
    if v.is_ok() {
        count::<M>(row, Counter::FloodRemoteCopies);
    }
    v
}

/// What the `bpf_loop` callback needs to hand one copy to the GSO device.
#[repr(C)]
struct DeviceCtx {
    skb: *mut __sk_buff,
    net_id: u32,
    vni: u32,
    label: u32,
}

/// `bpf_loop` callback: a copy to peer `index` through the kernel's VXLAN
/// device, with that peer's tunnel key.
extern "C" fn flood_device_one<M: Mode>(index: u64, data: *mut c_void) -> i64 {
    // SAFETY: `data` is the DeviceCtx on the caller's stack.
    let c = unsafe { &mut *(data as *mut DeviceCtx) };
    let i = index as usize;
    let (Some(cfg), Some(fs)) = (config(), FLOOD.get(c.net_id)) else { return 1 };
    if i >= MAX_FLOOD_PEERS {
        return 1;
    }
    let ctx = TcContext::new(c.skb);
    let dst = fs.peers_be[i];
    step_at::<M>(STEP_FLOOD_REMOTE, 0, FLOOD_COPY, 0, &dst);
    step_at::<M>(STEP_NEXT_HOP, cfg.gso_tunnel_ifindex, HOP_DEVICE, 0, &dst);
    let row = net_row(c.net_id);
    if gso_tunnel::set_key(&ctx, cfg, c.vni, &dst, c.label)
        && (M::TRACE || ctx.clone_redirect(cfg.gso_tunnel_ifindex, 0).is_ok())
    {
        count::<M>(row, Counter::FloodRemoteCopies);
    } else {
        count::<M>(row, Counter::DropHelperFailed);
    }
    0
}

/// Head-end replication of a GSO super-packet over IPv6 with checksums:
/// each copy, and the frame itself to the last peer, goes to the kernel's
/// VXLAN device with its peer's tunnel key. Inlined: as a subprogram its
/// frame (176 bytes) plus the callback's and `set_key`'s exceeded the
/// 512-byte call-chain limit on top of the program's.
#[inline(always)]
fn flood_via_device<M: Mode>(ctx: &TcContext, net_id: u32, vni: u32, row: u32) -> Result<i32, Drop> {
    let (Some(cfg), Some(fs)) = (config(), FLOOD.get(net_id)) else {
        return Err(Drop::new(row, Counter::DropHelperFailed));
    };
    let n = fs.n_peers as usize;
    if n == 0 || n > MAX_FLOOD_PEERS {
        return Err(Drop::new(row, Counter::DropFloodNoTarget));
    }
    let copies = (n - 1) as u32;
    let label = inner_flow_hash(ctx);
    let mut c = DeviceCtx { skb: ctx.skb.skb, net_id, vni, label };
    let cb = flood_device_one::<M> as *mut c_void;
    // SAFETY: callback and context as bpf_loop expects.
    if unsafe { bpf_loop(copies, cb, &mut c as *mut DeviceCtx as *mut c_void, 0) } != copies as i64 {
        return Err(Drop::new(row, Counter::DropHelperFailed));
    }
    let last = fs.peers_be[(n - 1) & (MAX_FLOOD_PEERS - 1)];
    if !gso_tunnel::set_key(ctx, cfg, vni, &last, label) {
        return Err(Drop::new(row, Counter::DropTunnelGso));
    }
    step_at::<M>(STEP_FLOOD_REMOTE, 0, FLOOD_FRAME, 0, &last);
    let v = send_via_device::<M>(cfg, &last, row);
    if v.is_ok() {
        count::<M>(row, Counter::FloodRemoteCopies);
    }
    v
}
