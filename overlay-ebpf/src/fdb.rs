//! FDB lookups and learning, with ageing done lazily at lookup time so no
//! userspace process is needed for entries to expire.

use aya_ebpf::helpers::bpf_ktime_get_ns;
use overlay_common::{
    counters::Counter,
    maps::{FDB_KIND_PORT, FDB_KIND_REMOTE, FdbEntry, FdbKey},
};

use crate::{
    maps::FDB,
    stats::{Drop, count},
};

/// A learned entry is rewritten at most this often when traffic refreshes it.
const REFRESH_NS: u64 = 1_000_000_000;

pub enum Hit {
    Port(u32),
    Remote(u32),
    Miss,
}

#[inline(always)]
pub fn key(net_id: u32, mac: [u8; 6]) -> FdbKey {
    FdbKey { net_id, mac, _pad: [0; 2] }
}

#[inline(always)]
pub fn lookup(row: u32, net_id: u32, mac: [u8; 6], ageing_ns: u64) -> Hit {
    let k = key(net_id, mac);
    // SAFETY: plain-bytes value; see maps::port.
    let Some(e) = (unsafe { FDB.get(k) }) else {
        return Hit::Miss;
    };
    let e = *e;
    if e.expired(unsafe { bpf_ktime_get_ns() }, ageing_ns) {
        let _ = FDB.remove(k);
        count(row, Counter::Aged);
        return Hit::Miss;
    }
    if e.kind == FDB_KIND_PORT {
        Hit::Port(e.ifindex)
    } else if e.kind == FDB_KIND_REMOTE {
        Hit::Remote(e.remote_be)
    } else {
        Hit::Miss
    }
}

/// Records that `mac` was seen at `place` (kind, ifindex/remote set).
/// A static entry elsewhere is never overwritten: the frame is refused.
#[inline(always)]
pub fn learn(row: u32, net_id: u32, mac: [u8; 6], place: FdbEntry) -> Result<(), Drop> {
    let k = key(net_id, mac);
    let now = unsafe { bpf_ktime_get_ns() };
    // SAFETY: plain-bytes value; see maps::port.
    if let Some(old) = unsafe { FDB.get(k) } {
        let old = *old;
        if old.is_static() {
            return if old.same_place(&place) { Ok(()) } else { Err(Drop::new(row, Counter::DropSrcStatic)) };
        }
        if old.same_place(&place) {
            if now.wrapping_sub(old.seen_ns) < REFRESH_NS {
                return Ok(());
            }
            // Refresh only: not counted as learned.
            let _ = FDB.insert(k, FdbEntry { seen_ns: now, flags: 0, ..place }, 0);
            return Ok(());
        }
    }
    let e = FdbEntry { seen_ns: now, flags: 0, ..place };
    if FDB.insert(k, e, 0).is_ok() {
        count(row, Counter::Learned);
    } else {
        count(row, Counter::LearnFull);
    }
    Ok(())
}

#[inline(always)]
pub fn at_port(ifindex: u32) -> FdbEntry {
    FdbEntry { kind: FDB_KIND_PORT, ifindex, ..Default::default() }
}

#[inline(always)]
pub fn at_remote(remote_be: u32) -> FdbEntry {
    FdbEntry { kind: FDB_KIND_REMOTE, remote_be, ..Default::default() }
}
