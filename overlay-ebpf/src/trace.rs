//! The trace flag (see `overlay_common::trace`). Every function that has a
//! side effect is generic over [`Mode`]: [`Live`] does it, [`Trace`] records
//! a step instead. The flag is a compile-time constant, so the live
//! programs carry no trace code and no extra branch.

use aya_ebpf::{helpers::bpf_get_smp_processor_id, programs::TcContext};
use overlay_common::{
    VtepAddr,
    trace::{TRACE_STEPS, TraceRecord, TraceStep},
    vtep::NO_VTEP,
};

use crate::maps::TRACE;

pub trait Mode {
    const TRACE: bool;
}

/// The attached programs: side effects happen.
pub struct Live;
/// `overlayctl trace`: side effects are recorded, not done.
pub struct Trace;

impl Mode for Live {
    const TRACE: bool = false;
}

impl Mode for Trace {
    const TRACE: bool = true;
}

/// Starts this CPU's record for a run of a trace program, tagged with the
/// nonce userspace passed as the skb mark.
#[inline(always)]
pub fn start<M: Mode>(ctx: &TcContext) {
    if !M::TRACE {
        return;
    }
    if let Some(r) = record() {
        // SAFETY: this CPU's slot; reading a context field.
        unsafe {
            (*r).nonce = (*ctx.skb.skb).mark;
            (*r).n = 0;
        }
    }
}

/// Records a step (trace programs only).
#[inline(always)]
pub fn step<M: Mode>(kind: u8, vid: u16, a: u32, b: u32, c: u32) {
    if M::TRACE {
        push(TraceStep { kind, counter: 0, vid, a, b, c, addr: NO_VTEP });
    }
}

/// Records a step that names a VTEP address (trace programs only).
#[inline(always)]
pub fn step_at<M: Mode>(kind: u8, a: u32, b: u32, c: u32, addr: &VtepAddr) {
    if M::TRACE {
        push(TraceStep { kind, counter: 0, vid: 0, a, b, c, addr: *addr });
    }
}

/// Appends `s` without a branch (a branch per step multiplied the
/// verifier's work over the flood loops past its limit): the index wraps,
/// and the longest path is shorter than the record.
#[inline(always)]
pub fn push(s: TraceStep) {
    let Some(r) = record() else { return };
    // SAFETY: this CPU's slot, one program run at a time on this CPU (a
    // test run does not migrate).
    let r: &mut TraceRecord = unsafe { &mut *r };
    let n = r.n;
    r.steps[n as usize & (TRACE_STEPS - 1)] = s;
    r.n = n.wrapping_add(1);
}

/// This CPU's record.
#[inline(always)]
fn record() -> Option<*mut TraceRecord> {
    // SAFETY: a helper without arguments.
    let cpu = unsafe { bpf_get_smp_processor_id() };
    TRACE.get_ptr_mut(cpu)
}
