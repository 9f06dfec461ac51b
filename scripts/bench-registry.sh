#!/usr/bin/env bash
# bench-registry.sh SLIPWAY_PATH
#
# slipway against `skopeo copy` (and buildah push/pull) through a loopback docker-registry
# (CNCF distribution 2.8, plain HTTP, filesystem storage), in the same run:
#   push: an image with one 200 MB random layer into an empty registry (the registry's storage
#         is wiped before each run, so every blob is really uploaded; slipway reads its store,
#         skopeo the same image as an OCI layout, buildah its containers-storage)
#   pull: the same image into an empty store (slipway's store, an OCI layout for skopeo,
#         containers-storage for buildah)
#   re-push: the unchanged image again (the registry has everything)
# Prints hyperfine's medians and the slipway/skopeo ratios (target: <= 1.0), and whether a
# re-push stays well under 100 ms. Everything it makes (the registry too) is removed on exit.
# Env: BENCH_REGISTRY_RUNS (default 5), BENCH_LAYER_MB (default 200).
set -euo pipefail

[ $# -eq 1 ] || { echo "usage: $0 SLIPWAY_PATH" >&2; exit 2; }
SLIPWAY=$1
RUNS=${BENCH_REGISTRY_RUNS:-5}
MB=${BENCH_LAYER_MB:-200}
for tool in docker-registry skopeo hyperfine jq; do
  command -v "$tool" >/dev/null || { echo "bench-registry: $tool is missing (make deps)" >&2; exit 1; }
done

# lower case: buildah names an image pulled from an OCI layout after its path
W=/tmp/slipway-bench-registry-$$
rm -rf "$W" && mkdir -p "$W"
REG_PID=
cleanup() {
  [ -n "$REG_PID" ] && kill "$REG_PID" 2>/dev/null && wait "$REG_PID" 2>/dev/null || true
  if command -v buildah >/dev/null && [ -d "$W/bh-root" ]; then
    buildah --root "$W/bh-root" --runroot "$W/bh-run" --storage-driver overlay rmi -a -f >/dev/null 2>&1 || true
    awk -v r="$W/" 'index($5, r) == 1 { print $5 }' /proc/self/mountinfo | sort -r | while read -r m; do
      umount -l "$m" 2>/dev/null || true
    done
  fi
  rm -rf "$W"
}
trap cleanup EXIT

# a loopback port nothing listens on
PORT=
for _ in $(seq 50); do
  p=$((20000 + RANDOM % 40000))
  if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then PORT=$p; break; fi
done
[ -n "$PORT" ] || { echo "bench-registry: no free loopback port" >&2; exit 1; }
HOSTP=127.0.0.1:$PORT
cat >"$W/config.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $W/data
  delete:
    enabled: true
http:
  addr: $HOSTP
EOF
docker-registry serve "$W/config.yml" >"$W/registry.log" 2>&1 &
REG_PID=$!
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  sleep 0.1
done

SW="$SLIPWAY --root $W/sw-root"
echo
echo "== registry: slipway vs skopeo $(skopeo --version | awk '{print $3}') (and buildah), ${MB} MB random layer, docker-registry on $HOSTP"
echo "   load average at start: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
mkdir -p "$W/ctx"
head -c "$((MB * 1024 * 1024))" /dev/urandom >"$W/ctx/random.bin"
printf 'FROM scratch\nCOPY random.bin /random.bin\n' >"$W/ctx/Dockerfile"
$SW build -q -t big:1 "$W/ctx" >/dev/null
rm -f "$W/ctx/random.bin"
# the same image for skopeo: an OCI layout (same blobs, same manifest digest)
$SW save big:1 --format oci -o "$W/big.tar"
mkdir -p "$W/oci" && tar -xf "$W/big.tar" -C "$W/oci" && rm -f "$W/big.tar"
SKOPEO_SRC="oci:$W/oci"

HAVE_BH=
if command -v buildah >/dev/null; then
  printf '[storage]\ndriver = "overlay"\nrunroot = "%s"\ngraphroot = "%s"\n' "$W/bh-run" "$W/bh-root" >"$W/storage.conf"
  export CONTAINERS_STORAGE_CONF=$W/storage.conf
  BH="buildah --root $W/bh-root --runroot $W/bh-run --storage-driver overlay"
  if $BH pull -q "$SKOPEO_SRC" >/dev/null; then HAVE_BH=1; else echo "bench-registry: buildah cannot read the image, left out"; fi
fi

wipe="rm -rf $W/data/docker"
push_cmds=(--command-name slipway "$SW push -q big:1 $HOSTP/bench/sw:1"
  --command-name skopeo "skopeo copy -q --dest-tls-verify=false $SKOPEO_SRC docker://$HOSTP/bench/sk:1")
[ -n "$HAVE_BH" ] && push_cmds+=(--command-name buildah "$BH push -q --tls-verify=false $($BH images -q | head -n 1) docker://$HOSTP/bench/bh:1")
echo
echo "-- push (${MB} MB layer, empty registry each run)"
hyperfine --style basic --runs "$RUNS" --warmup 1 --prepare "$wipe" --export-json "$W/push.json" "${push_cmds[@]}"

# the image the pulls fetch
$SW push -q big:1 "$HOSTP/bench/img:1" >/dev/null
pull_cmds=(--command-name slipway "$SLIPWAY --root $W/sw-pull pull -q $HOSTP/bench/img:1"
  --command-name skopeo "skopeo copy -q --src-tls-verify=false docker://$HOSTP/bench/img:1 oci:$W/sk-pull:img")
[ -n "$HAVE_BH" ] && pull_cmds+=(--command-name buildah "$BH pull -q --tls-verify=false docker://$HOSTP/bench/img:1")
pull_prep="rm -rf $W/sw-pull $W/sk-pull; ${BH:-true} rmi -a -f >/dev/null 2>&1 || true"
echo
echo "-- pull (${MB} MB layer, empty store each run)"
hyperfine --style basic --runs "$RUNS" --warmup 1 --prepare "$pull_prep" --export-json "$W/pull.json" "${pull_cmds[@]}"

$SW push -q big:1 "$HOSTP/bench/sw:1" >/dev/null
skopeo copy -q --dest-tls-verify=false "$SKOPEO_SRC" "docker://$HOSTP/bench/sk:1"
echo
echo "-- re-push (unchanged image, the registry has every blob)"
hyperfine --style basic --runs $((RUNS * 4)) --warmup 2 -N --export-json "$W/repush.json" \
  --command-name slipway "$SW push -q big:1 $HOSTP/bench/sw:1" \
  --command-name skopeo "skopeo copy -q --dest-tls-verify=false $SKOPEO_SRC docker://$HOSTP/bench/sk:1"

med() { jq -r --arg n "$2" '.results[] | select(.command == $n) | .median' "$1"; }
echo
echo "== registry: median seconds and ratios of this run (load average now: $(cut -d' ' -f1-3 /proc/loadavg))"
printf '%-10s %10s %10s %10s %15s\n' case slipway skopeo buildah slipway/skopeo
ok=true
for c in push pull repush; do
  s=$(med "$W/$c.json" slipway)
  k=$(med "$W/$c.json" skopeo)
  b=$(med "$W/$c.json" buildah)
  if [ -z "$b" ] || [ "$b" = null ]; then b=-; else b=$(printf '%.3f' "$b"); fi
  r=$(jq -n "$s / $k")
  printf '%-10s %10.3f %10.3f %10s %15.3f\n' "$c" "$s" "$k" "$b" "$r"
  if [ "$c" != repush ] && [ "$(jq -n "$r <= 1.0")" != true ]; then ok=false; fi
done
repush=$(med "$W/repush.json" slipway)
echo "target (push and pull no slower than skopeo): $([ "$ok" = true ] && echo met || echo MISSED)"
echo "target (re-push of an unchanged image well under 100 ms): $([ "$(jq -n "$repush < 0.1")" = true ] && echo "met ($(jq -n "$repush * 1000 | floor") ms)" || echo MISSED)"
