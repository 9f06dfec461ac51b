#!/usr/bin/env bash
# fuzz.sh [TARGET...] — coverage-guided fuzzing (libFuzzer through libfuzzer-sys) of every reader
# of hostile input, FUZZ_RUNS inputs per target (default 1,000,000), each input limited to 1 s.
# Targets: config dockerfile shell_word dockerignore tar_extract tar_load estargz (default: all).
# The fuzzers run in a private mount namespace where / and /dev are read-only and TMPDIR is a
# tmpfs, so an archive that escapes its directory cannot touch the machine. The corpus grows in
# target/fuzz/corpus/<target>; crashes land in target/fuzz/artifacts/<target> and make this fail.
set -euo pipefail
HERE=$(cd "$(dirname "$0")/.." && pwd)
RUNS=${FUZZ_RUNS:-1000000}
TRIPLE=x86_64-unknown-linux-gnu
OUT=$HERE/target/fuzz
mapfile -t ALL < <(sed -n 's/^pub const TARGETS.*= &\[\(.*\)\];/\1/p' "$HERE/fuzz/src/lib.rs" | tr -d '" ' | tr , '\n')
TARGETS=("${@:-${ALL[@]}}")

export CARGO_TARGET_DIR=$OUT
# What cargo-fuzz passes: SanitizerCoverage with 8-bit counters, PC table and compare tracing.
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares"
cargo build -q --profile fuzz -p fuzz --features libfuzzer --target $TRIPLE $(printf -- "--bin %s " "${ALL[@]}")
(unset RUSTFLAGS; cargo run -q -p fuzz --bin seeds -- "$OUT/seeds")

# libFuzzer's limit is wall time: on a loaded machine an input can pass 1 s without being slow
# (re-run an artifact alone: `BIN ARTIFACT` prints how long it takes).
TIMEOUT=${FUZZ_TIMEOUT:-1}
scratch=""
trap '[ -n "$scratch" ] && rmdir "$scratch" 2>/dev/null; true' EXIT
status=0
for t in "${TARGETS[@]}"; do
  mkdir -p "$OUT/corpus/$t" "$OUT/artifacts/$t"
  bin=$OUT/$TRIPLE/fuzz/$t
  echo "== $t: $RUNS inputs"
  scratch=$(mktemp -d /tmp/skiff-fuzz-XXXXXX)
  if ! unshare --mount --propagation private bash -c '
      set -e
      mount --bind "$1" "$1"; mount --bind "$2" "$2"; mount -t tmpfs -o size=1g tmpfs "$6"
      mount -o remount,bind,ro /; mount -o remount,bind,ro /dev
      cd "$2"; TMPDIR=$6 "$3" -runs="$4" -timeout="$7" -rss_limit_mb=2048 -max_len=65536 \
        -print_final_stats=1 "$1" "$5"' _ \
      "$OUT/corpus/$t" "$OUT/artifacts/$t" "$bin" "$RUNS" "$OUT/seeds/$t" "$scratch" "$TIMEOUT" 2>"$OUT/$t.log"; then
    echo "   FAILED: see $OUT/$t.log and $OUT/artifacts/$t"; status=1
  fi
  rmdir "$scratch"; scratch=""
  grep -E "stat::number_of_executed_units|stat::peak_rss_mb|stat::new_units_added" "$OUT/$t.log" | sed 's/^/   /' || true
done
exit $status
