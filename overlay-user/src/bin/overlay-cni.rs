//! `overlay-cni`: the CNI plugin (see `overlay_user::cni`). Reads the
//! `CNI_*` environment and the network configuration on stdin; prints the
//! result, or the spec's error JSON with a non-zero exit.

use std::io::{Read, Write};

use overlay_user::{
    bpffs,
    cni::{self, conf::Env, error::CniError},
};

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let mut stdin = Vec::new();
    let read = std::io::stdin().read_to_end(&mut stdin);
    // The version to answer errors in: the configuration's, when readable.
    let version = serde_json::from_slice::<serde_json::Value>(&stdin)
        .ok()
        .and_then(|v| v.get("cniVersion").and_then(|v| v.as_str()).map(String::from))
        .filter(|v| cni::conf::SUPPORTED_VERSIONS.contains(&v.as_str()))
        .unwrap_or_else(|| "1.0.0".into());
    let outcome = (|| {
        read.map_err(|e| CniError::with(cni::error::Code::Io, "read stdin", e))?;
        // Before any thread exists (pins of instances run through `ip netns exec`).
        bpffs::join_pin_mount_namespace()
            .map_err(|e| CniError::with(cni::error::Code::Io, "pin directory", e))?;
        let env = Env::read(|k| std::env::var(k).ok())?;
        cni::run(&env, &stdin)
    })();
    let mut out = std::io::stdout().lock();
    match outcome {
        Ok(Some(v)) => {
            let _ = writeln!(out, "{v}");
        }
        Ok(None) => {}
        Err(e) => {
            let _ = writeln!(out, "{}", e.to_json(&version));
            eprintln!("overlay-cni: {e}");
            std::process::exit(1);
        }
    }
}
