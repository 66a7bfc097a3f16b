//! ARP and ND suppression end to end (#15): a tenant resolves 100
//! addresses of tenants on two other hosts and not one ARP request or
//! neighbour solicitation reaches those hosts; unknown addresses are still
//! resolved the old way; `learn_ip` learns from a gratuitous ARP.

use overlay_tests::{conf::*, lab::*, netns::Netns};

/// IPv4 and IPv6 addresses of host `h`'s tenant (h = 1 or 2 of hosts 0..2):
/// 25 of each.
fn addresses(h: usize) -> (Vec<String>, Vec<String>) {
    let base = 10 + 30 * (h - 1);
    let v4 = (base..base + 25).map(|i| format!("203.0.113.{i}")).collect();
    let v6 = (base..base + 25).map(|i| format!("2001:db8::{i:x}")).collect();
    (v4, v6)
}

/// IPv6 on a tenant's eth0 (the lab turns it off), without DAD, router
/// solicitations or a link-local address: no ND of its own but what the
/// test makes.
fn ipv6_on(vm: &Netns) {
    vm.sh("sysctl -qw net.ipv6.conf.eth0.addr_gen_mode=1 net.ipv6.conf.eth0.accept_dad=0 \
         net.ipv6.conf.eth0.router_solicitations=0 net.ipv6.conf.eth0.disable_ipv6=0");
}

/// Stops a capture started with [`tcpdump`] and returns its lines.
fn stop(cap: std::process::Child) -> Vec<String> {
    // `timeout` hands SIGINT on to tcpdump, which then flushes and exits.
    overlay_tests::netns::host_sh(&format!("kill -INT {}", cap.id()));
    let out = cap.wait_with_output().expect("tcpdump");
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
}

fn requests(lines: &[String]) -> Vec<&String> {
    lines.iter().filter(|l| l.contains("Request who-has") || l.contains("neighbor solicitation")).collect()
}

#[test]
fn hundred_addresses_resolve_without_one_request_reaching_their_hosts() {
    let (hosts, _u, vms) = hosts_with_vms(3);
    for vm in &vms {
        ipv6_on(&vm.ns);
    }
    vms[0].ns.sh("ip addr add 2001:db8::1/64 dev eth0 nodad");
    let mut pairs = vec![
        neigh("blue", "203.0.113.1", "02:00:00:00:00:01"),
        neigh("blue", "2001:db8::1", "02:00:00:00:00:01"),
    ];
    for h in [1, 2] {
        let mac = format!("02:00:00:00:00:{:02x}", h + 1);
        let (v4, v6) = addresses(h);
        for a in &v4 {
            vms[h].ns.sh(&format!("ip addr add {a}/24 dev eth0"));
        }
        for a in &v6 {
            vms[h].ns.sh(&format!("ip addr add {a}/64 dev eth0 nodad"));
        }
        pairs.extend(v4.iter().chain(&v6).map(|a| neigh("blue", a, &mac)));
    }
    assert_eq!(pairs.len(), 102, "100 addresses on hosts 2 and 3, and host 1's two");
    for (i, h) in hosts.iter().enumerate() {
        h.up(&Config { neigh: pairs.clone(), ..blue_host(i, 3) });
    }
    let status: serde_json::Value = serde_json::from_str(&hosts[0].ctl("-j status")).unwrap();
    assert_eq!(status["networks"][0]["suppress"], true, "on by default with neighbour entries");
    let caps: Vec<std::process::Child> = [1, 2]
        .iter()
        .flat_map(|&h| {
            // What reaches the tenant and the host (not what they send).
            let mac = format!("02:00:00:00:00:{:02x}", h + 1);
            [
                tcpdump(&vms[h].ns, &format!("-nn -l -i eth0 '(arp or icmp6) and not ether src {mac}'")),
                tcpdump(
                    &hosts[h].ns,
                    &format!("-nn -l -i u0 'udp port 4789 and not src host {}'", host_ip(h)),
                ),
            ]
        })
        .collect();
    let mut targets = Vec::new();
    for h in [1, 2] {
        let (v4, v6) = addresses(h);
        targets.extend(v4.into_iter().chain(v6));
    }
    let script: String =
        targets.iter().map(|a| format!("ping -c 1 -W 3 {a} >/dev/null || echo FAIL {a}; ")).collect();
    let failed = vms[0].ns.sh(&script);
    let lines: Vec<Vec<String>> = caps.into_iter().map(stop).collect();
    assert_eq!(failed.trim(), "", "every address answers pings");
    for (what, l) in ["tenant of host 2", "underlay of host 2", "tenant of host 3", "underlay of host 3"]
        .iter()
        .zip(&lines)
    {
        assert_eq!(requests(l), Vec::<&String>::new(), "{what} received ARP requests or solicitations");
    }
    assert!(lines[1].len() >= 50, "host 2's underlay capture saw the pings: {:?}", lines[1]);
    assert_eq!(
        (hosts[0].counter("arp_suppressed"), hosts[0].counter("nd_suppressed")),
        (50, 50),
        "host 1 answered each address once"
    );
    // An address nobody configured: flooded and resolved the old way.
    vms[1].ns.sh("ip addr add 203.0.113.200/24 dev eth0");
    let flooded = hosts[0].counter("flood_remote_copies");
    vms[0].ping("203.0.113.200").expect("unknown address resolved by flooding");
    assert!(hosts[0].counter("flood_remote_copies") >= flooded + 2, "the request went to both peers");
    let n = hosts[0].ctl("neigh show --network blue");
    assert!(n.contains("2001:db8::a") && n.contains("static"), "{n}");
}

#[test]
fn learn_ip_learns_from_a_gratuitous_arp_and_answers_with_it() {
    let (hosts, _u, vms) = hosts_with_vms(1);
    let h = &hosts[0];
    let other = Vm::attach(h, "vm2", "02:00:00:00:00:22", "203.0.113.22/24");
    let mut c = blue_host(0, 1);
    c.networks[0].learn_ip = true;
    c.ports.push(access("vm2", "blue"));
    h.up(&c);
    // (No reply is expected to an unsolicited ARP: arping says 1.)
    vms[0].ns.sh("arping -q -U -c 1 -i eth0 203.0.113.1; true");
    wait_until("the gratuitous ARP learned", 10, || h.counter("neigh_learned") >= 1);
    let rows: serde_json::Value = serde_json::from_str(&h.ctl("-j neigh show")).unwrap();
    let row =
        rows.as_array().unwrap().iter().find(|r| r["ip"] == "203.0.113.1").expect("learned pair").clone();
    assert_eq!(
        (row["mac"].as_str(), row["type"].as_str()),
        (Some("02:00:00:00:00:01"), Some("learned")),
        "{row}"
    );
    let rx = vms[0].ns.rx_packets("eth0");
    other.ns.sh("arping -q -c 1 -w 3 -i eth0 203.0.113.1");
    assert_eq!(h.counter("arp_suppressed"), 1, "answered from the learned pair");
    assert_eq!(vms[0].ns.rx_packets("eth0"), rx, "the owner did not even see the request");
    // A configured pair wins over any announcement; run-time pairs come and go.
    h.ctl("neigh add 203.0.113.7 02:00:00:00:00:22 --network blue");
    send_frame(
        &vms[0].ns,
        "eth0",
        "Ether(dst='ff:ff:ff:ff:ff:ff', src='02:00:00:00:00:01')/\
         ARP(op=1, hwsrc='02:00:00:00:00:01', psrc='203.0.113.7', pdst='203.0.113.7')",
    );
    wait_until("the conflict counted", 10, || h.counter("neigh_conflict") >= 1);
    let n = h.ctl("neigh show");
    assert!(
        n.lines()
            .any(|l| l.contains("203.0.113.7") && l.contains("02:00:00:00:00:22") && l.contains("static")),
        "{n}"
    );
    h.ctl("neigh del 203.0.113.7 --network blue");
    h.ctl("neigh del 203.0.113.1 --network blue");
    assert!(!h.ctl("neigh show").contains("203.0.113."), "both gone");
    let e = h.try_ctl("neigh del 203.0.113.1 --network blue").expect_err("nothing to delete");
    assert!(e.contains("no neighbour entry"), "{e}");
    let e = h.try_ctl("neigh add 224.0.0.1 02:00:00:00:00:22 --network blue").expect_err("multicast");
    assert!(e.contains("not a host address"), "{e}");
}

/// On a trunk the answer goes back tagged as the request came (VLAN 10),
/// and IPv6 answers too.
#[test]
fn answers_on_a_trunk_carry_the_request_tag() {
    let (hosts, _u, _vms) = hosts_with_vms(1);
    let h = &hosts[0];
    let st = Netns::new("st");
    overlay_tests::netns::host_sh(&format!(
        "ip link add t0 netns {} type veth peer name eth0 netns {}",
        h.ns.name, st.name
    ));
    h.ns.sh("ip link set t0 up");
    st.sh("ip link set eth0 up");
    let mut c = blue_host(0, 1);
    c.networks[0].vlan = Some(10);
    c.ports.push(trunk("t0", &["blue"]));
    c.neigh = vec![
        neigh("blue", "203.0.113.50", "02:00:00:00:00:50"),
        neigh("blue", "2001:db8::50", "02:00:00:00:00:50"),
    ];
    h.up(&c);
    let cap = tcpdump(&st, "-nn -e -l -c 2 -i eth0 'ether src 02:00:00:00:00:50'");
    send_frame(
        &st,
        "eth0",
        "Ether(dst='ff:ff:ff:ff:ff:ff', src='02:00:00:00:00:77')/Dot1Q(vlan=10)/\
         ARP(op=1, hwsrc='02:00:00:00:00:77', psrc='203.0.113.77', pdst='203.0.113.50')",
    );
    send_frame(
        &st,
        "eth0",
        "Ether(dst='33:33:ff:00:00:50', src='02:00:00:00:00:77')/Dot1Q(vlan=10)/\
         IPv6(src='2001:db8::77', dst='ff02::1:ff00:50', hlim=255)/ICMPv6ND_NS(tgt='2001:db8::50')/\
         ICMPv6NDOptSrcLLAddr(lladdr='02:00:00:00:00:77')",
    );
    let out = cap.wait_with_output().expect("tcpdump");
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].contains("vlan 10") && lines[0].contains("Reply 203.0.113.50 is-at 02:00:00:00:00:50"),
        "{text}"
    );
    assert!(
        lines[1].contains("vlan 10") && lines[1].contains("neighbor advertisement, tgt is 2001:db8::50"),
        "{text}"
    );
    assert_eq!((h.counter("arp_suppressed"), h.counter("nd_suppressed")), (1, 1));
}
