//! What the control plane (`overlayctl agent`) knows of other hosts: the
//! VTEPs registered for each network and the MACs behind them. Kept in the
//! state file, so that every `up` (the agent's own, a user's re-run, an
//! `overlayctl port add`) programs it along with the config.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
};

use serde::{Deserialize, Serialize};

use crate::mac::MacAddr;

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct Remote {
    /// Network name -> VTEPs of other hosts that registered its VNI.
    #[serde(default)]
    pub vteps: BTreeMap<String, BTreeSet<IpAddr>>,
    /// Network name -> MAC -> where it lives (a VTEP of `vteps`).
    #[serde(default)]
    pub macs: BTreeMap<String, BTreeMap<MacAddr, RemoteMac>>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct RemoteMac {
    pub vtep: IpAddr,
    #[serde(default)]
    pub ips: Vec<IpAddr>,
}

impl Remote {
    pub fn is_empty(&self) -> bool {
        self.vteps.values().all(BTreeSet::is_empty) && self.macs.values().all(BTreeMap::is_empty)
    }

    /// Number of (network, VTEP) and (network, MAC) pairs.
    pub fn counts(&self) -> (usize, usize) {
        (self.vteps.values().map(BTreeSet::len).sum(), self.macs.values().map(BTreeMap::len).sum())
    }
}
