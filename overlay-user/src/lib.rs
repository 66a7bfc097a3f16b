//! Userspace side of the overlay: config, loader, map management and the
//! operations behind `overlayctl`.

pub mod apply;
pub mod batch;
pub mod bpffs;
pub mod config;
pub mod error;
pub mod fdb;
pub mod instance;
pub mod loader;
pub mod maps;
pub mod netlink;
pub mod runtime;
pub mod stats;

pub use error::{Error, Result};
