//! The datapath's log: rare events the programs write with aya-log (a
//! network reaching `max_learned`, the FDB full), never one per packet.
//! They land in the programs' `AYA_LOGS` ring buffer (one per loaded
//! object, found through the pinned tenant program); any overlayctl that
//! looks at the instance (`status`, `monitor`, the agent) drains it into
//! `/run/overlayctl/NAME.log`, and `status` shows the last lines.

use std::{
    fs::OpenOptions,
    io::Write,
    path::PathBuf,
    sync::Mutex,
    time::{SystemTime, UNIX_EPOCH},
};

use aya::programs::SchedClassifier;
use aya_log::EbpfLogger;
use serde::Serialize;

use crate::{
    bpffs,
    error::{Error, Result},
    loader,
};

/// One logged event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LogLine {
    /// Seconds since the epoch, when it was read.
    pub time: u64,
    /// `error`, `warn`, `info`, `debug`, `trace`.
    pub level: String,
    pub message: String,
}

pub fn path(name: &str) -> PathBuf {
    bpffs::run_dir().join(format!("{name}.log"))
}

/// Collects what aya-log hands to the `log` crate.
#[derive(Default)]
struct Capture(Mutex<Vec<(String, String)>>);

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }

    fn log(&self, r: &log::Record) {
        let line = (r.level().as_str().to_ascii_lowercase(), r.args().to_string());
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(line);
    }

    fn flush(&self) {}
}

/// Moves the records waiting in the instance's ring buffer into its log
/// file and returns them.
pub fn drain(name: &str) -> Result<Vec<LogLine>> {
    let pin = bpffs::pin_dir(name).join(format!("prog_{}", loader::PROG_TENANT));
    let prog = SchedClassifier::from_pin(&pin).map_err(Error::program(loader::PROG_TENANT))?;
    let id = prog.info().map_err(Error::program(loader::PROG_TENANT))?.id();
    let cap = Capture::default();
    let mut logger = EbpfLogger::init_from_id_with_logger(id, &cap)
        .map_err(|e| Error::Os { op: "datapath log (AYA_LOGS)".into(), source: std::io::Error::other(e) })?;
    logger.flush();
    drop(logger);
    let time = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let lines: Vec<LogLine> = cap
        .0
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .map(|(level, message)| LogLine { time, level, message })
        .collect();
    if !lines.is_empty() {
        let p = path(name);
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&p)
            .map_err(Error::os(p.display().to_string()))?;
        for l in &lines {
            writeln!(f, "{}\t{}\t{}", l.time, l.level, l.message)
                .map_err(Error::os(p.display().to_string()))?;
        }
    }
    Ok(lines)
}

/// The last `n` lines of the instance's log file (after draining what is
/// waiting). A ring buffer that cannot be read (programs of an older
/// binary) adds a line saying so instead of failing.
pub fn tail(name: &str, n: usize) -> Result<Vec<LogLine>> {
    let unreadable = drain(name).err().map(|e| LogLine {
        time: SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
        level: "error".into(),
        message: format!("datapath log not readable: {e}"),
    });
    let text = match std::fs::read_to_string(path(name)) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(Error::os(path(name).display().to_string())(e)),
    };
    let all: Vec<LogLine> = text
        .lines()
        .filter_map(|l| {
            let mut p = l.splitn(3, '\t');
            Some(LogLine {
                time: p.next()?.parse().ok()?,
                level: p.next()?.into(),
                message: p.next()?.into(),
            })
        })
        .collect();
    let mut out = all[all.len().saturating_sub(n)..].to_vec();
    out.extend(unreadable);
    Ok(out)
}
