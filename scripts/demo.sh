#!/usr/bin/env bash
# `make demo`: run a busybox container with skiff, then build a small image FROM scratch with
# slipway, unpack it as a bundle and run that with skiff too. Cleans up everything it made.
set -euo pipefail
skiff=${1:?usage: demo.sh SKIFF SLIPWAY}
slipway=${2:?usage: demo.sh SKIFF SLIPWAY}
work=$(mktemp -d /tmp/skiff-demo.XXXXXX)
root="$work/state"
cleanup() {
  for id in $("$skiff" --root "$root" list -q 2>/dev/null); do "$skiff" --root "$root" delete --force "$id" || true; done
  rm -rf "$work"
}
trap cleanup EXIT

echo "== 1. a busybox bundle run by skiff"
mkdir -p "$work/bundle/rootfs/bin"
cp /bin/busybox "$work/bundle/rootfs/bin/busybox"
for applet in $(/bin/busybox --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$work/bundle/rootfs/bin/$applet"
done
"$skiff" spec --bundle "$work/bundle"
# A non-interactive variant of the default spec: no terminal, a program that shows where it runs.
jq '.process.terminal = false
    | .process.args = ["sh", "-c", "echo hello from $(hostname): pid $$, $(id), $(grep CapEff /proc/self/status)"]' \
  "$work/bundle/config.json" > "$work/config.tmp" && mv "$work/config.tmp" "$work/bundle/config.json"
"$skiff" --root "$root" run --bundle "$work/bundle" demo-busybox
echo "   exit status: $?"

echo "== 2. an image built FROM scratch by slipway, run by skiff"
if ! "$slipway" --help >/dev/null 2>&1 || ! "$slipway" build --help >/dev/null 2>&1; then
  echo "   slipway build is not available in this build; skipped"
  exit 0
fi
ctx="$work/context"
mkdir -p "$ctx"
cp /bin/busybox "$ctx/busybox"
cat > "$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY busybox /bin/busybox
ENV GREETING="hello from an image slipway built"
CMD ["/bin/busybox", "sh", "-c", "echo $GREETING; /bin/busybox ls -l /bin"]
DOCKERFILE
"$slipway" --root "$work/images" build -t demo:latest "$ctx"
"$slipway" --root "$work/images" unpack demo:latest "$work/image-bundle"
jq '.process.terminal = false' "$work/image-bundle/config.json" > "$work/config.tmp"
mv "$work/config.tmp" "$work/image-bundle/config.json"
"$skiff" --root "$root" run --bundle "$work/image-bundle" demo-image
