//! A real etcd cluster for the control-plane tests: three members of
//! Debian's `etcd-server` in one namespace on the underlay segment
//! (192.0.2.250-252), data in a temp dir, all removed by `Drop`; and the
//! agents the hosts run.

use std::{
    path::PathBuf,
    process::Child,
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::{
    conf::Config,
    lab::{Host, Underlay, overlayctl},
    netns::{Netns, host_sh},
};

pub const MEMBERS: usize = 3;

pub fn member_ip(i: usize) -> String {
    format!("192.0.2.{}", 250 + i)
}

/// The client URLs of every member.
pub fn endpoints() -> Vec<String> {
    (0..MEMBERS).map(|i| format!("http://{}:2379", member_ip(i))).collect()
}

pub struct Etcd {
    pub ns: Netns,
    members: Vec<Option<Child>>,
    data: PathBuf,
    /// Client TLS (server certificate, client certificates required).
    pub tls: Option<Tls>,
    /// Root's password once authentication is enabled.
    root_password: Option<String>,
}

/// A CA, a server certificate for the members' addresses and a client
/// certificate, made with openssl in `dir`.
pub struct Tls {
    pub dir: PathBuf,
}

impl Tls {
    pub fn new(dir: &std::path::Path) -> Tls {
        std::fs::create_dir_all(dir).expect("tls dir");
        let ips: Vec<String> = (0..MEMBERS).map(|i| format!("IP:{}", member_ip(i))).collect();
        let d = dir.display();
        let key = |name: &str| {
            format!(
                "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout {d}/{name}.key \
                 -out {d}/{name}.csr -subj /CN=ovt-{name} 2>/dev/null"
            )
        };
        let sign = |name: &str, ext: &str| {
            format!(
                "printf '{ext}' > {d}/{name}.ext && openssl x509 -req -in {d}/{name}.csr -CA {d}/ca.crt \
                 -CAkey {d}/ca.key -CAcreateserial -out {d}/{name}.crt -days 1 -extfile {d}/{name}.ext 2>/dev/null"
            )
        };
        host_sh(&format!(
            "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout {d}/ca.key \
             -out {d}/ca.crt -subj /CN=ovt-ca -days 1 2>/dev/null && {} && {} && {} && {}",
            key("server"),
            sign("server", &format!("subjectAltName={}\\nextendedKeyUsage=serverAuth", ips.join(","))),
            key("client"),
            sign("client", "extendedKeyUsage=clientAuth"),
        ));
        Tls { dir: dir.to_path_buf() }
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Etcd {
    /// Starts the cluster on `underlay` and waits until it has a leader.
    pub fn start(underlay: &Underlay) -> Etcd {
        Etcd::start_with(underlay, false)
    }

    /// The same, clients speaking TLS with client certificates.
    pub fn start_tls(underlay: &Underlay) -> Etcd {
        Etcd::start_with(underlay, true)
    }

    fn start_with(underlay: &Underlay, tls: bool) -> Etcd {
        let ns = underlay.plug("etcd", "e0");
        ns.sh("ip link set lo up && ip link set eth0 up");
        for i in 0..MEMBERS {
            ns.sh(&format!("ip addr add {}/24 dev eth0", member_ip(i)));
        }
        let data = std::env::temp_dir().join(format!("{}-data", ns.name));
        std::fs::create_dir_all(&data).expect("etcd data dir");
        let tls = tls.then(|| Tls::new(&data.join("tls")));
        let mut e =
            Etcd { ns, members: (0..MEMBERS).map(|_| None).collect(), data, tls, root_password: None };
        for i in 0..MEMBERS {
            e.start_member(i);
        }
        e.wait_healthy();
        e
    }

    /// (Re)starts member `i` with its data dir (a restarted member rejoins).
    pub fn start_member(&mut self, i: usize) {
        let cluster: Vec<String> =
            (0..MEMBERS).map(|j| format!("m{j}=http://{}:2380", member_ip(j))).collect();
        let ip = member_ip(i);
        let (scheme, tls) = match &self.tls {
            Some(t) => (
                "https",
                format!(
                    "--cert-file {} --key-file {} --trusted-ca-file {} --client-cert-auth",
                    t.file("server.crt").display(),
                    t.file("server.key").display(),
                    t.file("ca.crt").display()
                ),
            ),
            None => ("http", String::new()),
        };
        let cmd = format!(
            "exec etcd --name m{i} --data-dir {data}/m{i} {tls} \
             --listen-client-urls {scheme}://{ip}:2379 --advertise-client-urls {scheme}://{ip}:2379 \
             --listen-peer-urls http://{ip}:2380 --initial-advertise-peer-urls http://{ip}:2380 \
             --initial-cluster {cluster} --initial-cluster-state new --initial-cluster-token {tok} \
             --log-level error --logger zap 2>>{log}",
            log = self.log(i).display(),
            data = self.data.display(),
            cluster = cluster.join(","),
            tok = self.ns.name,
        );
        let mut c = self.ns.spawn(&cmd);
        // Nobody reads its output: let it go to /dev/null instead of a full pipe.
        drop(c.stdout.take());
        drop(c.stderr.take());
        self.members[i] = Some(c);
    }

    /// Member `i`'s error log (kept when a test fails).
    fn log(&self, i: usize) -> PathBuf {
        std::env::temp_dir().join(format!("{}-m{i}.log", self.ns.name))
    }

    /// `kill -9` of member `i`.
    pub fn kill_member(&mut self, i: usize) {
        if let Some(mut c) = self.members[i].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn stop_all(&mut self) {
        for i in 0..MEMBERS {
            self.kill_member(i);
        }
    }

    pub fn start_all(&mut self) {
        for i in 0..MEMBERS {
            self.start_member(i);
        }
        self.wait_healthy();
    }

    /// Waits until a live member answers `/health` with a leader.
    pub fn wait_healthy(&self) {
        let live: Vec<usize> = (0..MEMBERS).filter(|i| self.members[*i].is_some()).collect();
        crate::lab::wait_until("etcd cluster healthy", 30, || {
            live.iter().any(|i| {
                self.ns
                    .try_sh(&format!("{} {}/health", self.curl(), self.url(*i)))
                    .is_ok_and(|o| o.contains("\"health\":\"true\""))
            })
        });
    }

    /// A v3 gateway request (`/v3/kv/put`, ...) to a live member; keys and
    /// values base64 as the gateway wants them.
    pub fn v3(&self, path: &str, body: &str) -> Value {
        let i = (0..MEMBERS).find(|i| self.members[*i].is_some()).expect("a live member");
        let auth = match &self.root_password {
            Some(pw) => {
                let body = serde_json::json!({"name": "root", "password": pw}).to_string();
                let out = self.ns.sh(&format!(
                    "{} -X POST {}/v3/auth/authenticate -d '{body}'",
                    self.curl(),
                    self.url(i)
                ));
                let v: Value =
                    serde_json::from_str(&out).unwrap_or_else(|e| panic!("authenticate: {e}: {out}"));
                format!("-H 'Authorization: {}'", v["token"].as_str().expect("token"))
            }
            None => String::new(),
        };
        let out =
            self.ns.sh(&format!("{} {auth} -X POST {}/v3/{path} -d '{body}'", self.curl(), self.url(i)));
        let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("etcd {path}: {e}: {out}"));
        assert!(v.get("error").is_none() || path == "auth/role/add", "etcd {path}: {v}");
        v
    }

    fn url(&self, i: usize) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}:2379", member_ip(i))
    }

    /// curl with the client certificate when the cluster wants one.
    fn curl(&self) -> String {
        match &self.tls {
            Some(t) => format!(
                "curl -s -m 5 --cacert {} --cert {} --key {}",
                t.file("ca.crt").display(),
                t.file("client.crt").display(),
                t.file("client.key").display()
            ),
            None => "curl -s -m 5".into(),
        }
    }

    /// Turns on authentication (RBAC) with user `root` and `password`.
    pub fn enable_auth(&mut self, password: &str) {
        self.v3("auth/user/add", &serde_json::json!({"name": "root", "password": password}).to_string());
        self.v3("auth/role/add", &serde_json::json!({"name": "root"}).to_string());
        self.v3("auth/user/grant", &serde_json::json!({"user": "root", "role": "root"}).to_string());
        let v = self.v3("auth/enable", "{}");
        assert!(v.get("error").is_none(), "auth enable: {v}");
        self.root_password = Some(password.into());
    }

    pub fn put(&self, key: &str, value: &str) {
        let body = serde_json::json!({"key": b64(key), "value": b64(value)}).to_string();
        self.v3("kv/put", &body);
    }

    /// The value of `key` (decoded; empty when absent).
    pub fn get(&self, key: &str) -> String {
        let v = self.v3("kv/range", &serde_json::json!({"key": b64(key)}).to_string());
        v["kvs"][0]["value"].as_str().map(unb64).unwrap_or_default()
    }

    /// Every key under `prefix` (decoded).
    pub fn keys(&self, prefix: &str) -> Vec<String> {
        let mut end = prefix.as_bytes().to_vec();
        *end.last_mut().expect("prefix") += 1;
        let body = serde_json::json!({"key": b64(prefix), "range_end": b64_bytes(&end), "keys_only": true});
        let v = self.v3("kv/range", &body.to_string());
        let mut keys: Vec<String> = v["kvs"]
            .as_array()
            .map(|a| a.iter().map(|kv| unb64(kv["key"].as_str().expect("key"))).collect())
            .unwrap_or_default();
        keys.sort();
        keys
    }

    /// The cluster's current revision.
    pub fn revision(&self) -> i64 {
        let v = self.v3("kv/range", &serde_json::json!({"key": b64("/")}).to_string());
        v["header"]["revision"].as_str().expect("revision").parse().expect("revision number")
    }

    pub fn compact(&self, revision: i64) {
        self.v3("kv/compaction", &serde_json::json!({"revision": revision, "physical": true}).to_string());
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.stop_all();
        let _ = std::fs::remove_dir_all(&self.data);
        if !std::thread::panicking() {
            for i in 0..MEMBERS {
                let _ = std::fs::remove_file(self.log(i));
            }
        }
    }
}

fn b64(s: &str) -> String {
    b64_bytes(s.as_bytes())
}

fn b64_bytes(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn unb64(s: &str) -> String {
    use base64::Engine;
    let b =
        base64::engine::general_purpose::STANDARD.decode(s).unwrap_or_else(|e| panic!("base64 {s:?}: {e}"));
    String::from_utf8(b).expect("utf8 key or value")
}

/// `[control]` for the cluster of [`Etcd`], with `lease_ttl`.
pub fn control(lease_ttl: u32) -> overlay_user::config::Control {
    overlay_user::config::Control {
        etcd: endpoints(),
        prefix: "/overlay".into(),
        lease_ttl,
        ca: None,
        cert: None,
        key: None,
        username: None,
        password_file: None,
    }
}

/// A running `overlayctl agent` on a host; stopped (SIGTERM) when dropped.
pub struct Agent {
    child: Option<Child>,
    pub instance: String,
    /// Its config file; its stderr goes to the same path + ".log" (kept
    /// when a test fails).
    config: PathBuf,
}

impl Agent {
    /// Writes `config` for `host` and starts its agent; returns once the
    /// agent reports it is connected to etcd.
    pub fn start(host: &Host, config: &Config, extra: &str) -> Agent {
        let a = Agent::spawn(host, config, extra);
        a.wait_connected(host);
        a
    }

    pub fn spawn(host: &Host, config: &Config, extra: &str) -> Agent {
        let path = std::env::temp_dir().join(format!("{}-agent.toml", host.instance));
        std::fs::write(&path, host.config_text(config)).expect("write config");
        let mut c = host.ns.spawn(&format!(
            "RUST_LOG=warn exec {} --name {} agent -c {} {extra} 2>>{}",
            overlayctl().display(),
            host.instance,
            path.display(),
            path.with_extension("toml.log").display()
        ));
        drop(c.stdout.take());
        Agent { child: Some(c), instance: host.instance.clone(), config: path }
    }

    pub fn wait_connected(&self, host: &Host) {
        crate::lab::wait_until("agent connected to etcd", 30, || {
            control_status(host).is_some_and(|c| c["running"] == true && c["connected"] == true)
        });
    }

    /// `kill -9`: the agent gets no chance to clean up.
    pub fn kill9(mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, and waits for it to exit (at most 10 s).
    pub fn stop(mut self) {
        self.terminate();
    }

    fn terminate(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: signalling our own child by its pid.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let end = Instant::now() + Duration::from_secs(10);
            while Instant::now() < end {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.terminate();
        let _ = std::fs::remove_file(&self.config);
        if !std::thread::panicking() {
            let _ = std::fs::remove_file(self.config.with_extension("toml.log"));
        }
    }
}

/// `status -j`'s `control` object of `host`, if it is up.
pub fn control_status(host: &Host) -> Option<Value> {
    let s: Value = serde_json::from_str(&host.try_ctl("-j status").ok()?).ok()?;
    Some(s["control"].clone())
}

/// The VTEPs `host` has from the control plane for `network`, sorted.
pub fn remote_vteps(host: &Host, network: &str) -> Vec<String> {
    let s: Value = serde_json::from_str(&host.ctl("-j status")).expect("status json");
    let n = s["networks"].as_array().expect("networks").iter().find(|n| n["name"] == network).cloned();
    let mut v: Vec<String> = n
        .and_then(|n| n["remote_vteps"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .map(|x| x.as_str().expect("address").to_string())
        .collect();
    v.sort();
    v
}

/// `host`'s FDB rows of type `control` as (network, mac, location), sorted.
pub fn control_rows(host: &Host) -> Vec<(String, String, String)> {
    let mut v: Vec<(String, String, String)> = host
        .fdb()
        .into_iter()
        .filter(|r| r["type"] == "control")
        .map(|r| {
            let s = |k: &str| r[k].as_str().expect("field").to_string();
            (s("network"), s("mac"), s("location"))
        })
        .collect();
    v.sort();
    v
}
