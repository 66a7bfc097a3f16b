//! `overlayctl trace`: the path a frame takes, recorded by the trace
//! instances of the TC programs (`tenant_trace`, `vtep_trace`). They are the
//! same Rust functions as `tenant_ingress` and `vtep_ingress`, compiled a
//! second time with the trace flag set (`Mode::TRACE`): every side effect
//! (counter, FDB or neighbour write, ageing, cache, event, clone) is
//! recorded as a [`TraceStep`] instead of done. `overlayctl trace` loads
//! them on demand against the instance's pinned maps and runs them with
//! BPF_PROG_TEST_RUN; the live programs never pay for it.
//!
//! The record is per CPU (`TRACE`, an array indexed by CPU number, since a
//! record is larger than a per-CPU map's 32 KiB limit): a run starts it afresh with
//! the `nonce` userspace passes as the skb's mark, so the reader takes the
//! CPU whose record carries its nonce, and a concurrent trace on the same
//! CPU is detected instead of mixed in.

use core::mem::size_of;

pub const MAP_TRACE: &str = "TRACE";

/// Steps kept per run (a power of two: the index wraps). The longest path,
/// 64 untagged and 64 tagged local copies and 128 remote copies, each with
/// its counter, takes about 640.
pub const TRACE_STEPS: usize = 1024;

/// The frame arrived: `a` = network id, `b` = ifindex it came in on,
/// `vid` = the VLAN it carried ([`crate::NO_VLAN`]: none).
pub const STEP_NETWORK: u8 = 1;
/// A tag was popped: `vid`.
pub const STEP_POP: u8 = 2;
/// Learning of the source MAC: `a` = `LEARN_*`, `b` = `FDB_KIND_*` of the
/// place, `c` = ifindex (a VTEP: `addr`).
pub const STEP_LEARN: u8 = 3;
/// FDB lookup of the destination: `a` = `FDB_*`, `b` = ifindex (a VTEP: `addr`).
pub const STEP_FDB: u8 = 4;
/// Unicast out of a local port: `a` = ifindex, `vid` = tag pushed
/// ([`crate::NO_VLAN`]: none), `b` = 1 when handed to the veth peer.
pub const STEP_EGRESS: u8 = 5;
/// Encapsulation: `addr` = VTEP, `b` = VNI (or GRE key), `c` = `ENCAP_*`.
pub const STEP_ENCAP: u8 = 6;
/// Next hop of the outer packet: `a` = ifindex, `b` = `HOP_*`, `addr` =
/// gateway or peer.
pub const STEP_NEXT_HOP: u8 = 7;
/// A flood copy to a local port: `a` = ifindex, `vid` = tag ([`crate::NO_VLAN`]:
/// untagged), `b` = 1 when sent, 0 when the port is no longer a member.
pub const STEP_FLOOD_LOCAL: u8 = 8;
/// A flood copy to a VTEP: `addr` = VTEP, `b` =
/// [`FLOOD_COPY`] or [`FLOOD_FRAME`]; its next hop is the next step.
pub const STEP_FLOOD_REMOTE: u8 = 9;
/// A counter the live program would add one to: `counter`, `a` = stats row.
pub const STEP_COUNT: u8 = 10;
/// Reverse-path check of the outer source `addr`: `a` = 1 passed (cached:
/// `b` = 1).
pub const STEP_RPF: u8 = 11;
/// The outer headers were removed.
pub const STEP_DECAP: u8 = 12;
/// The neighbour table answered: the reply goes back out of the port.
pub const STEP_NEIGH_REPLY: u8 = 13;

/// `STEP_LEARN.a`.
pub const LEARN_NEW: u32 = 1;
pub const LEARN_MOVE: u32 = 2;
/// Known at that place; its timestamp would be refreshed.
pub const LEARN_REFRESH: u32 = 3;
/// Known at that place, seen less than a second ago: nothing to write.
pub const LEARN_KNOWN: u32 = 4;
/// A static entry elsewhere: the frame is refused.
pub const LEARN_STATIC_ELSEWHERE: u32 = 5;
/// The network is at `max_learned` (a sweep for expired entries, which the
/// live program may run first, is not simulated).
pub const LEARN_LIMIT: u32 = 6;
/// Static entry at that place: nothing to learn.
pub const LEARN_STATIC: u32 = 7;

/// `STEP_FDB.a`.
pub const FDB_HIT_PORT: u32 = 1;
pub const FDB_HIT_REMOTE: u32 = 2;
pub const FDB_MISS: u32 = 3;
/// An entry that has expired: the live program deletes it (a miss).
pub const FDB_EXPIRED: u32 = 4;
/// A group (broadcast/multicast) destination: flooded, not looked up.
pub const FDB_GROUP: u32 = 5;

/// `STEP_FLOOD_REMOTE.b`: a clone, or the frame itself (the last peer).
pub const FLOOD_COPY: u32 = 1;
pub const FLOOD_FRAME: u32 = 2;

/// `STEP_NEXT_HOP.b`.
pub const HOP_CACHED: u32 = 1;
pub const HOP_FIB: u32 = 2;
/// The neighbour is unresolved: `bpf_redirect_neigh` resolves it.
pub const HOP_UNRESOLVED: u32 = 3;
pub const HOP_UNREACHABLE: u32 = 4;
/// A GSO super-packet handed to the kernel's VXLAN device (`a`) with its
/// tunnel key: IPv6 underlay with checksums (see `gso_tunnel_ifindex`).
pub const HOP_DEVICE: u32 = 5;

/// One step of a path.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TraceStep {
    pub kind: u8,
    /// `STEP_COUNT`: the counter (`Counter as u8`).
    pub counter: u8,
    pub vid: u16,
    pub a: u32,
    pub b: u32,
    pub c: u32,
    /// A VTEP address (mapped IPv4 or IPv6), where the step has one.
    pub addr: crate::vtep::VtepAddr,
}

/// `TRACE[cpu]`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct TraceRecord {
    /// The run's nonce (the skb mark userspace set).
    pub nonce: u32,
    /// Steps the run took; past [`TRACE_STEPS`] the oldest are overwritten.
    pub n: u32,
    pub steps: [TraceStep; TRACE_STEPS],
}

const _: () = assert!(size_of::<TraceStep>() == 32);
const _: () = assert!(size_of::<TraceRecord>() == 8 + 32 * TRACE_STEPS);
const _: () = assert!(TRACE_STEPS.is_power_of_two());

#[cfg(feature = "user")]
mod pod {
    use super::*;
    // SAFETY: repr(C), explicit padding, no references.
    unsafe impl aya::Pod for TraceRecord {}
}
