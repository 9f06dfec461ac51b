#!/usr/bin/env bash
# bench-reliability.sh SKIFF_PATH: skiff and runc under faults and load, in one run, one table:
#   1. fault trials: SIGKILL of `create` at a random moment, then `delete --force`; a trial
#      counts as leaky if a state entry, a cgroup directory or a live init is left afterwards
#   2. parallel runs: RUNS `run`s of /bin/true, 10 at a time, each in its own cgroup; a run over
#      20 s counts as a hang
#   3. leak loop: CYCLES create/start/kill/delete; mounts, cgroup dirs and state entries
#      before and after
# Env: TRIALS (default 100), RUNS (default 100), CYCLES (default 300), RUNC (default: on PATH).
# Everything it makes lives under one temp dir and one private cgroup parent, removed on exit.
set -uo pipefail
[ $# -eq 1 ] || { echo "usage: $0 SKIFF_PATH" >&2; exit 2; }
SKIFF=$(readlink -f "$1")
RUNC=${RUNC:-$(command -v runc || true)}
TRIALS=${TRIALS:-100}
RUNS=${RUNS:-100}
CYCLES=${CYCLES:-300}
HERE=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/skiff-rel-XXXXXX)
PARENT=skiff-rel-$$

cleanup() {
  for rt in skiff runc; do
    local bin root="$WORK/root-$rt"
    bin=$([ $rt = skiff ] && echo "$SKIFF" || echo "$RUNC")
    [ -d "$root" ] || continue
    for id in $("$bin" --root "$root" list -q 2>/dev/null); do "$bin" --root "$root" delete --force "$id" >/dev/null 2>&1; done
  done
  for d in /sys/fs/cgroup/*/"$PARENT" /sys/fs/cgroup/"$PARENT"; do
    [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

# A busybox bundle; each container gets its own cgroup under the private parent.
mkdir -p "$WORK/bundle/rootfs"/{bin,proc,sys,dev,tmp}
cp /bin/busybox "$WORK/bundle/rootfs/bin/"
for a in sh true sleep; do ln -sf busybox "$WORK/bundle/rootfs/bin/$a"; done
jq '.process.args = ["sleep", "1000"] | .process.terminal = false' "$HERE/spec-fixtures/bundles/default.json" \
  >"$WORK/config.json"

# bundle_for ID ARGS_JSON: a bundle dir whose config runs ARGS in cgroup PARENT/ID.
bundle_for() {
  local dir="$WORK/b-$1"
  mkdir -p "$dir"
  # hardlinked copies: runc refuses a rootfs that is a symlink
  [ -d "$dir/rootfs" ] || cp -al "$WORK/bundle/rootfs" "$dir/rootfs"
  jq --arg cg "/$PARENT/$1" --argjson a "$2" '.linux.cgroupsPath = $cg | .process.args = $a' "$WORK/config.json" \
    >"$dir/config.json"
  echo "$dir"
}

# alive: the pid exists and is not a zombie waiting for init(1) to reap it
alive() { [ -r "/proc/$1/stat" ] && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]; }
cgroups_of() { ls -d /sys/fs/cgroup/*/"$PARENT/$1" /sys/fs/cgroup/"$PARENT/$1" 2>/dev/null | wc -l; }
mounts() { wc -l </proc/self/mountinfo; }
cgroup_count() { find /sys/fs/cgroup/*/"$PARENT" /sys/fs/cgroup/"$PARENT" -mindepth 1 -type d 2>/dev/null | wc -l; }

declare -A R=()
measure() {
  local rt=$1 bin=$2 root="$WORK/root-$1"
  mkdir -p "$root"
  local ctl="$bin --root $root"
  echo "== $rt: $TRIALS fault trials" >&2
  # how long an undisturbed create takes, to spread the kills over it
  local b t0 t1 span
  b=$(bundle_for "$rt-probe" '["sleep","1000"]')
  t0=$(date +%s%N); $ctl create --bundle "$b" "$rt-probe" >/dev/null 2>&1; t1=$(date +%s%N)
  $ctl delete --force "$rt-probe" >/dev/null 2>&1
  span=$(( (t1 - t0) / 1000 ))
  local leaky=0 left_state=0 left_cg=0 left_proc=0 i id pid
  for i in $(seq 1 "$TRIALS"); do
    id="$rt-f$i"; b=$(bundle_for "$id" '["sleep","1000"]')
    $ctl create --bundle "$b" "$id" >/dev/null 2>&1 </dev/null &
    local cpid=$!
    sleep "$(awk -v s="$span" -v r="$RANDOM" 'BEGIN { printf "%.6f", s * 1.2 * r / 32768 / 1e6 }')"
    kill -KILL $cpid 2>/dev/null; wait $cpid 2>/dev/null
    pid=$($ctl state "$id" 2>/dev/null | jq -r '.pid // 0')
    $ctl delete --force "$id" >/dev/null 2>&1
    local bad=0
    $ctl state "$id" >/dev/null 2>&1 && { left_state=$((left_state + 1)); bad=1; }
    # runc may need a moment to reap; give every runtime the same second
    for _ in $(seq 10); do [ "$(cgroups_of "$id")" -eq 0 ] && break; sleep 0.1; done
    [ "$(cgroups_of "$id")" -gt 0 ] && { left_cg=$((left_cg + 1)); bad=1; }
    if [ "${pid:-0}" -gt 0 ]; then
      for _ in $(seq 10); do alive "$pid" || break; sleep 0.1; done
      alive "$pid" && { left_proc=$((left_proc + 1)); bad=1; }
    fi
    leaky=$((leaky + bad))
    # leave the host clean for the next measurement (what the runtime left, by hand)
    for d in /sys/fs/cgroup/*/"$PARENT/$id" /sys/fs/cgroup/"$PARENT/$id"; do [ -d "$d" ] && rmdir "$d" 2>/dev/null; done
  done
  R[$rt.fault]="$leaky/$TRIALS leaky (state $left_state, cgroups $left_cg, processes $left_proc)"

  echo "== $rt: $RUNS runs, 10 at a time" >&2
  # one cgroup per container, as engines give them (see the README for a shared cgroupsPath)
  for i in $(seq 1 "$RUNS"); do bundle_for "$rt-p$i" '["true"]' >/dev/null; done
  local fails=0 hangs=0 out="$WORK/par-$rt"
  mkdir -p "$out"
  seq 1 "$RUNS" | xargs -P 10 -I{} sh -c "timeout 20 $ctl run --bundle $WORK/b-$rt-p{} $rt-p{} >/dev/null 2>&1 </dev/null; echo \$? > $out/{}"
  for f in "$out"/*; do
    case $(cat "$f") in 0) ;; 124) hangs=$((hangs + 1)) ;; *) fails=$((fails + 1)) ;; esac
  done
  for id in $($ctl list -q 2>/dev/null); do $ctl delete --force "$id" >/dev/null 2>&1; done
  R[$rt.par]="$fails failed, $hangs hung"

  echo "== $rt: $CYCLES create/start/kill/delete cycles" >&2
  b=$(bundle_for "$rt-loop" '["sleep","1000"]')
  $ctl create --bundle "$b" "$rt-warm" >/dev/null 2>&1 && $ctl delete --force "$rt-warm" >/dev/null 2>&1
  local m0 c0 m1 c1 s1 errs=0
  m0=$(mounts); c0=$(cgroup_count)
  for i in $(seq 1 "$CYCLES"); do
    id="$rt-c$i"
    { $ctl create --bundle "$b" "$id" && $ctl start "$id" && $ctl kill "$id" KILL; } >/dev/null 2>&1 </dev/null || errs=$((errs + 1))
    for _ in $(seq 50); do [ "$($ctl state "$id" 2>/dev/null | jq -r .status)" = stopped ] && break; sleep 0.02; done
    $ctl delete "$id" >/dev/null 2>&1 || errs=$((errs + 1))
  done
  m1=$(mounts); c1=$(cgroup_count); s1=$($ctl list -q 2>/dev/null | wc -l)
  R[$rt.leak]="mounts $((m1 - m0)), cgroups $((c1 - c0)), state $s1, errors $errs"
}

measure skiff "$SKIFF"
[ -x "$RUNC" ] && measure runc "$RUNC"

printf '\n%-8s | %-55s | %-20s | %s\n' runtime "SIGKILL during create ($TRIALS trials)" "$RUNS runs, 10 at once" "$CYCLES-cycle leak loop (delta)"
for rt in skiff runc; do
  [ -n "${R[$rt.fault]:-}" ] || continue
  printf '%-8s | %-55s | %-20s | %s\n' "$rt" "${R[$rt.fault]}" "${R[$rt.par]}" "${R[$rt.leak]}"
done
