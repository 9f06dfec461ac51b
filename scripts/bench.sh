#!/usr/bin/env bash
# bench.sh SKIFF_PATH [SLIPWAY_PATH]
#
# Part 1, skiff against runc (and crun, where it is installed: make bench-cgroup2 runs this part in
# a cgroup v2 VM with Debian's crun) on one busybox bundle running /bin/true:
#   1. `run` (foreground, the container is deleted on exit)
#   2. `create` + `start` + `delete --force`
#   3. `--version` (start-up alone)
# interleaved: BENCH_ROUNDS rounds, each one hyperfine of every runtime (who goes first rotates), so
# a change of the machine's load hits all alike; prints the median of all runs of each, the
# skiff/runc and skiff/crun ratios, and the peak RSS of one `run` of each (GNU time's "Maximum
# resident set size"). A runtime that cannot run the bundle is reported and left out, so this works
# against runc alone. Then where the time of `run` goes, phase by phase,
# for skiff, runc and the floor (scripts/bench/floor.c: the system calls this bundle needs and
# nothing else), from skiff's trace points (see bench_phases).
#
# End to end (after part 1): `ctr run --rm` and `docker run --rm` of /bin/true in an image of the
# same busybox rootfs, through skiff and through runc, on a private containerd and a private dockerd
# started and stopped here by pid, interleaved; with part 1's create + start + delete, the share of
# the user's container start that is the runtime's.
#
# Part 2 (with SLIPWAY_PATH), slipway against `buildah bud --layers` on the same Dockerfiles:
# cold build and no-op rebuild of spec-fixtures cases (FROM scratch, or FROM a busybox base
# that slipway builds and buildah imports from slipway's docker-archive), then a generated
# 10,000-file context: no-op rebuild and a one-file change; a RUN that fills a cache mount with
# 2,000 files, cold (empty caches, the base unpacked as buildah's pull leaves it) and warm (a
# context change reruns it on full caches); two independent stages that each sleep 2 s (cold).
# The last three rows run the tools interleaved, round by round (ipair), so the machine's load
# weighs on both alike. buildah gets a private --root,
# --runroot and storage.conf (overlay driver), so the machine's stores are never touched.
# docker 20.10's BuildKit (a private dockerd started and stopped here) runs the same cases when
# dockerd and the 20.10 client are installed. Prints the medians, the slipway/buildah and
# slipway/BuildKit ratios of the same run and the targets against BuildKit, the 10k no-op
# against `find` (its stat floor, alternating rounds) and where its time goes (SLIPWAY_TRACE).
#
# Part 3 (with SLIPWAY_PATH), scripts/bench-registry.sh: push and pull of a 200 MB random layer
# through a loopback docker-registry, slipway against `skopeo copy` and buildah push/pull, and
# a re-push of an unchanged image.
#
# Everything it makes is removed on exit.
# Env: BENCH_RUNS (default 30: runs of each runtime, over all rounds), BENCH_ROUNDS (default 5),
#      BENCH_WARMUP (default 3), BENCH_PHASE_RUNS (default 50: runs of each runtime for the
#      breakdown; 0: no breakdown), RUNC (default: runc on PATH), CRUN (default: crun on PATH),
#      BENCH_E2E_RUNS (default 12), BENCH_E2E_ROUNDS (default 4): the end-to-end rows,
#      BENCH_ONLY (skiff, e2e, slipway or registry: run one part), BENCH_ROWS (an extended regex:
#      only the slipway rows whose name matches, e.g. 'cachemount|twostage'), BENCH_BUILD_RUNS (default 5: timed runs of
#      each build benchmark), BENCH_SLIPWAY_RUNTIME (the runtime of slipway's RUN steps;
#      default SKIFF_PATH, what slipway users get; buildah runs its RUN steps with runc, so set
#      BENCH_SLIPWAY_RUNTIME=$(command -v runc) to compare the builders alone),
#      BENCH_FLOOR_ROUNDS (default 8: rounds of 5 runs each of the 10k no-op and find).
set -euo pipefail

usage() { echo "usage: $0 SKIFF_PATH [SLIPWAY_PATH]" >&2; exit 2; }
[ $# -eq 1 ] || [ $# -eq 2 ] || usage
# absolute: the engines of the end-to-end rows exec it from their own directories
SKIFF=$(realpath -e "$1" 2>/dev/null || echo "$1")
SLIPWAY=${2:-}
ONLY=${BENCH_ONLY:-}
ROWS=${BENCH_ROWS:-}
RUNC=${RUNC:-$(command -v runc || true)}
CRUN=${CRUN:-$(command -v crun || true)}
RUNS=${BENCH_RUNS:-30}
ROUNDS=${BENCH_ROUNDS:-5}
PHASE_RUNS=${BENCH_PHASE_RUNS:-50}
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

# the executable of runtime NAME (skiff, runc, crun), empty if there is none
rt_bin() {
  case $1 in skiff) echo "$SKIFF" ;; runc) echo "$RUNC" ;; crun) echo "$CRUN" ;; esac
}

cleanup() {
  slipway_cleanup
  e2e_stop
  local rt root id
  for rt in skiff runc crun; do
    root=$WORK/root-$rt
    bin=$(rt_bin "$rt")
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
# an interrupted bench cleans up too (the EXIT trap runs on exit)
trap "exit 130" INT TERM HUP

# --- part 2: slipway against buildah ---
SW=$WORK/slipway
BUILD_RUNS=${BENCH_BUILD_RUNS:-5}
SW_RUNTIME=${BENCH_SLIPWAY_RUNTIME:-$SKIFF}
# the busybox base: the same Dockerfile as integration/src/slipway.rs builds for the tests
BASE_DOCKERFILE='FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN mkdir -p /etc /tmp && chmod 1777 /tmp && echo 'root:x:0:0:root:/root:/bin/sh' > /etc/passwd && echo 'bob:x:1000:1000::/home/bob:/bin/sh' >> /etc/passwd && printf 'root:x:0:\nbob:x:1000:\nstaff:x:50:bob\n' > /etc/group
CMD ["sh"]'
# fixture cases that both tools can build without a registry (FROM scratch or the base);
# one that a tool cannot build is reported and left out
SW_CASES="metadata multistage scope escape dockerignore run heredoc"

slipway_cleanup() {
  [ -d "$SW" ] || return 0
  bk_stop
  if [ -d "$SW/bh-root" ]; then
    buildah --root "$SW/bh-root" --runroot "$SW/bh-run" --storage-driver overlay rm -a >/dev/null 2>&1 || true
    buildah --root "$SW/bh-root" --runroot "$SW/bh-run" --storage-driver overlay rmi -a -f >/dev/null 2>&1 || true
  fi
  # what a tool left mounted under our dir (buildah keeps a private bind mount of its overlay
  # home), deepest first
  awk -v r="$SW/" 'index($5, r) == 1 { print $5 }' /proc/self/mountinfo | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null || true
  done
}

# docker 20.10's BuildKit: a private dockerd (its own data root, exec root and socket, no
# bridge, no iptables rules, overlay2 as BuildKit's snapshotter) driven by the 20.10 client, whose
# BuildKit is built in (DOCKER_BUILDKIT=1). Started and stopped by pid. BK_CLIENT is empty when
# it cannot run; the rows then have no BuildKit column.
BK_PID=
BK_CLIENT=
bk_start() {
  local bk=$SW/bk i
  if ! command -v dockerd >/dev/null || ! /usr/bin/docker --version 2>/dev/null | grep -q '^Docker version 20\.'; then
    echo "bench: dockerd or a docker 20.10 client is missing (make deps): no BuildKit column"
    return 0
  fi
  mkdir -p "$bk"
  echo '{}' >"$bk/daemon.json"
  dockerd --config-file "$bk/daemon.json" --data-root "$bk/data" --exec-root "$bk/exec" --pidfile "$bk/pid" \
    -H "unix://$bk/sock" --iptables=false --ip-masq=false --bridge=none --storage-driver overlay2 \
    --exec-opt native.cgroupdriver=cgroupfs --cgroup-parent "/slipway-bench-$$" >"$bk/log" 2>&1 &
  BK_PID=$!
  for ((i = 0; i < 300; i++)); do
    if /usr/bin/docker -H "unix://$bk/sock" version >/dev/null 2>&1; then
      BK_CLIENT="env DOCKER_BUILDKIT=1 /usr/bin/docker -H unix://$bk/sock"
      return 0
    fi
    kill -0 "$BK_PID" 2>/dev/null || break
    sleep 0.2
  done
  echo "bench: dockerd did not start, no BuildKit column: $(tail -n 3 "$bk/log")"
  bk_stop
}
bk_stop() {
  [ -n "$BK_PID" ] || return 0
  kill "$BK_PID" 2>/dev/null || true
  wait "$BK_PID" 2>/dev/null || true
  BK_PID=
  BK_CLIENT=
  local d
  for d in /sys/fs/cgroup/*/slipway-bench-$$ /sys/fs/cgroup/slipway-bench-$$; do
    [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
}

bench_slipway() {
  if ! command -v buildah >/dev/null; then
    echo "bench: buildah is missing (make deps): slipway part skipped"
    return 0
  fi
  mkdir -p "$SW/ctx" "$SW/json"
  printf '[storage]\ndriver = "overlay"\nrunroot = "%s"\ngraphroot = "%s"\n' "$SW/bh-run" "$SW/bh-root" >"$SW/storage.conf"
  export CONTAINERS_STORAGE_CONF=$SW/storage.conf
  local swc="$SLIPWAY --root $SW/sw-root"
  local bhc="buildah --root $SW/bh-root --runroot $SW/bh-run --storage-driver overlay"
  local sw_build="$swc build --runtime $SW_RUNTIME --network none"
  local bh_build="$bhc bud --layers --network none --pull=never --runtime $RUNC"
  # A fresh store holds only the base image (buildah imports slipway's docker-archive). Cold
  # means the same for each tool: no build cache, no cache mount, the base image in the store
  # ready to use. buildah's pull (containers-storage) and dockerd's load unpack the base's
  # layers, untimed; slipway's load keeps the blobs and unpacks on first use, so its fresh store
  # is unpacked here too (the image exporter's unpack=true on a FROM-only build of the base).
  # The last store is moved aside, not deleted, and the moved ones go when this part ends: on
  # ext4 without a journal (this host's root) every inode allocation skips the inodes of its
  # block group freed in the last 30-35 s, one inode-table lookup each (recently_deleted() in
  # fs/ext4/ialloc.c), so 2,000 files created right after an `rm -rf` of the last round's
  # store pay for every file it freed (perf of a cold cache-mount build here, with only other
  # tenants' deletions, found 89% of all its CPU in that scan, inside the RUN step's shell).
  # The rows measured the harness's own deletions, landing on whichever tool's directories
  # shared their group.
  mkdir -p "$SW/ctx/unpack" "$SW/retired"
  printf 'FROM sw-base\n' >"$SW/ctx/unpack/Dockerfile"
  # a shell command (hyperfine runs prepare steps with sh) moving its arguments aside
  retire() { echo "d=\$(mktemp -d $SW/retired/XXXXXX) && for p in $*; do [ ! -e \$p ] || mv \$p \$d/; done"; }
  local sw_fresh="$(retire "$SW/sw-root") && $swc load -i $SW/base.tar >/dev/null && $sw_build -q -o type=image,name=sw-base,unpack=true $SW/ctx/unpack >/dev/null"
  local bh_fresh="$bhc rm -a >/dev/null 2>&1; $(retire "$SW/bh-root" "$SW/bh-run") && $bhc pull -q docker-archive:$SW/base.tar >/dev/null"
  echo
  echo "== slipway vs buildah $(buildah --version | awk '{print $3}') (slipway RUN steps use $SW_RUNTIME, buildah's $RUNC; buildah: overlay, --layers)"
  echo "   load average at start: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"

  mkdir -p "$SW/ctx/base"
  cp /bin/busybox "$SW/ctx/base/busybox"
  printf '%s\n' "$BASE_DOCKERFILE" >"$SW/ctx/base/Dockerfile"
  $sw_build -q -t sw-base "$SW/ctx/base" >/dev/null
  $swc save sw-base -o "$SW/base.tar"
  eval "$sw_fresh"
  eval "$bh_fresh"
  bk_start
  local bk_build="$BK_CLIENT build --network none" bk_fresh=
  if [ -n "$BK_CLIENT" ]; then
    # no build cache, no images but the base (loaded from slipway's docker-archive)
    bk_fresh="$BK_CLIENT builder prune -af >/dev/null 2>&1; $BK_CLIENT image prune -af >/dev/null 2>&1; $BK_CLIENT load -q -i $SW/base.tar >/dev/null"
    eval "$bk_fresh"
    echo "   BuildKit: docker $($BK_CLIENT version --format '{{.Server.Version}}') (private dockerd, overlay2, RUN steps with its runc)"
  fi

  declare -A SWM=() BHM=() BKM=()
  local names=() c ctx out
  med() { jq -r --arg n "$2" '.results[] | select(.command == $n) | .median' "$1"; }
  # one hyperfine run of the tools: NAME RUNS WARMUP SW_PREPARE BH_PREPARE SW_CMD BH_CMD
  # [BK_PREPARE BK_CMD] (BuildKit's when it runs)
  pair() {
    local name=$1 runs=$2 warm=$3 swp=$4 bhp=$5 swcmd=$6 bhcmd=$7 bkp=${8:-} bkcmd=${9:-} prep=() bk=()
    want "$name" || return 0
    [ -n "$BK_CLIENT" ] && [ -n "$bkcmd" ] && bk=(--command-name buildkit "$bkcmd")
    # with a prepare step all go through a shell (hyperfine subtracts its start-up); without,
    # no shell at all: a no-op rebuild of slipway takes about as long as starting one
    if [ -n "$swp" ]; then
      prep=(--prepare "$swp" --prepare "$bhp")
      [ ${#bk[@]} -eq 0 ] || prep+=(--prepare "$bkp")
    else
      prep=(-N)
    fi
    echo
    echo "-- $name (load average $(cut -d' ' -f1-3 /proc/loadavg))"
    if hyperfine --style basic --runs "$runs" --warmup "$warm" "${prep[@]}" --export-json "$SW/json/$name.json" \
      --command-name slipway "$swcmd" --command-name buildah "$bhcmd" "${bk[@]}"; then
      SWM[$name]=$(med "$SW/json/$name.json" slipway)
      BHM[$name]=$(med "$SW/json/$name.json" buildah)
      [ ${#bk[@]} -eq 0 ] || BKM[$name]=$(med "$SW/json/$name.json" buildkit)
      names+=("$name")
    else
      echo "bench: $name failed"
    fi
  }

  # Both tools one after the other in each round (who goes first alternates), so a change of
  # the machine's load hits both alike: NAME RUNS SW_PREPARE BH_PREPARE SW_CMD BH_CMD. Wall
  # seconds of each command alone (prepare steps untimed); medians kept as pair() keeps them.
  ipair() {
    local name=$1 runs=$2 swp=$3 bhp=$4 swcmd=$5 bhcmd=$6 i t0 t1 sw=() bh=() order
    want "$name" || return 0
    echo
    echo "-- $name (interleaved, $runs rounds, load average $(cut -d' ' -f1-3 /proc/loadavg))"
    for ((i = 0; i < runs; i++)); do
      if ((i % 2 == 0)); then order="sw bh"; else order="bh sw"; fi
      for tool in $order; do
        if [ "$tool" = sw ]; then eval "$swp" >/dev/null; else eval "$bhp" >/dev/null; fi
        t0=$(date +%s%N)
        if [ "$tool" = sw ]; then
          eval "$swcmd" >"$SW/ipair.log" 2>&1 || { echo "bench: $name: slipway failed: $(tail -n 3 "$SW/ipair.log")"; return 0; }
        else
          eval "$bhcmd" >"$SW/ipair.log" 2>&1 || { echo "bench: $name: buildah failed: $(tail -n 3 "$SW/ipair.log")"; return 0; }
        fi
        t1=$(date +%s%N)
        if [ "$tool" = sw ]; then sw+=("$(((t1 - t0) / 1000000))"); else bh+=("$(((t1 - t0) / 1000000))"); fi
      done
    done
    echo "   slipway ms: ${sw[*]}"
    echo "   buildah ms: ${bh[*]}"
    SWM[$name]=$(printf '%s\n' "${sw[@]}" | jq -s 'sort | (if length % 2 == 1 then .[length / 2 | floor] else (.[length / 2 - 1] + .[length / 2]) / 2 end) / 1000')
    BHM[$name]=$(printf '%s\n' "${bh[@]}" | jq -s 'sort | (if length % 2 == 1 then .[length / 2 | floor] else (.[length / 2 - 1] + .[length / 2]) / 2 end) / 1000')
    names+=("$name")
  }

  # whether a row is wanted (BENCH_ROWS)
  want() { [ -z "$ROWS" ] || grep -Eq -- "$ROWS" <<<"$1"; }

  local cases=(base)
  for c in $SW_CASES; do
    want "cold:$c" || want "noop:$c" || continue
    cp -a "$HERE/spec-fixtures/dockerfiles/$c" "$SW/ctx/$c"
    # BuildKit's own copy without `# syntax=` (docker's built-in frontend would pull the one it
    # names from Docker Hub)
    mkdir -p "$SW/ctx-bk"
    cp -a "$SW/ctx/$c" "$SW/ctx-bk/$c"
    sed -i '/^#[[:space:]]*syntax[[:space:]]*=/Id' "$SW/ctx-bk/$c/Dockerfile"
    # which tool cannot build it (buildah 1.28 lacks heredocs, for one)
    if ! out=$($sw_build -t probe "$SW/ctx/$c" 2>&1); then
      echo "bench: $c: slipway cannot build it, skipped: $(echo "$out" | tail -n 1 | cut -c1-120)"
    elif ! out=$($bh_build -t probe "$SW/ctx/$c" 2>&1); then
      echo "bench: $c: buildah cannot build it, skipped: $(echo "$out" | tail -n 1 | cut -c1-120)"
    elif [ -n "$BK_CLIENT" ] && ! out=$($bk_build -t probe "$SW/ctx-bk/$c" 2>&1); then
      echo "bench: $c: BuildKit cannot build it, skipped: $(echo "$out" | tail -n 1 | cut -c1-120)"
    else
      cases+=("$c")
    fi
  done
  for c in "${cases[@]}"; do
    ctx=$SW/ctx/$c
    pair "cold:$c" "$BUILD_RUNS" 0 "$sw_fresh" "$bh_fresh" "$sw_build -t b-$c $ctx" "$bh_build -t b-$c $ctx" \
      "$bk_fresh" "$bk_build -t b-$c $SW/ctx-bk/$c"
    pair "noop:$c" $((BUILD_RUNS * 2)) 1 "" "" "$sw_build -t b-$c $ctx" "$bh_build -t b-$c $ctx" \
      "" "$bk_build -t b-$c $SW/ctx-bk/$c"
  done

  # a generated context of 10,000 files (100 dirs of 100)
  ctx=$SW/ctx/big
  if want 10k:noop || want 10k:one-file; then
    for d in $(seq 0 99); do
      mkdir -p "$ctx/src/d$d"
      for f in $(seq 0 99); do echo "file $d/$f" >"$ctx/src/d$d/f$f.txt"; done
    done
    printf 'FROM sw-base\nCOPY . /app/\nCMD ["ls", "/app"]\n' >"$ctx/Dockerfile"
    $sw_build -q -t big "$ctx" >/dev/null
    $bh_build -q -t big "$ctx" >/dev/null
  fi
  # BuildKit 20.10's COPY of the 10,000 files now and then fails under load ("failed to copy file
  # info: ... lchown ...: no such file or directory" in its overlay mount): tried twice, then
  # the 10k rows go on without it rather than the whole part stopping
  local bk10k="$bk_build -t big $ctx"
  if [ -n "$BK_CLIENT" ] && (want 10k:noop || want 10k:one-file); then
    if ! out=$($bk_build -q -t big "$ctx" 2>&1) && ! out=$($bk_build -q -t big "$ctx" 2>&1); then
      echo "bench: BuildKit failed the 10k build twice, 10k rows without it: $(echo "$out" | tail -n 1 | cut -c1-160)"
      bk10k=
    fi
  fi
  pair "10k:noop" $((BUILD_RUNS * 2)) 2 "" "" "$sw_build -t big $ctx" "$bh_build -t big $ctx" "" "$bk10k"
  local touch1="date +%s%N > $ctx/src/d42/f42.txt"
  pair "10k:one-file" "$BUILD_RUNS" 1 "$touch1" "$touch1" "$sw_build -t big $ctx" "$bh_build -t big $ctx" \
    "$touch1" "$bk10k"
  if want 10k:noop; then
    bench_noop_floor "$sw_build -t big $ctx" "$ctx"
  fi

  # a package-manager-like step with a cache mount: the first build fills the cache with 2,000
  # files ("downloads"); after a one-file context change the step runs again and finds them.
  # buildah 1.28 keeps cache mounts in $TMPDIR/buildah-cache/: ours, emptied for cold runs.
  ctx=$SW/ctx/cachemount
  mkdir -p "$ctx" "$SW/bh-tmp"
  echo 1 >"$ctx/app.txt"
  cat >"$ctx/Dockerfile" <<'DF'
FROM sw-base
COPY app.txt /app.txt
RUN --mount=type=cache,target=/root/.cache/pkgs sh -c 'cd /root/.cache/pkgs && if [ ! -e index ]; then i=0; while [ $i -lt 2000 ]; do echo "package $i" > p$i.tar; i=$((i+1)); done; ls > index; fi; wc -l < index > /installed'
DF
  local bh_tmp="env TMPDIR=$SW/bh-tmp"
  # (a fresh slipway store has no cache mounts)
  local cm_bh_fresh="$bh_fresh && $(retire "$SW/bh-tmp/buildah-cache")"
  ipair "cachemount:cold" "$BUILD_RUNS" "$sw_fresh" "$cm_bh_fresh" \
    "$sw_build -t cm $ctx" "$bh_tmp $bh_build -t cm $ctx"
  # (the cold row left both caches full; without it, one untimed build of each fills them)
  if want cachemount:warm && ! want cachemount:cold; then
    $sw_build -q -t cm "$ctx" >/dev/null
    $bh_tmp $bh_build -q -t cm "$ctx" >/dev/null
  fi
  local touch2="date +%s%N > $ctx/app.txt"
  ipair "cachemount:warm" "$BUILD_RUNS" "$touch2" "$touch2" \
    "$sw_build -t cm $ctx" "$bh_tmp $bh_build -t cm $ctx"
  if want cachemount:cold || want cachemount:warm; then
    echo "   files in the cache mounts now: slipway $(find "$SW/sw-root/cache/mounts" -type f -name 'p*.tar' | wc -l)," \
      "buildah $(find "$SW/bh-tmp/buildah-cache" -type f -name 'p*.tar' | wc -l)"
  fi

  # two independent stages that each sleep 2 s, then a stage that copies from both: run at
  # once, the build takes a little over 2 s. Cold each time. buildah runs one stage at a time
  # unless --jobs says more; it gets --jobs $(nproc), slipway's default.
  ctx=$SW/ctx/twostage
  mkdir -p "$ctx"
  printf '%s\n' 'FROM sw-base AS a' 'RUN sleep 2 && echo a > /a' 'FROM sw-base AS b' 'RUN sleep 2 && echo b > /b' \
    'FROM sw-base' 'COPY --from=a /a /a' 'COPY --from=b /b /b' >"$ctx/Dockerfile"
  ipair "twostage:cold" "$BUILD_RUNS" "$sw_fresh" "$bh_fresh" \
    "$sw_build -t ts $ctx" "$bh_build --jobs $(nproc) -t ts $ctx"

  bk_stop
  # the stores moved aside, after the last timed build (nothing is mounted there, but should a
  # tool have left a mount, it goes first)
  awk -v r="$SW/retired/" 'index($5, r) == 1 { print $5 }' /proc/self/mountinfo | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null || true
  done
  rm -rf "$SW/retired" || echo "bench: could not remove $SW/retired (the exit cleanup tries again)"
  echo
  echo "== slipway vs buildah and BuildKit: median seconds and ratios of this run (load average now: $(cut -d' ' -f1-3 /proc/loadavg))"
  printf '%-22s %9s %9s %9s %9s %9s  %s\n' case slipway buildah buildkit sw/bh sw/bk "target (sw/bk)"
  local bk ratio target missed=0
  for c in "${names[@]}"; do
    bk=${BKM[$c]:-} ratio=- target=
    if [ -n "$bk" ]; then
      ratio=$(jq -n "${SWM[$c]} / $bk * 1000 | round / 1000")
      bk=$(printf '%.3f' "$bk")
      case $c in
        cold:*) target=$(jq -n "$ratio <= 0.7 | if . then \"<= 0.7 met\" else \"<= 0.7 MISSED\" end") ;;
        noop:* | 10k:noop) target=$(jq -n "$ratio <= 0.1 | if . then \"<= 0.1 met\" else \"<= 0.1 MISSED\" end") ;;
      esac
      target=${target//\"/}
      [[ $target != *MISSED* ]] || missed=$((missed + 1))
    fi
    printf '%-22s %9.3f %9.3f %9s %9.3f %9s  %s\n' "$c" "${SWM[$c]}" "${BHM[$c]}" "${bk:--}" \
      "$(jq -n "${SWM[$c]} / ${BHM[$c]}")" "$ratio" "$target"
  done
  [ -z "$FLOOR_ROW" ] || echo "$FLOOR_ROW"
  if [ -n "${SWM[10k:one-file]:-}" ] && [ -n "${SWM[10k:noop]:-}" ]; then
    printf '10k one-file change / no-op rebuild (slipway): %.2f (target <= 2 plus the changed layer)\n' \
      "$(jq -n "${SWM[10k:one-file]} / ${SWM[10k:noop]}")"
  fi
  if [ ${#BKM[@]} -gt 0 ]; then
    echo "targets against BuildKit (cold <= 0.7x, no-op <= 0.1x): $([ $missed -eq 0 ] && echo "all met" || echo "$missed MISSED")"
  fi
}

# The 10k-file no-op rebuild against its floor, `find CTX -printf '%s %T@\n'` (the size and mtime
# of every file: what a stat cache must at least look at), alternating in rounds (hyperfine runs
# each command N times in a row; here each round runs both, who goes first alternating, so the
# load hits both alike); then where slipway's time goes, from its trace points (SLIPWAY_TRACE).
FLOOR_ROW=
bench_noop_floor() {
  local swcmd=$1 ctx=$2 rounds=${BENCH_FLOOR_ROUNDS:-8} i
  local findcmd="find $ctx -printf '%s %T@\n'"
  echo
  echo "-- 10k:noop against find (interleaved, $rounds rounds of 5 runs each, load average $(cut -d' ' -f1-3 /proc/loadavg))"
  for ((i = 0; i < rounds; i++)); do
    if ((i % 2 == 0)); then
      hyperfine -N --style none --runs 5 --export-json "$SW/json/floor-$i.json" --command-name slipway "$swcmd" \
        --command-name find "$findcmd" >/dev/null
    else
      hyperfine -N --style none --runs 5 --export-json "$SW/json/floor-$i.json" --command-name find "$findcmd" \
        --command-name slipway "$swcmd" >/dev/null
    fi
  done
  local all="$SW/json/floor-*.json"
  local sw_med fd_med
  sw_med=$(jq -s '[.[].results[] | select(.command == "slipway") | .times[]] | sort | .[length / 2 | floor]' $all)
  fd_med=$(jq -s '[.[].results[] | select(.command == "find") | .times[]] | sort | .[length / 2 | floor]' $all)
  FLOOR_ROW=$(printf '%-22s %9.3f %9s  (find, the stat floor: slipway/find %.2f, target <= 1: %s)' "10k:noop floor" \
    "$fd_med" "" "$(jq -n "$sw_med / $fd_med")" "$(jq -n "$sw_med <= $fd_med" | sed 's/true/met/; s/false/MISSED/')")
  printf '   median ms: slipway %.1f, find %.1f\n' "$(jq -n "$sw_med * 1000")" "$(jq -n "$fd_med * 1000")"
  # where the time goes: median per phase of 20 traced runs (wall: since the phase before;
  # cpu: the process's CPU time in it, all threads; before main: CPU time from exec to main)
  local trace=$SW/trace i
  rm -f "$trace"
  for ((i = 0; i < 20; i++)); do
    SLIPWAY_TRACE=$trace $swcmd >/dev/null
  done
  echo "   where slipway's no-op goes (median ms over 20 runs; wall since the point before, process CPU in it):"
  awk '
    function med(s,   a, m, i, j, t) {
      m = split(s, a, " ")
      for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
      return m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
    }
    {
      ev = $1; w = $2; c = $3; p = $4
      if (ev == "start") { W[ev] = W[ev] " " 0; C[ev] = C[ev] " " c / 1e6; first[p] = w }
      else { W[ev] = W[ev] " " (w - lw[p]) / 1e6; C[ev] = C[ev] " " (c - lc[p]) / 1e6 }
      lw[p] = w; lc[p] = c
      if (!(ev in seen)) { seen[ev] = 1; order[++n] = ev }
      if (ev == "exit") T = T " " (w - first[p]) / 1e6
    }
    END {
      printf "     %-12s %8s %8s\n", "phase", "wall", "cpu"
      for (i = 1; i <= n; i++) printf "     %-12s %8.2f %8.2f\n", (order[i] == "start" ? "before main" : order[i]), med(W[order[i]]), med(C[order[i]])
      printf "     %-12s %8.2f\n", "main..exit", med(T)
    }' "$trace"
}

# The bundle: a busybox rootfs and runc's template running /bin/true in a private cgroup.
make_bundle() {
  [ -e "$BUNDLE/config.json" ] && return 0
  mkdir -p "$BUNDLE"/rootfs/{bin,etc,proc,sys,dev,tmp}
  cp /bin/busybox "$BUNDLE/rootfs/bin/busybox"
  for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$BUNDLE/rootfs/bin/$applet"
  done
  echo 'root:x:0:0:root:/root:/bin/sh' >"$BUNDLE/rootfs/etc/passwd"
  echo 'root:x:0:' >"$BUNDLE/rootfs/etc/group"
  jq --arg cg "$CGROUP" '.process.args = ["/bin/true"] | .linux.cgroupsPath = $cg' "$FIXTURE" >"$BUNDLE/config.json"
}

# Interleaved hyperfine: ROUNDS rounds, each one hyperfine of every command with RUNS/ROUNDS runs
# (rounded up), who goes first rotating by one each round, so a change of the machine's load hits
# all alike. Usage: interleave LABEL RUNS ROUNDS WARMUP NAME COMMAND [NAME COMMAND...]; prints one
# line per round and sets IMED[NAME] to the median seconds over the runs of all rounds. Commands
# run through a shell (hyperfine subtracts its start-up) unless IL_NOSHELL is set: a command much
# shorter than a shell's start-up is timed without one.
declare -A IMED=() MEDIAN=()
interleave() {
  local label=$1 runs=$2 rounds=$3 warm=$4 round i n rt
  shift 4
  local names=() cmds=()
  while [ $# -gt 0 ]; do names+=("$1"); cmds+=("$2"); shift 2; done
  n=${#names[@]}
  local per=$(((runs + rounds - 1) / rounds)) out
  # one untimed run of each first, to report a command that fails with its output
  for ((i = 0; i < n; i++)); do
    if ! out=$(sh -c "${cmds[$i]}" 2>&1 </dev/null); then
      echo "bench: $label: ${names[$i]} failed: ${cmds[$i]}: $(echo "$out" | tail -n 3)"
      return 1
    fi
  done
  echo "   $rounds interleaved rounds of $per runs each (load average $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores)"
  rm -f "$WORK/$label"-*.json
  for ((round = 0; round < rounds; round++)); do
    local args=() order=()
    for ((i = 0; i < n; i++)); do
      local k=$(((i + round) % n))
      order+=("${names[$k]}")
      # (stderr kept: hyperfine says only that a command failed)
      if [ -n "${IL_NOSHELL:-}" ]; then
        args+=(--command-name "${names[$k]}" "${cmds[$k]}")
      else
        args+=(--command-name "${names[$k]}" "${cmds[$k]} 2>>$WORK/$label-${names[$k]}.err")
      fi
    done
    if ! hyperfine ${IL_NOSHELL:+-N} --style none --warmup "$([ "$round" -eq 0 ] && echo "$warm" || echo 1)" --runs "$per" \
      --export-json "$WORK/$label-$round.json" "${args[@]}" >"$WORK/$label.log" 2>&1; then
      echo "bench: $label: a command failed: $(tail -n 2 "$WORK/$label.log")"
      for rt in "${names[@]}"; do
        [ ! -s "$WORK/$label-$rt.err" ] || echo "   $rt's stderr: $(tail -n 3 "$WORK/$label-$rt.err")"
      done
      return 1
    fi
    echo "   round $((round + 1)) (${order[*]}): $(jq -r '[.results[] | "\(.command) \(.median * 10000 | round / 10) ms"] | join(", ")' "$WORK/$label-$round.json")"
  done
  for rt in "${names[@]}"; do
    IMED[$rt]=$(jq -s --arg n "$rt" '[.[].results[] | select(.command == $n) | .times[]] | sort |
      if length % 2 == 1 then .[length / 2 | floor] else (.[length / 2 - 1] + .[length / 2]) / 2 end' "$WORK/$label"-*.json)
  done
}

bench_skiff() {
  make_bundle

  # --- which runtimes work ---
  declare -a NAMES=()
  declare -A BIN=()
  for rt in skiff runc crun; do
    bin=$(rt_bin "$rt")
    root=$WORK/root-$rt
    mkdir -p "$root"
    if [ "$rt" = crun ] && [ -z "$bin" ]; then
      echo "bench: crun is not installed here, skipped (make bench-cgroup2 runs it in a cgroup v2 VM)"
      continue
    fi
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
  [ ${#NAMES[@]} -gt 0 ] || { echo "bench: no runtime works" >&2; return 1; }

  # Each command runs in a fresh `sh -c`, so `$$` there is a new id every run; hyperfine subtracts
  # the shell's own start-up time. `run` deletes its container on exit; the lifecycle command
  # deletes explicitly (--force: /bin/true may still be exiting when start returns).
  run_cmd() { echo "${BIN[$1]} --root $WORK/root-$1 run --bundle $BUNDLE run-\$\$"; }
  lifecycle_cmd() {
    local r="${BIN[$1]} --root $WORK/root-$1"
    echo "$r create --bundle $BUNDLE cs-\$\$ && $r start cs-\$\$ && $r delete --force cs-\$\$"
  }

  # the runtime's own start-up, no container: what exec, dynamic linking and the language's
  # runtime cost before any work (in a TCG VM this is much of a run)
  version_cmd() { echo "${BIN[$1]} --version"; }
  MEDIAN=()
  for bench in run lifecycle version; do
    echo
    case $bench in
      run) echo "== run: run /bin/true" ;;
      lifecycle) echo "== lifecycle: create + start + delete of /bin/true" ;;
      version) echo "== start-up: --version" ;;
    esac
    args=()
    for rt in "${NAMES[@]}"; do
      args+=("$rt" "$("${bench}_cmd" "$rt")")
    done
    IL_NOSHELL=$([ $bench = version ] && echo 1 || true) interleave "$bench" "$RUNS" "$ROUNDS" "$WARMUP" "${args[@]}" || return 1
    for rt in "${NAMES[@]}"; do
      MEDIAN[$bench,$rt]=${IMED[$rt]}
    done
  done

  peak_rss_kb() {
    "/usr/bin/time" -v "${BIN[$1]}" --root "$WORK/root-$1" run --bundle "$BUNDLE" rss-$$ 2>&1 >/dev/null </dev/null |
      awk -F': ' '/Maximum resident set size/ { print $2 }'
  }

  echo
  echo "== summary (median seconds; peak RSS of one run, kB)"
  printf '%-10s %12s %12s %12s %12s\n' runtime run lifecycle start-up peak-rss
  for rt in "${NAMES[@]}"; do
    printf '%-10s %12.4f %12.4f %12.4f %12s\n' "$rt" "${MEDIAN[run,$rt]}" "${MEDIAN[lifecycle,$rt]}" \
      "${MEDIAN[version,$rt]}" "$(peak_rss_kb "$rt")"
  done
  for rt in runc crun; do
    if [ -n "${MEDIAN[run,skiff]:-}" ] && [ -n "${MEDIAN[run,$rt]:-}" ]; then
      for bench in run lifecycle version; do
        printf 'skiff/%s %-10s %.2f\n' "$rt" "$bench" "$(jq -n "${MEDIAN[$bench,skiff]} / ${MEDIAN[$bench,$rt]}")"
      done
    elif [ "$rt" = runc ] || [ -n "$CRUN" ]; then
      echo "skiff/$rt: no ratio (only ${NAMES[*]} could run)"
    fi
  done
  echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
  bench_phases
}

# Where the milliseconds of `run` go: skiff's trace points (SKIFF_TRACE, runtime/src/trace.rs)
# against runc (start to end only: it has no trace points) and the floor, scripts/bench/floor.c,
# which does only the system calls this bundle needs. scripts/bench/phases.c runs the three
# interleaved and prints, per phase, the median wall time and the median CPU time of the process
# that did it.
bench_phases() {
  [ "$PHASE_RUNS" -gt 0 ] || return 0
  if ! command -v gcc >/dev/null; then
    echo "bench: gcc is missing (make deps): no breakdown against the floor"
    return 0
  fi
  gcc -O2 -o "$WORK/phases" "$HERE/scripts/bench/phases.c"
  gcc -O2 -o "$WORK/floor" "$HERE/scripts/bench/floor.c"
  local args=() rt
  for rt in "${NAMES[@]}"; do
    args+=("$rt" "${BIN[$rt]} --root $WORK/root-$rt run --bundle $BUNDLE {}")
  done
  args+=(floor "$WORK/floor $BUNDLE/rootfs $CGROUP-floor")
  echo
  echo "== where run's milliseconds go: median ms per phase over $PHASE_RUNS interleaved runs of each"
  echo "   (wall: since the event before; cpu: of the process that ends the phase, since its own last event)"
  echo "   load average at start: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
  "$WORK/phases" "$PHASE_RUNS" "${args[@]}"
  echo "   load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
}

# --- end to end: `ctr run --rm` and `docker run --rm` of /bin/true through skiff and through runc ---
# A private containerd 1.6 (its own root, state, sockets; CRI plugin off) driven by ctr with
# --runc-binary, and a private dockerd (its own data root, exec root, socket; --iptables=false
# --bridge=none, vfs; skiff and runc each added with --add-runtime), both started here and
# stopped by pid, with the bundle's busybox rootfs loaded as an image. Interleaved like part 1, so
# the rows show how much of a user's container start is the runtime's. A daemon that cannot start
# is reported and its rows left out.
E2E=$WORK/e2e
E2E_IMAGE=docker.io/skiffbench/box:1
E2E_NS=skiff-bench-$$
CTRD_PID=
DOCKERD_PID=

# a docker-archive of the bundle's rootfs (one layer), which both ctr and docker load
e2e_image() {
  local img=$E2E/img layer diff cfg
  mkdir -p "$img"
  tar -C "$BUNDLE/rootfs" --numeric-owner --owner=0 --group=0 -cf "$img/layer.tar" .
  diff=$(sha256sum "$img/layer.tar" | cut -d' ' -f1)
  jq -n --arg d "sha256:$diff" '{architecture: "amd64", os: "linux", config: {Cmd: ["/bin/true"]},
    rootfs: {type: "layers", diff_ids: [$d]}}' >"$img/config.json"
  cfg=$(sha256sum "$img/config.json" | cut -d' ' -f1)
  mv "$img/config.json" "$img/$cfg.json"
  jq -n --arg c "$cfg.json" --arg t "${E2E_IMAGE#docker.io/}" \
    '[{Config: $c, RepoTags: [$t], Layers: ["layer.tar"]}]' >"$img/manifest.json"
  tar -C "$img" -cf "$E2E/image.tar" manifest.json "$cfg.json" layer.tar
}

# waits up to 60 s for CMD to succeed while PID lives
e2e_wait() {
  local pid=$1 i
  shift
  for ((i = 0; i < 300; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.2
  done
  return 1
}

e2e_stop() {
  local pid i
  # (${...:-}: the EXIT trap may run before these are set)
  for pid in ${CTRD_PID:-} ${DOCKERD_PID:-}; do
    kill "$pid" 2>/dev/null || true
    # dockerd stops its own containerd first; 30 s, then by force
    for ((i = 0; i < 150; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  CTRD_PID= DOCKERD_PID=
  [ -n "${E2E:-}" ] && [ -d "$E2E" ] || return 0
  # a shim outlives its containerd when the bench was interrupted mid-run: ours name our
  # directory in their command line
  for pid in $(grep -lF -- "$E2E/" /proc/[0-9]*/cmdline 2>/dev/null | cut -d/ -f3); do
    [ "$pid" = $$ ] || kill -9 "$pid" 2>/dev/null || true
  done
  # what the daemons left mounted under our directory (overlay2, shm, netns), deepest first
  awk -v r="$E2E/" 'index($5, r) == 1 { print $5 }' /proc/self/mountinfo | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null || true
  done
  local d
  for d in /sys/fs/cgroup/*/"$E2E_NS" /sys/fs/cgroup/"$E2E_NS"; do
    [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
}

bench_e2e() {
  make_bundle
  local runs=${BENCH_E2E_RUNS:-12} rounds=${BENCH_E2E_ROUNDS:-4} c d args rows=()
  [ -x "$RUNC" ] || { echo "bench: no runc: no end-to-end rows"; return 0; }
  mkdir -p "$E2E"
  e2e_image
  declare -A E2EMED=()

  # containerd, as integration/src/engines.rs starts it
  c=$E2E/ctrd
  if ! command -v containerd >/dev/null || ! command -v ctr >/dev/null; then
    echo "bench: containerd or ctr is missing (make deps): no ctr rows"
  else
    mkdir -p "$c"
    printf 'version = 2\nroot = "%s/root"\nstate = "%s/state"\ndisabled_plugins = ["io.containerd.grpc.v1.cri"]\n[grpc]\n  address = "%s/sock"\n[ttrpc]\n  address = "%s/sock.ttrpc"\n[debug]\n  address = "%s/debug.sock"\n' \
      "$c" "$c" "$c" "$c" "$c" >"$c/config.toml"
    containerd --config "$c/config.toml" >"$c/log" 2>&1 &
    CTRD_PID=$!
    local ctr="ctr -a $c/sock -n $E2E_NS"
    if ! e2e_wait "$CTRD_PID" $ctr version; then
      echo "bench: containerd did not start, no ctr rows: $(tail -n 3 "$c/log")"
    elif ! out=$($ctr images import "$E2E/image.tar" 2>&1); then
      echo "bench: ctr images import failed, no ctr rows: $(echo "$out" | tail -n 3)"
    else
      # a fresh container id per run ($$ of hyperfine's shell); the cgroup is /NAMESPACE/ID
      args=()
      for rt in skiff runc; do
        args+=("$rt" "$ctr run --rm --runc-binary $(rt_bin $rt) --runc-root $c/runc-$rt --fifo-dir $c/fifo $E2E_IMAGE ctr-$rt-\$\$ /bin/true")
      done
      echo
      echo "== ctr run --rm of /bin/true: containerd $(containerd --version | awk '{print $3}'), skiff against runc"
      if interleave ctr "$runs" "$rounds" 1 "${args[@]}"; then
        E2EMED[ctr,skiff]=${IMED[skiff]} E2EMED[ctr,runc]=${IMED[runc]}
        rows+=(ctr)
      fi
    fi
  fi

  # dockerd, as the slipway part's BuildKit column starts one but with the vfs driver, as the
  # integration tests run it: with overlay2, 30 of 200 `docker run`s here got an empty rootfs
  # (runc's and skiff's "exec /bin/true: no such file", dockerd's "stat .../merged/sys"), as many
  # with runc as with skiff; with vfs none of 120. vfs copies the 2 MB image per container.
  d=$E2E/dock
  if ! command -v dockerd >/dev/null || ! command -v docker >/dev/null; then
    echo "bench: dockerd or docker is missing (make deps): no docker rows"
  else
    mkdir -p "$d"
    echo '{}' >"$d/daemon.json"
    dockerd --config-file "$d/daemon.json" --data-root "$d/data" --exec-root "$d/exec" --pidfile "$d/pid" \
      -H "unix://$d/sock" --iptables=false --ip-masq=false --bridge=none --storage-driver vfs \
      --exec-opt native.cgroupdriver=cgroupfs --cgroup-parent "/$E2E_NS" \
      --add-runtime "skiff=$SKIFF" --add-runtime "bench-runc=$RUNC" >"$d/log" 2>&1 &
    DOCKERD_PID=$!
    local docker="docker -H unix://$d/sock"
    if ! e2e_wait "$DOCKERD_PID" $docker version; then
      echo "bench: dockerd did not start, no docker rows: $(tail -n 3 "$d/log")"
    elif ! out=$($docker load -q -i "$E2E/image.tar" 2>&1); then
      echo "bench: docker load failed, no docker rows: $(echo "$out" | tail -n 3)"
    else
      args=(skiff "$docker run --rm --network none --runtime skiff ${E2E_IMAGE#docker.io/} /bin/true"
        runc "$docker run --rm --network none --runtime bench-runc ${E2E_IMAGE#docker.io/} /bin/true")
      echo
      echo "== docker run --rm of /bin/true: docker $($docker version --format '{{.Server.Version}}'), skiff against runc"
      if interleave docker "$runs" "$rounds" 1 "${args[@]}"; then
        E2EMED[docker,skiff]=${IMED[skiff]} E2EMED[docker,runc]=${IMED[runc]}
        rows+=(docker)
      fi
    fi
  fi
  e2e_stop

  [ ${#rows[@]} -gt 0 ] || return 0
  echo
  echo "== end to end: median seconds of this run (load average now $(cut -d' ' -f1-3 /proc/loadavg))"
  printf '%-18s %9s %9s %11s %9s\n' client skiff runc skiff/runc saved
  for r in "${rows[@]}"; do
    printf '%-18s %9.4f %9.4f %11.2f %8.1f%%\n' "$r run --rm" "${E2EMED[$r,skiff]}" "${E2EMED[$r,runc]}" \
      "$(jq -n "${E2EMED[$r,skiff]} / ${E2EMED[$r,runc]}")" \
      "$(jq -n "(${E2EMED[$r,runc]} - ${E2EMED[$r,skiff]}) / ${E2EMED[$r,runc]} * 100")"
  done
  if [ -n "${MEDIAN[lifecycle,runc]:-}" ]; then
    # what the engine adds to the runtime's create + start + delete (part 1, same bundle)
    for r in "${rows[@]}"; do
      printf 'runtime share of %s run --rm (create+start+delete of part 1 / end to end): skiff %.0f%%, runc %.0f%%\n' "$r" \
        "$(jq -n "${MEDIAN[lifecycle,skiff]} / ${E2EMED[$r,skiff]} * 100")" "$(jq -n "${MEDIAN[lifecycle,runc]} / ${E2EMED[$r,runc]} * 100")"
    done
  fi
}

# --- part 3: slipway against skopeo and buildah through a loopback registry ---
bench_registry() {
  bash "$HERE/scripts/bench-registry.sh" "$SLIPWAY"
}

case "$ONLY" in
  skiff) bench_skiff ;;
  e2e) bench_e2e ;;
  slipway) [ -n "$SLIPWAY" ] || usage; bench_slipway ;;
  registry) [ -n "$SLIPWAY" ] || usage; bench_registry ;;
  "") bench_skiff; bench_e2e; [ -z "$SLIPWAY" ] || { bench_slipway; bench_registry; } ;;
  *) echo "bench: BENCH_ONLY=$ONLY: expected skiff, e2e, slipway or registry" >&2; exit 2 ;;
esac
