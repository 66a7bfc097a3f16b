//! Test harness: network namespaces that clean up after themselves, hosts
//! running overlayctl, and a BPF_PROG_TEST_RUN fixture.
//!
//! Everything a test creates carries a unique `ovt<pid>-<n>` prefix and is
//! removed by a `Drop` guard, also when the test panics. Only documentation
//! address ranges are used.

pub mod blast;
pub mod cni;
pub mod conf;
pub mod etcd;
pub mod frames;
pub mod lab;
pub mod netns;
pub mod podman;
pub mod progtest;
pub mod scapy;
pub mod tshark;

/// What the BPF_PROG_TEST_RUN test files use: the fixture, the shared
/// frames, frame builders, parsers and counter names.
pub mod prelude {
    pub use crate::{
        conf::{Config, access, config, fdb_remote, vlan},
        frames::*,
        progtest::*,
    };
    pub use overlay_common::{
        ENCAP_GENEVE, ENCAP_GRE, ENCAP_VXLAN, VtepAddr,
        counters::Counter::{self, *},
        encap::ipv4_checksum,
        frame::Frame,
        headers::Ipv4Hdr,
        is_unicast_vtep,
        maps::{FDB_F_STATIC, FDB_KIND_PORT, FDB_KIND_REMOTE, FdbEntry, FdbKey, PeerState, TrunkKey},
        parse::{Reject, parse_l2, parse_underlay},
        pktbuild::*,
    };
}
