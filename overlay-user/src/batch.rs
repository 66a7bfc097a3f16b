//! `BPF_MAP_UPDATE_BATCH`: many map updates in one system call (aya 0.14
//! has no wrapper for it).

use std::os::fd::{AsFd, AsRawFd};

use aya::maps::MapData;

const BPF_MAP_UPDATE_BATCH: libc::c_long = 26;

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
    const CHUNK: usize = 8192;
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
        let r = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                BPF_MAP_UPDATE_BATCH,
                &mut attr as *mut BatchAttr,
                std::mem::size_of::<BatchAttr>(),
            )
        };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            return (done + attr.count as usize, Some(e));
        }
        done += n;
    }
    (done, None)
}
