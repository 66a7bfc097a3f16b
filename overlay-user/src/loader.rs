//! Loading the BPF object and attaching its programs with pinned TCX links.
//!
//! A link pinned in the instance directory keeps a program attached when no
//! overlayctl process runs. Re-attaching updates the pinned link in place
//! (`BPF_LINK_UPDATE`): the new program replaces the old one atomically, with
//! no moment where the interface has none.

use std::path::{Path, PathBuf};

use aya::{
    Ebpf, EbpfLoader,
    programs::{
        LinkOrder, ProgramError, SchedClassifier, TcAttachType, Xdp,
        links::{FdLink, LinkError, PinnedLink},
        tc::TcAttachOptions,
        xdp::XdpMode,
    },
};
use overlay_common::{maps::MAP_FDB, trace::MAP_TRACE};

use crate::{
    bpffs::pin_safe,
    error::{Error, Result},
};

/// The BPF object, built by `cargo xtask build-ebpf` and embedded here.
pub static OBJECT: &[u8] = aya::include_bytes_aligned!(env!("OVERLAY_EBPF_OBJ"));

pub const PROG_TENANT: &str = "tenant_ingress";
pub const PROG_VTEP: &str = "vtep_ingress";
pub const PROG_VTEP_XDP: &str = "vtep_xdp";
/// The TC programs (the XDP one is loaded separately).
pub const ALL_PROGRAMS: &[&str] = &[PROG_TENANT, PROG_VTEP];
/// The TC programs compiled with the trace flag (`overlayctl trace`):
/// loaded on demand, never attached or pinned.
pub const PROG_TENANT_TRACE: &str = "tenant_trace";
pub const PROG_VTEP_TRACE: &str = "vtep_trace";
pub const TRACE_PROGRAMS: &[&str] = &[PROG_TENANT_TRACE, PROG_VTEP_TRACE];
/// Tail-called by `tenant_ingress` through `TAIL` (never attached; the
/// pinned `TAIL` holds it).
pub const PROG_TENANT_FLOOD: &str = "tenant_flood";

/// Loads the object; maps already pinned in `dir` are reused, the others
/// are created and pinned there. The programs are verified and loaded but
/// neither pinned nor attached (the BPF_PROG_TEST_RUN fixture uses this).
pub fn load_object(dir: &Path, fdb_size: u32) -> Result<Ebpf> {
    let mut ebpf = open_object(dir, fdb_size)?;
    // The tail-called program first: in `TAIL` before anything can call it.
    load_tc(&mut ebpf, &[PROG_TENANT_FLOOD])?;
    set_tail(&mut ebpf)?;
    load_tc(&mut ebpf, ALL_PROGRAMS)?;
    let x: &mut Xdp = program(&mut ebpf, PROG_VTEP_XDP)?;
    x.load().map_err(|e| loaded(PROG_VTEP_XDP, e))?;
    Ok(ebpf)
}

/// The object with only its trace programs loaded, on the maps pinned in
/// `dir` (which must all exist: `maps::check_pins` first).
pub fn load_trace(dir: &Path, fdb_size: u32) -> Result<Ebpf> {
    let mut ebpf = open_object(dir, fdb_size)?;
    load_tc(&mut ebpf, TRACE_PROGRAMS)?;
    Ok(ebpf)
}

/// Loads the trace programs into an object [`load_object`] opened (the
/// BPF_PROG_TEST_RUN fixture traces with this).
pub fn load_tc(ebpf: &mut Ebpf, names: &[&str]) -> Result<()> {
    for name in names {
        let p: &mut SchedClassifier = program(ebpf, name)?;
        p.load().map_err(|e| loaded(name, e))?;
    }
    Ok(())
}

fn open_object(dir: &Path, fdb_size: u32) -> Result<Ebpf> {
    EbpfLoader::new()
        .default_map_pin_directory(dir)
        .map_max_entries(MAP_FDB, fdb_size)
        .map_max_entries(MAP_TRACE, per_cpu_entries()?)
        .load(OBJECT)
        .map_err(|e| Error::Object(Box::new(e)))
}

/// Entries of a [`Capacity::PerCpu`] map: one per possible CPU (`TRACE`
/// is indexed by CPU number).
pub fn per_cpu_entries() -> Result<u32> {
    let n = aya::util::nr_cpus().map_err(|(_, e)| Error::Io(e))?;
    Ok(n as u32)
}

/// `TAIL[TAIL_FLOOD_REMOTE]` = `tenant_flood` of this object (the pinned
/// map is shared with the programs still attached from before, which call
/// the same contract: the layout version says so).
fn set_tail(ebpf: &mut Ebpf) -> Result<()> {
    use overlay_common::maps::{MAP_TAIL, TAIL_FLOOD_REMOTE};
    let p: &mut SchedClassifier = program(ebpf, PROG_TENANT_FLOOD)?;
    let fd = p.fd().map_err(Error::program(PROG_TENANT_FLOOD))?.try_clone()?;
    // Borrowed, not taken: the programs loaded next refer to this map's fd.
    let map = ebpf.map_mut(MAP_TAIL).ok_or(Error::MissingMap(MAP_TAIL))?;
    let mut tail: aya::maps::ProgramArray<&mut aya::maps::MapData> =
        map.try_into().map_err(Error::map(MAP_TAIL))?;
    tail.set(TAIL_FLOOD_REMOTE, &fd, 0).map_err(Error::map(MAP_TAIL))
}

fn loaded(prog: &str, source: ProgramError) -> Error {
    Error::Program { hint: verifier_hint(&source), prog: prog.into(), source: Box::new(source) }
}

/// The instance's programs, loaded and pinned in its directory.
pub struct Programs {
    pub tenant: SchedClassifier,
    pub vtep: SchedClassifier,
    pub xdp: Xdp,
    /// False when the programs pinned by an earlier `up` of the same
    /// object were reused (no verifier run).
    pub loaded: bool,
}

fn prog_pin(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("prog_{name}"))
}

/// Identity of the embedded object: equal for the same bytes.
fn object_id() -> String {
    use std::hash::{DefaultHasher, Hasher};
    let mut h = DefaultHasher::new();
    h.write(OBJECT);
    format!("{:016x}-{}", h.finish(), OBJECT.len())
}

/// The instance's programs: those pinned in `dir` when an earlier `up`
/// pinned them from this very object (the verifier is not run again; the
/// maps they use are the pinned ones, checked by `check_pins`), else the
/// object loaded afresh, its programs pinned in place of the old ones.
/// `object_file` names the object the pins come from; it is removed before
/// the pins change and written after, so it never names other programs.
pub fn load(dir: &Path, object_file: &Path, fdb_size: u32) -> Result<Programs> {
    let id = object_id();
    // Programs hold their maps: reused only while every map is still the pinned one.
    let maps_pinned = overlay_common::maps::MAPS.iter().all(|m| dir.join(m.name).exists());
    if maps_pinned
        && std::fs::read_to_string(object_file).is_ok_and(|s| s == id)
        && let Ok(p) = from_pins(dir)
    {
        return Ok(p);
    }
    match std::fs::remove_file(object_file) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
        _ => {}
    }
    let mut ebpf = load_object(dir, fdb_size)?;
    for name in ALL_PROGRAMS.iter().chain([&PROG_VTEP_XDP]) {
        let pin = prog_pin(dir, name);
        let _ = std::fs::remove_file(&pin);
        let p = ebpf.program_mut(name).ok_or_else(|| Error::MissingProgram((*name).into()))?;
        p.pin(&pin).map_err(|source| Error::Pin { path: pin.clone(), source })?;
    }
    drop(ebpf);
    let mut p = from_pins(dir)?;
    p.loaded = true;
    std::fs::write(object_file, id)?;
    Ok(p)
}

fn from_pins(dir: &Path) -> Result<Programs> {
    let tc = |name: &str| SchedClassifier::from_pin(prog_pin(dir, name)).map_err(Error::program(name));
    Ok(Programs {
        tenant: tc(PROG_TENANT)?,
        vtep: tc(PROG_VTEP)?,
        xdp: Xdp::from_pin(prog_pin(dir, PROG_VTEP_XDP), aya_obj::programs::XdpAttachType::Interface)
            .map_err(Error::program(PROG_VTEP_XDP))?,
        loaded: false,
    })
}

/// Program `name` of the object as its type (`SchedClassifier`, `Xdp`).
fn program<'a, T>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut T>
where
    &'a mut T: TryFrom<&'a mut aya::programs::Program, Error = ProgramError>,
{
    let p = ebpf.program_mut(name).ok_or_else(|| Error::MissingProgram(name.into()))?;
    p.try_into().map_err(Error::program(name))
}

/// XDP attach mode of the underlay fast path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XdpAttach {
    Native,
    Generic,
}

impl XdpAttach {
    /// From the config's `underlay.xdp` (`None` for "off").
    pub fn from_config(m: crate::config::XdpMode) -> Option<XdpAttach> {
        match m {
            crate::config::XdpMode::Native => Some(XdpAttach::Native),
            crate::config::XdpMode::Generic => Some(XdpAttach::Generic),
            crate::config::XdpMode::Off => None,
        }
    }

    fn mode(self) -> XdpMode {
        match self {
            XdpAttach::Native => XdpMode::Driver,
            XdpAttach::Generic => XdpMode::Skb,
        }
    }

    fn tag(self) -> &'static str {
        match self {
            XdpAttach::Native => "native",
            XdpAttach::Generic => "generic",
        }
    }
}

/// Pin of the XDP link on `ifname`; the mode is part of the name because a
/// link cannot change mode (changing it detaches and re-attaches).
pub fn xdp_pin(dir: &Path, ifname: &str, how: XdpAttach) -> PathBuf {
    dir.join(format!("link_xdp_{}_{}", how.tag(), pin_safe(ifname)))
}

/// Attaches the XDP fast path to `ifname` in mode `how`, or swaps the new
/// program into the existing link atomically; a link of the other mode is
/// removed first.
pub fn attach_xdp(progs: &mut Programs, dir: &Path, ifname: &str, how: XdpAttach) -> Result<()> {
    for other in [XdpAttach::Native, XdpAttach::Generic] {
        if other != how {
            detach_pin(&xdp_pin(dir, ifname, other))?;
        }
    }
    let p = &mut progs.xdp;
    let pin = xdp_pin(dir, ifname, how);
    let fresh = |p: &mut Xdp| {
        p.attach(ifname, how.mode()).map_err(|source| Error::Attach {
            prog: format!("{PROG_VTEP_XDP} ({})", how.tag()),
            iface: ifname.into(),
            source: Box::new(source),
            hint: " (another XDP program attached? a driver without native XDP? try xdp = \"generic\")",
        })
    };
    attach_pinned(p, PROG_VTEP_XDP, &pin, Xdp::attach_to_link, fresh, Xdp::take_link)
}

/// Removes the XDP fast path from `ifname` (either mode; no-op if none).
pub fn detach_xdp(dir: &Path, ifname: &str) -> Result<()> {
    for how in [XdpAttach::Native, XdpAttach::Generic] {
        detach_pin(&xdp_pin(dir, ifname, how))?;
    }
    Ok(())
}

/// The mode of the XDP fast path on `ifname`, if attached through our pin.
pub fn xdp_attached(dir: &Path, ifname: &str) -> Option<XdpAttach> {
    [XdpAttach::Native, XdpAttach::Generic]
        .into_iter()
        .find(|h| PinnedLink::from_pin(xdp_pin(dir, ifname, *h)).is_ok())
}

fn verifier_hint(e: &ProgramError) -> String {
    match e {
        ProgramError::LoadError { verifier_log, .. } => {
            let log = verifier_log.to_string();
            let tail: Vec<&str> = log.lines().rev().take(15).collect();
            format!("\nverifier (last lines):\n{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n"))
        }
        _ => String::new(),
    }
}

/// Pin path of the TC ingress link of `ifname`.
pub fn link_pin(dir: &Path, ifname: &str) -> PathBuf {
    dir.join(format!("link_tc_ingress_{}", pin_safe(ifname)))
}

/// Program id attached through our pinned link on `ifname`, if any.
pub fn pinned_prog_id(dir: &Path, ifname: &str) -> Option<u32> {
    let l = PinnedLink::from_pin(link_pin(dir, ifname)).ok()?;
    let fd: FdLink = l.into();
    fd.info().ok().map(|i| i.program_id())
}

/// Refuses an interface whose TCX ingress holds programs that are not ours.
pub fn check_foreign(dir: &Path, ifname: &str) -> Result<()> {
    let ours = pinned_prog_id(dir, ifname);
    let (_, progs) =
        SchedClassifier::query_tcx(ifname, TcAttachType::Ingress).map_err(Error::program("tcx query"))?;
    for p in progs {
        if Some(p.id()) != ours {
            return Err(Error::ForeignProgram {
                iface: ifname.into(),
                hook: "TC ingress".into(),
                prog_id: p.id(),
                prog_name: p.name_as_str().unwrap_or("?").into(),
            });
        }
    }
    Ok(())
}

/// Attaches program `prog` to TC ingress of `ifname`, or atomically swaps
/// it into the existing pinned link. A new link goes first in the TCX
/// chain when `first` (`--force`: our verdict ends the chain, so programs
/// other tools attached no longer see the traffic), else last.
pub fn attach_tc(progs: &mut Programs, dir: &Path, prog: &str, ifname: &str, first: bool) -> Result<()> {
    let order = || {
        if first { LinkOrder::first() } else { LinkOrder::default() }
    };
    let p = match prog {
        PROG_TENANT => &mut progs.tenant,
        PROG_VTEP => &mut progs.vtep,
        _ => return Err(Error::MissingProgram(prog.into())),
    };
    let attach_err = |source| Error::Attach {
        prog: prog.into(),
        iface: ifname.into(),
        source: Box::new(source),
        hint: "",
    };
    let fresh = |p: &mut SchedClassifier| {
        p.attach_with_options(ifname, TcAttachType::Ingress, TcAttachOptions::TcxOrder(order()))
            .map_err(attach_err)
    };
    let pin = link_pin(dir, ifname);
    attach_pinned(p, prog, &pin, SchedClassifier::attach_to_link, fresh, SchedClassifier::take_link)
}

/// Puts program `p` behind the link pinned at `pin`: swaps it into that
/// link atomically (`update`), or attaches afresh (`fresh`) and pins the
/// new link when there is no pin or its link is defunct (the interface
/// went away and came back).
fn attach_pinned<P, L, Id>(
    p: &mut P,
    prog: &str,
    pin: &Path,
    update: impl FnOnce(&mut P, L) -> std::result::Result<Id, ProgramError>,
    fresh: impl FnOnce(&mut P) -> Result<Id>,
    take: impl FnOnce(&mut P, Id) -> std::result::Result<L, ProgramError>,
) -> Result<()>
where
    L: TryFrom<FdLink, Error = LinkError>,
    FdLink: TryFrom<L, Error = LinkError>,
{
    let id = match PinnedLink::from_pin(pin) {
        Ok(old) => {
            let link = L::try_from(FdLink::from(old)).map_err(Error::link(prog))?;
            match update(p, link) {
                Ok(id) => id,
                Err(_) => {
                    let _ = std::fs::remove_file(pin);
                    fresh(p)?
                }
            }
        }
        Err(_) => fresh(p)?,
    };
    let fd = FdLink::try_from(take(p, id).map_err(Error::program(prog))?).map_err(Error::link(prog))?;
    // An updated link is the one the pin already refers to.
    if !pin.exists() {
        fd.pin(pin).map_err(|source| Error::Pin { path: pin.to_path_buf(), source })?;
    }
    Ok(())
}

/// Detaches every link pinned in `dir` except those at `keep`.
pub fn detach_all_but(dir: &Path, keep: &[PathBuf]) -> Result<()> {
    for e in std::fs::read_dir(dir)?.flatten() {
        let p = e.path();
        let is_link = p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("link_"));
        if is_link && !keep.contains(&p) {
            detach_pin(&p)?;
        }
    }
    Ok(())
}

/// Detaches what our pinned link on `ifname` holds (no-op if none).
pub fn detach_tc(dir: &Path, ifname: &str) -> Result<()> {
    detach_pin(&link_pin(dir, ifname))
}

pub fn detach_pin(pin: &Path) -> Result<()> {
    match PinnedLink::from_pin(pin) {
        Ok(l) => {
            let fd = l.unpin()?;
            drop(fd); // last reference: the kernel detaches the program
            Ok(())
        }
        Err(_) if pin.exists() => {
            std::fs::remove_file(pin)?;
            Ok(())
        }
        Err(_) => Ok(()),
    }
}
