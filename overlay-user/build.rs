//! Embeds the BPF object. A plain `cargo build` (or `cargo install --path
//! overlay-user`) builds it with aya-build, for the target's architecture,
//! as aya-template does (needs the nightly toolchain with rust-src and
//! bpf-linker: `cargo xtask bootstrap` installs them). `cargo xtask` builds
//! it once itself (`cargo xtask build-ebpf`) and passes its path in
//! `OVERLAY_EBPF_OBJ`, so it is not built a second time.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=OVERLAY_EBPF_OBJ");
    let obj = match std::env::var_os("OVERLAY_EBPF_OBJ") {
        Some(p) => PathBuf::from(p),
        None => {
            let ebpf = aya_build::Package {
                name: "overlay-ebpf",
                root_dir: "../overlay-ebpf",
                ..Default::default()
            };
            if let Err(e) = aya_build::build_ebpf([ebpf], aya_build::Toolchain::Nightly) {
                panic!(
                    "building the BPF object failed: {e:#}\n(it needs the nightly toolchain with rust-src and \
                     bpf-linker: run `cargo xtask bootstrap`, or build it with `cargo xtask build-ebpf` and set \
                     OVERLAY_EBPF_OBJ to its path)"
                );
            }
            PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR")).join("overlay-ebpf")
        }
    };
    if !obj.exists() {
        panic!("BPF object {} not found", obj.display());
    }
    println!("cargo:rerun-if-changed={}", obj.display());
    println!("cargo:rustc-env=OVERLAY_EBPF_OBJ={}", obj.canonicalize().expect("object path").display());
}
