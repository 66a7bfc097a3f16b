//! ARP and ND suppression and IP learning on tenant ingress: the rules and
//! the replies are `overlay_common::neigh`'s; this file looks up and
//! updates `NEIGH` and sends the answer back out of the asking port.

use aya_ebpf::{EbpfContext, helpers::bpf_skb_change_tail, programs::TcContext};
use overlay_common::{
    ETH_P_ARP, ETH_P_IPV6,
    counters::Counter,
    frame::Frame,
    headers::EthHdr,
    is_group_mac,
    maps::{GlobalConfig, NET_F_LEARN_IP, NET_F_SUPPRESS, NeighEntry, NeighKey, NetConfig},
    neigh::{ARP_FRAME_LEN, NA_CHECKSUM, NA_FRAME_LEN, na_checksum, parse_arp, parse_nd},
    offsets,
    trace::STEP_NEIGH_REPLY,
};

use crate::{
    access::{SkbCopyFrame, SkbFrame},
    deliver::{egress, redirect_to},
    maps::NEIGH,
    stats::{Drop, OrDrop, count, count_drop, helper_ok},
    trace::{Mode, step},
};

/// A learned pair is rewritten at most this often when announced again.
const REFRESH_NS: u64 = 1_000_000_000;

/// A tenant's frame, untagged, as `tenant_ingress` has classified it.
pub struct TenantFrame<'a> {
    pub ctx: &'a TcContext,
    pub cfg: &'a GlobalConfig,
    /// The port it came in on.
    pub ifindex: u32,
    pub net_id: u32,
    pub net: &'a NetConfig,
    pub row: u32,
    pub eth: EthHdr,
}

/// Looks at a tenant's ARP or ND frame: learns what it announces
/// (`learn_ip`) and, for a request the table can answer (`suppress`),
/// sends the reply back out of the port and returns its verdict (a failure
/// is counted, and the verdict is a drop). -1: forward as usual.
#[inline(always)]
pub fn on_tenant_frame<M: Mode>(t: &TenantFrame) -> i32 {
    // Only requests to a group address are answered: unicast traffic of a
    // network that does not learn never pays for a parse.
    if !learns(t) && !answers(t) {
        return -1;
    }
    // The frame's own ethertype: `t.eth` may still show a tag popped since.
    let Some(ethertype_be) = SkbFrame(t.ctx).read::<u16>(offsets::ETH_TYPE) else { return -1 };
    if ethertype_be == ETH_P_ARP.to_be() {
        arp::<M>(t)
    } else if ethertype_be == ETH_P_IPV6.to_be() {
        nd::<M>(t)
    } else {
        -1
    }
}

/// The verdict of a handler: -1 to forward as usual.
#[inline(always)]
fn verdict<M: Mode>(r: Result<Option<i32>, Drop>) -> i32 {
    match r {
        Ok(Some(v)) => v,
        Ok(None) => -1,
        Err(d) => count_drop::<M>(d),
    }
}

#[inline(always)]
fn learns(t: &TenantFrame) -> bool {
    t.net.flags & NET_F_LEARN_IP != 0
}

#[inline(always)]
fn answers(t: &TenantFrame) -> bool {
    t.net.flags & NET_F_SUPPRESS != 0 && is_group_mac(&t.eth.dst)
}

/// ARP. BPF functions of their own (not inlined), [`arp`] and [`nd`]: their
/// stack frames are not added to `tenant_ingress`'s, only stacked on it.
#[inline(never)]
fn arp<M: Mode>(t: &TenantFrame) -> i32 {
    verdict::<M>(try_arp::<M>(t))
}

#[inline(always)]
fn try_arp<M: Mode>(t: &TenantFrame) -> Result<Option<i32>, Drop> {
    let Some(a) = parse_arp(&SkbFrame(t.ctx)) else { return Ok(None) };
    if learns(t)
        && let Some((ip, mac)) = a.announces(&t.eth.src)
    {
        learn_pair::<M>(NeighKey::v4(t.net_id, ip), mac, t.row);
    }
    if answers(t)
        && let Some(ip) = a.answerable()
        && let Some(mac) = known(&NeighKey::v4(t.net_id, ip), t.cfg.ageing_ns)
    {
        a.reply_in_place(&mac, reply_room::<ARP_FRAME_LEN>(t)?);
        return send_back::<M>(t, Counter::ArpSuppressed).map(Some);
    }
    Ok(None)
}

/// Neighbour discovery.
#[inline(never)]
fn nd<M: Mode>(t: &TenantFrame) -> i32 {
    verdict::<M>(try_nd::<M>(t))
}

#[inline(always)]
fn try_nd<M: Mode>(t: &TenantFrame) -> Result<Option<i32>, Drop> {
    let Some(nd) = parse_nd(&SkbCopyFrame(t.ctx)) else { return Ok(None) };
    if learns(t)
        && let Some((ip, mac)) = nd.announces(&t.eth.src)
    {
        learn_pair::<M>(NeighKey::v6(t.net_id, ip.octets()), mac, t.row);
    }
    if answers(t)
        && let Some(ip) = nd.answerable()
        && let Some(mac) = known(&NeighKey::v6(t.net_id, ip.octets()), t.cfg.ageing_ns)
    {
        nd.reply_in_place(&mac, reply_room::<NA_FRAME_LEN>(t)?);
        let sum = na_checksum(&SkbFrame(t.ctx)).ok_or(Drop::new(t.row, Counter::DropHelperFailed))?;
        t.ctx.store(NA_CHECKSUM, &sum, 0).or_drop(t.row)?;
        return send_back::<M>(t, Counter::NdSuppressed).map(Some);
    }
    Ok(None)
}

/// The MAC the table holds for `key`, if it may be answered for.
#[inline(always)]
fn known(key: &NeighKey, ageing_ns: u64) -> Option<[u8; 6]> {
    // SAFETY: plain-bytes value.
    let e = unsafe { NEIGH.get(key) }?;
    if e.expired(crate::clock::read_ns(), ageing_ns) { None } else { Some(e.mac) }
}

/// Learns `key` -> `mac` unless a configured pair says otherwise (counted
/// as a conflict). A trace writes nothing.
#[inline(always)]
fn learn_pair<M: Mode>(key: NeighKey, mac: [u8; 6], row: u32) {
    let now = crate::clock::read_ns();
    // SAFETY: plain-bytes value.
    let moved = match unsafe { NEIGH.get(key) } {
        Some(e) if e.is_static() => {
            if e.mac != mac {
                count::<M>(row, Counter::NeighConflict);
            }
            return;
        }
        Some(e) if e.mac == mac && now.wrapping_sub(e.updated_ns) < REFRESH_NS => return,
        Some(e) => e.mac != mac,
        None => true,
    };
    let e = NeighEntry { mac, flags: 0, _pad: 0, updated_ns: now };
    if !M::TRACE && NEIGH.insert(key, e, 0).is_err() {
        count::<M>(row, Counter::NeighFull);
    } else if moved {
        count::<M>(row, Counter::NeighLearned);
    }
}

/// Makes the frame exactly `N` bytes long and returns them, to be
/// overwritten by the reply (in place: no copy on the stack).
#[inline(always)]
fn reply_room<'a, const N: usize>(t: &TenantFrame<'a>) -> Result<&'a mut [u8; N], Drop> {
    let (ctx, row) = (t.ctx, t.row);
    // SAFETY: helper call on our own context.
    helper_ok(unsafe { bpf_skb_change_tail(ctx.as_ptr() as *mut _, N as u32, 0) }, row)?;
    let (start, end) = (ctx.data(), ctx.data_end());
    if start + N > end {
        return Err(Drop::new(row, Counter::DropHelperFailed));
    }
    // SAFETY: N bytes of packet data, checked against data_end just above;
    // TC programs may write packet data directly.
    Ok(unsafe { &mut *(start as *mut [u8; N]) })
}

/// Sends the reply written into the frame out of the port the request came
/// in on, tagged as the port carries the network.
#[inline(always)]
fn send_back<M: Mode>(t: &TenantFrame, c: Counter) -> Result<i32, Drop> {
    step::<M>(STEP_NEIGH_REPLY, 0, 0, 0, 0);
    let e = egress(t.ifindex, t.net_id, t.net, t.row)?;
    let v = redirect_to::<M>(t.ctx, t.ifindex, e, t.row)?;
    count::<M>(t.row, c);
    Ok(v)
}
