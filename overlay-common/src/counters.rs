//! Per-reason counters kept in the per-CPU `STATS` array.
//!
//! The array holds `(MAX_NETWORKS + 1) * NUM_COUNTERS` slots: row 0 is for
//! events that cannot be attributed to a network (a frame dropped before its
//! network is known), row `net_id + 1` for network `net_id`.

/// Counter slots per row. Fixed so the pinned layout does not change when a
/// counter is added (there are spare slots).
pub const NUM_COUNTERS: u32 = 64;

macro_rules! counters {
    ($($(#[$doc:meta])* $name:ident = $val:expr, $label:expr, $drop:expr;)*) => {
        /// Every counter the datapath keeps.
        #[repr(u32)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Counter { $($(#[$doc])* $name = $val,)* }

        impl Counter {
            pub const ALL: &'static [Counter] = &[$(Counter::$name,)*];
            /// Stable name used by `overlayctl stats` (and its JSON).
            pub const fn name(self) -> &'static str {
                match self { $(Counter::$name => $label,)* }
            }
            /// Whether this counter counts a dropped frame.
            pub const fn is_drop(self) -> bool {
                match self { $(Counter::$name => $drop,)* }
            }
        }
    };
}

counters! {
    /// Frames received from a tenant port.
    RxTenant = 0, "rx_tenant", false;
    /// Frames received on the underlay (any protocol).
    RxUnderlay = 1, "rx_underlay", false;
    /// Frames switched between two local ports.
    TxLocal = 2, "tx_local", false;
    /// Frames VXLAN-encapsulated towards a remote VTEP (unicast).
    Encap = 3, "encap", false;
    /// VXLAN frames decapsulated here.
    Decap = 4, "decap", false;
    /// Copies of a flooded frame sent to local ports.
    FloodLocalCopies = 5, "flood_local_copies", false;
    /// Encapsulated copies of a flooded frame sent to peer VTEPs.
    FloodRemoteCopies = 6, "flood_remote_copies", false;
    /// New FDB entries learned (or moved).
    Learned = 7, "learned", false;
    /// Learning skipped because the FDB is full.
    LearnFdbFull = 8, "learn_fdb_full", false;
    /// Underlay frames that are not VXLAN for this VTEP: left to the host stack.
    PassHost = 9, "pass_host", false;
    /// Outer IPv4 fragments to the VXLAN port: left to the host stack, never decapsulated.
    PassFragment = 10, "pass_fragment", false;
    /// Decapsulated frames delivered by the XDP fast path.
    XdpRedirect = 11, "xdp_redirect", false;
    /// Learned entries that had aged out when looked up.
    AgedOut = 12, "aged_out", false;
    /// Tenants' ARP requests answered from the neighbour table, on the port
    /// they came in on (not flooded).
    ArpSuppressed = 13, "arp_suppressed", false;
    /// Tenants' neighbour solicitations answered from the neighbour table.
    NdSuppressed = 14, "nd_suppressed", false;
    /// Address/MAC pairs learned (or moved) from tenants' announcements
    /// (`learn_ip`).
    NeighLearned = 15, "neigh_learned", false;

    /// Truncated or inconsistent headers.
    DropMalformed = 16, "drop_malformed", true;
    /// Frame on an interface that is not a configured port.
    DropNotAPort = 17, "drop_not_a_port", true;
    /// VLAN tag not allowed on the port (or untagged frame on a trunk without native network).
    DropVlanNotAllowed = 18, "drop_vlan_not_allowed", true;
    /// Priority-tagged frame (VID 0) on a port that does not accept them.
    DropVlanPriorityTagged = 19, "drop_vlan_priority_tagged", true;
    /// VID 4095 (reserved).
    DropVlan4095 = 20, "drop_vlan_4095", true;
    /// 802.1ad / QinQ or a tag stack deeper than supported.
    DropVlanQinq = 21, "drop_vlan_qinq", true;
    /// VXLAN for a VNI not configured here.
    DropUnknownVni = 22, "drop_unknown_vni", true;
    /// VXLAN from a VTEP that is not a peer of the network.
    DropNotPeer = 23, "drop_not_peer", true;
    /// VXLAN with the I flag clear.
    DropVxlanNoIFlag = 24, "drop_vxlan_no_i_flag", true;
    /// 802.1Q-tagged inner frame on a network that does not allow it.
    DropInnerTagged = 25, "drop_inner_tagged", true;
    /// Frame too big for the underlay after encapsulation.
    DropMtu = 26, "drop_mtu", true;
    /// Group (multicast/broadcast) or zero source MAC.
    DropSrcMacInvalid = 27, "drop_src_mac_invalid", true;
    /// Source MAC held by a static FDB entry elsewhere (spoofing).
    DropSrcMacStatic = 28, "drop_src_mac_static", true;
    /// Destination is the port the frame came in on.
    DropHairpin = 29, "drop_hairpin", true;
    /// Decapsulated unicast for a MAC known to be behind another VTEP (split horizon).
    DropSplitHorizon = 30, "drop_split_horizon", true;
    /// Flood with nowhere to go.
    DropFloodNoTarget = 31, "drop_flood_no_target", true;
    /// A kernel helper failed (adjust_room, redirect, ...).
    DropHelperFailed = 32, "drop_helper_failed", true;
    /// Neighbour of the next hop towards the peer VTEP unresolved (and the
    /// frame is not IP, so bpf_redirect_neigh cannot resolve it).
    DropNoNeighbour = 33, "drop_no_neighbour", true;
    /// Network referenced by a port or FDB entry is not configured.
    DropNoNetwork = 34, "drop_no_network", true;
    /// No route to the peer VTEP in the kernel FIB.
    DropNoRoute = 35, "drop_no_route", true;
    /// A GSO super-packet that still carries tunnel offload state from an
    /// earlier decapsulation on this machine (veth underlays, routed
    /// between overlay networks): it cannot be encapsulated again.
    DropTunnelGso = 36, "drop_tunnel_gso", true;
    /// The port or VTEP a frame would leave by is not (or no longer) a
    /// member of the frame's network: a stale FDB or flood entry stopped
    /// by the per-packet egress check.
    DropNotMember = 37, "drop_not_member", true;
    /// Outer IPv4 header checksum wrong (the kernel's `ip_rcv` drops these).
    DropBadIpChecksum = 38, "drop_bad_ip_checksum", true;
    /// VXLAN in a frame whose destination MAC is not this host's
    /// (PACKET_OTHERHOST: the kernel's `ip_rcv` drops these).
    DropOtherHost = 39, "drop_other_host", true;
    /// VXLAN from an outer source that can be no VTEP (broadcast,
    /// multicast, zero, loopback, reserved, or this host's own address).
    DropVtepSrcInvalid = 40, "drop_vtep_src_invalid", true;
    /// VXLAN whose outer source would not be routed back out of the
    /// interface it came in on (`[underlay] rp_filter`).
    DropRpFilter = 41, "drop_rp_filter", true;

    /// An announcement that contradicts a configured pair: counted, kept
    /// out of the table (the frame itself goes on).
    NeighConflict = 42, "neigh_conflict", false;
    /// Learning a pair skipped because the neighbour table is full.
    NeighFull = 43, "neigh_full", false;
    /// Unicast to a MAC the FDB does not know, in a network with
    /// `flood_unknown = false` (the control plane knows every MAC).
    DropUnknownUnicast = 44, "drop_unknown_unicast", true;
    /// FDB events (learn, move, age-out) not written because the ring
    /// buffer was full (no agent reading it): the frame went on.
    FdbEventsLost = 45, "fdb_events_lost", false;
    /// Monitor events not written: above the monitor's per-CPU rate, or
    /// its ring buffer full.
    MonitorLost = 46, "monitor_lost", false;
    /// GRE or GENEVE to this VTEP with a header it does not take: version
    /// not 0, inner protocol not Ethernet (0x6558) on the GENEVE port, GRE
    /// checksum, routing or reserved bits set.
    DropTunnelHeader = 47, "drop_tunnel_header", true;
    /// GENEVE with the critical-options bit set: options this VTEP does
    /// not process must not be ignored (RFC 8926 §3.5).
    DropGeneveCritical = 48, "drop_geneve_critical", true;
    /// GENEVE OAM (control) frames: never forwarded as tenant data.
    DropGeneveOam = 49, "drop_geneve_oam", true;
    /// IPv6 underlay: outer UDP checksum wrong, or zero without
    /// `udp6_zero_checksum` (the kernel's UDP receive drops both, RFC 8200).
    DropUdpChecksum = 50, "drop_udp_checksum", true;
}

/// Index of `counter` for network slot `row` (0 = unattributed, net_id + 1).
#[inline(always)]
pub const fn stats_index(row: u32, counter: Counter) -> u32 {
    row * NUM_COUNTERS + counter as u32
}

/// Row of a network in the stats array.
#[inline(always)]
pub const fn net_row(net_id: u32) -> u32 {
    if net_id < crate::MAX_NETWORKS { net_id + 1 } else { 0 }
}

/// Number of slots in the stats array.
pub const STATS_SLOTS: u32 = (crate::MAX_NETWORKS + 1) * NUM_COUNTERS;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_fit_and_names_are_unique() {
        for (i, a) in Counter::ALL.iter().enumerate() {
            assert!((*a as u32) < NUM_COUNTERS, "{} out of range", a.name());
            for b in &Counter::ALL[i + 1..] {
                assert_ne!(*a as u32, *b as u32, "duplicate value");
                assert_ne!(a.name(), b.name(), "duplicate name");
            }
        }
    }

    #[test]
    fn variants_are_named_after_their_labels() {
        use std::string::ToString;
        for c in Counter::ALL {
            let camel: std::string::String = c
                .name()
                .split('_')
                .map(|w| {
                    let mut cs = w.chars();
                    cs.next().map(|f| f.to_ascii_uppercase().to_string() + cs.as_str()).unwrap_or_default()
                })
                .collect();
            assert_eq!(std::format!("{c:?}"), camel, "label {}", c.name());
        }
    }

    #[test]
    fn rows_do_not_overlap() {
        assert_eq!(stats_index(0, Counter::DropNoNetwork), Counter::DropNoNetwork as u32);
        assert_eq!(stats_index(net_row(0), Counter::RxTenant), NUM_COUNTERS);
        assert_eq!(net_row(crate::MAX_NETWORKS), 0);
        assert!(stats_index(net_row(crate::MAX_NETWORKS - 1), Counter::DropNoNetwork) < STATS_SLOTS);
    }
}
