//! Embeds the BPF object built by `cargo xtask build-ebpf`.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=OVERLAY_EBPF_OBJ");
    let obj = match std::env::var_os("OVERLAY_EBPF_OBJ") {
        Some(p) => PathBuf::from(p),
        None => {
            let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("manifest dir"));
            root.join("../target/bpfel-unknown-none/release/overlay-ebpf")
        }
    };
    if !obj.exists() {
        panic!(
            "BPF object {} not found: run `cargo xtask build-ebpf` first (or set OVERLAY_EBPF_OBJ)",
            obj.display()
        );
    }
    println!("cargo:rerun-if-changed={}", obj.display());
    println!("cargo:rustc-env=OVERLAY_EBPF_OBJ={}", obj.canonicalize().expect("object path").display());
}
