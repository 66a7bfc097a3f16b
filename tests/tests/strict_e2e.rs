//! The VTEP is as strict as the kernel's receive path (our TC hook runs
//! before `ip_rcv` and `rp_filter`). Crafted VXLAN from a namespace on the
//! underlay segment, one rule each: delivered 0, counted 1; and a positive
//! control, the same frame made valid, delivered once.

use overlay_tests::conf::*;
use overlay_tests::lab::*;
use overlay_tests::netns::Netns;

const VM: &str = "02:00:00:00:00:01";
const SENDER: &str = "02:00:00:00:00:77";

/// Host 192.0.2.1 with one tenant in blue (VNI 100), the attacker on the
/// same segment, and the host's underlay MAC.
struct Lab {
    h: Host,
    vm: Vm,
    atk: Netns,
    mac: String,
    _u: Underlay,
}

/// One host with network blue (VNI 100) as `blue` makes it, port vm1 in it.
fn lab(rp_filter: RpFilter, blue: Network) -> Lab {
    let (h, u) = one_host();
    let vm = Vm::attach(&h, "vm1", VM, "203.0.113.1/24");
    let mut c = Config { networks: vec![blue], ports: vec![access("vm1", "blue")], ..config("192.0.2.1") };
    c.underlay.rp_filter = rp_filter;
    h.up(&c);
    let atk = u.attacker();
    let mac = h.ns.sh("cat /sys/class/net/u0/address").trim().to_string();
    Lab { h, vm, atk, mac, _u: u }
}

impl Lab {
    /// VXLAN (VNI 100) carrying a 60-byte frame to the tenant: `dst` is the
    /// outer destination MAC, `src` the outer source address, `ip` extra
    /// IP() arguments, `tail` bytes appended after the whole packet.
    fn send(&self, dst: &str, src: &str, ip: &str, tail: usize) {
        let p = format!(
            "Ether(dst='{dst}', src='02:00:00:00:66:66')/IP(src='{src}', dst='192.0.2.1'{ip})/UDP(sport=50000, dport=4789)\
             /VXLAN(vni=100)/Ether(dst='{VM}', src='{SENDER}', type=0x88b5)/Raw(b'v'*46)"
        );
        send_frame(&self.atk, "eth0", &format!("Raw(bytes({p}) + b'J'*{tail})"));
    }

    /// Frames and bytes the tenant received since `before`.
    fn received(&self, before: (u64, u64)) -> (u64, u64) {
        let (p, b) = self.rx();
        (p - before.0, b - before.1)
    }

    fn rx(&self) -> (u64, u64) {
        let b =
            self.vm.ns.sh("cat /sys/class/net/eth0/statistics/rx_bytes").trim().parse().expect("rx_bytes");
        (self.vm.ns.rx_packets("eth0"), b)
    }

    /// Waits for `counter` to reach `n`, then checks it is exactly `n`.
    fn await_counter(&self, counter: &str, n: u64) {
        wait_until(&format!("{counter} reaches {n}"), 10, || self.h.counter(counter) >= n);
        assert_eq!(self.h.counter(counter), n, "{counter}");
    }
}

#[test]
fn outer_checksum_l2_address_and_trailing_bytes() {
    let l = lab(RpFilter::Strict, vxlan("blue", 100, &["192.0.2.2"]));
    l.vm.ns.sh("ip link set eth0 promisc on");
    let rx = l.rx();
    l.send(&l.mac, "192.0.2.2", ", chksum=0x1234", 0);
    l.await_counter("drop_bad_ip_checksum", 1);
    l.send("02:00:00:00:99:99", "192.0.2.2", "", 0);
    l.await_counter("drop_other_host", 1);
    assert_eq!(l.received(rx), (0, 0), "nothing delivered");
    // Positive control, with 20 bytes of junk after the IP packet and,
    // second, inside the IP packet after the UDP payload: the tenant gets
    // the 60-byte inner frame, not one byte more.
    l.send(&l.mac, "192.0.2.2", "", 20);
    let p = "IP(src='192.0.2.2', dst='192.0.2.1')/UDP(sport=50000, dport=4789, len=8+8+60)/VXLAN(vni=100)\
             /Ether(dst='02:00:00:00:00:01', src='02:00:00:00:00:77', type=0x88b5)/Raw(b'v'*46)/Raw(b'J'*20)";
    send_frame(&l.atk, "eth0", &format!("Ether(dst='{}', src='02:00:00:00:66:66')/{p}", l.mac));
    l.await_counter("decap", 2);
    wait_until("two frames delivered", 10, || l.received(rx).0 >= 2);
    assert_eq!(l.received(rx), (2, 120), "two 60-byte frames");
    assert_eq!(l.h.counter("drop_malformed"), 0);
}

#[test]
fn addresses_that_are_no_vtep_are_never_learned() {
    let l = lab(RpFilter::Strict, Network { learn_unknown_peers: true, ..vxlan("blue", 100, &[]) });
    let rx = l.rx();
    for src in ["0.0.0.0", "255.255.255.255", "224.0.0.5", "127.0.0.1", "240.0.0.1", "192.0.2.1"] {
        l.send(&l.mac, src, "", 0);
    }
    l.await_counter("drop_vtep_src_invalid", 6);
    assert_eq!(l.received(rx), (0, 0));
    assert!(l.h.fdb().is_empty(), "nothing learned: {:?}", l.h.fdb());
    // Positive control: an unknown but valid VTEP is accepted and learned.
    l.send(&l.mac, "192.0.2.9", "", 0);
    l.await_counter("decap", 1);
    assert_eq!(l.h.fdb_entry("blue", SENDER).expect("learned")["location"], "remote:192.0.2.9");
}

/// A configured peer's address, spoofed from the wrong side: the route
/// back to 198.51.100.7 leaves by u1, not by u0 where the frame came in.
#[test]
fn reverse_path_check_strict_loose_and_off() {
    for (mode, delivered) in [(RpFilter::Strict, 0u64), (RpFilter::Loose, 1), (RpFilter::Off, 1)] {
        let l = lab(mode, vxlan("blue", 100, &["198.51.100.7"]));
        l.h.ns.sh("ip link add u1 type veth peer name u1b && ip link set u1 up && ip link set u1b up && ip addr add 198.51.100.1/24 dev u1");
        let rx = l.rx();
        l.send(&l.mac, "198.51.100.7", "", 0);
        if delivered == 0 {
            l.await_counter("drop_rp_filter", 1);
        } else {
            l.await_counter("decap", 1);
            wait_until("the frame delivered", 10, || l.received(rx).0 >= 1);
        }
        assert_eq!(l.received(rx).0, delivered, "rp_filter = {mode:?}");
        assert_eq!(l.h.counter("drop_rp_filter"), 1 - delivered, "rp_filter = {mode:?}");
    }
}
