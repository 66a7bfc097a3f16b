//! Errors of the library, one variant per kind of fault with its cause as
//! `source`. The binary adds context with anyhow.

use std::{io, path::PathBuf};

use aya::programs::ProgramError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration (file, or with run-time changes) is not valid; the
    /// message names the field.
    #[error("config: {0}")]
    Config(String),
    /// A fault about one config field (an interface it names is missing,
    /// its MTU cannot be set, ...).
    #[error("{field}: {source}")]
    Field { field: String, source: Box<Error> },
    #[error("interface {name}: {source}")]
    Interface { name: String, source: io::Error },
    #[error("netlink: {op}: {source}")]
    Netlink { op: String, source: rtnetlink::Error },
    /// Another system call or file operation.
    #[error("{op}: {source}")]
    Os { op: String, source: io::Error },
    #[error("bpffs {path}: {source}")]
    Bpffs { path: PathBuf, source: io::Error },
    #[error(
        "pinned map {path} does not match this binary ({detail}); the instance was created by an \
         incompatible overlayctl. Run `overlayctl down --name {instance}` (learned FDB entries are \
         lost) or use the matching binary"
    )]
    PinMismatch { path: PathBuf, detail: String, instance: String },
    #[error(
        "interface {iface} already has a {hook} program that overlayctl did not attach \
         (id {prog_id}, name {prog_name:?}); detach it or pass --force"
    )]
    ForeignProgram { iface: String, hook: String, prog_id: u32, prog_name: String },
    #[error("instance {0:?} is not up (no state in {1})")]
    NotUp(String, PathBuf),
    #[error("instance {name:?} {what}")]
    OtherNetns { name: String, what: &'static str },
    #[error("BPF object: {0}")]
    Object(#[source] Box<aya::EbpfError>),
    #[error("BPF: program {0} is missing from the object")]
    MissingProgram(String),
    #[error("BPF: map {0} is missing from the object")]
    MissingMap(&'static str),
    #[error("BPF: {prog}: {source}{hint}")]
    Program { prog: String, source: Box<ProgramError>, hint: String },
    #[error("attach {prog} to {iface}: {source}{hint}")]
    Attach { prog: String, iface: String, source: Box<ProgramError>, hint: &'static str },
    #[error("BPF link of {prog}: {source}")]
    Link { prog: String, source: aya::programs::links::LinkError },
    #[error("pin {path}: {source}")]
    Pin { path: PathBuf, source: aya::pin::PinError },
    #[error("map {map}: {source}")]
    Map { map: &'static str, source: aya::maps::MapError },
    #[error("FDB full: {count} static entries do not fit fdb_size ({source})")]
    FdbFull { count: usize, source: io::Error },
    #[error("state file {path}: {source}")]
    StateFile { path: PathBuf, source: serde_json::Error },
    #[error("{0}")]
    Io(#[from] io::Error),
    /// A run-time change the instance's config does not allow.
    #[error("{0}")]
    Refused(#[from] crate::changes::Refusal),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn map(map: &'static str) -> impl FnOnce(aya::maps::MapError) -> Error {
        move |source| Error::Map { map, source }
    }

    /// A program-level failure of `prog` (no verifier hint).
    pub fn program(prog: &str) -> impl FnOnce(ProgramError) -> Error + '_ {
        move |source| Error::Program { prog: prog.into(), source: Box::new(source), hint: String::new() }
    }

    pub fn link(prog: &str) -> impl FnOnce(aya::programs::links::LinkError) -> Error + '_ {
        move |source| Error::Link { prog: prog.into(), source }
    }

    pub fn field(field: impl Into<String>) -> impl FnOnce(Error) -> Error {
        move |e| Error::Field { field: field.into(), source: Box::new(e) }
    }

    pub fn os(op: impl Into<String>) -> impl FnOnce(io::Error) -> Error {
        move |source| Error::Os { op: op.into(), source }
    }
}
