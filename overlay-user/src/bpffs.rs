//! Where an instance keeps its state: pins on a bpffs under /run (visible
//! inside `ip netns exec`, which hides /sys/fs/bpf) and a JSON state file.

use std::{
    ffi::CString,
    os::unix::ffi::OsStrExt,
    path::{Path, PathBuf},
};

use crate::error::{Error, Result};

/// Root of everything overlayctl keeps at run time (override for tests
/// with `OVERLAYCTL_RUN_DIR`).
pub fn run_dir() -> PathBuf {
    std::env::var_os("OVERLAYCTL_RUN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/run/overlayctl"))
}

pub fn bpffs_dir() -> PathBuf {
    run_dir().join("bpffs")
}

/// Pin directory of an instance.
pub fn pin_dir(instance: &str) -> PathBuf {
    bpffs_dir().join(instance)
}

pub fn state_path(instance: &str) -> PathBuf {
    run_dir().join(format!("{instance}.json"))
}

/// Names the object whose programs are pinned for `instance` (bpffs holds
/// no regular files, so it lives beside the state file).
pub fn object_path(instance: &str) -> PathBuf {
    run_dir().join(format!("{instance}.object"))
}

const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

fn is_bpffs(p: &Path) -> bool {
    let Ok(c) = CString::new(p.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: statfs into a zeroed struct with a valid path.
    unsafe {
        let mut s: libc::statfs = std::mem::zeroed();
        libc::statfs(c.as_ptr(), &mut s) == 0 && s.f_type as i64 == BPF_FS_MAGIC
    }
}

fn mount_here(c: &CString) -> i32 {
    let src = c"bpf";
    // SAFETY: valid C strings; mounting a new bpffs instance.
    unsafe { libc::mount(src.as_ptr(), c.as_ptr(), src.as_ptr(), 0, c"mode=0700".as_ptr().cast()) }
}

/// Mounts bpffs on [`bpffs_dir`] unless it is one already.
pub fn ensure_bpffs() -> Result<PathBuf> {
    let dir = bpffs_dir();
    std::fs::create_dir_all(&dir).map_err(|source| Error::Bpffs { path: dir.clone(), source })?;
    if is_bpffs(&dir) {
        return Ok(dir);
    }
    let c = CString::new(dir.as_os_str().as_bytes())
        .map_err(|e| Error::Bpffs { path: dir.clone(), source: std::io::Error::other(e) })?;
    if mount_here(&c) != 0 {
        let source = std::io::Error::last_os_error();
        return Err(Error::Bpffs { path: dir, source });
    }
    Ok(dir)
}

/// The network namespace named by `ip netns exec`, which mounts a fresh
/// sysfs on /sys with the namespace's name as its source.
fn ip_netns_exec_name() -> Option<String> {
    let mi = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let line = mi.lines().rev().find(|l| l.split(' ').nth(4) == Some("/sys"))?;
    let after = line.split(" - ").nth(1)?;
    let mut f = after.split(' ');
    let (fstype, source) = (f.next()?, f.next()?);
    (fstype == "sysfs" && source != "sysfs" && Path::new("/run/netns").join(source).exists())
        .then(|| source.to_string())
}

fn mnt_ns_of(pid: &str) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(format!("/proc/{pid}/ns/mnt")).ok()?;
    Some((m.dev(), m.ino()))
}

fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()
}

/// `ip netns exec` gives a command a private mount namespace: a bpffs
/// mounted there, and its pins, vanish when the command exits. When run
/// that way, and the pin directory is not visible, overlayctl joins the
/// mount namespace of the nearest ancestor outside it (the shell that ran
/// `ip netns exec`), so pins live in one place that outlives the command.
///
/// Must be called while the process is single-threaded (setns(CLONE_NEWNS)
/// refuses otherwise). The network namespace is not changed.
pub fn join_pin_mount_namespace() -> Result<()> {
    if is_bpffs(&bpffs_dir()) || ip_netns_exec_name().is_none() {
        return Ok(());
    }
    let mine = mnt_ns_of("self");
    // SAFETY: plain syscall.
    let mut pid = unsafe { libc::getppid() } as u32;
    while pid > 1 {
        if let Some(ns) = mnt_ns_of(&pid.to_string())
            && Some(ns) != mine
        {
            use std::os::fd::AsRawFd;
            let f = std::fs::File::open(format!("/proc/{pid}/ns/mnt"))?;
            // SAFETY: setns on a namespace fd; we are single-threaded.
            if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNS) } != 0 {
                return Err(Error::Os {
                    op: format!("join mount namespace of pid {pid}"),
                    source: std::io::Error::last_os_error(),
                });
            }
            return Ok(());
        }
        pid = parent_of(pid).unwrap_or(0);
    }
    Ok(())
}

/// bpffs refuses dots in names; interface names may contain them.
pub fn pin_safe(ifname: &str) -> String {
    ifname.replace('.', "~")
}
