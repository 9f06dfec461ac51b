#!/bin/bash
# `make test-systemd`: runs integration tests on a host whose pid 1 is systemd (cgroup v2), the
# kind of host Kubernetes nodes, docker on cgroup v2 and podman run, for the systemd cgroup driver.
#
# The guest's root filesystem is Debian bookworm made by mmdebstrap from Debian's packages
# (systemd, dbus, runc, containerd, ...), cached in target/systemd-vm/ by its package list. It
# boots as an initramfs holding that whole root: a stage-1 /init copies it onto a tmpfs (pivot_root
# cannot leave an initramfs) and switch_roots into systemd with cgroup v2 alone. A oneshot unit,
# skiff-tests.service, runs each test binary once the system is up, prints the marker lines
# vm_report reads on the serial console, and powers the guest off.
#
# The tests see SKIFF_IT_SYSTEMD=1 (a host whose pid 1 is systemd) and SKIFF_IT_THROWAWAY_HOST=1,
# and with SD_DRIVER=systemd (the default) SKIFF_IT_SYSTEMD_CGROUP=1: the harness then gives every
# runtime command --systemd-cgroup and every bundle a systemd cgroupsPath, so the lifecycle,
# resources, update, pause_ps and events tests run on the systemd cgroup driver (systemd.rs checks
# the units from outside, and containerd with SystemdCgroup). SD_DRIVER=cgroupfs runs them on the
# cgroupfs driver of the same host. slipway goes into the guest too (containerd's image is
# built with it; systemd.rs builds with `slipway build --cgroup-parent SLICE:PREFIX:`, its RUN
# steps scope units through skiff and the guest's runc). The rootless tests run there too, as
# users they make (uidmap is in the guest):
# rootless.rs's delegated_cgroup_v2_subtree_gets_limits starts the user's user@UID.service
# (Delegate=yes) and runs skiff in a scope of it (`systemd-run --user --scope`), as a login would.
#
# With SD_BENCH=1 (`make bench-cgroup2`) the guest runs no tests but make bench's runtime part
# (scripts/bench.sh, BENCH_ONLY=skiff): skiff against Debian's runc 1.1.5 and crun 1.8.1 (both in the
# guest's root, with their libraries) on one bundle, interleaved, on cgroup v2 with the cgroupfs
# driver (the bundle's cgroupsPath); the phase breakdown is left out (no gcc in the guest). qemu runs
# in TCG here, so only the ratios of that run mean something, not the milliseconds.
#
# Usage: scripts/test-systemd.sh SKIFF_BINARY
# Environment: SD_BENCH (1: the bench above; BENCH_RUNS, BENCH_ROUNDS and BENCH_WARMUP pass
# through), SD_TESTS (test targets, default "lifecycle resources update pause_ps events systemd
# rootless"),
# SD_DRIVER (systemd or cgroupfs, default systemd),
# SD_FILTER (a test name filter given to every binary), SD_RUNTIME (the runtime under test in the
# guest, default SKIFF_BINARY; /usr/sbin/runc is Debian's runc 1.1.5 there), SD_ENV (extra VAR=VALUE words exported
# to the tests), SD_TIMEOUT (seconds for the whole VM run, default 3600), SD_SMP (default 2),
# SD_MEM (MiB, default 3072), SD_CGROUP (the guest's cgroup layout: unified, the default, cgroup v2
# alone; hybrid, systemd.unified_cgroup_hierarchy=0: the v1 controllers with systemd's own tree on
# cgroup2 at /sys/fs/cgroup/unified, as on this host; legacy: v1 alone, name=systemd included).
set -euo pipefail
log() { echo "test-systemd: $*" >&2; }

SKIFF=$(realpath "${1:?usage: test-systemd.sh SKIFF_BINARY}")
WS=$(cd "$(dirname "$0")/.." && pwd)
WORK=$WS/target/systemd-vm
TESTS=${SD_TESTS:-lifecycle resources update pause_ps events systemd rootless}
case ${SD_DRIVER:-systemd} in
  systemd) DRIVER_ENV=SKIFF_IT_SYSTEMD_CGROUP=1 ;;
  cgroupfs) DRIVER_ENV= ;;
  *) log "SD_DRIVER must be systemd or cgroupfs"; exit 2 ;;
esac
case ${SD_CGROUP:-unified} in
  unified) CGROUP_ARGS="systemd.unified_cgroup_hierarchy=1" ;;
  hybrid) CGROUP_ARGS="systemd.unified_cgroup_hierarchy=0 systemd.legacy_systemd_cgroup_controller=0" ;;
  legacy) CGROUP_ARGS="systemd.unified_cgroup_hierarchy=0 systemd.legacy_systemd_cgroup_controller=1" ;;
  *) log "SD_CGROUP must be unified, hybrid or legacy"; exit 2 ;;
esac
SLIPWAY=$WS/target/release/slipway
TIMEOUT=${SD_TIMEOUT:-3600}
mkdir -p "$WORK"

MARK=SKIFF-SD
# shellcheck source=scripts/vm-lib.sh
source "$WS/scripts/vm-lib.sh"

vm_kernel
for opt in CONFIG_CGROUP_BPF=y CONFIG_MEMCG=y CONFIG_BLK_DEV_INITRD=y CONFIG_SERIAL_8250_CONSOLE=y CONFIG_RD_ZSTD=y; do
  grep -q "^$opt" "$KDIR"/boot/config-* || { log "$KPKG lacks $opt"; exit 1; }
done

# --- the guest's root: Debian's packages, made once per package list ---------------------------
# uidmap: newuidmap/newgidmap for the rootless tests (useradd and login.defs are in minbase);
# libpam-systemd: user@UID.service's PAM session sets its XDG_RUNTIME_DIR through pam_systemd.
# crun, hyperfine, jq, time: make bench-cgroup2 (SD_BENCH=1).
PKGS=systemd,systemd-sysv,dbus,libseccomp2,iproute2,procps,util-linux,busybox-static,runc,containerd,python3-grpcio,uidmap,libpam-systemd,crun,hyperfine,jq,time
ROOTFS_TAR=$WORK/rootfs-$(echo "$PKGS" | sha256sum | cut -c1-12).tar
if [ ! -s "$ROOTFS_TAR" ]; then
  log "making the guest's root with mmdebstrap ($PKGS); about a minute on a quiet machine"
  mmdebstrap --quiet --format=tar --variant=minbase --include="$PKGS" bookworm "$ROOTFS_TAR.tmp" >&2
  mv "$ROOTFS_TAR.tmp" "$ROOTFS_TAR"
fi

BENCH=${SD_BENCH:-}
if [ -n "$BENCH" ]; then
  BINS=()
else
  # shellcheck disable=SC2086
  vm_test_binaries $TESTS
fi

ROOT=$WORK/initramfs
rm -rf "$ROOT" && mkdir -p "$ROOT"
tar -C "$ROOT" -xf "$ROOTFS_TAR"
VM_EXTRA_EXES=$([ -x "$SLIPWAY" ] && echo "$SLIPWAY" || true) vm_install_tests "$ROOT" "$SKIFF"
if [ -x "$SLIPWAY" ]; then
  mkdir -p "$ROOT$(dirname "$SLIPWAY")" && cp "$SLIPWAY" "$ROOT$SLIPWAY"
fi
mkdir -p "$ROOT/newroot"
[ -z "$BENCH" ] || cp -r "$WS/scripts" "$ROOT$WS/"
# What a Debian host has and mmdebstrap leaves out: containerd's CRI copies them into host-network pods.
[ -e "$ROOT/etc/hosts" ] || [ -L "$ROOT/etc/hosts" ] || printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$ROOT/etc/hosts"
[ -e "$ROOT/etc/resolv.conf" ] || [ -L "$ROOT/etc/resolv.conf" ] || echo 'nameserver 127.0.0.1' >"$ROOT/etc/resolv.conf"
# Modules of Debian's kernel the tests need: overlayfs (containerd's snapshotter, slipway), loop
# and BFQ (the v1 blkio weight tests on a loop device).
for m in overlay loop bfq; do
  cp "$(find "$KDIR/lib/modules" -name "$m.ko" | head -n1)" "$ROOT/$m.ko"
done

# Stage 1: copy the root onto a tmpfs and hand over to systemd there.
cat >"$ROOT/init" <<'EOF'
#!/bin/busybox sh
B=/bin/busybox
for m in overlay loop bfq; do $B insmod /$m.ko; done
$B mount -t tmpfs -o size=90% tmpfs /newroot
for d in /*; do
  case "$d" in /newroot|/proc|/sys|/dev|/run|/tmp) $B mkdir -p "/newroot$d" ;; *) $B cp -a "$d" /newroot/ ;; esac
done
exec $B switch_root /newroot /lib/systemd/systemd
EOF
chmod +x "$ROOT/init"

# Stage 2: the tests (or the bench), as a unit of the booted system.
if [ -n "$BENCH" ]; then
  NAMES=(bench)
  cat >"$ROOT/tests/run.sh" <<EOF
#!/bin/sh
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
echo "$MARK boot-seconds \$(cut -d. -f1 /proc/uptime)"
echo "$MARK kernel \$(uname -r); pid 1 \$(cat /proc/1/comm); cgroups: \$(stat -fc %T /sys/fs/cgroup) \$(cat /sys/fs/cgroup/cgroup.controllers 2>/dev/null)"
echo "$MARK runc: \$(runc --version | head -n1); crun: \$(crun --version | head -n1); \$(hyperfine --version)"
echo "$MARK START bench"
BENCH_ONLY=skiff BENCH_PHASE_RUNS=0 RUNC=/usr/sbin/runc CRUN=/usr/bin/crun BENCH_RUNS=${BENCH_RUNS:-30} \\
  BENCH_ROUNDS=${BENCH_ROUNDS:-10} BENCH_WARMUP=${BENCH_WARMUP:-2} bash $WS/scripts/bench.sh $SKIFF 2>&1
echo "$MARK RESULT bench rc=\$?"
echo "$MARK DONE"
EOF
else
{
  echo '#!/bin/sh'
  echo "TESTS='${NAMES[*]}'"
  echo "FILTER='${SD_FILTER:-}'"
  echo "export OCI_RUNTIME='${SD_RUNTIME:-$SKIFF}' SKIFF_IT_SYSTEMD=1 SKIFF_IT_THROWAWAY_HOST=1 $DRIVER_ENV ${SD_ENV:-}"
  cat <<'EOF'
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root RUST_BACKTRACE=1
t0=$(cut -d. -f1 /proc/uptime)
echo "SKIFF-SD boot-seconds $t0"
echo "SKIFF-SD kernel $(uname -r); pid 1 $(cat /proc/1/comm); $(systemctl is-system-running)"
echo "SKIFF-SD cgroups: $(stat -fc %T /sys/fs/cgroup) $(cat /sys/fs/cgroup/cgroup.controllers 2>/dev/null || ls /sys/fs/cgroup | tr '\n' ' '); $(systemctl --version | head -n1)"
echo "SKIFF-SD runtime $OCI_RUNTIME, SKIFF_IT_SYSTEMD_CGROUP=${SKIFF_IT_SYSTEMD_CGROUP:-0}"
for t in $TESTS; do
  echo "SKIFF-SD START $t"
  s=$(cut -d. -f1 /proc/uptime)
  /tests/$t --test-threads=2 --color=never $FILTER 2>&1
  rc=$?
  echo "SKIFF-SD TIME $t $(( $(cut -d. -f1 /proc/uptime) - s ))s"
  echo "SKIFF-SD RESULT $t rc=$rc"
done
echo "SKIFF-SD run-seconds $(( $(cut -d. -f1 /proc/uptime) - t0 ))"
echo "SKIFF-SD DONE"
EOF
} >"$ROOT/tests/run.sh"
fi
chmod +x "$ROOT/tests/run.sh"
cat >"$ROOT/etc/systemd/system/skiff-tests.service" <<'EOF'
[Unit]
Description=skiff integration tests
After=multi-user.target dbus.service
[Service]
Type=oneshot
StandardOutput=tty
StandardError=tty
TTYPath=/dev/ttyS0
ExecStart=/tests/run.sh
ExecStopPost=/bin/systemctl poweroff --force
[Install]
WantedBy=multi-user.target
EOF
ln -sf /etc/systemd/system/skiff-tests.service "$ROOT/etc/systemd/system/multi-user.target.wants/skiff-tests.service"
# No login prompt on the console the tests print to.
ln -sf /dev/null "$ROOT/etc/systemd/system/serial-getty@ttyS0.service"

log "host load average before boot: $(cut -d' ' -f1-3 /proc/loadavg)"
vm_boot "$ROOT" "rdinit=/init $CGROUP_ARGS systemd.show_status=false" \
  "$TIMEOUT" "${SD_MEM:-3072}" "${SD_SMP:-2}"
log "host load average after the run: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ -n "$BENCH" ]; then
  # the bench's own lines, from its start marker on
  sed -n "/^$MARK START bench/,\$p" "$CONSOLE.txt" | grep -v "^\[" || true
  log "qemu exit $QRC after ${ELAPSED}s; qemu is TCG here: compare the ratios, not the milliseconds"
  grep -q "^$MARK RESULT bench rc=0" "$CONSOLE.txt" && grep -q "^$MARK DONE" "$CONSOLE.txt"
else
  vm_report
fi
