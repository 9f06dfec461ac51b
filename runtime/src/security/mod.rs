//! Privileges of the container process: the five capability sets (applied in the order that
//! survives the switch to a non-root uid) and no_new_privs. Seccomp lives in `seccomp.rs`.

pub mod seccomp;
pub mod selfexe;

use caps::{CapSet, Capability, CapsHashSet};
use oci_spec::runtime::LinuxCapabilities;

use crate::error::{Error, Result};

/// Converts the spec's capability names (already filtered of unknown ones by `bundle`) to the
/// caps crate's type. Capabilities this kernel does not know are skipped, as runc 1.1 does.
fn to_set(list: Option<&oci_spec::runtime::Capabilities>) -> CapsHashSet {
    let supported = caps::runtime::thread_all_supported();
    list.into_iter()
        .flatten()
        .filter_map(|c| {
            let name = serde_json::to_value(c).ok()?.as_str()?.to_string();
            name.parse::<Capability>().ok()
        })
        .filter(|c| supported.contains(c))
        .collect()
}

/// Drops from the bounding set every capability not listed. Must run before the uid switch,
/// while CAP_SETPCAP is still effective.
pub fn drop_bounding(spec_caps: Option<&LinuxCapabilities>) -> Result<()> {
    let Some(c) = spec_caps else { return Ok(()) };
    let keep = to_set(c.bounding().as_ref());
    for cap in caps::runtime::thread_all_supported() {
        if !keep.contains(&cap) {
            caps::drop(None, CapSet::Bounding, cap)
                .map_err(|e| Error::msg(format!("drop {cap} from the bounding set: {e}")))?;
        }
    }
    Ok(())
}

/// Sets inheritable, effective, permitted, then ambient. Run after the uid switch (with
/// keep-caps set across it). Order matters: inheritable first (it may only grow while the
/// permitted set is still full), effective before permitted (effective must stay a subset),
/// ambient last (it needs the cap in both permitted and inheritable).
pub fn apply_sets(spec_caps: Option<&LinuxCapabilities>) -> Result<()> {
    let Some(c) = spec_caps else { return Ok(()) };
    let set = |which: CapSet, name: &str, list: Option<&oci_spec::runtime::Capabilities>| {
        let want = to_set(list);
        caps::set(None, which, &want).map_err(|e| set_refused(which, name, &want, e))
    };
    set(CapSet::Inheritable, "inheritable", c.inheritable().as_ref())?;
    set(CapSet::Effective, "effective", c.effective().as_ref())?;
    set(CapSet::Permitted, "permitted", c.permitted().as_ref())?;
    // A capability can only be ambient if it is permitted and inheritable. runc's own default
    // spec lists ambient caps with an empty inheritable set and runs, because runc 1.1 does not
    // fail on a refused raise; neither do we (the kernel's rule is what the process gets).
    caps::clear(None, CapSet::Ambient).ok();
    for cap in to_set(c.ambient().as_ref()) {
        if let Err(e) = caps::raise(None, CapSet::Ambient, cap) {
            crate::log::debug(&format!("process.capabilities.ambient: raise {cap}: {e} (ignored, as runc)"));
        }
    }
    Ok(())
}

/// The error for a capability set the kernel refused, naming the capabilities it cannot grant by
/// capset(2)'s rules: inheritable within the inheritable and bounding sets, effective and
/// permitted within the permitted set. A host that withholds one from skiff itself (this VM's
/// CAP_SYS_RESOURCE) otherwise gave a bare "Operation not permitted".
fn set_refused(which: CapSet, name: &str, want: &CapsHashSet, e: caps::errors::CapsError) -> Error {
    let have = |s: CapSet| caps::read(None, s).unwrap_or_default();
    let (allowed, from) = match which {
        CapSet::Inheritable => (
            &have(CapSet::Inheritable) | &have(CapSet::Bounding),
            "the bounding set (the config's, within what skiff itself was given)",
        ),
        _ => (have(CapSet::Permitted), "skiff's own permitted set (what the host gave it)"),
    };
    let mut missing: Vec<String> = want.difference(&allowed).map(|c| c.to_string()).collect();
    missing.sort();
    if missing.is_empty() {
        return Error::msg(format!("process.capabilities.{name}: {e}"));
    }
    Error::msg(format!("process.capabilities.{name}: {} cannot be granted: not in {from}: {e}", missing.join(", ")))
}

pub fn set_no_new_privs() -> Result<()> {
    nix::sys::prctl::set_no_new_privs().map_err(|e| Error::sys("prctl(PR_SET_NO_NEW_PRIVS)", e))
}

/// Applies `process.apparmorProfile` and `process.selinuxLabel` to the coming execve. On a host
/// without that LSM (this one has neither) both are ignored, as runc does.
pub fn set_exec_labels(apparmor: Option<&str>, selinux: Option<&str>) -> Result<()> {
    if let Some(profile) = apparmor.filter(|p| !p.is_empty()) {
        if std::path::Path::new("/sys/kernel/security/apparmor").exists() {
            // The newer per-LSM file first, then the shared one older kernels have.
            let text = format!("exec {profile}");
            std::fs::write("/proc/self/attr/apparmor/exec", &text)
                .or_else(|_| std::fs::write("/proc/self/attr/exec", &text))
                .map_err(|e| Error::msg(format!("process.apparmorProfile: apply {profile:?}: {e}")))?;
        } else {
            crate::log::debug(&format!("process.apparmorProfile {profile:?} ignored: AppArmor is not enabled"));
        }
    }
    if let Some(label) = selinux.filter(|l| !l.is_empty()) {
        if std::path::Path::new("/sys/fs/selinux/enforce").exists() {
            std::fs::write("/proc/self/attr/exec", label)
                .map_err(|e| Error::msg(format!("process.selinuxLabel: apply {label:?}: {e}")))?;
        } else {
            crate::log::debug(&format!("process.selinuxLabel {label:?} ignored: SELinux is not enabled"));
        }
    }
    Ok(())
}
