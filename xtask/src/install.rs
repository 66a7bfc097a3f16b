//! `cargo xtask install`: release builds of overlayctl and the CNI plugin,
//! copied where operators and runtimes look for them.

use std::path::Path;

use anyhow::{Context, Result};

use crate::cmd::{root, step};

pub fn run(bin_dir: &Path, cni_dir: &Path) -> Result<()> {
    crate::bootstrap::toolchain()?;
    crate::build::ebpf()?;
    crate::build::user_bins(true)?;
    for (bin, dir) in [("overlayctl", bin_dir), ("overlay-cni", cni_dir)] {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        let (from, to) = (root().join("target/release").join(bin), dir.join(bin));
        // Through a temporary name: a runtime may be executing the old one.
        let tmp = dir.join(format!(".{bin}.new"));
        std::fs::copy(&from, &tmp)
            .with_context(|| format!("copy {} to {}", from.display(), tmp.display()))?;
        std::fs::rename(&tmp, &to).with_context(|| format!("install {}", to.display()))?;
        step(&format!("installed {}", to.display()));
    }
    Ok(())
}
