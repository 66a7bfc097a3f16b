//! Errors of the library. The binary adds context with anyhow.

use std::{io, path::PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("config: {0}")]
    Config(String),
    #[error("interface {name}: {source}")]
    Interface { name: String, source: io::Error },
    #[error("netlink: {0}")]
    Netlink(String),
    #[error("bpffs: {0}")]
    Bpffs(String),
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
    #[error("BPF: {0}")]
    Bpf(String),
    #[error("map {map}: {source}")]
    Map { map: &'static str, source: aya::maps::MapError },
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("state file: {0}")]
    State(String),
    /// A run-time change the instance's config does not allow.
    #[error("{0}")]
    Refused(#[from] crate::changes::Refusal),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn map(map: &'static str) -> impl FnOnce(aya::maps::MapError) -> Error {
        move |source| Error::Map { map, source }
    }

    pub fn bpf(e: impl std::fmt::Display) -> Error {
        Error::Bpf(e.to_string())
    }
}
