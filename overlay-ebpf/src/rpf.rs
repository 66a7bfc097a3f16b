//! Reverse-path check of VXLAN sources, as the kernel's `rp_filter` does
//! for what reaches `ip_rcv` (the TC and XDP hooks run before it): the
//! route back to the outer source must leave by the interface the frame
//! came in on (strict), or exist at all (loose). A pass is cached per
//! peer (or per source that is no configured peer) for `RP_CACHE_TTL_NS`
//! (a route change is followed within it; every `up` clears the cache).

use core::mem::size_of;

use aya_ebpf::{
    bindings::{
        BPF_FIB_LKUP_RET_NO_NEIGH, BPF_FIB_LKUP_RET_SUCCESS, BPF_FIB_LOOKUP_SKIP_NEIGH,
        bpf_fib_lookup as FibParams,
    },
    cty::c_void,
    helpers::bpf_fib_lookup,
};
use overlay_common::{
    IPPROTO_UDP, VtepAddr,
    maps::{CFG_F_RP_LOOSE, CFG_F_RP_STRICT, GlobalConfig, PeerState, RP_CACHE_TTL_NS},
    trace::STEP_RPF,
};

use crate::{
    admit::{Member, update_peer},
    fib::set_addrs,
    maps::RP_CACHE,
    trace::{Mode, step_at},
};

/// Whether a frame from `src_be` (the sender, a VTEP of network
/// `net_id`) to `dst_be` that arrived on `ifindex` at `now` passes the
/// configured check. `ctx` is the program's context. A pass is cached in
/// the peer's `PEERS` entry, or in `RP_CACHE` for a source that is no
/// configured peer. A trace does not cache the result.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub fn source_ok<M: Mode>(
    ctx: *mut c_void,
    cfg: &GlobalConfig,
    ifindex: u32,
    net_id: u32,
    sender: Member,
    src_be: &VtepAddr,
    dst_be: &VtepAddr,
    now: u64,
) -> bool {
    if cfg.flags & (CFG_F_RP_STRICT | CFG_F_RP_LOOSE) == 0 {
        return true;
    }
    let passed_ns = match sender {
        Member::Peer(p) => p.rp_ok_ns,
        // SAFETY: plain u64 value.
        Member::Unknown => unsafe { RP_CACHE.get(src_be) }.copied().unwrap_or(0),
    };
    if passed_ns != 0 && now.wrapping_sub(passed_ns) < RP_CACHE_TTL_NS {
        step_at::<M>(STEP_RPF, 1, 1, 0, src_be);
        return true;
    }
    let ok = routed_back(ctx, cfg, ifindex, src_be, dst_be);
    step_at::<M>(STEP_RPF, ok as u32, 0, 0, src_be);
    if ok && !M::TRACE {
        match sender {
            Member::Peer(p) => update_peer(net_id, src_be, &PeerState { rp_ok_ns: now, ..*p }),
            Member::Unknown => {
                let _ = RP_CACHE.insert(src_be, now, 0);
            }
        }
    }
    ok
}

/// The FIB lookup of the check. Not inlined: its 64-byte parameter block
/// then lives in a frame of its own, not in the program's, which the
/// checksum callbacks' frames add to (512 bytes in all).
#[inline(never)]
fn routed_back(
    ctx: *mut c_void,
    cfg: &GlobalConfig,
    ifindex: u32,
    src_be: &VtepAddr,
    dst_be: &VtepAddr,
) -> bool {
    // SAFETY: all-zero is a valid bpf_fib_lookup.
    let mut params = core::mem::MaybeUninit::<FibParams>::uninit();
    let p = unsafe { crate::access::zero(&mut params) };
    p.l4_protocol = IPPROTO_UDP;
    p.ifindex = ifindex;
    // An input lookup (as `fib_validate_source` does): the best route from
    // here back to the source, whatever interface it uses.
    set_addrs(p, cfg, dst_be, src_be);
    // SAFETY: helper with a valid parameter block of the declared size.
    let r = unsafe { bpf_fib_lookup(ctx, p, size_of::<FibParams>() as i32, BPF_FIB_LOOKUP_SKIP_NEIGH) };
    let routed = r == BPF_FIB_LKUP_RET_SUCCESS as i64 || r == BPF_FIB_LKUP_RET_NO_NEIGH as i64;
    routed && (cfg.flags & CFG_F_RP_STRICT == 0 || p.ifindex == ifindex)
}
