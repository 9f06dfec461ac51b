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

# --- the kernel: the package linux-image-amd64 depends on, downloaded once ---------------------
KPKG=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
[ -n "$KPKG" ] || { log "cannot resolve linux-image-amd64's kernel package"; exit 1; }
KDIR=$WORK/$KPKG
if [ ! -d "$KDIR/boot" ]; then
  log "downloading $KPKG"
  (cd "$WORK" && rm -f "${KPKG}"_*.deb && apt-get download -q "$KPKG" 2>&1 | grep -v '^W: Download is performed unsandboxed' >&2 || true)
  deb=$(ls "$WORK/${KPKG}"_*.deb 2>/dev/null | head -n1)
  [ -n "$deb" ] || { log "apt-get download $KPKG failed"; exit 1; }
  rm -rf "$KDIR.tmp" && mkdir -p "$KDIR.tmp"
  dpkg-deb -x "$deb" "$KDIR.tmp"
  mv "$KDIR.tmp" "$KDIR"
fi
VMLINUZ=$(ls "$KDIR"/boot/vmlinuz-* | head -n1)
# Everything the tests need is built in (cgroup2 controllers, CGROUP_BPF, IOCOST's io.weight,
# tmpfs, devtmpfs, the 8250 serial console) but a block device: brd.ko (a ram disk, no
# dependencies) goes into the initramfs for the io.max throttle tests.
for opt in CONFIG_CGROUP_BPF=y CONFIG_MEMCG=y CONFIG_CGROUP_PIDS=y CONFIG_BLK_CGROUP_IOCOST=y CONFIG_BLK_DEV_INITRD=y CONFIG_SERIAL_8250_CONSOLE=y; do
  grep -q "^$opt" "$KDIR"/boot/config-* || { log "$KPKG lacks $opt"; exit 1; }
done

# --- the test binaries ---------------------------------------------------------------------------
targs=()
for t in $TESTS; do targs+=(--test "$t"); done
log "building the test binaries (${TESTS})"
mapfile -t BINS < <(cd "$WS" && cargo test -p integration "${targs[@]}" --no-run --message-format=json 2>/dev/null |
  jq -r 'select(.reason == "compiler-artifact" and .profile.test == true and .executable != null) | .executable')
[ "${#BINS[@]}" -gt 0 ] || { log "no test binaries were built"; exit 1; }

# --- the initramfs -------------------------------------------------------------------------------
ROOT=$WORK/initramfs
rm -rf "$ROOT"
mkdir -p "$ROOT"/{bin,sbin,etc,proc,sys,dev,tmp,run,newroot,tests}
cp /bin/busybox "$ROOT/bin/busybox"
# Same absolute paths as here: the test binaries find spec-fixtures through their build path.
# (workspace_dir() is integration/.. : that directory must exist too)
mkdir -p "$ROOT$WS/integration" "$ROOT$(dirname "$SKIFF")"
cp -r "$WS/spec-fixtures" "$ROOT$WS/"
cp "$SKIFF" "$ROOT$SKIFF"
# iproute2's `rdma` makes the soft-RoCE device the rdma tests need (see below); optional.
RDMA_TOOL=$(command -v rdma || true)
[ -n "$RDMA_TOOL" ] || log "no rdma tool (iproute2) here: the rdma.max tests will skip"
libs=$(ldd "$SKIFF" "${BINS[@]}" $RDMA_TOOL 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// && NF > 1 {print $1}' | sort -u)
for lib in $libs; do
  mkdir -p "$ROOT$(dirname "$lib")"
  cp -L "$lib" "$ROOT$lib"
done
names=()
for b in "${BINS[@]}"; do
  name=$(basename "$b" | sed 's/-[0-9a-f]*$//')
  names+=("$name")
  # Debug info is most of a test binary's size and useless in the guest.
  strip --strip-debug -o "$ROOT/tests/$name" "$b"
done
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
INITRD=$WORK/initramfs.cpio
(cd "$ROOT" && find . | cpio -o -H newc --quiet >"$INITRD")
log "initramfs $(du -h "$INITRD" | cut -f1), kernel $(basename "$VMLINUZ")"

# --- boot ----------------------------------------------------------------------------------------
CONSOLE=$WORK/console.log
log "booting qemu (TCG), console in $CONSOLE"
start=$(date +%s)
set +e
timeout "$TIMEOUT" qemu-system-x86_64 -accel tcg -m "${CG2_MEM:-2048}" -smp "${CG2_SMP:-2}" \
  -nographic -no-reboot -nic none \
  -kernel "$VMLINUZ" -initrd "$INITRD" \
  -append "console=ttyS0 panic=-1 quiet cgroup_no_v1=$NO_V1 systemd.unified_cgroup_hierarchy=1" \
  </dev/null >"$CONSOLE" 2>&1
qrc=$?
set -e
elapsed=$(( $(date +%s) - start ))
tr -d '\r' <"$CONSOLE" >"$CONSOLE.txt"

# --- report --------------------------------------------------------------------------------------
grep -E '^(test |SKIFF-CG2|test result|thread .* panicked|failures:)' "$CONSOLE.txt" || true
passed=0 failed=0 bad=0
for n in "${names[@]}"; do
  line=$(grep -E "^SKIFF-CG2 RESULT $n rc=" "$CONSOLE.txt" || true)
  [ "$line" = "SKIFF-CG2 RESULT $n rc=0" ] || { bad=$((bad + 1)); log "FAIL: $n (${line:-no result})"; }
done
while read -r p f; do passed=$((passed + p)); failed=$((failed + f)); done < <(
  sed -n 's/^test result: [a-zA-Z]*\. \([0-9]*\) passed; \([0-9]*\) failed.*/\1 \2/p' "$CONSOLE.txt")
boot=$(sed -n 's/^SKIFF-CG2 boot-seconds //p' "$CONSOLE.txt")
run=$(sed -n 's/^SKIFF-CG2 run-seconds //p' "$CONSOLE.txt")
log "qemu exit $qrc after ${elapsed}s (guest boot ${boot:-?}s, tests ${run:-?}s): $passed passed, $failed failed"
if ! grep -q '^SKIFF-CG2 DONE' "$CONSOLE.txt"; then
  log "the guest did not finish (timeout or crash); see $CONSOLE.txt"
  exit 1
fi
[ "$bad" -eq 0 ] && [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
