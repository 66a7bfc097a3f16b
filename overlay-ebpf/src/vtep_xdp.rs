//! XDP on the underlay: the fast path for known-unicast VXLAN, GENEVE and GRE.
//!
//! Only frames this program can finish are handled here: VXLAN sent to the
//! underlay's own MAC address, without trailing bytes, admitted by the same
//! rules as in TC (`admit`, the reverse-path check), whose destination is a
//! learned or static local port that is a member of the network untagged
//! (access or trunk-native) and is marked as an XDP target (its far end
//! runs NAPI, so a redirected frame is never dropped by the kernel unseen).
//! Those are decapsulated by moving the packet start past the outer headers
//! (`bpf_xdp_adjust_head`, nothing is copied) and redirected to the port.
//! Everything else, including every frame that is dropped, goes on to the TC
//! program with XDP_PASS, which decides and counts: nothing is counted twice.
//! Over IPv6 the outer UDP checksum is summed first (`xdp_csum`).

use aya_ebpf::{
    bindings::xdp_action::{XDP_PASS, XDP_REDIRECT},
    helpers::{bpf_redirect, bpf_xdp_adjust_head},
    macros::xdp,
    programs::XdpContext,
};
use overlay_common::{
    counters::Counter,
    frame::Frame,
    headers::UdpHdr,
    is_group_mac,
    maps::{CFG_F_IPV6, PORT_F_XDP_TARGET},
    offsets as off,
    parse::parse_underlay,
};

use crate::{
    access::XdpFrame,
    admit::{Admitted, admit},
    clock::Ageing,
    fdb::{Hit, at_remote, learn, lookup},
    maps::{config, port},
    rpf::source_ok,
    stats::count_live as count,
    trace::Live,
    xdp_csum::udp6_ok,
};

#[xdp]
pub fn vtep_xdp(ctx: XdpContext) -> u32 {
    // Every refusal is a pass to TC, which counts it.
    try_vtep_xdp(&ctx).unwrap_or(XDP_PASS)
}

#[inline(always)]
fn try_vtep_xdp(ctx: &XdpContext) -> Option<u32> {
    let cfg = config()?;
    let f = XdpFrame(ctx);
    let rx = parse_underlay(&f, cfg, false).ok()?;
    if rx.outer_dst != cfg.underlay_mac || rx.inner_off + rx.inner_len != f.wire_len() {
        return None;
    }
    // Over IPv6 the outer UDP checksum (a zero one the parser let through
    // only where allowed) is summed here; a frame that fails goes to TC.
    if cfg.flags & CFG_F_IPV6 != 0 {
        let udp: UdpHdr = f.read(off::UDP6)?;
        if rx.l4_off != off::UDP6 || (udp.check_be != 0 && !udp6_ok(ctx, u16::from_be(udp.len_be) as u32)) {
            return None;
        }
    }
    let Admitted { net_id, net, row, sender } = admit(&rx, &cfg.local_vtep_be).ok()?;
    let t = Ageing::now(cfg.ageing_ns);
    let (underlay, src, local) = (cfg.underlay_ifindex, &rx.src_vtep_be, &cfg.local_vtep_be);
    if !source_ok::<Live>(ctx.ctx as *mut _, cfg, underlay, net_id, sender, src, local, t.now_ns) {
        return None;
    }
    let (src, dst) = (rx.inner.src, rx.inner.dst);
    if is_group_mac(&dst) {
        return None;
    }
    let Hit::Port(out) = lookup::<Live>(net_id, dst, t) else { return None };
    // One PORTS lookup: the port takes this network untagged (access or
    // trunk-native) and is marked as an XDP target.
    let p = port(out)?;
    if p.net_id != net_id || p.flags & PORT_F_XDP_TARGET == 0 {
        return None;
    }
    learn::<Live>(row, net_id, net, t, src, at_remote(rx.src_vtep_be)).ok()?;
    let off = rx.inner_off as i32;
    // SAFETY: helper on our own context; the verifier re-checks pointers.
    if unsafe { bpf_xdp_adjust_head(ctx.ctx, off) } != 0 {
        return None;
    }
    // SAFETY: plain helper call.
    if unsafe { bpf_redirect(out, 0) } != XDP_REDIRECT as i64 {
        // Put the outer headers back and let TC deal with it.
        // SAFETY: as above; restores the original start.
        let _ = unsafe { bpf_xdp_adjust_head(ctx.ctx, -off) };
        return None;
    }
    count(0, Counter::RxUnderlay);
    count(row, Counter::Decap);
    count(row, Counter::TxLocal);
    count(row, Counter::XdpRedirect);
    Some(XDP_REDIRECT)
}
