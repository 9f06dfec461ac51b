//! `features`: the runtime-spec features document, true to what this build of skiff does.

use serde_json::json;

pub fn run() {
    println!("{}", serde_json::to_string_pretty(&document()).unwrap_or_default());
}

/// The seccomp architectures of the spec that libseccomp 2.5 knows.
const SECCOMP_ARCHS: [&str; 17] = [
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_ARM",
    "SCMP_ARCH_MIPS",
    "SCMP_ARCH_MIPS64",
    "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64",
    "SCMP_ARCH_MIPSEL64N32",
    "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE",
    "SCMP_ARCH_RISCV64",
    "SCMP_ARCH_S390",
    "SCMP_ARCH_S390X",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X86_64",
];

/// Every `linux.memoryPolicy.mode` and flag skiff applies (all of runtime-spec 1.3's).
pub const MEMORY_POLICY_MODES: [&str; 7] = [
    "MPOL_BIND",
    "MPOL_DEFAULT",
    "MPOL_INTERLEAVE",
    "MPOL_LOCAL",
    "MPOL_PREFERRED",
    "MPOL_PREFERRED_MANY",
    "MPOL_WEIGHTED_INTERLEAVE",
];
pub const MEMORY_POLICY_FLAGS: [&str; 3] = ["MPOL_F_NUMA_BALANCING", "MPOL_F_RELATIVE_NODES", "MPOL_F_STATIC_NODES"];

pub fn document() -> serde_json::Value {
    let caps: Vec<String> = {
        let mut v: Vec<String> = caps::all().iter().map(|c| c.to_string()).collect();
        v.sort();
        v
    };
    // Only the architectures a filter made here can take: libseccomp refuses to mix byte orders
    // in one filter (EDOM), so on a little-endian host s390x, ppc64 and mips are out.
    let archs: Vec<&str> = SECCOMP_ARCHS
        .iter()
        .copied()
        .filter(|a| {
            let s = serde_json::from_value::<oci_spec::runtime::LinuxSeccomp>(json!({
                "defaultAction": "SCMP_ACT_ALLOW", "architectures": [a]
            }));
            s.is_ok_and(|s| crate::security::seccomp::build(&s).is_ok())
        })
        .collect();
    let seccomp_version =
        libseccomp::ScmpVersion::current().map(|v| format!("{}.{}.{}", v.major, v.minor, v.micro)).unwrap_or_default();
    json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": crate::bundle::OCI_VERSION_MAX,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": crate::rootfs::options::known(),
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": caps,
            "cgroup": {"v1": true, "v2": true, "systemd": true, "systemdUser": false, "rdma": true},
            "seccomp": {
                "enabled": true,
                "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                            "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE",
                            "SCMP_ACT_TRAP"],
                "operators": ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
                              "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"],
                "archs": archs,
                "knownFlags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_TSYNC"],
                // TSYNC holds without being set: the init that loads the filter has one thread.
                "supportedFlags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_TSYNC"]
            },
            // Applied where the host has the LSM (and ignored where it has not, as runc does);
            // runc reports both as supported in the same way.
            "apparmor": {"enabled": true},
            "selinux": {"enabled": true},
            // Applied where resctrl is mounted, a create error naming the field where not.
            "intelRdt": {"enabled": true, "schemata": true, "monitoring": true},
            "memoryPolicy": {
                "modes": MEMORY_POLICY_MODES,
                "flags": MEMORY_POLICY_FLAGS
            },
            "netDevices": {"enabled": true},
            "mountExtensions": {"idmap": {"enabled": true}}
        },
        "annotations": {
            "io.github.seccomp.libseccomp.version": seccomp_version
        }
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_document_is_a_valid_features_document() {
        let doc = super::document();
        let parsed: oci_spec::runtime::Features = serde_json::from_value(doc.clone()).unwrap();
        assert_eq!(parsed.oci_version_max(), "1.3.0");
        // Every advertised architecture goes into a filter, every flag is taken.
        for arch in doc["linux"]["seccomp"]["archs"].as_array().unwrap() {
            let s: oci_spec::runtime::LinuxSeccomp = serde_json::from_value(serde_json::json!({
                "defaultAction": "SCMP_ACT_ALLOW", "architectures": [arch]
            }))
            .unwrap();
            crate::security::seccomp::build(&s).unwrap_or_else(|e| panic!("{arch}: {e}"));
        }
        for flag in doc["linux"]["seccomp"]["supportedFlags"].as_array().unwrap() {
            let s: oci_spec::runtime::LinuxSeccomp =
                serde_json::from_value(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": [flag]}))
                    .unwrap();
            crate::security::seccomp::build(&s).unwrap_or_else(|e| panic!("{flag}: {e}"));
        }
        // Every memory policy mode and flag is one the config loader takes and plans.
        for mode in super::MEMORY_POLICY_MODES {
            for flag in super::MEMORY_POLICY_FLAGS {
                let p: oci_spec::runtime::LinuxMemoryPolicy =
                    serde_json::from_value(serde_json::json!({"mode": mode, "nodes": "0", "flags": [flag]})).unwrap();
                let planned = crate::process::attrs::plan_mempolicy(&p);
                // MPOL_DEFAULT and MPOL_LOCAL take no nodes.
                assert!(planned.is_ok() || matches!(mode, "MPOL_DEFAULT" | "MPOL_LOCAL"), "{mode} {flag}");
            }
        }
        // Every advertised seccomp action builds into a filter.
        for action in doc["linux"]["seccomp"]["actions"].as_array().unwrap() {
            let s: oci_spec::runtime::LinuxSeccomp = serde_json::from_value(serde_json::json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["getcwd"], "action": action}]
            }))
            .unwrap();
            crate::security::seccomp::build(&s).unwrap();
        }
    }
}
