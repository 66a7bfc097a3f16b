//! `overlayctl stats`: per-reason counters, summed over CPUs.

use std::collections::BTreeMap;

use serde::Serialize;

use overlay_common::counters::{Counter, STATS_SLOTS, net_row, stats_index};
use overlay_common::maps::MAP_STATS;

use crate::{
    error::{Error, Result},
    instance::State,
    maps::Maps,
};

#[derive(Debug, Default, Serialize)]
pub struct Stats {
    /// Over everything (all networks and unattributed).
    pub total: BTreeMap<&'static str, u64>,
    /// Per network (only counters that are non-zero).
    pub networks: BTreeMap<String, BTreeMap<&'static str, u64>>,
}

fn row_counts(maps: &Maps, row: u32) -> Result<BTreeMap<&'static str, u64>> {
    let mut out = BTreeMap::new();
    for c in Counter::ALL {
        let v = maps.stats.get(&stats_index(row, *c), 0).map_err(Error::map(MAP_STATS))?;
        out.insert(c.name(), v.iter().sum::<u64>());
    }
    Ok(out)
}

pub fn read(state: &State, maps: &Maps) -> Result<Stats> {
    let mut s = Stats::default();
    for c in Counter::ALL {
        s.total.insert(c.name(), 0);
    }
    let mut rows = vec![(None, 0u32)];
    rows.extend(state.net_ids.iter().map(|(n, id)| (Some(n.clone()), net_row(*id))));
    for (name, row) in rows {
        let counts = row_counts(maps, row)?;
        for (k, v) in &counts {
            *s.total.get_mut(k).expect("all counters") += v;
        }
        if let Some(n) = name {
            s.networks.insert(n, counts.into_iter().filter(|(_, v)| *v != 0).collect());
        }
    }
    Ok(s)
}

/// Zeroes every counter.
pub fn reset(maps: &mut Maps) -> Result<()> {
    reset_slots(maps, 0..STATS_SLOTS)
}

/// Zeroes the counters of one stats row (a network id given to a new network).
pub fn reset_row(maps: &mut Maps, row: u32) -> Result<()> {
    let first = row * overlay_common::counters::NUM_COUNTERS;
    reset_slots(maps, first..first + overlay_common::counters::NUM_COUNTERS)
}

fn reset_slots(maps: &mut Maps, slots: std::ops::Range<u32>) -> Result<()> {
    let ncpu = aya::util::nr_cpus().map_err(|(_, e)| Error::Io(e))?;
    for i in slots {
        let zero = aya::maps::PerCpuValues::try_from(vec![0u64; ncpu]).map_err(Error::Io)?;
        maps.stats.set(i, zero, 0).map_err(Error::map(MAP_STATS))?;
    }
    Ok(())
}
