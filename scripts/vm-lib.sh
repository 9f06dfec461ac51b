# Shared by the qemu test VMs (scripts/test-cgroup2.sh, scripts/test-systemd.sh); sourced, not run.
#
# A VM here is a Debian kernel package's vmlinuz booted by qemu in TCG mode (no hardware
# virtualisation needed) with an initramfs made from a directory; the integration test binaries
# and the release skiff go into it at the same absolute paths as on this host (the tests find
# spec-fixtures through their build path). The guest prints one marker line per test binary on
# the serial console (`$MARK START name`, `$MARK RESULT name rc=N`, `$MARK DONE`), and vm_report
# turns those lines into an exit status.
#
# Callers set: WS (the workspace), WORK (a scratch directory under target/), MARK (the marker
# prefix) and log() before sourcing.

# vm_kernel: sets KPKG, KDIR and VMLINUZ to the kernel package linux-image-amd64 depends on,
# downloaded and unpacked into $WORK once.
vm_kernel() {
  KPKG=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
  [ -n "$KPKG" ] || { log "cannot resolve linux-image-amd64's kernel package"; return 1; }
  KDIR=$WORK/$KPKG
  if [ ! -d "$KDIR/boot" ]; then
    log "downloading $KPKG"
    (cd "$WORK" && rm -f "${KPKG}"_*.deb && apt-get download -q "$KPKG" 2>&1 | grep -v '^W: Download is performed unsandboxed' >&2 || true)
    local deb
    deb=$(ls "$WORK/${KPKG}"_*.deb 2>/dev/null | head -n1)
    [ -n "$deb" ] || { log "apt-get download $KPKG failed"; return 1; }
    rm -rf "$KDIR.tmp" && mkdir -p "$KDIR.tmp"
    dpkg-deb -x "$deb" "$KDIR.tmp"
    mv "$KDIR.tmp" "$KDIR"
  fi
  VMLINUZ=$(ls "$KDIR"/boot/vmlinuz-* | head -n1)
}

# vm_test_binaries TARGET...: builds the integration test binaries of the given test targets and
# sets BINS to their paths.
vm_test_binaries() {
  local targs=() t
  for t in "$@"; do targs+=(--test "$t"); done
  log "building the test binaries ($*)"
  mapfile -t BINS < <(cd "$WS" && cargo test -p integration "${targs[@]}" --no-run --message-format=json 2>/dev/null |
    jq -r 'select(.reason == "compiler-artifact" and .profile.test == true and .executable != null) | .executable')
  [ "${#BINS[@]}" -gt 0 ] || { log "no test binaries were built"; return 1; }
}

# vm_install_tests ROOT SKIFF: copies the spec fixtures, skiff, the test binaries (BINS, stripped,
# as ROOT/tests/NAME) and their shared libraries into ROOT; sets NAMES to the binaries' names.
# Extra executables whose libraries must come along can be listed in VM_EXTRA_EXES.
vm_install_tests() {
  local root=$1 skiff=$2 lib b name libs
  mkdir -p "$root/tests" "$root$WS/integration" "$root$(dirname "$skiff")"
  cp -r "$WS/spec-fixtures" "$root$WS/"
  cp "$skiff" "$root$skiff"
  libs=$(ldd "$skiff" "${BINS[@]}" ${VM_EXTRA_EXES:-} 2>/dev/null |
    awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// && NF > 1 {print $1}' | sort -u)
  for lib in $libs; do
    [ -e "$root$lib" ] && continue
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
  NAMES=()
  for b in "${BINS[@]}"; do
    name=$(basename "$b" | sed 's/-[0-9a-f]*$//')
    NAMES+=("$name")
    # Debug info is most of a test binary's size and useless in the guest.
    strip --strip-debug -o "$root/tests/$name" "$b"
  done
}

# vm_boot ROOT APPEND TIMEOUT MEM SMP: packs ROOT into an initramfs and boots it; the console goes
# to $WORK/console.log and, without carriage returns, $WORK/console.log.txt. Sets QRC and ELAPSED.
vm_boot() {
  local root=$1 append=$2 timeout=$3 mem=$4 smp=$5 initrd=$WORK/initramfs.cpio
  if command -v zstd >/dev/null; then
    initrd=$WORK/initramfs.cpio.zst
    (cd "$root" && find . | cpio -o -H newc --quiet | zstd -q -1 -T0 >"$initrd")
  else
    (cd "$root" && find . | cpio -o -H newc --quiet >"$initrd")
  fi
  log "initramfs $(du -h "$initrd" | cut -f1), kernel $(basename "$VMLINUZ")"
  CONSOLE=$WORK/console.log
  log "booting qemu (TCG), console in $CONSOLE"
  local start
  start=$(date +%s)
  set +e
  timeout "$timeout" qemu-system-x86_64 -accel tcg -cpu max -m "$mem" -smp "$smp" \
    -nographic -no-reboot -nic none \
    -kernel "$VMLINUZ" -initrd "$initrd" -append "console=ttyS0 panic=-1 quiet $append" \
    </dev/null >"$CONSOLE" 2>&1
  QRC=$?
  set -e
  ELAPSED=$(( $(date +%s) - start ))
  # without carriage returns and terminal escapes (colours, cursor moves)
  sed -e 's/\r//g' -e 's/\x1b\[[0-9;?]*[a-zA-Z]//g' -e 's/\x1b([AB0]//g' <"$CONSOLE" >"$CONSOLE.txt"
}

# vm_report: prints the test lines of the console and exits the script's status: 0 only if every
# binary in NAMES ran to rc=0, no test failed, some passed, and the guest reached `$MARK DONE`.
vm_report() {
  local txt=$CONSOLE.txt passed=0 failed=0 bad=0 n line p f boot run
  grep -E "^(test |$MARK|test result|thread .* panicked|failures:|skipped: )" "$txt" || true
  for n in "${NAMES[@]}"; do
    line=$(grep -E "^$MARK RESULT $n rc=" "$txt" || true)
    [ "$line" = "$MARK RESULT $n rc=0" ] || { bad=$((bad + 1)); log "FAIL: $n (${line:-no result})"; }
  done
  while read -r p f; do passed=$((passed + p)); failed=$((failed + f)); done < <(
    sed -n 's/^test result: [a-zA-Z]*\. \([0-9]*\) passed; \([0-9]*\) failed.*/\1 \2/p' "$txt")
  boot=$(sed -n "s/^$MARK boot-seconds //p" "$txt")
  run=$(sed -n "s/^$MARK run-seconds //p" "$txt")
  log "qemu exit $QRC after ${ELAPSED}s (guest up at ${boot:-?}s, tests ${run:-?}s): $passed passed, $failed failed"
  if ! grep -q "^$MARK DONE" "$txt"; then
    log "the guest did not finish (timeout or crash); see $txt"
    return 1
  fi
  [ "$bad" -eq 0 ] && [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
}
