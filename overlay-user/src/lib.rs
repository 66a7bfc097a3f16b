//! Userspace side of the overlay: config, loader, map management and the
//! operations behind `overlayctl`.

pub mod agent;
pub mod apply;
pub mod batch;
pub mod bpffs;
pub mod changes;
pub mod cni;
pub mod config;
pub mod dplog;
pub mod error;
pub mod fdb;
pub mod instance;
pub mod loader;
pub mod mac;
pub mod maps;
pub mod metrics;
pub mod monitor;
pub mod neigh;
pub mod netlink;
pub mod remote;
pub mod runtime;
pub mod statefile;
pub mod stats;
pub mod status;
pub mod tap;
pub mod trace;

pub use error::{Error, Result};
