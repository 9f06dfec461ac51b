#!/bin/bash
# `make test-cgroup2`: runs skiff's cgroup integration tests on a pure cgroup v2 host.
#
# Boots qemu (TCG: no hardware virtualisation needed) with a Debian kernel package's vmlinuz and
# an initramfs made here: busybox, the release skiff and its shared libraries, the integration
# test binaries and the spec fixtures they read (at the same absolute paths as on this host).
# The guest mounts cgroup2 alone on /sys/fs/cgroup (the kernel gets cgroup_no_v1 for every
# controller but the v1-only net_cls and net_prio, which a test binds in its own namespace), runs
# each test binary, and prints one marker line per binary on the serial console; this script
# parses those lines and exits non-zero unless every binary passed.
#
# Usage: scripts/test-cgroup2.sh SKIFF_BINARY
# Environment: CG2_TESTS (test targets, default "resources pause_ps update events"),
# CG2_FILTER (a test name filter given to every binary, default none),
# CG2_TIMEOUT (seconds for the whole VM run, default 2400), CG2_SMP (default 2), CG2_MEM (MiB, default 2048).
set -euo pipefail

SKIFF=$(realpath "${1:?usage: test-cgroup2.sh SKIFF_BINARY}")
WS=$(cd "$(dirname "$0")/.." && pwd)
WORK=$WS/target/cgroup2-vm
TESTS=${CG2_TESTS:-resources pause_ps update events}
TIMEOUT=${CG2_TIMEOUT:-2400}
NO_V1=cpuset,cpu,cpuacct,blkio,memory,devices,freezer,perf_event,hugetlb,pids,rdma,misc
mkdir -p "$WORK"

log() { echo "test-cgroup2: $*" >&2; }
MARK=SKIFF-CG2
# shellcheck source=scripts/vm-lib.sh
source "$WS/scripts/vm-lib.sh"

# --- the kernel: the package linux-image-amd64 depends on, downloaded once ---------------------
vm_kernel
# Everything the tests need is built in (cgroup2 controllers, CGROUP_BPF, IOCOST's io.weight,
# tmpfs, devtmpfs, the 8250 serial console) but a block device: brd.ko (a ram disk, no
# dependencies) goes into the initramfs for the io.max throttle tests.
for opt in CONFIG_CGROUP_BPF=y CONFIG_MEMCG=y CONFIG_CGROUP_PIDS=y CONFIG_BLK_CGROUP_IOCOST=y CONFIG_BLK_DEV_INITRD=y CONFIG_SERIAL_8250_CONSOLE=y; do
  grep -q "^$opt" "$KDIR"/boot/config-* || { log "$KPKG lacks $opt"; exit 1; }
done

# --- the test binaries ---------------------------------------------------------------------------
# shellcheck disable=SC2086
vm_test_binaries $TESTS

# --- the initramfs -------------------------------------------------------------------------------
ROOT=$WORK/initramfs
rm -rf "$ROOT"
mkdir -p "$ROOT"/{bin,sbin,etc,proc,sys,dev,tmp,run,newroot,tests}
cp /bin/busybox "$ROOT/bin/busybox"
# iproute2's `rdma` makes the soft-RoCE device the rdma tests need (see below); optional.
RDMA_TOOL=$(command -v rdma || true)
[ -n "$RDMA_TOOL" ] || log "no rdma tool (iproute2) here: the rdma.max tests will skip"
VM_EXTRA_EXES=$RDMA_TOOL vm_install_tests "$ROOT" "$SKIFF"
names=("${NAMES[@]}")
BRD=$(ls "$KDIR"/lib/modules/*/kernel/drivers/block/brd.ko 2>/dev/null | head -n1)
[ -n "$BRD" ] || { log "$KPKG has no uncompressed brd.ko"; exit 1; }
mkdir -p "$ROOT/lib/modules" && cp "$BRD" "$ROOT/lib/modules/brd.ko"
# rdma.max takes lines only for an RDMA device the kernel has. Soft-RoCE gives one, rxe0, on a
# dummy netdev of its own (dummy.ko makes a dummy0 by itself): rdma_rxe with the modules it
# needs, in load order; crc32_generic for the crc32 shash rxe allocates (without it `rdma link
# add` fails with ENOENT). Optional: without them the rdma tests skip their positive case.
RXE_MODS="crc32_generic ib_core ib_uverbs udp_tunnel ip6_udp_tunnel rdma_rxe dummy"
for m in $RXE_MODS; do
  ko=$(find "$KDIR"/lib/modules/*/kernel -name "$m.ko" 2>/dev/null | head -n1)
  if [ -n "$ko" ]; then cp "$ko" "$ROOT/lib/modules/$m.ko"; else log "$KPKG has no uncompressed $m.ko"; fi
done
[ -z "$RDMA_TOOL" ] || cp "$RDMA_TOOL" "$ROOT/sbin/rdma"
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$ROOT/etc/passwd"
printf 'root:x:0:\n' >"$ROOT/etc/group"

# Stage 1 (on the initramfs): pivot_root refuses to move away from the initramfs, and skiff
# needs it, so copy everything onto a tmpfs and switch_root there.
cat >"$ROOT/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t tmpfs -o size=90% tmpfs /newroot
for d in /*; do
  case "$d" in /newroot|/proc|/sys|/dev) mkdir -p "/newroot$d" ;; *) cp -a "$d" /newroot/ ;; esac
done
exec switch_root /newroot /init2
EOF
# Stage 2: a pure v2 host, then the tests, one marker line per binary.
{
  echo '#!/bin/sh'
  echo "TESTS='${names[*]}'"
  echo "FILTER='${CG2_FILTER:-}'"
  echo "export OCI_RUNTIME='$SKIFF'"
  # A throwaway host: tests may bind the v1-only net_cls/net_prio hierarchy (see resources.rs).
  echo "export SKIFF_IT_THROWAWAY_HOST=1"
  echo "RXE_MODS='$RXE_MODS'"
  cat <<'EOF'
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm && mount -t devpts devpts /dev/pts && mount -t tmpfs tmpfs /dev/shm
mount -t cgroup2 cgroup2 /sys/fs/cgroup
chmod 1777 /tmp
ip link set lo up 2>/dev/null
insmod /lib/modules/brd.ko rd_nr=1 rd_size=4096 || echo "SKIFF-CG2 insmod brd failed"
for m in $RXE_MODS; do
  [ -e "/lib/modules/$m.ko" ] && { insmod "/lib/modules/$m.ko" || echo "SKIFF-CG2 insmod $m failed"; }
done
if [ -x /sbin/rdma ] && ip link add rxenet0 type dummy && ip link set rxenet0 up; then
  /sbin/rdma link add rxe0 type rxe netdev rxenet0 || echo "SKIFF-CG2 rdma link add rxe0 failed"
fi
echo "SKIFF-CG2 rdma devices: $(ls /sys/class/infiniband 2>/dev/null | tr '\n' ' ')"
echo "SKIFF-CG2 block devices: $(for d in /sys/block/*; do printf '%s=%s ' "${d##*/}" "$(cat $d/dev)"; done)"
export PATH=/bin:/sbin HOME=/root RUST_BACKTRACE=1
echo "SKIFF-CG2 kernel $(uname -r); $(grep cgroup /proc/mounts | tr '\n' ';')"
echo "SKIFF-CG2 controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
t0=$(cut -d. -f1 /proc/uptime)
echo "SKIFF-CG2 boot-seconds $t0"
for t in $TESTS; do
  echo "SKIFF-CG2 START $t"
  /tests/$t --test-threads=2 $FILTER 2>&1
  echo "SKIFF-CG2 RESULT $t rc=$?"
done
echo "SKIFF-CG2 run-seconds $(( $(cut -d. -f1 /proc/uptime) - t0 ))"
echo "SKIFF-CG2 DONE"
poweroff -f
EOF
} >"$ROOT/init2"
chmod +x "$ROOT/init" "$ROOT/init2"

# --- boot and report -----------------------------------------------------------------------------
vm_boot "$ROOT" "cgroup_no_v1=$NO_V1 systemd.unified_cgroup_hierarchy=1" "$TIMEOUT" "${CG2_MEM:-2048}" "${CG2_SMP:-2}"
vm_report
