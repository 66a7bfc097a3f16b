//! `overlayctl metrics` and `agent --metrics`: the Prometheus text format
//! (checked by Debian's promtool), with values equal to `stats -j`, `fdb
//! show` and `status`.

use std::collections::BTreeMap;

use overlay_tests::{
    conf::{Config, blue_host, config, fdb_port, host_ip, vxlan},
    etcd::{self, Agent, Etcd},
    lab::{Host, hosts_with_vms, wait_until},
    netns::Netns,
};
use serde_json::Value;

/// Samples of a scrape: "name{labels}" -> value.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').unwrap_or_else(|| panic!("sample line {l:?}"));
            (k.to_string(), v.parse().unwrap_or_else(|_| panic!("value in {l:?}")))
        })
        .collect()
}

/// A `metrics` server in `ns` on 127.0.0.1:`port` (killed with the guard).
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn scrape(ns: &Netns, port: u16) -> String {
    let text = ns.sh(&format!("curl -sf http://127.0.0.1:{port}/metrics"));
    // promtool reads it as Prometheus does, and lints it.
    let check = ns.try_sh(&format!("curl -sf http://127.0.0.1:{port}/metrics | promtool check metrics"));
    assert!(check.is_ok(), "promtool check metrics: {check:?}\n{text}");
    text
}

#[test]
fn metrics_pass_promtool_and_equal_stats() {
    let (hosts, _u, vms) = hosts_with_vms(2);
    let mut c0 = blue_host(0, 2);
    c0.fdb.push(fdb_port("02:00:00:00:00:77", "blue", "vm1"));
    hosts[0].up(&c0);
    hosts[1].up(&blue_host(1, 2));
    vms[0].ping("203.0.113.2").expect("traffic for the counters");
    let h = &hosts[0];
    let _server = Server(h.ns.spawn(&format!(
        "exec {} --name {} metrics --listen 127.0.0.1:9464",
        overlay_tests::lab::overlayctl().display(),
        h.instance
    )));
    netns_lab::wait_listening(&h.ns.name, "t", 9464).expect("metrics server listens");
    // A quiet moment: stats before and after the scrape agree, and so must
    // the scrape (retried should a stray frame move a counter meanwhile).
    let (mut before, mut text) = (Value::Null, String::new());
    wait_until("a scrape between two equal stats", 10, || {
        before = h.stats();
        text = scrape(&h.ns, 9464);
        h.stats() == before
    });
    let m = samples(&text);
    let total = |reason: &str| -> f64 {
        m.iter()
            .filter(|(k, _)| {
                k.starts_with("overlay_packets_total{") && k.contains(&format!("reason=\"{reason}\""))
            })
            .map(|(_, v)| v)
            .sum()
    };
    for (reason, v) in before["total"].as_object().unwrap() {
        assert_eq!(total(reason), v.as_u64().unwrap() as f64, "{reason}: metrics sum = stats total");
    }
    for (reason, v) in before["networks"]["blue"].as_object().unwrap() {
        let k = format!("overlay_packets_total{{network=\"blue\",reason=\"{reason}\"}}");
        assert_eq!(m.get(&k).copied(), Some(v.as_u64().unwrap() as f64), "{k}");
    }
    assert!(total("encap") > 0.0 && total("decap") > 0.0, "the ping was counted");
    // FDB entries by type, as fdb show.
    let fdb = h.fdb();
    for t in ["static", "learned", "control"] {
        let n = fdb.iter().filter(|r| r["type"] == t).count() as f64;
        let k = format!("overlay_fdb_entries{{network=\"blue\",type=\"{t}\"}}");
        assert_eq!(m.get(&k).copied(), Some(n), "{k}");
    }
    let st: Value = serde_json::from_str(&h.ctl("-j status")).unwrap();
    let net = &st["networks"][0];
    for (family, field) in [("overlay_fdb_learned", "learned"), ("overlay_fdb_max_learned", "max_learned")] {
        let k = format!("{family}{{network=\"blue\"}}");
        assert_eq!(m.get(&k).copied(), Some(net[field].as_u64().unwrap() as f64), "{k}");
    }
    assert_eq!(m.get("overlay_peers{network=\"blue\"}"), Some(&1.0));
    assert_eq!(m.get("overlay_ports{network=\"blue\"}"), Some(&1.0));
    assert_eq!(m.get("overlay_interface_attached{interface=\"vm1\",role=\"port\"}"), Some(&1.0));
    // A counter moves, the next scrape follows.
    vms[0].ping("203.0.113.2").expect("more traffic");
    let encap_now = h.stats()["total"]["encap"].as_u64().unwrap() as f64;
    let m2 = samples(&scrape(&h.ns, 9464));
    let encap2: f64 = m2.iter().filter(|(k, _)| k.contains("reason=\"encap\"")).map(|(_, v)| v).sum();
    assert_eq!(encap2, encap_now);
    assert_eq!(
        h.ns.try_sh("curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:9464/nope").unwrap(),
        "404"
    );
}

#[test]
fn agent_serves_control_plane_metrics() {
    let hosts = [Host::new("h"), Host::new("h")];
    let u = overlay_tests::lab::Underlay::new(&[&hosts[0], &hosts[1]], "192.0.2");
    let _etcd = Etcd::start(&u);
    let cfg = |i: usize| Config {
        networks: vec![vxlan("blue", 100, &[])],
        ports: vec![],
        control: Some(etcd::control(10)),
        ..config(&host_ip(i))
    };
    let _a1 = Agent::start(&hosts[1], &cfg(1), "");
    let _a0 = Agent::start(&hosts[0], &cfg(0), "--metrics 127.0.0.1:9465");
    netns_lab::wait_listening(&hosts[0].ns.name, "t", 9465).expect("agent's metrics server listens");
    wait_until("host 2 registered and scraped", 10, || {
        samples(&scrape(&hosts[0].ns, 9465)).get("overlay_remote_vteps{network=\"blue\"}") == Some(&1.0)
    });
    let m = samples(&scrape(&hosts[0].ns, 9465));
    assert_eq!(m.get("overlay_control_connected"), Some(&1.0));
    assert_eq!(m.get("overlay_control_agent_running"), Some(&1.0));
    assert_eq!(m.get("overlay_control_remote_vteps"), Some(&1.0));
    assert!(m.get("overlay_control_revision").is_some_and(|r| *r > 0.0));
}
