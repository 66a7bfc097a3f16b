//! Running commands with a clean cargo environment.

use std::{
    path::PathBuf,
    process::{Command, Stdio},
};

use anyhow::{Context, Result, bail};

/// Workspace root (the parent of this crate).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

/// A command without the variables the outer `cargo run` exported, which
/// would otherwise pin the inner cargo to the outer toolchain.
pub fn clean(program: &str) -> Command {
    let mut c = Command::new(program);
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if k.starts_with("CARGO")
            || k.starts_with("RUSTUP_TOOLCHAIN")
            || k == "RUSTC"
            || k == "RUSTDOC"
            || k == "RUSTFLAGS"
            || k.starts_with("RUSTC_")
        {
            c.env_remove(k.as_ref());
        }
    }
    c.current_dir(root());
    // The BPF object `cargo xtask build-ebpf` made (every task builds it
    // first): overlay-user embeds it instead of building it again.
    let obj = crate::build::object_path();
    if program == "cargo" && obj.exists() {
        c.env("OVERLAY_EBPF_OBJ", obj);
    }
    c
}

/// `program arg arg ...`, without the environment noise of `{:?}`.
pub fn show(c: &Command) -> String {
    let mut v = vec![c.get_program().to_string_lossy().into_owned()];
    v.extend(c.get_args().map(|a| a.to_string_lossy().into_owned()));
    v.join(" ")
}

pub fn run(c: &mut Command) -> Result<()> {
    let s = c.status().with_context(|| format!("run {}", show(c)))?;
    if !s.success() {
        bail!("`{}` failed: {s}", show(c));
    }
    Ok(())
}

/// Output of a command, or None if it cannot run or fails.
pub fn output(program: &str, args: &[&str]) -> Option<String> {
    let o = clean(program).args(args).stderr(Stdio::null()).output().ok()?;
    o.status.success().then(|| String::from_utf8_lossy(&o.stdout).into_owned())
}

pub fn step(msg: &str) {
    eprintln!("==> {msg}");
}
