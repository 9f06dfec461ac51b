#!/usr/bin/env bash
# Prints the tests that checked nothing (or one table row that was not checked) on this host,
# with the reason each gave through integration::skip. `make test` runs it at the end.
log=${1:-target/test-skips.log}
[ -s "$log" ] || { echo "== skipped tests: none =="; exit 0; }
echo "== skipped tests on this host: $(sort -u "$log" | wc -l) (each passed as 'ok' but checked nothing, or one row) =="
sort -u "$log" | awk -F'\t' '{ printf "  %-70s %s\n", $1, $2 }'
