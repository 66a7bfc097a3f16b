//! Debian's podman 4.3 (rootful, CNI network backend, runc) with private
//! configuration, storage and CNI config dirs: nothing of the machine's own
//! podman or CNI set-up is read or written. A busybox image is made offline
//! (`podman import` of a rootfs holding Debian's static busybox).
//!
//! Each host gets its own containers.conf (its CNI config dir); podman runs
//! as `nsenter --net=/run/netns/HOST podman ...`, so the plugin runs in the
//! host's namespace and the host end of each container's veth lands there
//! (`ip netns exec` would hide the cgroup mount runc needs).

use std::{path::PathBuf, process::Command};

use serde_json::Value;

use crate::{cni::CniDir, lab::Host, netns::unique};

pub const IMAGE: &str = "localhost/ovt-busybox:latest";

pub struct Podman {
    pub dir: PathBuf,
    containers: std::sync::Mutex<Vec<(String, String)>>,
}

impl Podman {
    /// Private storage with the busybox image.
    pub fn new() -> Podman {
        let dir = std::env::temp_dir().join(unique("podman"));
        let rootfs = dir.join("rootfs");
        std::fs::create_dir_all(rootfs.join("bin")).expect("podman dir");
        std::fs::copy("/usr/bin/busybox", rootfs.join("bin/busybox")).expect("copy busybox (busybox-static)");
        for a in ["sh", "ping", "ip", "nc", "sleep", "cat", "dd", "wc", "echo", "hostname"] {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(a)).expect("busybox link");
        }
        let p = Podman { dir, containers: Default::default() };
        let tar = p.dir.join("busybox.tar");
        crate::netns::host_sh(&format!("tar -C {} -cf {} .", rootfs.display(), tar.display()));
        p.podman(None, &format!("import -q {} {IMAGE}", tar.display())).expect("podman import");
        p
    }

    fn conf_path(&self, host: Option<&Host>) -> PathBuf {
        self.dir.join(format!("containers-{}.conf", host.map_or("root", |h| h.ns.name.as_str())))
    }

    /// `host`'s containers.conf: runc, rlimits within this machine's hard
    /// limits, the CNI backend with `cni` as the plugin dir and a config dir
    /// of the host's own holding `conflist`.
    pub fn add_network(&self, host: &Host, cni: &CniDir, conflist: &Value) {
        let net_d = self.dir.join(format!("net.d-{}", host.ns.name));
        std::fs::create_dir_all(&net_d).expect("net.d");
        let name = conflist["name"].as_str().expect("conflist name");
        std::fs::write(net_d.join(format!("{name}.conflist")), conflist.to_string()).expect("conflist");
        let conf = format!(
            "[containers]\ndefault_ulimits = [\"nofile=1024:1024\", \"nproc=1000:1000\"]\n\
             [network]\nnetwork_backend = \"cni\"\ncni_plugin_dirs = [\"{}\"]\nnetwork_config_dir = \"{}\"\n\
             [engine]\nruntime = \"runc\"\nevents_logger = \"none\"\ncgroup_manager = \"cgroupfs\"\n",
            cni.path(),
            net_d.display()
        );
        std::fs::write(self.conf_path(Some(host)), conf).expect("containers.conf");
    }

    fn command(&self, host: Option<&Host>) -> Command {
        let mut c = match host {
            Some(h) => {
                let mut c = Command::new("nsenter");
                c.arg(format!("--net=/run/netns/{}", h.ns.name)).arg("podman");
                c
            }
            None => Command::new("podman"),
        };
        let d = |s: &str| self.dir.join(s).display().to_string();
        c.args([
            "--root",
            &d("root"),
            "--runroot",
            &d("run"),
            "--tmpdir",
            &d("tmp"),
            "--storage-driver",
            "vfs",
        ]);
        let conf = self.conf_path(host);
        if !conf.exists() {
            std::fs::write(&conf, "[engine]\nruntime = \"runc\"\nevents_logger = \"none\"\n").expect("conf");
        }
        c.env("CONTAINERS_CONF", conf);
        c
    }

    /// `podman ARGS` (split on whitespace) as `host` (None: no network).
    pub fn podman(&self, host: Option<&Host>, args: &str) -> Result<String, String> {
        let o =
            self.command(host).args(args.split_whitespace()).output().map_err(|e| format!("podman: {e}"))?;
        let (out, err) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
        if o.status.success() {
            Ok(out.into_owned())
        } else {
            Err(format!("podman {args} failed ({}):\n{out}\n{err}", o.status))
        }
    }

    /// `podman run -d --name NAME --network NET IMAGE sh -c SCRIPT` on `host`.
    pub fn run(&self, host: &Host, network: &str, script: &str) -> String {
        let name = unique("ctr");
        self.containers.lock().unwrap().push((host.ns.name.clone(), name.clone()));
        let o = self
            .command(Some(host))
            .args(["run", "-d", "--name", &name, "--network", network, IMAGE, "sh", "-c", script])
            .output()
            .expect("podman run");
        assert!(o.status.success(), "podman run: {}", String::from_utf8_lossy(&o.stderr));
        name
    }

    /// `podman exec NAME sh -c SCRIPT`.
    pub fn exec(&self, host: &Host, name: &str, script: &str) -> Result<String, String> {
        let o =
            self.command(Some(host)).args(["exec", name, "sh", "-c", script]).output().expect("podman exec");
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        if o.status.success() { Ok(out) } else { Err(format!("{out}{}", String::from_utf8_lossy(&o.stderr))) }
    }

    /// The address podman recorded for `name` on `network`.
    pub fn address(&self, host: &Host, name: &str, network: &str) -> String {
        let f = format!("{{{{(index .NetworkSettings.Networks \"{network}\").IPAddress}}}}");
        let o = self.command(Some(host)).args(["inspect", "--format", &f, name]).output().expect("inspect");
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }

    /// `podman rm -f NAME` (the runtime's DEL).
    pub fn rm(&self, host: &Host, name: &str) {
        self.podman(Some(host), &format!("rm -f -t 0 {name}")).unwrap_or_else(|e| panic!("{e}"));
        self.containers.lock().unwrap().retain(|(_, n)| n != name);
    }
}

impl Default for Podman {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        // Containers first (their netns and mounts), while the hosts exist.
        for (host, name) in self.containers.lock().unwrap().drain(..) {
            let conf = self.dir.join(format!("containers-{host}.conf"));
            let d = |s: &str| self.dir.join(s).display().to_string();
            let _ = Command::new("nsenter")
                .arg(format!("--net=/run/netns/{host}"))
                .args(["podman", "--root", &d("root"), "--runroot", &d("run"), "--tmpdir", &d("tmp")])
                .args(["--storage-driver", "vfs", "rm", "-f", "-t", "0", &name])
                .env("CONTAINERS_CONF", conf)
                .output();
        }
        let _ = self.podman(None, "rmi -a -f");
        let _ = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "grep -o ' {0}[^ ]*' /proc/self/mounts | sort -r | xargs -r -n1 umount -l; rm -rf {0}",
                self.dir.display()
            ))
            .status();
    }
}
