#!/usr/bin/env bash
# bench.sh SKIFF_PATH — skiff against runc on one busybox bundle running /bin/true:
#   1. `run` (foreground, the container is deleted on exit)
#   2. `create` + `start` + `delete --force`
# prints hyperfine's median for each, the skiff/runc ratio, and the peak RSS of one `run` of each
# (GNU time's "Maximum resident set size"). A runtime that cannot run the bundle is reported and
# left out, so this works against runc alone. Everything it makes is removed on exit.
# Env: BENCH_RUNS (default 30), BENCH_WARMUP (default 3), RUNC (default: runc on PATH).
set -euo pipefail

usage() { echo "usage: $0 SKIFF_PATH" >&2; exit 2; }
[ $# -eq 1 ] || usage
SKIFF=$1
RUNC=${RUNC:-$(command -v runc || true)}
RUNS=${BENCH_RUNS:-30}
WARMUP=${BENCH_WARMUP:-3}
HERE=$(cd "$(dirname "$0")/.." && pwd)
FIXTURE=$HERE/spec-fixtures/bundles/default.json

for tool in hyperfine jq /usr/bin/time /bin/busybox; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing (make deps)" >&2; exit 1; }
done
[ "$(id -u)" -eq 0 ] || { echo "bench: must run as root (containers need it)" >&2; exit 1; }

WORK=$(mktemp -d /tmp/skiff-bench-XXXXXX)
CGROUP=/skiff-it/bench-$$
BUNDLE=$WORK/bundle

cleanup() {
  local rt root id
  for rt in skiff runc; do
    root=$WORK/root-$rt
    bin=$([ "$rt" = skiff ] && echo "$SKIFF" || echo "$RUNC")
    if [ -d "$root" ] && [ -x "$bin" ]; then
      for id in $("$bin" --root "$root" list -q 2>/dev/null || true); do
        "$bin" --root "$root" delete --force "$id" >/dev/null 2>&1 || true
      done
    fi
  done
  # The runtimes remove a container's cgroup on delete; this catches a runtime that did not.
  for d in /sys/fs/cgroup$CGROUP /sys/fs/cgroup/*$CGROUP; do
    [ -d "$d" ] && rmdir "$d" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

# --- the bundle: busybox rootfs + runc's template running /bin/true in a private cgroup ---
mkdir -p "$BUNDLE"/rootfs/{bin,etc,proc,sys,dev,tmp}
cp /bin/busybox "$BUNDLE/rootfs/bin/busybox"
for applet in $(/bin/busybox --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$BUNDLE/rootfs/bin/$applet"
done
echo 'root:x:0:0:root:/root:/bin/sh' >"$BUNDLE/rootfs/etc/passwd"
echo 'root:x:0:' >"$BUNDLE/rootfs/etc/group"
jq --arg cg "$CGROUP" '.process.args = ["/bin/true"] | .linux.cgroupsPath = $cg' "$FIXTURE" >"$BUNDLE/config.json"

# --- which runtimes work ---
declare -a NAMES=()
declare -A BIN=()
for rt in skiff runc; do
  bin=$([ "$rt" = skiff ] && echo "$SKIFF" || echo "$RUNC")
  root=$WORK/root-$rt
  mkdir -p "$root"
  if [ -z "$bin" ] || [ ! -x "$bin" ]; then
    echo "bench: $rt: no executable at '${bin}', skipped"
    continue
  fi
  if ! out=$("$bin" --root "$root" run --bundle "$BUNDLE" probe-$$ 2>&1 </dev/null); then
    echo "bench: $rt: cannot run the bundle, skipped: $(echo "$out" | tail -n 3)"
    "$bin" --root "$root" delete --force probe-$$ >/dev/null 2>&1 || true
    continue
  fi
  NAMES+=("$rt")
  BIN[$rt]=$bin
done
[ ${#NAMES[@]} -gt 0 ] || { echo "bench: no runtime works" >&2; exit 1; }

# Each command runs in a fresh `sh -c`, so `$$` there is a new id every run; hyperfine subtracts
# the shell's own start-up time. `run` deletes its container on exit; the lifecycle command
# deletes explicitly (--force: /bin/true may still be exiting when start returns).
run_cmd() { echo "${BIN[$1]} --root $WORK/root-$1 run --bundle $BUNDLE run-\$\$"; }
lifecycle_cmd() {
  local r="${BIN[$1]} --root $WORK/root-$1"
  echo "$r create --bundle $BUNDLE cs-\$\$ && $r start cs-\$\$ && $r delete --force cs-\$\$"
}

median() { jq -r --arg n "$2" '.results[] | select(.command == $n) | .median' "$1"; }

declare -A MEDIAN=()
for bench in run lifecycle; do
  args=()
  for rt in "${NAMES[@]}"; do
    args+=(--command-name "$rt" "$("${bench}_cmd" "$rt")")
  done
  echo
  echo "== $bench: $([ $bench = run ] && echo 'run /bin/true' || echo 'create + start + delete of /bin/true')"
  hyperfine --style basic --warmup "$WARMUP" --runs "$RUNS" --export-json "$WORK/$bench.json" "${args[@]}"
  for rt in "${NAMES[@]}"; do
    MEDIAN[$bench,$rt]=$(median "$WORK/$bench.json" "$rt")
  done
done

peak_rss_kb() {
  "/usr/bin/time" -v "${BIN[$1]}" --root "$WORK/root-$1" run --bundle "$BUNDLE" rss-$$ 2>&1 >/dev/null </dev/null |
    awk -F': ' '/Maximum resident set size/ { print $2 }'
}

echo
echo "== summary (median seconds; peak RSS of one run, kB)"
printf '%-10s %12s %12s %12s\n' runtime run lifecycle peak-rss
for rt in "${NAMES[@]}"; do
  printf '%-10s %12.4f %12.4f %12s\n' "$rt" "${MEDIAN[run,$rt]}" "${MEDIAN[lifecycle,$rt]}" "$(peak_rss_kb "$rt")"
done
if [ -n "${MEDIAN[run,skiff]:-}" ] && [ -n "${MEDIAN[run,runc]:-}" ]; then
  for bench in run lifecycle; do
    printf 'skiff/runc %-10s %.2f\n' "$bench" "$(jq -n "${MEDIAN[$bench,skiff]} / ${MEDIAN[$bench,runc]}")"
  done
else
  echo "skiff/runc: no ratio (only ${NAMES[*]} could run)"
fi
