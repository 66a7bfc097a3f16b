//! VTEP addresses as the maps, events and trace steps hold them: 16 bytes
//! in network order, IPv6 as is, IPv4 as an IPv4-mapped address
//! (`::ffff:a.b.c.d`, RFC 4291 §2.5.5.2), so one key type serves both
//! underlay families and an address says its family.

/// A VTEP address: four words, each in network order (the bytes of the
/// IPv6 address in wire order).
pub type VtepAddr = [u32; 4];

/// The third word of an IPv4-mapped address (`0000:ffff`), network order.
const MAPPED_BE: u32 = 0x0000_ffffu32.to_be();

/// The all-zero address: "none" where an address is optional.
pub const NO_VTEP: VtepAddr = [0; 4];

/// IPv4 address `addr_be` (network order) as a VTEP address.
#[inline(always)]
pub const fn vtep_v4(addr_be: u32) -> VtepAddr {
    [0, 0, MAPPED_BE, addr_be]
}

/// Whether `a` is an IPv4 (mapped) address.
#[inline(always)]
pub const fn vtep_is_v4(a: &VtepAddr) -> bool {
    a[0] == 0 && a[1] == 0 && a[2] == MAPPED_BE
}

/// The IPv4 address (network order) of a mapped VTEP address.
#[inline(always)]
pub const fn vtep_v4_be(a: &VtepAddr) -> u32 {
    a[3]
}

/// IPv6 address bytes (wire order) as a VTEP address.
#[inline(always)]
pub const fn vtep_v6(b: [u8; 16]) -> VtepAddr {
    [
        u32::from_ne_bytes([b[0], b[1], b[2], b[3]]),
        u32::from_ne_bytes([b[4], b[5], b[6], b[7]]),
        u32::from_ne_bytes([b[8], b[9], b[10], b[11]]),
        u32::from_ne_bytes([b[12], b[13], b[14], b[15]]),
    ]
}

/// The address bytes in wire order.
#[inline(always)]
pub const fn vtep_bytes(a: &VtepAddr) -> [u8; 16] {
    let w = [a[0].to_ne_bytes(), a[1].to_ne_bytes(), a[2].to_ne_bytes(), a[3].to_ne_bytes()];
    [
        w[0][0], w[0][1], w[0][2], w[0][3], w[1][0], w[1][1], w[1][2], w[1][3], w[2][0], w[2][1], w[2][2],
        w[2][3], w[3][0], w[3][1], w[3][2], w[3][3],
    ]
}

#[inline(always)]
pub const fn vtep_eq(a: &VtepAddr, b: &VtepAddr) -> bool {
    a[0] == b[0] && a[1] == b[1] && a[2] == b[2] && a[3] == b[3]
}

/// Whether an IPv4 address (network order) can be a VTEP's: not zero,
/// broadcast, multicast, loopback or reserved (240.0.0.0/4).
#[inline(always)]
pub const fn is_unicast_v4(addr_be: u32) -> bool {
    let a = u32::from_be(addr_be);
    let first = (a >> 24) as u8;
    a != 0 && first != 127 && first < 224
}

/// Whether an address can be a VTEP's. IPv4 (mapped): as
/// [`is_unicast_v4`]. IPv6: not unspecified, loopback, multicast
/// (ff00::/8) or link-local (fe80::/10: it needs a scope the maps do not
/// keep), and not an IPv4-compatible or other address of `::/96`.
#[inline(always)]
pub const fn is_unicast_vtep(a: &VtepAddr) -> bool {
    if vtep_is_v4(a) {
        return is_unicast_v4(a[3]);
    }
    let b = vtep_bytes(a);
    let link_local = b[0] == 0xfe && b[1] & 0xc0 == 0x80;
    let v4_space = a[0] == 0 && a[1] == 0 && a[2] == 0; // ::, ::1, ::a.b.c.d
    b[0] != 0xff && !link_local && !v4_space
}

/// An IP address as a VTEP address (host side).
#[cfg(any(test, feature = "user"))]
pub fn vtep_from_ip(ip: impl Into<std::net::IpAddr>) -> VtepAddr {
    match ip.into() {
        std::net::IpAddr::V4(a) => vtep_v4(u32::from_ne_bytes(a.octets())),
        std::net::IpAddr::V6(a) => vtep_v6(a.octets()),
    }
}

/// A VTEP address as an IP address: a mapped one as IPv4 (host side).
#[cfg(any(test, feature = "user"))]
pub fn vtep_to_ip(a: &VtepAddr) -> std::net::IpAddr {
    let v6 = std::net::Ipv6Addr::from(vtep_bytes(a));
    match v6.to_ipv4_mapped() {
        Some(v4) => std::net::IpAddr::V4(v4),
        None => std::net::IpAddr::V6(v6),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_and_native_addresses() {
        let v4 = vtep_v4(u32::from_ne_bytes([192, 0, 2, 1]));
        assert_eq!(vtep_bytes(&v4), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1]);
        assert!(vtep_is_v4(&v4) && is_unicast_vtep(&v4));
        assert_eq!(vtep_v4_be(&v4), u32::from_ne_bytes([192, 0, 2, 1]));
        let ip: std::net::IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!((vtep_from_ip(ip), vtep_to_ip(&v4)), (v4, ip));
        let ip6: std::net::IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(vtep_to_ip(&vtep_from_ip(ip6)), ip6);
        let mut b = [0u8; 16];
        b[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        b[15] = 1;
        let v6 = vtep_v6(b);
        assert_eq!(vtep_bytes(&v6), b);
        assert!(!vtep_is_v4(&v6) && is_unicast_vtep(&v6));
        for bad in [
            [0u8; 16],
            {
                let mut l = [0u8; 16];
                l[15] = 1;
                l
            },
            {
                let mut m = [0u8; 16];
                m[0] = 0xff;
                m
            },
            {
                let mut l = [0u8; 16];
                l[0] = 0xfe;
                l[1] = 0x80;
                l
            },
        ] {
            assert!(!is_unicast_vtep(&vtep_v6(bad)), "{bad:?}");
        }
        for bad in [[0, 0, 0, 0], [127, 0, 0, 1], [224, 0, 0, 1], [255, 255, 255, 255]] {
            assert!(!is_unicast_vtep(&vtep_v4(u32::from_ne_bytes(bad))), "{bad:?}");
        }
    }
}
