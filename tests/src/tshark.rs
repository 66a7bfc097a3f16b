//! Wireshark's dissectors (Debian's tshark) as an independent judge of
//! wire formats this machine has no kernel peer for (GRE, GENEVE).

use std::io::Write;

/// Dissects `frames` (Ethernet) and returns, for each, the values of
/// `fields` (tshark `-e` names; a field found twice, e.g. the outer and
/// inner `eth.dst`, gives both, comma-separated).
pub fn fields(frames: &[Vec<u8>], fields: &[&str]) -> Vec<Vec<String>> {
    let path = std::env::temp_dir().join(crate::netns::unique("ovtshark") + ".pcap");
    let mut pcap = Vec::new();
    // Classic pcap: magic, version 2.4, zone, sigfigs, snaplen, Ethernet.
    for v in [
        0xa1b2_c3d4u32.to_le_bytes(),
        [2, 0, 4, 0],
        [0; 4],
        [0; 4],
        65535u32.to_le_bytes(),
        1u32.to_le_bytes(),
    ] {
        pcap.extend_from_slice(&v);
    }
    for f in frames {
        let len = (f.len() as u32).to_le_bytes();
        for v in [[0; 4], [0; 4], len, len] {
            pcap.extend_from_slice(&v);
        }
        pcap.extend_from_slice(f);
    }
    std::fs::File::create(&path).and_then(|mut w| w.write_all(&pcap)).expect("write pcap");
    let mut cmd = std::process::Command::new("tshark");
    cmd.args(["-n", "-r"]).arg(&path).args(["-T", "fields", "-E", "separator=|"]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let o = cmd.output().expect("run tshark (Debian's tshark package)");
    let _ = std::fs::remove_file(&path);
    assert!(o.status.success(), "tshark: {}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    let rows: Vec<Vec<String>> = text.lines().map(|l| l.split('|').map(str::to_string).collect()).collect();
    assert_eq!(rows.len(), frames.len(), "tshark read every frame:\n{text}");
    rows
}
