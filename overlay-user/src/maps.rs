//! Typed handles on an instance's pinned maps, and the layout check that
//! keeps a binary from misreading pins written by another one.

use std::path::Path;

use aya::maps::{Array, HashMap, Map, MapData, MapInfo, MapType, PerCpuArray};
use overlay_common::{VtepAddr, maps::*};

use crate::error::{Error, Result};

pub struct Maps {
    pub config: Array<MapData, GlobalConfig>,
    pub networks: Array<MapData, NetConfig>,
    /// Networks of VNIs of at least `VNI_ARRAY_LEN`; see [`Maps::vnis`].
    pub vni: HashMap<MapData, u32, u32>,
    pub vni_array: Array<MapData, u32>,
    pub peers: HashMap<MapData, PeerKey, PeerState>,
    pub flood: Array<MapData, FloodSet>,
    /// Ports with an ifindex of at least `PORTS_ARRAY_LEN`; see [`Maps::ports`].
    pub ports: HashMap<MapData, u32, PortConfig>,
    pub ports_array: Array<MapData, PortConfig>,
    pub trunk: HashMap<MapData, TrunkKey, u32>,
    pub fdb: HashMap<MapData, FdbKey, FdbEntry>,
    /// The FDB again, for batched updates.
    pub fdb_raw: MapData,
    pub stats: PerCpuArray<MapData, u64>,
    pub net_fdb: Array<MapData, NetFdbState>,
    pub next_hop: HashMap<MapData, VtepAddr, NextHop>,
    pub rp_cache: HashMap<MapData, VtepAddr, u64>,
    pub neigh: HashMap<MapData, NeighKey, NeighEntry>,
}

fn map_type(k: MapKind) -> MapType {
    match k {
        MapKind::Array => MapType::Array,
        MapKind::Hash => MapType::Hash,
        MapKind::LruHash => MapType::LruHash,
        MapKind::PerCpuArray => MapType::PerCpuArray,
        MapKind::RingBuf => MapType::RingBuf,
        MapKind::ProgArray => MapType::ProgramArray,
    }
}

/// Checks every map already pinned in `dir` against this binary's layout.
/// `fdb_size` is the FDB capacity the config asks for.
pub fn check_pins(dir: &Path, instance: &str, fdb_size: u32) -> Result<()> {
    for m in MAPS {
        let path = dir.join(m.name);
        if !path.exists() {
            continue;
        }
        let mismatch =
            |detail: String| Error::PinMismatch { path: path.clone(), detail, instance: instance.into() };
        let info = MapInfo::from_pin(&path).map_err(|e| mismatch(format!("cannot open: {e}")))?;
        let (ty, k, v, max) = (map_type(m.kind), m.key_size, m.value_size, m.capacity);
        let got_ty = info.map_type().map_err(|e| mismatch(e.to_string()))?;
        if got_ty != ty || info.key_size() as usize != k || info.value_size() as usize != v {
            return Err(mismatch(format!(
                "{got_ty:?} key {} value {}, expected {ty:?} key {k} value {v}",
                info.key_size(),
                info.value_size()
            )));
        }
        let want_max = match max {
            Capacity::Fixed(n) => n,
            Capacity::FdbSize => fdb_size,
            Capacity::PerCpu => crate::loader::per_cpu_entries()?,
        };
        if info.max_entries() != want_max {
            return Err(mismatch(format!(
                "capacity {} but the config asks for {want_max} (fdb_size cannot change while the instance is up)",
                info.max_entries()
            )));
        }
    }
    // Same sizes but another meaning: the layout version in CONFIG says so.
    if dir.join(MAP_CONFIG).exists() {
        let config: Array<MapData, GlobalConfig> =
            open_map(dir, MAP_CONFIG)?.try_into().map_err(Error::map(MAP_CONFIG))?;
        let v = config.get(&0, 0).map(|g| g.layout_version).unwrap_or(0);
        if v != 0 && v != overlay_common::LAYOUT_VERSION {
            return Err(Error::PinMismatch {
                path: dir.join(MAP_CONFIG),
                detail: format!("layout version {v}, this binary writes {}", overlay_common::LAYOUT_VERSION),
                instance: instance.into(),
            });
        }
    }
    Ok(())
}

fn open_map(dir: &Path, name: &'static str) -> Result<Map> {
    let data = MapData::from_pin(dir.join(name)).map_err(Error::map(name))?;
    Map::from_map_data(data).map_err(Error::map(name))
}

macro_rules! typed {
    ($dir:expr, $name:expr) => {
        open_map($dir, $name)?.try_into().map_err(Error::map($name))?
    };
}

impl Maps {
    pub fn open(dir: &Path) -> Result<Maps> {
        Ok(Maps {
            config: typed!(dir, MAP_CONFIG),
            networks: typed!(dir, MAP_NETWORKS),
            vni: typed!(dir, MAP_VNI_TO_NET),
            vni_array: typed!(dir, MAP_VNI_ARRAY),
            peers: typed!(dir, MAP_PEERS),
            flood: typed!(dir, MAP_FLOOD),
            ports: typed!(dir, MAP_PORTS),
            ports_array: typed!(dir, MAP_PORTS_ARRAY),
            trunk: typed!(dir, MAP_TRUNK_VLANS),
            fdb: typed!(dir, MAP_FDB),
            fdb_raw: MapData::from_pin(dir.join(MAP_FDB)).map_err(Error::map(MAP_FDB))?,
            stats: typed!(dir, MAP_STATS),
            net_fdb: typed!(dir, MAP_NET_FDB),
            next_hop: typed!(dir, MAP_NEXT_HOP),
            rp_cache: typed!(dir, MAP_RP_CACHE),
            neigh: typed!(dir, MAP_NEIGH),
        })
    }

    /// Every VNI's network id: those of `VNI_ARRAY` (which holds the id
    /// plus one, 0: none) and of `VNI_TO_NET`.
    pub fn vnis(&self) -> Result<std::collections::HashMap<u32, u32>> {
        let low = crate::batch::array_entries::<u32>(aya::maps::IterableMap::map(&self.vni_array))
            .map_err(batch_error(MAP_VNI_ARRAY))?;
        let high = self.vni.iter().filter_map(|r| r.ok());
        Ok(low.into_iter().filter(|(_, id)| *id != 0).map(|(v, id)| (v, id - 1)).chain(high).collect())
    }

    /// Maps `vni` to network `net_id`: in `VNI_ARRAY` when the VNI fits,
    /// else in `VNI_TO_NET`.
    pub fn set_vni(&mut self, vni: u32, net_id: u32) -> Result<()> {
        if vni < VNI_ARRAY_LEN {
            self.vni_array.set(vni, net_id + 1, 0).map_err(Error::map(MAP_VNI_ARRAY))
        } else {
            self.vni.insert(vni, net_id, 0).map_err(Error::map(MAP_VNI_TO_NET))
        }
    }

    /// `vni` maps to no network any more (whether it did or not).
    pub fn remove_vni(&mut self, vni: u32) -> Result<()> {
        if vni < VNI_ARRAY_LEN {
            return self.vni_array.set(vni, 0, 0).map_err(Error::map(MAP_VNI_ARRAY));
        }
        ignore_missing(self.vni.remove(&vni), MAP_VNI_TO_NET)
    }

    /// Every port by ifindex: those of `PORTS_ARRAY` (mode 0 there is no
    /// port) and of `PORTS`.
    pub fn ports(&self) -> Result<std::collections::HashMap<u32, PortConfig>> {
        let low = crate::batch::array_entries::<PortConfig>(aya::maps::IterableMap::map(&self.ports_array))
            .map_err(batch_error(MAP_PORTS_ARRAY))?;
        let high = self.ports.iter().filter_map(|r| r.ok());
        Ok(low.into_iter().filter(|(_, p)| p.mode != 0).chain(high).collect())
    }

    /// Makes `ifindex` a port (or changes it): in `PORTS_ARRAY` when its
    /// ifindex fits, else in `PORTS`.
    pub fn set_port(&mut self, ifindex: u32, p: &PortConfig) -> Result<()> {
        if ifindex < PORTS_ARRAY_LEN {
            self.ports_array.set(ifindex, p, 0).map_err(Error::map(MAP_PORTS_ARRAY))
        } else {
            self.ports.insert(ifindex, p, 0).map_err(Error::map(MAP_PORTS))
        }
    }

    /// `ifindex` is no port any more (whether it was one or not).
    pub fn remove_port(&mut self, ifindex: u32) -> Result<()> {
        if ifindex < PORTS_ARRAY_LEN {
            return self
                .ports_array
                .set(ifindex, PortConfig::default(), 0)
                .map_err(Error::map(MAP_PORTS_ARRAY));
        }
        ignore_missing(self.ports.remove(&ifindex), MAP_PORTS)
    }

    /// The global config, if this instance has been configured.
    pub fn global(&self) -> Result<GlobalConfig> {
        self.config.get(&0, 0).map_err(Error::map(MAP_CONFIG))
    }
}

/// A delete of something already gone (the datapath aged it, or a killed
/// `up` got that far) is not an error.
pub(crate) fn ignore_missing(
    r: std::result::Result<(), aya::maps::MapError>,
    map: &'static str,
) -> Result<()> {
    match r {
        Err(aya::maps::MapError::KeyNotFound) | Ok(()) => Ok(()),
        Err(aya::maps::MapError::SyscallError(e)) if e.io_error.raw_os_error() == Some(libc::ENOENT) => {
            Ok(())
        }
        Err(e) => Err(Error::map(map)(e)),
    }
}

/// A failed batched read of `map`, as a map error.
fn batch_error(map: &'static str) -> impl FnOnce(std::io::Error) -> Error {
    move |io_error| Error::map(map)(aya::sys::SyscallError { call: "bpf_map_lookup_batch", io_error }.into())
}
