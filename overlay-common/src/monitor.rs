//! `overlayctl monitor`: the datapath's event stream. When a monitor runs
//! it switches events on in `MONITOR_CTL` (and renews a deadline every
//! second, so a monitor killed with -9 stops them within
//! [`MONITOR_LEASE_NS`]); the programs then write a [`MonitorEvent`] to the
//! `MONITOR` ring buffer for each drop (with the first bytes of the frame as
//! it was when dropped) and each learn, move and age-out, at most
//! `rate_per_sec` per CPU; the rest is counted as `monitor_lost`. With no
//! monitor, the cost is one array lookup on a drop or FDB change, none on a
//! forwarded frame.

use core::mem::size_of;

pub const MAP_MONITOR: &str = "MONITOR";
pub const MAP_MONITOR_CTL: &str = "MONITOR_CTL";
pub const MAP_MONITOR_RATE: &str = "MONITOR_RATE";

/// Bytes of the monitor ring buffer (a power of two, a multiple of the
/// page size): ~1,600 events.
pub const MONITOR_BYTES: u32 = 256 * 1024;
/// Bytes of a frame kept in a drop event: enough for outer Ethernet, IPv4,
/// UDP, VXLAN, an inner tagged Ethernet header and an inner IPv6 header.
pub const MONITOR_SNAP: usize = 128;
/// A monitor renews its deadline every second; events stop this long after
/// the last renewal.
pub const MONITOR_LEASE_NS: u64 = 3_000_000_000;

/// `MONITOR_CTL.flags`.
pub const MON_DROPS: u32 = 1;
pub const MON_FDB: u32 = 2;

/// The monitor's wishes (one entry, written by `overlayctl monitor`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MonitorCtl {
    /// [`MON_DROPS`] | [`MON_FDB`]; 0 = no monitor.
    pub flags: u32,
    /// Events per second per CPU.
    pub rate_per_sec: u32,
    /// Only this stats row (network id + 1); 0 = every network.
    pub row: u32,
    pub _pad: u32,
    /// `bpf_ktime_get_ns` after which events stop (the monitor renews it).
    pub until_ns: u64,
}

/// Per-CPU rate window.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MonitorRate {
    pub window_ns: u64,
    pub count: u64,
}

/// `MonitorEvent.kind`.
pub const MON_EV_DROP: u8 = 1;
pub const MON_EV_LEARNED: u8 = 2;
pub const MON_EV_MOVED: u8 = 3;
pub const MON_EV_AGED: u8 = 4;

/// `MonitorEvent.vlan`: a tag was present.
pub const VLAN_PRESENT: u32 = 1 << 16;

/// `MonitorEvent.hook`.
pub const HOOK_TENANT_TC: u8 = 1;
pub const HOOK_VTEP_TC: u8 = 2;

/// One record of `MONITOR`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MonitorEvent {
    /// [`MON_EV_DROP`], [`MON_EV_LEARNED`], [`MON_EV_MOVED`], [`MON_EV_AGED`].
    pub kind: u8,
    /// Drops: [`HOOK_TENANT_TC`] or [`HOOK_VTEP_TC`]; FDB events: 0.
    pub hook: u8,
    /// Drops: the counter (reason); FDB events: 0.
    pub reason: u16,
    /// Drops: the interface the frame came in on. FDB events: the port the
    /// MAC is at (0 when behind a VTEP).
    pub ifindex: u32,
    /// Stats row: network id + 1, 0 when not attributed.
    pub row: u32,
    /// Drops: the frame's length; FDB events: 0.
    pub len: u32,
    /// Bytes of `data` that are valid.
    pub cap: u32,
    /// Drops: the frame's VLAN tag when the kernel holds it beside the
    /// frame (`skb->vlan_tci`, so not in `data`): `VLAN_PRESENT | tci`.
    pub vlan: u32,
    pub ts_ns: u64,
    /// Drops: the frame's first bytes. FDB events: the MAC in the first 6,
    /// then the VTEP it is behind (a `VtepAddr`; zero at a port).
    pub data: [u8; MONITOR_SNAP],
}

const _: () = assert!(size_of::<MonitorCtl>() == 24);
const _: () = assert!(size_of::<MonitorRate>() == 16);
const _: () = assert!(size_of::<MonitorEvent>() == 32 + MONITOR_SNAP);

#[cfg(feature = "user")]
mod pod {
    use super::*;
    // SAFETY: repr(C), explicit padding, no references.
    unsafe impl aya::Pod for MonitorCtl {}
    unsafe impl aya::Pod for MonitorRate {}
    unsafe impl aya::Pod for MonitorEvent {}
}
