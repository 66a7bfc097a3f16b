//! FDB lookups and learning. Ageing needs no userspace process: an expired
//! entry is deleted when it is looked up, and a network that reaches its
//! learning limit (or finds the FDB full) sweeps the FDB for expired entries
//! with `bpf_for_each_map_elem`, at most once a second.

use core::{
    ffi::c_void,
    intrinsics::{AtomicOrdering, atomic_xadd},
};

use aya_ebpf::{
    bindings::{BPF_EXIST, BPF_NOEXIST},
    helpers::bpf_for_each_map_elem,
};
use aya_log_ebpf::warn;
use overlay_common::{
    VtepAddr,
    counters::{Counter, net_row},
    is_group_mac,
    maps::{
        FDB_EV_AGED, FDB_EV_LEARNED, FDB_EV_MOVED, FDB_KIND_PORT, FDB_KIND_REMOTE, FdbEntry, FdbEvent,
        FdbKey, NET_F_EVENTS, NetConfig,
    },
};

use overlay_common::trace::*;

use crate::{
    clock::Ageing,
    maps::{FDB, FDB_EVENTS, NET_FDB, network},
    stats::{Drop, count, count_live},
    trace::{Live, Mode, step, step_at},
};

/// A learned entry is rewritten at most this often when traffic refreshes it.
const REFRESH_NS: u64 = 1_000_000_000;
/// A network sweeps the FDB for expired entries at most this often.
const SWEEP_NS: u64 = 1_000_000_000;
const E2BIG: i32 = -7;
const EEXIST: i32 = -17;

pub enum Hit {
    Port(u32),
    Remote(VtepAddr),
    Miss,
}

/// The learned-entry count of a network, shared by all CPUs. (The BPF
/// target has no `AtomicU64::fetch_add`; the intrinsic compiles to the
/// BPF atomic add instruction.)
#[derive(Clone, Copy)]
struct Learned(*mut u64);

impl Learned {
    #[inline(always)]
    fn of(net_id: u32) -> Option<Learned> {
        let p = NET_FDB.get_ptr_mut(net_id)?;
        // SAFETY: a field of a map value that lives as long as the program.
        Some(Learned(unsafe { &raw mut (*p).learned }))
    }

    #[inline(always)]
    fn get(self) -> u64 {
        // SAFETY: 8-aligned map memory (see `of`).
        unsafe { core::ptr::read_volatile(self.0) }
    }

    /// Adds `d` (wrapping: `u64::MAX` subtracts one).
    #[inline(always)]
    fn add(self, d: u64) {
        // SAFETY: as in `get`; every writer in the kernel adds atomically.
        unsafe { atomic_xadd::<u64, u64, { AtomicOrdering::Relaxed }>(self.0, d) };
    }
}

/// Tells the agent that the FDB changed, for networks that have one
/// (`NET_F_EVENTS`; one array lookup, on changes only); counted as lost
/// when the ring is full.
#[inline(always)]
fn report(event: u8, k: &FdbKey, e: &FdbEntry) {
    crate::monitor::on_fdb(event, k, e);
    if !network(k.net_id).is_some_and(|n| n.flags & NET_F_EVENTS != 0) {
        return;
    }
    if FDB_EVENTS.output::<FdbEvent>(FdbEvent::new(event, k, e), 0).is_err() {
        count_live(net_row(k.net_id), Counter::FdbEventsLost);
    }
}

/// Deletes `k` (which held `e`) and, when this call removed it, takes it
/// off its network's count and counts and reports it as aged. A trace
/// only records the count.
#[inline(always)]
fn expire<M: Mode>(k: &FdbKey, e: &FdbEntry) {
    if M::TRACE {
        count::<M>(net_row(k.net_id), Counter::AgedOut);
        return;
    }
    if FDB.remove(k).is_ok() {
        if let Some(n) = Learned::of(k.net_id) {
            n.add(u64::MAX);
        }
        count::<M>(net_row(k.net_id), Counter::AgedOut);
        report(FDB_EV_AGED, k, e);
    }
}

/// The destination's FDB entry, when the destination is unicast.
#[inline(always)]
pub fn lookup_dst<M: Mode>(net_id: u32, dst: [u8; 6], t: Ageing) -> Hit {
    if is_group_mac(&dst) {
        step::<M>(STEP_FDB, 0, FDB_GROUP, 0, 0);
        return Hit::Miss;
    }
    lookup::<M>(net_id, dst, t)
}

#[inline(always)]
pub fn lookup<M: Mode>(net_id: u32, mac: [u8; 6], t: Ageing) -> Hit {
    let k = FdbKey::new(net_id, mac);
    // SAFETY: plain-bytes value; see maps::port.
    let Some(e) = (unsafe { FDB.get(k) }) else {
        step::<M>(STEP_FDB, 0, FDB_MISS, 0, 0);
        return Hit::Miss;
    };
    let e = *e;
    if e.expired(t.now_ns, t.ageing_ns) {
        step::<M>(STEP_FDB, 0, FDB_EXPIRED, 0, 0);
        expire::<M>(&k, &e);
        return Hit::Miss;
    }
    if e.kind == FDB_KIND_PORT {
        step::<M>(STEP_FDB, 0, FDB_HIT_PORT, e.ifindex, 0);
        Hit::Port(e.ifindex)
    } else if e.kind == FDB_KIND_REMOTE {
        step_at::<M>(STEP_FDB, FDB_HIT_REMOTE, 0, 0, &e.remote_be);
        Hit::Remote(e.remote_be)
    } else {
        step::<M>(STEP_FDB, 0, FDB_MISS, 0, 0);
        Hit::Miss
    }
}

#[repr(C)]
struct SweepCtx {
    now: u64,
    ageing_ns: u64,
}

/// `bpf_for_each_map_elem` callback: deletes `key` when it has expired.
extern "C" fn sweep_one(
    _map: *mut c_void,
    key: *const FdbKey,
    value: *const FdbEntry,
    ctx: *mut c_void,
) -> i64 {
    // SAFETY: the kernel passes a valid key, value and our context.
    let (k, e, c) = unsafe { (*key, *value, &*(ctx as *const SweepCtx)) };
    if e.expired(c.now, c.ageing_ns) {
        expire::<Live>(&k, &e);
    }
    0
}

/// Sweeps the whole FDB for expired learned entries, unless `net_id` swept
/// less than [`SWEEP_NS`] ago (or nothing ages). Returns whether it swept.
#[inline(always)]
fn sweep(net_id: u32, now: u64, ageing_ns: u64) -> bool {
    if ageing_ns == 0 {
        return false;
    }
    let Some(st) = NET_FDB.get_ptr_mut(net_id) else { return false };
    // SAFETY: map value; a race between CPUs at worst sweeps twice.
    unsafe {
        if now.wrapping_sub((*st).swept_ns) < SWEEP_NS {
            return false;
        }
        (*st).swept_ns = now;
    }
    let mut c = SweepCtx { now, ageing_ns };
    // SAFETY: FDB is a map definition (repr(transparent) over bpf_map_def),
    // the callback has the signature the helper expects.
    unsafe {
        bpf_for_each_map_elem(
            &FDB as *const _ as *mut c_void,
            sweep_one as *mut c_void,
            &mut c as *mut SweepCtx as *mut c_void,
            0,
        )
    };
    true
}

/// Whether network `net_id` is at its learning limit (after a sweep, when
/// one is due; a trace does not sweep).
#[inline(always)]
fn at_limit<M: Mode>(net_id: u32, net: &NetConfig, now: u64, ageing_ns: u64) -> bool {
    let max = net.max_learned as u64;
    let Some(n) = Learned::of(net_id) else { return false };
    if max == 0 || n.get() < max {
        return false;
    }
    M::TRACE || !sweep(net_id, now, ageing_ns) || n.get() >= max
}

/// The place of an FDB entry as trace step fields (kind, ifindex or VTEP).
#[inline(always)]
fn learn_step<M: Mode>(outcome: u32, place: &FdbEntry) {
    let at = if place.kind == FDB_KIND_PORT { place.ifindex } else { 0 };
    step_at::<M>(STEP_LEARN, outcome, place.kind as u32, at, &place.remote_be);
}

/// Records that `mac` was seen at `place` (kind, ifindex/remote set).
/// A static entry elsewhere is never overwritten: the frame is refused.
/// A new MAC is learned only while the network is under its limit and the
/// FDB has room; otherwise it is counted as `learn_fdb_full`. A trace
/// writes nothing and records the outcome.
#[inline(always)]
pub fn learn<M: Mode>(
    row: u32,
    net_id: u32,
    net: &NetConfig,
    t: Ageing,
    mac: [u8; 6],
    place: FdbEntry,
) -> Result<(), Drop> {
    let k = FdbKey::new(net_id, mac);
    let (now, ageing_ns) = (t.now_ns, t.ageing_ns);
    let e = FdbEntry { seen_ns: now, flags: 0, ..place };
    // SAFETY: plain-bytes value; see maps::port.
    if let Some(old) = unsafe { FDB.get(k) } {
        let old = *old;
        if old.is_static() {
            return if old.same_place(&place) {
                learn_step::<M>(LEARN_STATIC, &place);
                Ok(())
            } else {
                learn_step::<M>(LEARN_STATIC_ELSEWHERE, &place);
                Err(Drop::new(row, Counter::DropSrcMacStatic))
            };
        }
        if old.same_place(&place) {
            if now.wrapping_sub(old.seen_ns) < REFRESH_NS {
                learn_step::<M>(LEARN_KNOWN, &place);
            } else if M::TRACE {
                learn_step::<M>(LEARN_REFRESH, &place);
            } else {
                // Refresh only: not counted as learned. An entry that had
                // aged out (nobody looked it up since) is back: reported, as
                // the agent withdrew it when it aged.
                let _ = FDB.insert(k, e, BPF_EXIST as u64);
                if old.expired(now, ageing_ns) {
                    report(FDB_EV_LEARNED, &k, &e);
                }
            }
            return Ok(());
        }
        // A move: the entry stays one of this network's.
        if M::TRACE {
            learn_step::<M>(LEARN_MOVE, &place);
            count::<M>(row, Counter::Learned);
            return Ok(());
        }
        if FDB.insert(k, e, BPF_EXIST as u64).is_ok() {
            count::<M>(row, Counter::Learned);
            report(FDB_EV_MOVED, &k, &e);
            return Ok(());
        }
    }
    if at_limit::<M>(net_id, net, now, ageing_ns) {
        learn_step::<M>(LEARN_LIMIT, &place);
        count::<M>(row, Counter::LearnFdbFull);
        return Ok(());
    }
    if M::TRACE {
        learn_step::<M>(LEARN_NEW, &place);
        count::<M>(row, Counter::Learned);
        return Ok(());
    }
    let mut r = FDB.insert(k, e, BPF_NOEXIST as u64);
    let swept = r == Err(E2BIG) && sweep(net_id, now, ageing_ns);
    if swept {
        r = FDB.insert(k, e, BPF_NOEXIST as u64);
    }
    match r {
        Ok(()) => {
            if let Some(n) = Learned::of(net_id) {
                n.add(1);
                // A rare event for the log: the network has just reached
                // its limit (once per crossing; at worst twice in a race).
                let max = net.max_learned as u64;
                if max != 0 && n.get() == max {
                    warn!(&(), "network id {} reached max_learned {}: new MACs are not learned", net_id, max);
                }
            }
            count::<M>(row, Counter::Learned);
            report(FDB_EV_LEARNED, &k, &e);
        }
        // Another CPU learned it at the same moment: one entry, counted once.
        Err(EEXIST) => {}
        // Full, or (the FDB allocates entries as they come) no memory.
        Err(_) => {
            count::<M>(row, Counter::LearnFdbFull);
            // At most once a second per network: only right after a sweep
            // (which runs at most that often) that freed nothing.
            if swept {
                warn!(&(), "FDB full: network id {} cannot learn (fdb_size reached)", net_id);
            }
        }
    }
    Ok(())
}

#[inline(always)]
pub fn at_port(ifindex: u32) -> FdbEntry {
    FdbEntry { kind: FDB_KIND_PORT, ifindex, ..Default::default() }
}

#[inline(always)]
pub fn at_remote(remote_be: VtepAddr) -> FdbEntry {
    FdbEntry { kind: FDB_KIND_REMOTE, remote_be, ..Default::default() }
}
