//! Named network namespaces removed on drop.

use std::{
    process::{Command, Output},
    sync::atomic::{AtomicU32, Ordering},
};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A name no other test (or test run) uses: `ovt<pid>-<n><tag>`.
pub fn unique(tag: &str) -> String {
    format!("ovt{}-{}{}", std::process::id() % 100_000, NEXT.fetch_add(1, Ordering::SeqCst), tag)
}

fn describe(cmd: &str, o: &Output) -> String {
    format!(
        "`{cmd}` failed ({}):\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout).trim(),
        String::from_utf8_lossy(&o.stderr).trim()
    )
}

/// Runs `sh -c cmd` in the root namespace (setup only: `ip netns add`,
/// `ip link add ... netns X`).
pub fn host_sh(cmd: &str) -> String {
    let o = Command::new("sh").arg("-c").arg(cmd).output().expect("spawn sh");
    assert!(o.status.success(), "{}", describe(cmd, &o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub struct Netns {
    pub name: String,
}

impl Netns {
    /// A fresh namespace with loopback up and IPv6 off (no ND/MLD noise in
    /// frame counts).
    pub fn new(tag: &str) -> Netns {
        let name = unique(tag);
        host_sh(&format!("ip netns add {name}"));
        let ns = Netns { name };
        ns.sh("ip link set lo up && sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1");
        ns
    }

    pub fn try_sh(&self, cmd: &str) -> Result<String, String> {
        let o = Command::new("ip")
            .args(["netns", "exec", &self.name, "sh", "-c", cmd])
            .output()
            .expect("spawn ip netns exec");
        if o.status.success() {
            Ok(String::from_utf8_lossy(&o.stdout).into_owned())
        } else {
            Err(describe(&format!("[{}] {cmd}", self.name), &o))
        }
    }

    /// Runs `sh -c cmd` in the namespace; panics with the output on failure.
    pub fn sh(&self, cmd: &str) -> String {
        self.try_sh(cmd).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts a background command (killed when the namespace goes).
    pub fn spawn(&self, cmd: &str) -> std::process::Child {
        Command::new("ip")
            .args(["netns", "exec", &self.name, "sh", "-c", cmd])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn")
    }

    /// Received packets counted by an interface.
    pub fn rx_packets(&self, dev: &str) -> u64 {
        self.sh(&format!("cat /sys/class/net/{dev}/statistics/rx_packets")).trim().parse().expect("counter")
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("sh")
            .arg("-c")
            .arg(format!("(ip netns pids {0} | xargs -r kill -9; ip netns del {0}) 2>/dev/null", self.name))
            .status();
    }
}

impl Netns {
    /// Runs `f` on a thread that joined this network namespace.
    pub fn within<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        use std::os::fd::AsRawFd;
        let file = std::fs::File::open(format!("/run/netns/{}", self.name)).expect("netns file");
        std::thread::spawn(move || {
            // SAFETY: setns on this thread only.
            assert_eq!(unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) }, 0, "setns");
            f()
        })
        .join()
        .expect("netns thread")
    }

    /// Names of the programs attached to TCX ingress of `dev`, in order.
    pub fn tcx_ingress(&self, dev: &str) -> Vec<String> {
        self.tcx_ingress_programs(dev).into_iter().map(|(_, n)| n).collect()
    }

    /// (id, name) of the programs attached to TCX ingress of `dev`, in order.
    pub fn tcx_ingress_programs(&self, dev: &str) -> Vec<(u32, String)> {
        let dev = dev.to_string();
        self.within(move || {
            use aya::programs::{SchedClassifier, TcAttachType};
            let (_, progs) = SchedClassifier::query_tcx(&dev, TcAttachType::Ingress).expect("query tcx");
            progs.iter().map(|p| (p.id(), p.name_as_str().unwrap_or("?").to_string())).collect()
        })
    }
}
