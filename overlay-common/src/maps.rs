//! Keys and values of the BPF maps, and [`MAPS`]: each map's name, kind,
//! key and value size and capacity, so the loader checks pins against the
//! same table the programs are declared from.

use core::mem::size_of;

use crate::vtep::VtepAddr;

pub const MAP_CONFIG: &str = "CONFIG";
pub const MAP_NETWORKS: &str = "NETWORKS";
/// Networks by VNI (or GRE key) of at least [`VNI_ARRAY_LEN`] (a hash map).
pub const MAP_VNI_TO_NET: &str = "VNI_TO_NET";
/// Networks by VNI below [`VNI_ARRAY_LEN`], at their VNI: the network id
/// plus one (0: none). An array lookup, which the verifier inlines, for
/// every received frame instead of a hash lookup.
pub const MAP_VNI_ARRAY: &str = "VNI_ARRAY";
pub const VNI_ARRAY_LEN: u32 = 65536;
pub const MAP_PEERS: &str = "PEERS";
pub const MAP_FLOOD: &str = "FLOOD";
/// Ports whose ifindex is at least [`PORTS_ARRAY_LEN`] (a hash map).
pub const MAP_PORTS: &str = "PORTS";
/// Ports whose ifindex is below [`PORTS_ARRAY_LEN`], at their ifindex
/// (mode 0: no port). An array lookup, which the verifier inlines, instead
/// of a hash lookup for every frame: the ifindexes of a host's interfaces
/// are small until it has created tens of thousands of them.
pub const MAP_PORTS_ARRAY: &str = "PORTS_ARRAY";
pub const PORTS_ARRAY_LEN: u32 = 65536;
pub const MAP_TRUNK_VLANS: &str = "TRUNK_VLANS";
pub const MAP_FDB: &str = "FDB";
pub const MAP_STATS: &str = "STATS";
pub const MAP_NET_FDB: &str = "NET_FDB";
pub const MAP_NEXT_HOP: &str = "NEXT_HOP";
/// Scratch for the outer UDP checksum: the bytes summed per step.
pub const MAP_CSUM_CHUNK: &str = "CSUM_CHUNK";
pub const CSUM_CHUNK_LEN: usize = 64;
pub const MAP_RP_CACHE: &str = "RP_CACHE";
pub const MAP_NEIGH: &str = "NEIGH";
pub const MAP_FDB_EVENTS: &str = "FDB_EVENTS";
/// The programs `tenant_ingress` tail-calls: [`TAIL_FLOOD_REMOTE`].
pub const MAP_TAIL: &str = "TAIL";
/// `TAIL[0]`: `tenant_flood`, the copies of a flood to peer VTEPs.
pub const TAIL_FLOOD_REMOTE: u32 = 0;
/// The datapath clock's per-CPU reading ([`ClockCache`]).
pub const MAP_CLOCK: &str = "CLOCK";

/// Default capacities (the FDB is sized from config at load time).
pub const DEFAULT_FDB_ENTRIES: u32 = 65536;
pub const MAX_PEER_ENTRIES: u32 = 16384;
pub const MAX_PORT_ENTRIES: u32 = 4096;
pub const MAX_TRUNK_ENTRIES: u32 = 16384;
pub const MAX_NEIGH_ENTRIES: u32 = 65536;
/// Bytes of the FDB event ring buffer (a power of two, a multiple of the
/// page size): room for ~8,000 [`FdbEvent`]s while nobody reads them.
pub const FDB_EVENTS_BYTES: u32 = 256 * 1024;

/// The kinds of map the object defines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapKind {
    Array,
    Hash,
    LruHash,
    PerCpuArray,
    RingBuf,
    ProgArray,
}

/// One map of the object: what the loader checks pins against.
#[derive(Clone, Copy, Debug)]
pub struct MapSpec {
    pub name: &'static str,
    pub kind: MapKind,
    pub key_size: usize,
    pub value_size: usize,
    pub capacity: Capacity,
}

/// How many entries a map has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Capacity {
    Fixed(u32),
    /// Set from the config at load time (`fdb_size`).
    FdbSize,
    /// One per possible CPU, set at load time.
    PerCpu,
}

const fn spec<K, V>(name: &'static str, kind: MapKind, capacity: Capacity) -> MapSpec {
    MapSpec { name, kind, key_size: size_of::<K>(), value_size: size_of::<V>(), capacity }
}

/// Every map the object defines (all pinned, by name). The BPF side
/// declares each with the same name, types and capacity.
pub const MAPS: &[MapSpec] = &[
    spec::<u32, GlobalConfig>(MAP_CONFIG, MapKind::Array, Capacity::Fixed(1)),
    spec::<u32, NetConfig>(MAP_NETWORKS, MapKind::Array, Capacity::Fixed(crate::MAX_NETWORKS)),
    spec::<u32, u32>(MAP_VNI_TO_NET, MapKind::Hash, Capacity::Fixed(crate::MAX_NETWORKS)),
    spec::<u32, u32>(MAP_VNI_ARRAY, MapKind::Array, Capacity::Fixed(VNI_ARRAY_LEN)),
    spec::<PeerKey, PeerState>(MAP_PEERS, MapKind::Hash, Capacity::Fixed(MAX_PEER_ENTRIES)),
    spec::<u32, FloodSet>(MAP_FLOOD, MapKind::Array, Capacity::Fixed(crate::MAX_NETWORKS)),
    spec::<u32, PortConfig>(MAP_PORTS, MapKind::Hash, Capacity::Fixed(MAX_PORT_ENTRIES)),
    spec::<u32, PortConfig>(MAP_PORTS_ARRAY, MapKind::Array, Capacity::Fixed(PORTS_ARRAY_LEN)),
    spec::<TrunkKey, u32>(MAP_TRUNK_VLANS, MapKind::Hash, Capacity::Fixed(MAX_TRUNK_ENTRIES)),
    spec::<FdbKey, FdbEntry>(MAP_FDB, MapKind::Hash, Capacity::FdbSize),
    spec::<u32, u64>(MAP_STATS, MapKind::PerCpuArray, Capacity::Fixed(crate::counters::STATS_SLOTS)),
    spec::<u32, NetFdbState>(MAP_NET_FDB, MapKind::Array, Capacity::Fixed(crate::MAX_NETWORKS)),
    spec::<VtepAddr, NextHop>(MAP_NEXT_HOP, MapKind::Hash, Capacity::Fixed(MAX_PEER_ENTRIES)),
    spec::<VtepAddr, u64>(MAP_RP_CACHE, MapKind::LruHash, Capacity::Fixed(MAX_PEER_ENTRIES)),
    spec::<NeighKey, NeighEntry>(MAP_NEIGH, MapKind::Hash, Capacity::Fixed(MAX_NEIGH_ENTRIES)),
    spec::<(), ()>(MAP_FDB_EVENTS, MapKind::RingBuf, Capacity::Fixed(FDB_EVENTS_BYTES)),
    spec::<(), ()>(
        crate::monitor::MAP_MONITOR,
        MapKind::RingBuf,
        Capacity::Fixed(crate::monitor::MONITOR_BYTES),
    ),
    spec::<u32, crate::monitor::MonitorCtl>(
        crate::monitor::MAP_MONITOR_CTL,
        MapKind::Array,
        Capacity::Fixed(1),
    ),
    spec::<u32, crate::monitor::MonitorRate>(
        crate::monitor::MAP_MONITOR_RATE,
        MapKind::PerCpuArray,
        Capacity::Fixed(1),
    ),
    spec::<u32, crate::trace::TraceRecord>(crate::trace::MAP_TRACE, MapKind::Array, Capacity::PerCpu),
    spec::<u32, [u32; CSUM_CHUNK_LEN / 4]>(MAP_CSUM_CHUNK, MapKind::PerCpuArray, Capacity::Fixed(1)),
    spec::<u32, u32>(MAP_TAIL, MapKind::ProgArray, Capacity::Fixed(1)),
    spec::<u32, ClockCache>(MAP_CLOCK, MapKind::PerCpuArray, Capacity::Fixed(1)),
];

/// `CLOCK[0]`, per CPU: the datapath clock's last reading and the jiffy
/// it was taken in. The coarse clock moves only at a tick, when jiffies
/// move too, so within one jiffy its reading is still current: a frame
/// reads `jiffies` (one load, inlined) instead of calling
/// `bpf_ktime_get_coarse_ns` (about 30 ns).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClockCache {
    pub jiffies: u64,
    pub now_ns: u64,
}

const _: () = assert!(size_of::<ClockCache>() == 16);

/// `CONFIG[0]`: the instance's global settings.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GlobalConfig {
    /// Must equal [`crate::LAYOUT_VERSION`]; 0 = not configured, programs pass everything.
    pub layout_version: u32,
    pub underlay_ifindex: u32,
    pub underlay_mtu: u32,
    pub udp_port_be: u16,
    pub ttl: u8,
    pub flags: u8,
    /// The underlay address (IPv4-mapped for an IPv4 underlay: the
    /// instance's family is [`CFG_F_IPV6`]).
    pub local_vtep_be: VtepAddr,
    /// Learned entries older than this are treated as absent (0 = never age).
    pub ageing_ns: u64,
    /// MAC address of the underlay interface when `up` ran: the XDP path
    /// (which has no `pkt_type`) fast-paths only frames sent to it.
    pub underlay_mac: [u8; 6],
    pub _pad2: [u8; 2],
    /// IPv6 underlay with outer UDP checksums: the kernel VXLAN device
    /// (`external`) GSO super-packets are handed to with their tunnel key,
    /// whose segmentation fills each segment's checksum (0 = none).
    pub gso_tunnel_ifindex: u32,
    pub _pad3: u32,
}

/// `GlobalConfig::flags`: compute the outer UDP checksum of single frames.
pub const CFG_F_UDP_CSUM: u8 = 1 << 0;
/// Reverse-path check of VXLAN sources: the route back must leave by the
/// interface the frame came in on (`rp_filter = "strict"`).
pub const CFG_F_RP_STRICT: u8 = 1 << 1;
/// Reverse-path check of VXLAN sources: some route back must exist
/// (`rp_filter = "loose"`).
pub const CFG_F_RP_LOOSE: u8 = 1 << 2;
/// The instance has GRE networks: GRE (IP protocol 47) to the local VTEP
/// address is taken by the datapath. Without it GRE is the host's.
pub const CFG_F_GRE: u8 = 1 << 3;
/// The instance has GENEVE networks: UDP to port 6081 of the local VTEP
/// address is taken by the datapath. Without it that port is the host's.
pub const CFG_F_GENEVE: u8 = 1 << 4;

/// The underlay is IPv6: VTEP addresses are IPv6, outer headers IPv6 with
/// a UDP checksum. Without it they are IPv4 (mapped in the maps).
pub const CFG_F_IPV6: u8 = 1 << 5;
/// IPv6 underlay: send a zero outer UDP checksum and accept one (RFC 6935;
/// `udp6_zero_checksum`, for peers set to `udp6zerocsumrx`).
pub const CFG_F_UDP6_ZERO_CSUM: u8 = 1 << 6;

/// `NETWORKS[net_id]`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetConfig {
    /// VXLAN network identifier, valid when `NET_F_VXLAN` is set.
    pub vni: u32,
    /// 802.1Q VID used on trunk ports, [`crate::NO_VLAN`] when none.
    pub vlan: u16,
    pub flags: u16,
    /// Learned FDB entries this network may hold (0 = no limit but the
    /// FDB's capacity), so a MAC flood in one network cannot fill the FDB
    /// that the others learn into.
    pub max_learned: u32,
}

pub const NET_F_ACTIVE: u16 = 1 << 0;
/// The network has a VNI (or GRE key) and peer VTEPs: a tunnelled network,
/// encapsulated as its `NET_ENCAP_*` bits say.
pub const NET_F_VXLAN: u16 = 1 << 1;
/// Learn from (and accept) VXLAN sent by VTEPs that are not configured peers.
pub const NET_F_LEARN_UNKNOWN_PEERS: u16 = 1 << 2;
/// Accept 802.1Q-tagged inner frames from VXLAN (RFC 7348 §6.1).
pub const NET_F_ALLOW_INNER_TAG: u16 = 1 << 3;
/// Answer tenants' ARP requests and neighbour solicitations for addresses
/// in `NEIGH` (`suppress`).
pub const NET_F_SUPPRESS: u16 = 1 << 4;
/// Learn address/MAC pairs from tenants' ARP replies, gratuitous ARP and
/// neighbour advertisements (`learn_ip`).
pub const NET_F_LEARN_IP: u16 = 1 << 5;
/// Drop unicast to unknown MACs instead of flooding it (`flood_unknown =
/// false`): the control plane installs every MAC of the network.
pub const NET_F_NO_FLOOD_UNKNOWN: u16 = 1 << 6;
/// Report the network's FDB changes to `FDB_EVENTS` (a VXLAN network of an
/// instance with `[control]`: the agent reads them). Without it nothing is
/// written there.
pub const NET_F_EVENTS: u16 = 1 << 7;
/// Bits 8-9: the network's encapsulation (`ENCAP_VXLAN`, `ENCAP_GRE`,
/// `ENCAP_GENEVE`).
pub const NET_ENCAP_SHIFT: u16 = 8;
pub const NET_ENCAP_MASK: u16 = 3 << NET_ENCAP_SHIFT;

impl NetConfig {
    /// The network's encapsulation (`ENCAP_*`).
    #[inline(always)]
    pub const fn encap(&self) -> u8 {
        ((self.flags & NET_ENCAP_MASK) >> NET_ENCAP_SHIFT) as u8
    }
}

/// The `NetConfig::flags` bits that say encapsulation `encap`.
#[inline(always)]
pub const fn net_encap_flags(encap: u8) -> u16 {
    ((encap as u16) << NET_ENCAP_SHIFT) & NET_ENCAP_MASK
}

/// `NET_FDB[net_id]`: the network's share of the FDB, kept by the datapath
/// (atomic add when an entry is learned, subtract when one ages out) and
/// recounted by userspace after it deletes learned entries itself.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetFdbState {
    /// Learned entries of this network in the FDB.
    pub learned: u64,
    /// When the datapath last swept the FDB for aged entries on behalf of
    /// this network (the datapath clock, `bpf_ktime_get_coarse_ns`).
    pub swept_ns: u64,
}

/// The outer next hop of a VTEP as the FIB gave it, reused by the datapath
/// for [`NEXT_HOP_TTL_NS`] instead of a FIB lookup per packet: in
/// [`PeerState::hop`] for a configured peer, in `NEXT_HOP[VTEP address]`
/// for a VTEP a network accepts by `learn_unknown_peers`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NextHop {
    pub ifindex: u32,
    pub smac: [u8; 6],
    pub dmac: [u8; 6],
    /// Datapath clock (`bpf_ktime_get_coarse_ns`) of the FIB lookup.
    pub looked_up_ns: u64,
    /// The underlay device's MTU when the hop was looked up (what
    /// `bpf_check_mtu` reported; 0: unknown). An encapsulated single frame
    /// that fits it is sent without asking `bpf_check_mtu` again.
    pub mtu: u32,
    pub _pad: u32,
}

/// How long a cached next hop is used before the FIB is asked again: a
/// route or neighbour change reaches the datapath within this time.
pub const NEXT_HOP_TTL_NS: u64 = 500_000_000;

/// How long a pass of the reverse-path check is trusted instead of a FIB
/// lookup per received frame: in [`PeerState::rp_ok_ns`] for a configured
/// peer, in `RP_CACHE[outer source]` for other sources (only passes are
/// cached there; an LRU map, so many sources cannot crowd out each other
/// for long).
pub const RP_CACHE_TTL_NS: u64 = NEXT_HOP_TTL_NS;

/// Key of `PEERS`: (network, peer VTEP).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PeerKey {
    pub net_id: u32,
    pub vtep_be: VtepAddr,
}

/// Value of `PEERS`: the entry makes the VTEP a peer of the network, and
/// holds what the datapath caches about it, so that one lookup answers
/// membership and the next hop when sending, membership and the
/// reverse-path check when receiving. Userspace writes it zeroed (nothing
/// cached, as every `up` leaves it); the datapath rewrites it whole.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerState {
    /// The next hop (`ifindex` 0: none cached).
    pub hop: NextHop,
    /// Datapath clock (`bpf_ktime_get_coarse_ns`) of the last pass of the
    /// reverse-path check; 0: none.
    pub rp_ok_ns: u64,
}

/// `FLOOD[net_id]`: where broadcast, multicast and unknown unicast go.
/// Local ports are split by whether the network's frames leave them
/// untagged (access, trunk-native) or tagged with the network's VID
/// (trunk), so the datapath pushes a tag once for all tagged copies.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FloodSet {
    pub n_untagged: u16,
    pub n_tagged: u16,
    pub n_peers: u32,
    pub untagged: [u32; crate::MAX_FLOOD_PORTS],
    pub tagged: [u32; crate::MAX_FLOOD_PORTS],
    pub peers_be: [VtepAddr; crate::MAX_FLOOD_PEERS],
}

impl Default for FloodSet {
    fn default() -> Self {
        Self {
            n_untagged: 0,
            n_tagged: 0,
            n_peers: 0,
            untagged: [0; crate::MAX_FLOOD_PORTS],
            tagged: [0; crate::MAX_FLOOD_PORTS],
            peers_be: [[0; 4]; crate::MAX_FLOOD_PEERS],
        }
    }
}

/// `PORTS[ifindex]`: a tenant-facing port.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortConfig {
    pub mode: u8,
    pub flags: u8,
    pub _pad: u16,
    /// Access: the port's network. Trunk: the native (untagged) network or [`crate::NO_NET`].
    pub net_id: u32,
}

pub const PORT_MODE_ACCESS: u8 = 1;
pub const PORT_MODE_TRUNK: u8 = 2;
/// Accept priority-tagged frames (VID 0) as untagged.
pub const PORT_F_PRIO_TAGGED: u8 = 1 << 0;
/// The XDP fast path may redirect to this port (its far end runs NAPI).
pub const PORT_F_XDP_TARGET: u8 = 1 << 1;
/// A veth whose peer is in another namespace: known unicast is handed
/// straight to the peer's ingress (`bpf_redirect_peer`), skipping the veth
/// transmit and the backlog queue.
pub const PORT_F_PEER_ELSEWHERE: u8 = 1 << 2;

/// Key of `TRUNK_VLANS`: a VID allowed on a trunk port; the value is the net_id.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TrunkKey {
    pub ifindex: u32,
    pub vid: u16,
    pub _pad: u16,
}

/// Key of `FDB`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FdbKey {
    pub net_id: u32,
    pub mac: [u8; 6],
    pub _pad: [u8; 2],
}

impl FdbKey {
    #[inline(always)]
    pub const fn new(net_id: u32, mac: [u8; 6]) -> FdbKey {
        FdbKey { net_id, mac, _pad: [0; 2] }
    }
}

/// Value of `FDB`: where a MAC lives.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FdbEntry {
    pub kind: u8,
    pub flags: u8,
    pub _pad: u16,
    /// Local port (kind = [`FDB_KIND_PORT`]).
    pub ifindex: u32,
    /// Remote VTEP (kind = [`FDB_KIND_REMOTE`]).
    pub remote_be: VtepAddr,
    /// Datapath clock (`bpf_ktime_get_coarse_ns`) when last seen (learned
    /// entries).
    pub seen_ns: u64,
}

pub const FDB_KIND_PORT: u8 = 1;
pub const FDB_KIND_REMOTE: u8 = 2;
pub const FDB_F_STATIC: u8 = 1 << 0;
/// Installed by the control plane (`overlayctl agent`): a remote MAC that
/// another host registered. Always with [`FDB_F_STATIC`]: it never ages and
/// learning never overrides it.
pub const FDB_F_CONTROL: u8 = 1 << 1;

impl FdbEntry {
    /// Configured or installed by the control plane: never ages, never
    /// replaced by learning.
    #[inline(always)]
    pub const fn is_static(&self) -> bool {
        self.flags & FDB_F_STATIC != 0
    }

    #[inline(always)]
    pub const fn is_control(&self) -> bool {
        self.flags & FDB_F_CONTROL != 0
    }

    /// Same location (port or VTEP) as `other`.
    #[inline(always)]
    pub const fn same_place(&self, other: &FdbEntry) -> bool {
        self.kind == other.kind
            && self.ifindex == other.ifindex
            && crate::vtep::vtep_eq(&self.remote_be, &other.remote_be)
    }

    /// Whether a learned entry has aged out at `now_ns`. A `now_ns` before
    /// the entry's time (a CPU whose clock reading is a tick behind
    /// another's, see the datapath clock) is no age.
    #[inline(always)]
    pub const fn expired(&self, now_ns: u64, ageing_ns: u64) -> bool {
        !self.is_static() && ageing_ns != 0 && now_ns.saturating_sub(self.seen_ns) > ageing_ns
    }
}

/// A record of `FDB_EVENTS`: the datapath learned a MAC, saw it move, or
/// aged it out. Written only on those changes (never on a refresh), read by
/// `overlayctl agent` to publish local MACs without polling the FDB. When
/// nobody reads and the ring is full, the event is counted as
/// `fdb_events_lost` and the frame goes on.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FdbEvent {
    /// [`FDB_EV_LEARNED`], [`FDB_EV_MOVED`] or [`FDB_EV_AGED`].
    pub event: u8,
    /// Where the MAC is now (aged: where it was): [`FDB_KIND_PORT`] or [`FDB_KIND_REMOTE`].
    pub kind: u8,
    pub mac: [u8; 6],
    pub net_id: u32,
    pub ifindex: u32,
    pub remote_be: VtepAddr,
}

pub const FDB_EV_LEARNED: u8 = 1;
pub const FDB_EV_MOVED: u8 = 2;
pub const FDB_EV_AGED: u8 = 3;

impl FdbEvent {
    #[inline(always)]
    pub const fn new(event: u8, k: &FdbKey, e: &FdbEntry) -> FdbEvent {
        FdbEvent {
            event,
            kind: e.kind,
            mac: k.mac,
            net_id: k.net_id,
            ifindex: e.ifindex,
            remote_be: e.remote_be,
        }
    }
}

/// Key of `NEIGH`: an IPv4 or IPv6 address in a network.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NeighKey {
    pub net_id: u32,
    /// 4 or 6.
    pub family: u8,
    pub _pad: [u8; 3],
    /// IPv4: the first 4 bytes, the rest zero.
    pub addr: [u8; 16],
}

impl NeighKey {
    #[inline(always)]
    pub const fn v4(net_id: u32, a: [u8; 4]) -> NeighKey {
        let mut addr = [0u8; 16];
        addr[0] = a[0];
        addr[1] = a[1];
        addr[2] = a[2];
        addr[3] = a[3];
        NeighKey { net_id, family: 4, _pad: [0; 3], addr }
    }

    #[inline(always)]
    pub const fn v6(net_id: u32, addr: [u8; 16]) -> NeighKey {
        NeighKey { net_id, family: 6, _pad: [0; 3], addr }
    }
}

/// Value of `NEIGH`: the MAC that owns the address.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NeighEntry {
    pub mac: [u8; 6],
    pub flags: u8,
    pub _pad: u8,
    /// Datapath clock (`bpf_ktime_get_coarse_ns`) when learned or last
    /// confirmed (learned entries; answered only within the FDB ageing
    /// time).
    pub updated_ns: u64,
}

/// A configured pair (`[[fdb]] ip`, `[[neigh]]`, `neigh add`): never
/// replaced by learning.
pub const NEIGH_F_STATIC: u8 = 1 << 0;

impl NeighEntry {
    #[inline(always)]
    pub const fn is_static(&self) -> bool {
        self.flags & NEIGH_F_STATIC != 0
    }

    /// Whether a learned pair is too old to answer for at `now_ns` (as
    /// [`FdbEntry::expired`]).
    #[inline(always)]
    pub const fn expired(&self, now_ns: u64, ageing_ns: u64) -> bool {
        !self.is_static() && ageing_ns != 0 && now_ns.saturating_sub(self.updated_ns) > ageing_ns
    }
}

const _: () = assert!(size_of::<NeighKey>() == 24);
const _: () = assert!(size_of::<FdbEvent>() == 32);
const _: () = assert!(size_of::<NeighEntry>() == 16);
const _: () = assert!(size_of::<GlobalConfig>() == 56);
const _: () = assert!(size_of::<NetConfig>() == 12);
const _: () = assert!(size_of::<NetFdbState>() == 16);
const _: () = assert!(size_of::<NextHop>() == 32);
const _: () = assert!(size_of::<PeerKey>() == 20);
const _: () = assert!(size_of::<PeerState>() == 40);
const _: () =
    assert!(size_of::<FloodSet>() == 8 + 4 * 2 * crate::MAX_FLOOD_PORTS + 16 * crate::MAX_FLOOD_PEERS);
const _: () = assert!(size_of::<PortConfig>() == 8);
const _: () = assert!(size_of::<TrunkKey>() == 8);
const _: () = assert!(size_of::<FdbKey>() == 12);
const _: () = assert!(size_of::<FdbEntry>() == 32);

#[cfg(feature = "user")]
mod pod {
    use super::*;
    // SAFETY: all of these are repr(C) with explicit padding and no
    // references; any bit pattern is valid.
    unsafe impl aya::Pod for GlobalConfig {}
    unsafe impl aya::Pod for NetConfig {}
    unsafe impl aya::Pod for NetFdbState {}
    unsafe impl aya::Pod for NextHop {}
    unsafe impl aya::Pod for PeerKey {}
    unsafe impl aya::Pod for PeerState {}
    unsafe impl aya::Pod for FloodSet {}
    unsafe impl aya::Pod for PortConfig {}
    unsafe impl aya::Pod for TrunkKey {}
    unsafe impl aya::Pod for FdbKey {}
    unsafe impl aya::Pod for FdbEntry {}
    unsafe impl aya::Pod for NeighKey {}
    unsafe impl aya::Pod for NeighEntry {}
    unsafe impl aya::Pod for FdbEvent {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ageing() {
        let e = FdbEntry { kind: FDB_KIND_PORT, seen_ns: 1_000, ..Default::default() };
        assert!(!e.expired(1_500, 1_000));
        assert!(e.expired(2_001, 1_000));
        assert!(!e.expired(u64::MAX, 0), "ageing 0 never expires");
        let s = FdbEntry { flags: FDB_F_STATIC, ..e };
        assert!(!s.expired(1 << 60, 1), "static entries never age");
        // A clock reading a tick behind the entry's (another CPU's) time.
        assert!(!e.expired(999, 1_000), "a reading before the entry is no age");
        let n = NeighEntry { updated_ns: 1_000, ..Default::default() };
        assert!(!n.expired(999, 1_000) && n.expired(2_001, 1_000));
    }
}
