//! A raw-frame sender for load tests: AF_PACKET from inside a namespace,
//! one `sendto` per frame, as fast as the kernel takes them.

use std::time::{Duration, Instant};

use crate::netns::Netns;

/// An AF_PACKET socket bound to one interface of the network namespace it
/// was opened in (it stays there whatever thread uses it). Closed on drop.
pub struct PacketSocket {
    fd: i32,
    addr: libc::sockaddr_ll,
}

/// `struct tpacket_auxdata` (PACKET_AUXDATA control message).
#[repr(C)]
#[derive(Default)]
struct AuxData {
    status: u32,
    len: u32,
    snaplen: u32,
    mac: u16,
    net: u16,
    vlan_tci: u16,
    vlan_tpid: u16,
}

const SOL_PACKET: i32 = 263;
const PACKET_AUXDATA: i32 = 8;
const TP_STATUS_VLAN_VALID: u32 = 1 << 4;
const PACKET_OUTGOING: u8 = 4;

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

    /// A socket on `dev` in `ns` that sends, and receives every frame that
    /// arrives there (with its VLAN tag, also when the kernel took the tag
    /// off into metadata); receives wait at most `timeout`.
    pub fn open_in(ns: &Netns, dev: &str, timeout: Duration) -> PacketSocket {
        let dev = dev.to_string();
        ns.within(move || {
            let mut s = PacketSocket::open(&dev);
            // SAFETY: plain libc calls on our own descriptor.
            unsafe {
                libc::close(s.fd);
                s.fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, (libc::ETH_P_ALL as u16).to_be() as i32);
                assert!(s.fd >= 0, "AF_PACKET socket: {}", std::io::Error::last_os_error());
                let mut bind = s.addr;
                bind.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
                let r = libc::bind(
                    s.fd,
                    (&raw const bind).cast(),
                    std::mem::size_of::<libc::sockaddr_ll>() as u32,
                );
                assert_eq!(r, 0, "bind: {}", std::io::Error::last_os_error());
                let one: i32 = 1;
                libc::setsockopt(s.fd, SOL_PACKET, PACKET_AUXDATA, (&raw const one).cast(), 4);
                let tv =
                    libc::timeval { tv_sec: timeout.as_secs() as _, tv_usec: timeout.subsec_micros() as _ };
                libc::setsockopt(
                    s.fd,
                    libc::SOL_SOCKET,
                    libc::SO_RCVTIMEO,
                    (&raw const tv).cast(),
                    std::mem::size_of::<libc::timeval>() as u32,
                );
            }
            s
        })
    }

    /// The next frame that arrived (not one this interface sent), with the
    /// VID of its 802.1Q tag when the kernel had moved it to metadata;
    /// `None` after the timeout.
    pub fn recv(&self) -> Option<(Vec<u8>, Option<u16>)> {
        loop {
            let mut buf = vec![0u8; 2048];
            let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
            let mut cmsg = [0u64; 16];
            // SAFETY: msghdr is plain data; the pointers stay valid for the call.
            let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
            msg.msg_name = (&raw mut from).cast();
            msg.msg_namelen = std::mem::size_of::<libc::sockaddr_ll>() as u32;
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = cmsg.as_mut_ptr().cast();
            msg.msg_controllen = std::mem::size_of_val(&cmsg);
            // SAFETY: as above.
            let n = unsafe { libc::recvmsg(self.fd, &mut msg, 0) };
            if n < 0 {
                return None;
            }
            if from.sll_pkttype == PACKET_OUTGOING {
                continue;
            }
            buf.truncate(n as usize);
            let mut vid = None;
            // SAFETY: walking the control messages the kernel wrote.
            unsafe {
                let mut c = libc::CMSG_FIRSTHDR(&msg);
                while !c.is_null() {
                    if (*c).cmsg_level == SOL_PACKET && (*c).cmsg_type == PACKET_AUXDATA {
                        let aux = std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const AuxData);
                        if aux.status & TP_STATUS_VLAN_VALID != 0 {
                            vid = Some(aux.vlan_tci & 0x0fff);
                        }
                    }
                    c = libc::CMSG_NXTHDR(&msg, c);
                }
            }
            return Some((buf, vid));
        }
    }

    pub fn send(&self, frame: &[u8]) {
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
