//! A stand-in VM on a tap: opens tap IFNAME the way a hypervisor does
//! (TUNSETIFF on /dev/net/tun, no packet info) and answers ARP requests and
//! ICMP echo requests for IP as MAC, until killed. Prints "ready" once the
//! tap is open.
//!
//!   tapvm IFNAME MAC IP

use std::{
    fs::OpenOptions,
    io::{Read, Write},
    net::Ipv4Addr,
    os::fd::AsRawFd,
};

const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const IFF_TAP: libc::c_short = 0x0002;
const IFF_NO_PI: libc::c_short = 0x1000;

fn checksum(b: &[u8]) -> u16 {
    let mut s: u32 = b.chunks(2).map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32).sum();
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// The answer to `f`, if it is an ARP request or echo request for us.
fn answer(f: &[u8], mac: [u8; 6], ip: [u8; 4]) -> Option<Vec<u8>> {
    let ethertype = u16::from_be_bytes([*f.get(12)?, *f.get(13)?]);
    let mut r = f.to_vec();
    r[0..6].copy_from_slice(&f[6..12]);
    r[6..12].copy_from_slice(&mac);
    match ethertype {
        0x0806 if f.len() >= 42 && f[20..22] == [0, 1] && f[38..42] == ip => {
            r[21] = 2;
            r[22..28].copy_from_slice(&mac);
            r[28..32].copy_from_slice(&ip);
            r[32..38].copy_from_slice(&f[22..28]);
            r[38..42].copy_from_slice(&f[28..32]);
            Some(r)
        }
        0x0800 if f.len() >= 34 && f[30..34] == ip && f[23] == 1 => {
            let ihl = (f[14] & 0x0f) as usize * 4;
            let total = u16::from_be_bytes([f[16], f[17]]) as usize;
            if f.len() < 14 + total || total < ihl + 8 || f[14 + ihl] != 8 {
                return None;
            }
            r[26..30].copy_from_slice(&f[30..34]);
            r[30..34].copy_from_slice(&f[26..30]);
            r[24..26].copy_from_slice(&[0, 0]);
            let c = checksum(&r[14..14 + ihl]);
            r[24..26].copy_from_slice(&c.to_be_bytes());
            let icmp = 14 + ihl;
            r[icmp] = 0;
            r[icmp + 2..icmp + 4].copy_from_slice(&[0, 0]);
            let c = checksum(&r[icmp..14 + total]);
            r[icmp + 2..icmp + 4].copy_from_slice(&c.to_be_bytes());
            r.truncate(14 + total);
            Some(r)
        }
        _ => None,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, ifname, mac, ip] = args.as_slice() else {
        eprintln!("usage: tapvm IFNAME MAC IP");
        std::process::exit(2);
    };
    let mac: Vec<u8> = mac.split(':').map(|x| u8::from_str_radix(x, 16).expect("MAC")).collect();
    let mac: [u8; 6] = mac.try_into().expect("MAC of 6 bytes");
    let ip = ip.parse::<Ipv4Addr>().expect("IPv4 address").octets();
    let mut tap = OpenOptions::new().read(true).write(true).open("/dev/net/tun").expect("open /dev/net/tun");
    // SAFETY: zeroed ifreq with a short name; ioctl on our own fd.
    unsafe {
        let mut ifr: libc::ifreq = std::mem::zeroed();
        for (d, s) in ifr.ifr_name.iter_mut().zip(ifname.as_bytes()) {
            *d = *s as libc::c_char;
        }
        ifr.ifr_ifru.ifru_flags = IFF_TAP | IFF_NO_PI;
        assert_eq!(
            libc::ioctl(tap.as_raw_fd(), TUNSETIFF, &mut ifr),
            0,
            "TUNSETIFF {ifname}: {}",
            std::io::Error::last_os_error()
        );
    }
    println!("ready");
    let mut buf = [0u8; 65536];
    loop {
        let n = tap.read(&mut buf).expect("read tap");
        if let Some(r) = answer(&buf[..n], mac, ip) {
            tap.write_all(&r).expect("write tap");
        }
    }
}
