#!/usr/bin/env bash
# Run every benchmark one after another and collect their JSON lines in bench/results.jsonl.
# The machine has 2 cores: run this when nothing else is busy (check `uptime`), and compare
# ratios, not absolute figures, with runs on other machines.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
OUT="${OUT:-bench/results.jsonl}"  # OUT=FILE: elsewhere, e.g. for a run with a patched copy
: > "$OUT.new"
for bench in receiver_throughput receiver_crowd send send_process app_start search key_types gmap_sync threads; do
    echo "== $bench" >&2
    "$PYTHON" "bench/$bench.py" | tee -a "$OUT.new"
done
mv "$OUT.new" "$OUT"
echo "results: $OUT" >&2
