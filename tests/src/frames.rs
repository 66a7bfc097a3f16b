//! Frames and addresses shared by the BPF_PROG_TEST_RUN tests (the
//! fixture's config is `progtest::CONFIG`).

use overlay_common::{maps::FdbEntry, maps::FdbKey, pktbuild::*};

use crate::progtest::Fixture;

pub const VM1: [u8; 6] = [2, 0, 0, 0, 0, 1];
pub const VM2: [u8; 6] = [2, 0, 0, 0, 0, 2];
pub const REMOTE_VM: [u8; 6] = [2, 0, 0, 0, 0, 9];
pub const LOCAL: [u8; 4] = [192, 0, 2, 1];
pub const PEER: [u8; 4] = [192, 0, 2, 2];
pub const STRANGER: [u8; 4] = [192, 0, 2, 66];
pub const U0_MAC: [u8; 6] = [2, 0, 0, 0, 0xaa, 1];
pub const PEER_MAC: [u8; 6] = [2, 0, 0, 0, 0xaa, 2];

/// A UDP frame between two tenants.
pub fn tenant_frame(dst: [u8; 6], src: [u8; 6]) -> Vec<u8> {
    udp4(dst, src, [203, 0, 113, 1], [203, 0, 113, 2], 1000, 2000, 32)
}

/// VXLAN from VTEP `src` to this host's underlay `u0`.
pub fn from_vtep(src: [u8; 4], vni: u32, inner: &[u8]) -> Vec<u8> {
    vxlan_from(U0_MAC, PEER_MAC, src, LOCAL, vni, inner)
}

/// The FDB entry of `mac` in network `net`.
pub fn fdb_get(f: &Fixture, net: &str, mac: [u8; 6]) -> Option<FdbEntry> {
    f.maps.fdb.get(&FdbKey::new(f.net(net), mac), 0).ok()
}
