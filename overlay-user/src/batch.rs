//! `BPF_MAP_UPDATE_BATCH` and `BPF_MAP_LOOKUP_BATCH`: many map updates or
//! reads in one system call (aya 0.14 has no wrapper for them).

use std::os::fd::{AsFd, AsRawFd};

use aya::maps::MapData;

const BPF_MAP_LOOKUP_BATCH: libc::c_long = 24;
const BPF_MAP_UPDATE_BATCH: libc::c_long = 26;
const CHUNK: usize = 8192;

/// The `batch` member of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct BatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}

/// Updates `keys[i] -> values[i]` in chunks. Returns how many were written
/// before the first failure, and that failure (e.g. the map is full).
pub fn update<K: Copy, V: Copy>(map: &MapData, keys: &[K], values: &[V]) -> (usize, Option<std::io::Error>) {
    assert_eq!(keys.len(), values.len(), "one value per key");
    let fd = map.fd().as_fd().as_raw_fd();
    let mut done = 0;
    while done < keys.len() {
        let n = (keys.len() - done).min(CHUNK);
        let mut attr = BatchAttr {
            keys: keys[done..].as_ptr() as u64,
            values: values[done..].as_ptr() as u64,
            count: n as u32,
            map_fd: fd as u32,
            ..Default::default()
        };
        // SAFETY: attr points at `n` valid keys and values for the whole call;
        // the kernel writes back only `count`.
        if let Err(e) = unsafe { batch_call(BPF_MAP_UPDATE_BATCH, &mut attr) } {
            return (done + attr.count as usize, Some(e));
        }
        done += n;
    }
    (done, None)
}

/// Every entry of an array map (`u32` keys), in index order, read in
/// chunks.
pub fn array_entries<V: Copy + Default>(map: &MapData) -> std::io::Result<Vec<(u32, V)>> {
    let fd = map.fd().as_fd().as_raw_fd();
    let mut out = Vec::new();
    let (mut keys, mut values) = (vec![0u32; CHUNK], vec![V::default(); CHUNK]);
    // The kernel's cursor: where the previous call stopped (none before the first).
    let (mut next, mut after) = (0u32, None::<u32>);
    loop {
        let mut attr = BatchAttr {
            in_batch: after.as_ref().map_or(0, |a| a as *const u32 as u64),
            out_batch: &mut next as *mut u32 as u64,
            keys: keys.as_mut_ptr() as u64,
            values: values.as_mut_ptr() as u64,
            count: CHUNK as u32,
            map_fd: fd as u32,
            ..Default::default()
        };
        // SAFETY: attr points at room for CHUNK keys and values and at the
        // cursors for the whole call; the kernel writes at most `count` of each.
        let r = unsafe { batch_call(BPF_MAP_LOOKUP_BATCH, &mut attr) };
        let n = (attr.count as usize).min(CHUNK);
        out.extend(keys[..n].iter().copied().zip(values[..n].iter().copied()));
        if let Err(e) = r {
            // ENOENT: the last entries were read (`count` of them above).
            return if e.raw_os_error() == Some(libc::ENOENT) { Ok(out) } else { Err(e) };
        }
        if n == 0 {
            return Ok(out);
        }
        after = Some(next);
    }
}

/// The `bpf` system call `cmd` with a batch attribute.
///
/// # Safety
/// Every pointer in `attr` must be valid for what `cmd` reads and writes
/// through it, for `attr.count` elements.
unsafe fn batch_call(cmd: libc::c_long, attr: &mut BatchAttr) -> std::io::Result<()> {
    // SAFETY: the caller's promise; the attribute itself is valid for the call.
    let r = unsafe {
        libc::syscall(libc::SYS_bpf, cmd, attr as *mut BatchAttr, std::mem::size_of::<BatchAttr>())
    };
    if r < 0 { Err(std::io::Error::last_os_error()) } else { Ok(()) }
}
