//! A real container runtime drives the plugin: podman 4.3 (rootful, CNI
//! backend) on two hosts, containers on the overlay ping and move 1 MiB over
//! TCP, and `podman rm -f` frees the address and the port.

use overlay_tests::{
    cni::{CniDir, host_ends},
    conf::{Config, blue_host},
    lab::{Host, Underlay},
    podman::Podman,
};
use serde_json::{Value, json};

fn conflist(cni: &CniDir, first: u8, last: u8) -> Value {
    let plugin = cni.conf("1.0.0", "blue", first, last);
    json!({"cniVersion": "1.0.0", "name": "ovl", "plugins": [plugin]})
}

#[test]
fn podman_containers_on_two_hosts_ping_and_talk_tcp() {
    let hosts = [Host::new("h"), Host::new("h")];
    let _u = Underlay::new(&[&hosts[0], &hosts[1]], "192.0.2");
    for (i, h) in hosts.iter().enumerate() {
        h.up(&Config { ports: vec![], ..blue_host(i, 2) });
    }
    // One CNI dir per host: host-local's store is each host's own.
    let cni = [CniDir::new(), CniDir::new()];
    let pod = Podman::new();
    pod.add_network(&hosts[0], &cni[0], &conflist(&cni[0], 10, 49));
    pod.add_network(&hosts[1], &cni[1], &conflist(&cni[1], 50, 89));

    // A TCP server handing out 1 MiB per connection (busybox nc; its
    // wget crashes in a static build on name service lookups).
    let web =
        pod.run(&hosts[1], "ovl", "exec nc -ll -p 8080 -e dd if=/dev/zero bs=1024 count=1024 2>/dev/null");
    let client = pod.run(&hosts[0], "ovl", "exec sleep 600");
    let web_ip = pod.address(&hosts[1], &web, "ovl");
    let client_ip = pod.address(&hosts[0], &client, "ovl");
    assert_eq!(web_ip, "203.0.113.50", "host-local of host 2");
    assert_eq!(client_ip, "203.0.113.10", "host-local of host 1");
    // The host end of each container's veth is a port in its host.
    for (h, c) in [(&hosts[0], &cni[0]), (&hosts[1], &cni[1])] {
        let ends = host_ends(h);
        assert_eq!(ends.len(), 1, "{ends:?}");
        assert!(h.ctl("status").contains(&ends[0]), "{} is a port", ends[0]);
        assert_eq!(c.leases("ovl").len(), 1);
    }
    pod.exec(&hosts[0], &client, &format!("ping -c 3 -W 2 {web_ip}"))
        .expect("container to container over VXLAN");
    let fetch = format!("nc -w 5 {web_ip} 8080 </dev/null | wc -c");
    let mut got = String::new();
    overlay_tests::lab::wait_until("1 MiB over TCP from the server container", 20, || {
        got = pod.exec(&hosts[0], &client, &fetch).unwrap_or_else(|e| e);
        got.trim() == "1048576"
    });
    pod.exec(&hosts[1], &web, &format!("ping -c 2 -W 2 {client_ip}")).expect("and back");

    pod.rm(&hosts[0], &client);
    pod.rm(&hosts[1], &web);
    for (h, c) in [(&hosts[0], &cni[0]), (&hosts[1], &cni[1])] {
        assert!(host_ends(h).is_empty(), "port's interface gone: {:?}", host_ends(h));
        assert!(c.leases("ovl").is_empty(), "address freed in host-local's store: {:?}", c.leases("ovl"));
        let st: Value = serde_json::from_str(&h.ctl("-j status")).unwrap();
        assert_eq!(st["networks"][0]["ports"], json!([]), "port removed");
    }
    // A new container on the same host: one address held again, its own.
    let again = pod.run(&hosts[0], "ovl", "exec sleep 600");
    assert_eq!(cni[0].leases("ovl"), [pod.address(&hosts[0], &again, "ovl")]);
}
