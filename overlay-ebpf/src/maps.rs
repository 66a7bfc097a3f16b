//! Map definitions. Every map is pinned by name in the instance's bpffs
//! directory, so state outlives the loader and is reused by the next `up`.

use aya_ebpf::{
    macros::map,
    maps::{Array, HashMap, LruHashMap, PerCpuArray, ProgramArray, RingBuf},
};
use overlay_common::{MAX_NETWORKS, VtepAddr, counters::STATS_SLOTS, maps::*};

#[map(name = "CONFIG")]
pub static CONFIG: Array<GlobalConfig> = Array::pinned(1, 0);

#[map(name = "NETWORKS")]
pub static NETWORKS: Array<NetConfig> = Array::pinned(MAX_NETWORKS, 0);

/// Networks by VNI: below `VNI_ARRAY_LEN` in `VNI_ARRAY`, the rest here
/// (see [`net_of_vni`]).
#[map(name = "VNI_TO_NET")]
pub static VNI_TO_NET: HashMap<u32, u32> = HashMap::pinned(MAX_NETWORKS, 0);

#[map(name = "VNI_ARRAY")]
pub static VNI_ARRAY: Array<u32> = Array::pinned(VNI_ARRAY_LEN, 0);

/// Not preallocated, like `NEXT_HOP`: the datapath rewrites entries while
/// other CPUs read them through the pointer a lookup returned, and a
/// preallocated map reuses a replaced element at once (a reader could see
/// another peer's values); these are freed after an RCU grace period.
#[map(name = "PEERS")]
pub static PEERS: HashMap<PeerKey, PeerState> =
    HashMap::pinned(MAX_PEER_ENTRIES, aya_ebpf::bindings::BPF_F_NO_PREALLOC);

#[map(name = "FLOOD")]
pub static FLOOD: Array<FloodSet> = Array::pinned(MAX_NETWORKS, 0);

/// Ports by ifindex: below `PORTS_ARRAY_LEN` in `PORTS_ARRAY`, the rest
/// here (see [`port`]).
#[map(name = "PORTS")]
pub static PORTS: HashMap<u32, PortConfig> = HashMap::pinned(MAX_PORT_ENTRIES, 0);

#[map(name = "PORTS_ARRAY")]
pub static PORTS_ARRAY: Array<PortConfig> = Array::pinned(PORTS_ARRAY_LEN, 0);

#[map(name = "TRUNK_VLANS")]
pub static TRUNK_VLANS: HashMap<TrunkKey, u32> = HashMap::pinned(MAX_TRUNK_ENTRIES, 0);

/// Resized from config at load time (`fdb_size`). Entries are allocated as
/// they are added (`BPF_F_NO_PREALLOC`): memory follows the entries, not the
/// capacity, and they come from the kernel's linear map, whose large pages
/// cost fewer TLB misses than a preallocated vmalloc area (measured with
/// `progcost RUNS fdb`: 1M entries +89% over 100 instead of +104%). A
/// pinned FDB from before keeps its preallocation until `down`/`up`.
#[map(name = "FDB")]
pub static FDB: HashMap<FdbKey, FdbEntry> =
    HashMap::pinned(DEFAULT_FDB_ENTRIES, aya_ebpf::bindings::BPF_F_NO_PREALLOC);

#[map(name = "STATS")]
pub static STATS: PerCpuArray<u64> = PerCpuArray::pinned(STATS_SLOTS, 0);

#[map(name = "NET_FDB")]
pub static NET_FDB: Array<NetFdbState> = Array::pinned(MAX_NETWORKS, 0);

/// Not preallocated: see `PEERS`.
#[map(name = "NEXT_HOP")]
pub static NEXT_HOP: HashMap<VtepAddr, NextHop> =
    HashMap::pinned(MAX_PEER_ENTRIES, aya_ebpf::bindings::BPF_F_NO_PREALLOC);

#[map(name = "RP_CACHE")]
pub static RP_CACHE: LruHashMap<VtepAddr, u64> = LruHashMap::pinned(MAX_PEER_ENTRIES, 0);

#[map(name = "NEIGH")]
pub static NEIGH: HashMap<NeighKey, NeighEntry> = HashMap::pinned(MAX_NEIGH_ENTRIES, 0);

#[map(name = "FDB_EVENTS")]
pub static FDB_EVENTS: RingBuf = RingBuf::pinned(FDB_EVENTS_BYTES, 0);

#[map(name = "MONITOR")]
pub static MONITOR: RingBuf = RingBuf::pinned(overlay_common::monitor::MONITOR_BYTES, 0);

#[map(name = "MONITOR_CTL")]
pub static MONITOR_CTL: Array<overlay_common::monitor::MonitorCtl> = Array::pinned(1, 0);

#[map(name = "MONITOR_RATE")]
pub static MONITOR_RATE: PerCpuArray<overlay_common::monitor::MonitorRate> = PerCpuArray::pinned(1, 0);

/// The checksum's chunk buffer: a map value, not the stack, whose 512 bytes
/// the program and its `bpf_loop` callbacks share.
#[map(name = "CSUM_CHUNK")]
pub static CSUM_CHUNK: PerCpuArray<[u32; CSUM_CHUNK_LEN / 4]> = PerCpuArray::pinned(1, 0);

/// Written by the trace programs only (`overlayctl trace`): one record per
/// CPU, indexed by CPU number (a per-CPU map's value is limited to 32 KiB;
/// the loader sizes this to the possible CPUs).
#[map(name = "TRACE")]
pub static TRACE: Array<overlay_common::trace::TraceRecord> = Array::pinned(1, 0);

/// Pinned: a program array loses its entries when no file descriptor or
/// pin holds it any more (`overlayctl` exits), so the tail call would fail.
#[map(name = "TAIL")]
pub static TAIL: ProgramArray = ProgramArray::pinned(1, 0);

#[map(name = "CLOCK")]
pub static CLOCK: PerCpuArray<overlay_common::maps::ClockCache> = PerCpuArray::pinned(1, 0);

#[inline(always)]
pub fn config() -> Option<&'static GlobalConfig> {
    let c = CONFIG.get(0)?;
    if c.layout_version == overlay_common::LAYOUT_VERSION { Some(c) } else { None }
}

#[inline(always)]
pub fn network(net_id: u32) -> Option<&'static NetConfig> {
    let n = NETWORKS.get(net_id)?;
    if n.flags & NET_F_ACTIVE != 0 { Some(n) } else { None }
}

/// The network id of VNI (or GRE key) `vni`: an array lookup (inlined by
/// the verifier) for VNIs below `VNI_ARRAY_LEN`, a hash lookup above.
#[inline(always)]
pub fn net_of_vni(vni: u32) -> Option<u32> {
    if vni < VNI_ARRAY_LEN {
        let id = *VNI_ARRAY.get(vni)?;
        return if id != 0 { Some(id - 1) } else { None };
    }
    // SAFETY: plain u32 value.
    unsafe { VNI_TO_NET.get(vni) }.copied()
}

/// The port at `ifindex`: an array lookup (inlined by the verifier) for
/// the usual small ifindexes, a hash lookup for the rest.
#[inline(always)]
pub fn port(ifindex: u32) -> Option<&'static PortConfig> {
    if ifindex < PORTS_ARRAY_LEN {
        let p = PORTS_ARRAY.get(ifindex)?;
        return if p.mode != 0 { Some(p) } else { None };
    }
    // SAFETY: values are plain bytes; a concurrent update can at worst give
    // a mix of old and new fields, which the callers tolerate.
    unsafe { PORTS.get(ifindex) }
}
