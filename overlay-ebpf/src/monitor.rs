//! Events for `overlayctl monitor` (see `overlay_common::monitor`): a drop
//! with the first bytes of its frame, and FDB learns, moves and age-outs,
//! written only while a monitor's deadline runs, at most its rate per CPU.

use aya_ebpf::{
    helpers::{bpf_ktime_get_ns, bpf_skb_load_bytes},
    programs::TcContext,
};
use overlay_common::{
    counters::Counter,
    maps::{FDB_EV_AGED, FDB_EV_LEARNED, FDB_EV_MOVED, FdbEntry, FdbKey},
    monitor::*,
};

use crate::{
    maps::{MONITOR, MONITOR_CTL, MONITOR_RATE},
    stats::{Drop, count_live},
};

/// Whether an event of kind `flag` for stats row `row` is wanted now: the
/// one lookup a drop or FDB change costs when no monitor runs. Counts the
/// event as lost when it is over the rate.
#[inline(always)]
fn wanted(flag: u32, row: u32) -> Option<u64> {
    let ctl = MONITOR_CTL.get(0)?;
    if ctl.flags & flag == 0 || (ctl.row != 0 && ctl.row != row) {
        return None;
    }
    // SAFETY: plain helper.
    let now = unsafe { bpf_ktime_get_ns() };
    if now > ctl.until_ns {
        return None;
    }
    let r = MONITOR_RATE.get_ptr_mut(0)?;
    // SAFETY: per-CPU slot, no concurrent writer on this CPU.
    let r = unsafe { &mut *r };
    if now.wrapping_sub(r.window_ns) >= 1_000_000_000 {
        r.window_ns = now;
        r.count = 0;
    }
    if r.count >= ctl.rate_per_sec as u64 {
        count_live(row, Counter::MonitorLost);
        return None;
    }
    r.count += 1;
    Some(now)
}

/// A drop at `hook`, with the frame's first bytes.
#[inline(always)]
pub fn on_drop(ctx: &TcContext, hook: u8, d: Drop) {
    let Some(now) = wanted(MON_DROPS, d.row) else { return };
    let Some(mut e) = MONITOR.reserve::<MonitorEvent>(0) else {
        count_live(d.row, Counter::MonitorLost);
        return;
    };
    let p = e.as_mut_ptr();
    let len = ctx.len();
    let cap = if len > MONITOR_SNAP as u32 { MONITOR_SNAP as u32 } else { len };
    // SAFETY: `p` points at the reserved record; header fields are written
    // before submit, `data` up to `cap` (bounded by its size) by the helper.
    unsafe {
        (*p).kind = MON_EV_DROP;
        (*p).hook = hook;
        (*p).reason = d.reason as u16;
        (*p).ifindex = (*ctx.skb.skb).ingress_ifindex;
        (*p).row = d.row;
        (*p).len = len;
        let skb = &*ctx.skb.skb;
        (*p).vlan = if skb.vlan_present != 0 { VLAN_PRESENT | (skb.vlan_tci & 0xffff) } else { 0 };
        (*p).ts_ns = now;
        let ok = cap > 0
            && cap <= MONITOR_SNAP as u32
            && bpf_skb_load_bytes(
                ctx.skb.skb as *const _,
                0,
                core::ptr::addr_of_mut!((*p).data) as *mut _,
                cap,
            ) == 0;
        (*p).cap = if ok { cap } else { 0 };
    }
    e.submit(0);
}

/// An FDB change (`fdb::report`'s events).
#[inline(always)]
pub fn on_fdb(event: u8, k: &FdbKey, e: &FdbEntry) {
    let row = k.net_id + 1;
    let Some(now) = wanted(MON_FDB, row) else { return };
    let Some(mut r) = MONITOR.reserve::<MonitorEvent>(0) else {
        count_live(row, Counter::MonitorLost);
        return;
    };
    let p = r.as_mut_ptr();
    // SAFETY: as in on_drop.
    unsafe {
        (*p).kind = match event {
            FDB_EV_LEARNED => MON_EV_LEARNED,
            FDB_EV_MOVED => MON_EV_MOVED,
            FDB_EV_AGED => MON_EV_AGED,
            _ => 0,
        };
        (*p).hook = 0;
        (*p).reason = 0;
        (*p).ifindex = e.ifindex;
        (*p).row = row;
        (*p).len = 0;
        (*p).cap = 22;
        (*p).vlan = 0;
        (*p).ts_ns = now;
        let data = core::ptr::addr_of_mut!((*p).data) as *mut u8;
        core::ptr::copy_nonoverlapping(k.mac.as_ptr(), data, 6);
        // The remote VTEP (a port's events: zero) after the MAC.
        core::ptr::copy_nonoverlapping(e.remote_be.as_ptr() as *const u8, data.add(6), 16);
    }
    r.submit(0);
}
