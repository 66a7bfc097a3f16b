//! Persistent tap devices for VM ports (`overlayctl port add IF --tap`):
//! what `ip tuntap add mode tap` does, through /dev/net/tun (the kernel does
//! not create taps over rtnetlink). A hypervisor opens it by name later
//! (libvirt `<interface type='ethernet'>` with `managed='no'`, QEMU
//! `-netdev tap,ifname=IF,script=no,downscript=no`).

use std::os::fd::AsRawFd;

use crate::error::{Error, Result};

const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const TUNSETPERSIST: libc::c_ulong = 0x4004_54cb;
const TUNSETOWNER: libc::c_ulong = 0x4004_54cc;
const IFF_TAP: libc::c_short = 0x0002;
const IFF_NO_PI: libc::c_short = 0x1000;

/// Creates tap `name`, persistent, owned by `owner` (a uid) when given so
/// that an unprivileged hypervisor may open it.
pub fn create(name: &str, owner: Option<u32>) -> Result<()> {
    let os = |op: &str| {
        let source = std::io::Error::last_os_error();
        Error::Os { op: format!("tap {name}: {op}"), source }
    };
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
        .map_err(Error::os("open /dev/net/tun"))?;
    // SAFETY: a zeroed ifreq with a checked name; ioctls on our own fd.
    unsafe {
        let mut ifr: libc::ifreq = std::mem::zeroed();
        if name.len() >= ifr.ifr_name.len() {
            return Err(Error::Config(format!("interface name {name:?} too long")));
        }
        for (d, s) in ifr.ifr_name.iter_mut().zip(name.as_bytes()) {
            *d = *s as libc::c_char;
        }
        ifr.ifr_ifru.ifru_flags = IFF_TAP | IFF_NO_PI;
        if libc::ioctl(f.as_raw_fd(), TUNSETIFF, &mut ifr) != 0 {
            return Err(os("TUNSETIFF"));
        }
        if let Some(uid) = owner
            && libc::ioctl(f.as_raw_fd(), TUNSETOWNER, uid as libc::c_ulong) != 0
        {
            return Err(os("TUNSETOWNER"));
        }
        if libc::ioctl(f.as_raw_fd(), TUNSETPERSIST, 1 as libc::c_ulong) != 0 {
            return Err(os("TUNSETPERSIST"));
        }
    }
    Ok(())
}
