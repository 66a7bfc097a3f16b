//! Named network namespaces removed on drop.

/// A name no other test (or test run) uses: `ovt<pid>-<n><tag>`.
pub fn unique(tag: &str) -> String {
    netns_lab::unique("ovt", tag)
}

/// Runs `sh -c cmd` in the root namespace (setup only: `ip netns add`,
/// `ip link add ... netns X`).
pub fn host_sh(cmd: &str) -> String {
    netns_lab::sh_root(cmd).unwrap_or_else(|e| panic!("{e}"))
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
        netns_lab::sh_in(&self.name, cmd)
    }

    /// Runs `sh -c cmd` in the namespace; panics with the output on failure.
    pub fn sh(&self, cmd: &str) -> String {
        self.try_sh(cmd).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts a background command (killed when the namespace goes).
    pub fn spawn(&self, cmd: &str) -> std::process::Child {
        netns_lab::spawn_in(&self.name, cmd).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Received packets counted by an interface.
    pub fn rx_packets(&self, dev: &str) -> u64 {
        self.sh(&format!("cat /sys/class/net/{dev}/statistics/rx_packets")).trim().parse().expect("counter")
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        netns_lab::delete(&self.name);
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
