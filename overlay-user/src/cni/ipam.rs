//! Delegation to the IPAM plugin named in `ipam.type` (found in CNI_PATH),
//! the way the reference plugins call it: same stdin, same environment,
//! CNI_COMMAND as asked; its errors are passed through with their codes.

use std::{
    io::Write,
    path::PathBuf,
    process::{Command as Process, Stdio},
};

use serde_json::Value;

use super::{
    conf::Env,
    error::{CniError, CniResult, Code},
};

/// The first executable named `plugin` in `env.path`.
pub fn find(env: &Env, plugin: &str) -> CniResult<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    env.path
        .iter()
        .map(|d| d.join(plugin))
        .find(|p| p.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
        .ok_or_else(|| {
            let dirs: Vec<String> = env.path.iter().map(|d| d.display().to_string()).collect();
            CniError::new(
                Code::InvalidConfig,
                format!("ipam plugin {plugin:?} not found in CNI_PATH ({})", dirs.join(":")),
            )
        })
}

/// Runs `plugin` with `command` (and, for another attachment than the
/// current one, its container id and interface name); the parsed stdout
/// when the plugin printed anything.
pub fn exec(
    env: &Env,
    plugin: &str,
    command: &str,
    attachment: Option<(&str, &str)>,
    stdin: &[u8],
) -> CniResult<Option<Value>> {
    let bin = find(env, plugin)?;
    let stdin = &in_version_of(&bin, stdin);
    let mut c = Process::new(&bin);
    c.env("CNI_COMMAND", command).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    if let Some((id, ifname)) = attachment {
        c.env("CNI_CONTAINERID", id).env("CNI_IFNAME", ifname);
    }
    let what = format!("ipam {plugin} {command}");
    let mut child =
        c.spawn().map_err(|e| CniError::with(Code::Io, format!("{what}: start {}", bin.display()), e))?;
    if let Some(mut i) = child.stdin.take() {
        i.write_all(stdin).map_err(|e| CniError::with(Code::Io, format!("{what}: write stdin"), e))?;
    }
    let out = child.wait_with_output().map_err(|e| CniError::with(Code::Io, format!("{what}: wait"), e))?;
    let parsed: Option<Value> = serde_json::from_slice(&out.stdout).ok();
    if out.status.success() {
        return Ok(parsed);
    }
    // The delegate's own error, code and all.
    if let Some(e) = parsed.as_ref().and_then(|v| v.get("code").and_then(Value::as_u64).map(|c| (c, v))) {
        let (code, v) = e;
        let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
        return Err(CniError {
            code: code as u32,
            msg: format!("{what}: {}", s("msg")),
            details: s("details"),
        });
    }
    Err(CniError::with(
        Code::Io,
        format!("{what} failed ({})", out.status),
        String::from_utf8_lossy(&out.stderr).trim(),
    ))
}

/// `stdin` for the delegate: a 1.1.0 configuration is handed to an IPAM
/// plugin that does not speak 1.1.0 (Debian's host-local 1.1.1 speaks up to
/// 1.0.0) as 1.0.0, whose results are the same for IPAM (ips, routes, dns).
fn in_version_of(bin: &std::path::Path, stdin: &[u8]) -> Vec<u8> {
    let Ok(mut conf) = serde_json::from_slice::<Value>(stdin) else { return stdin.to_vec() };
    if conf.get("cniVersion").and_then(Value::as_str) != Some("1.1.0") {
        return stdin.to_vec();
    }
    let speaks_1_1 = Process::new(bin)
        .env("CNI_COMMAND", "VERSION")
        .stdin(Stdio::null())
        .output()
        .ok()
        .and_then(|o| serde_json::from_slice::<Value>(&o.stdout).ok())
        .and_then(|v| v.get("supportedVersions").and_then(Value::as_array).cloned())
        .is_some_and(|v| v.iter().any(|x| x == "1.1.0"));
    if speaks_1_1 {
        return stdin.to_vec();
    }
    conf["cniVersion"] = Value::from("1.0.0");
    conf.to_string().into_bytes()
}
