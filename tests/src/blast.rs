//! A raw-frame sender for load tests: AF_PACKET from inside a namespace,
//! one `sendto` per frame, as fast as the kernel takes them.

use std::time::{Duration, Instant};

use crate::netns::Netns;

/// An AF_PACKET socket bound to one interface of the calling thread's
/// network namespace. Closed on drop.
struct PacketSocket {
    fd: i32,
    addr: libc::sockaddr_ll,
}

impl PacketSocket {
    fn open(dev: &str) -> PacketSocket {
        let name = std::ffi::CString::new(dev).expect("interface name");
        // SAFETY: plain libc calls with valid arguments.
        let (fd, ifindex) = unsafe {
            (libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0), libc::if_nametoindex(name.as_ptr()))
        };
        assert!(fd >= 0, "AF_PACKET socket: {}", std::io::Error::last_os_error());
        assert!(ifindex != 0, "no interface {dev}");
        // SAFETY: sockaddr_ll is plain data.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_ifindex = ifindex as i32;
        addr.sll_halen = 6;
        PacketSocket { fd, addr }
    }

    fn send(&self, frame: &[u8]) {
        // SAFETY: valid buffer and address for the duration of the call.
        let n = unsafe {
            libc::sendto(
                self.fd,
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&raw const self.addr).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        assert_eq!(n, frame.len() as isize, "sendto: {}", std::io::Error::last_os_error());
    }
}

impl Drop for PacketSocket {
    fn drop(&mut self) {
        // SAFETY: our own descriptor.
        unsafe { libc::close(self.fd) };
    }
}

/// Sends `make(i)` for i in 0..count out of `dev` in `ns`; returns the
/// number sent (every `sendto` must succeed).
pub fn send_n(ns: &Netns, dev: &str, count: u64, make: impl Fn(u64) -> Vec<u8> + Send + 'static) -> u64 {
    let dev = dev.to_string();
    ns.within(move || {
        let s = PacketSocket::open(&dev);
        for i in 0..count {
            s.send(&make(i));
        }
        count
    })
}

/// Sends the frames of `mix` round-robin out of `dev` in `ns` for
/// `duration`, whole rounds only; returns the number of rounds.
pub fn send_rounds(ns: &Netns, dev: &str, mix: Vec<Vec<u8>>, duration: Duration) -> u64 {
    let dev = dev.to_string();
    ns.within(move || {
        let s = PacketSocket::open(&dev);
        let end = Instant::now() + duration;
        let mut rounds = 0;
        while Instant::now() < end {
            for _ in 0..64 {
                for f in &mix {
                    s.send(f);
                }
                rounds += 1;
            }
        }
        rounds
    })
}
