//! Frames built by scapy (Debian's python3-scapy), the reference the
//! datapath's own frames are compared with.

/// The bytes of the scapy expression `expr` (e.g. `Ether()/ARP(...)`),
/// checksums and lengths filled in by scapy.
pub fn bytes(expr: &str) -> Vec<u8> {
    let script = format!(
        "from scapy.all import *; from scapy.contrib.geneve import GENEVE; import sys; \
         sys.stdout.write(bytes({expr}).hex())"
    );
    let o =
        std::process::Command::new("/usr/bin/python3").args(["-c", &script]).output().expect("run python3");
    assert!(o.status.success(), "scapy {expr}: {}", String::from_utf8_lossy(&o.stderr));
    let hex = String::from_utf8(o.stdout).expect("hex");
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex byte")).collect()
}
