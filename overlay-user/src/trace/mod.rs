//! `overlayctl trace`: runs the trace instance of a TC program (see
//! `overlay_common::trace`) on one frame with BPF_PROG_TEST_RUN, against
//! the instance's live maps, and reports the path it took. Nothing is
//! changed: no counter, FDB, neighbour or cache entry, no event, no copy.

pub mod build;
mod report;

use std::{
    collections::BTreeMap,
    io,
    time::{SystemTime, UNIX_EPOCH},
};

use aya::{
    Ebpf,
    maps::Array,
    programs::{SchedClassifier, TestRun, TestRunOptions},
};
use overlay_common::trace::{MAP_TRACE, TRACE_STEPS, TraceRecord, TraceStep};

pub use report::{Report, Step};

use crate::{
    bpffs::pin_dir,
    error::{Error, Result},
    instance, loader, maps, netlink,
};

/// Where the frame arrives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hook {
    /// TC ingress of a tenant port (`tenant_ingress`).
    Tenant,
    /// TC ingress of the underlay (`vtep_ingress`).
    Underlay,
}

impl Hook {
    pub fn program(self) -> &'static str {
        match self {
            Hook::Tenant => loader::PROG_TENANT_TRACE,
            Hook::Underlay => loader::PROG_VTEP_TRACE,
        }
    }
}

/// What the trace program did, undecoded.
#[derive(Clone, Debug)]
pub struct Raw {
    /// The TC verdict.
    pub verdict: u32,
    pub steps: Vec<TraceStep>,
    /// The first steps, overwritten (a path longer than `TRACE_STEPS`).
    pub lost: u32,
    /// The frame as the program left it.
    pub frame_out: Vec<u8>,
}

/// `__sk_buff` offsets BPF_PROG_TEST_RUN takes from `ctx_in`.
const SKB_CTX_LEN: usize = 192;
const SKB_MARK: usize = 8;
const SKB_IFINDEX: usize = 40;

fn nonce() -> u32 {
    let t = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    (t ^ std::process::id().rotate_left(16)) | 1
}

/// Runs the trace program of `hook` (loaded in `ebpf`) on `frame` as if
/// it arrived on `ifindex`.
pub fn run(ebpf: &Ebpf, hook: Hook, ifindex: u32, frame: &[u8]) -> Result<Raw> {
    let name = hook.program();
    let prog: &SchedClassifier = ebpf
        .program(name)
        .ok_or_else(|| Error::MissingProgram(name.into()))?
        .try_into()
        .map_err(Error::program(name))?;
    let record: Array<_, TraceRecord> = Array::try_from(
        ebpf.map(MAP_TRACE).ok_or_else(|| Error::MissingProgram(format!("map {MAP_TRACE}")))?,
    )
    .map_err(Error::map(MAP_TRACE))?;
    // Another trace on the same CPU at the same moment overwrites the
    // record: detected by the nonce, and run again.
    for _ in 0..3 {
        let n = nonce();
        let mut ctx = [0u8; SKB_CTX_LEN];
        ctx[SKB_MARK..SKB_MARK + 4].copy_from_slice(&n.to_ne_bytes());
        ctx[SKB_IFINDEX..SKB_IFINDEX + 4].copy_from_slice(&ifindex.to_ne_bytes());
        let mut out = vec![0u8; frame.len() + 512];
        let r = prog
            .test_run(TestRunOptions {
                data_in: Some(frame),
                data_out: Some(&mut out),
                ctx_in: Some(&ctx),
                ..Default::default()
            })
            .map_err(|e| Error::Os {
                op: format!("BPF_PROG_TEST_RUN of {name} on a {}-byte frame", frame.len()),
                source: io::Error::other(e.to_string()),
            })?;
        out.truncate(r.data_size_out as usize);
        let mut mine = None;
        for cpu in 0..record.len() {
            let rec = record.get(&cpu, 0).map_err(Error::map(MAP_TRACE))?;
            if rec.nonce == n {
                mine = Some(rec);
                break;
            }
        }
        if let Some(rec) = mine {
            let taken = rec.n as usize;
            // Past the record's end the index wrapped over the oldest steps.
            let steps = if taken <= TRACE_STEPS {
                rec.steps[..taken].to_vec()
            } else {
                let at = taken % TRACE_STEPS;
                [&rec.steps[at..], &rec.steps[..at]].concat()
            };
            return Ok(Raw {
                verdict: r.return_value,
                steps,
                lost: taken.saturating_sub(TRACE_STEPS) as u32,
                frame_out: out,
            });
        }
    }
    Err(Error::Os {
        op: "trace".into(),
        source: io::Error::other("the trace record was overwritten three times by concurrent traces"),
    })
}

/// Traces `frame` arriving on `ifname` (a port, or with [`Hook::Underlay`]
/// the underlay) of instance `name`, which must be up in this namespace.
pub fn trace(name: &str, hook: Hook, ifname: &str, frame: &[u8]) -> Result<Report> {
    let state = instance::require_state(name)?;
    let dir = pin_dir(name);
    maps::check_pins(&dir, name, state.config.fdb_size)?;
    if let Some(m) = overlay_common::maps::MAPS.iter().find(|m| !dir.join(m.name).exists()) {
        return Err(Error::PinMismatch {
            path: dir.join(m.name),
            detail: "missing".into(),
            instance: name.into(),
        });
    }
    let ifindex = netlink::link_info(ifname).map_err(Error::field(format!("interface {ifname:?}")))?.index;
    let ebpf = loader::load_trace(&dir, state.config.fdb_size)?;
    let raw = run(&ebpf, hook, ifindex, frame)?;
    let mut names: BTreeMap<u32, String> = state.attached.iter().map(|(n, i)| (*i, n.clone())).collect();
    names.insert(ifindex, ifname.into());
    Ok(Report::new(&state, &names, hook, ifname, frame, &raw))
}
