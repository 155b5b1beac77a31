#!/usr/bin/env bash
# Replay benchmark: generate the project's own large captures (deterministic, seed 42) and
# time `netwarden replay` on them, reporting packets per CPU-second and peak RSS.
#
#   scripts/bench-replay.sh [OUTDIR]        # default bench-data/
#
# For the side-by-side comparison with softflowd, nfpcapd, argus… use the shared harness:
#   ../shared/bench/peer-bench.sh -n 3 -t softflowd,nfpcapd,ours bench-data/nw-mix.pcap \
#       'target/release/netwarden replay {pcap} --json'
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-bench-data}
mkdir -p "$out"
cargo build --release --bins
gen=target/release/netwarden-pcapgen
[ -s "$out/nw-mix.pcap" ] || "$gen" mix --out "$out/nw-mix.pcap" > "$out/nw-mix.truth.json"
[ -s "$out/nw-flood.pcap" ] || "$gen" syn-flood --out "$out/nw-flood.pcap" > "$out/nw-flood.truth.json"
command -v /usr/bin/time >/dev/null || { apt-get update -qq && apt-get install -y -qq time; }
for capture in nw-mix nw-flood; do
    # Warm the page cache so the figure is about netwarden, not the disk.
    cat "$out/$capture.pcap" > /dev/null
    /usr/bin/time -v target/release/netwarden replay "$out/$capture.pcap" --json \
        > "$out/$capture.summary.json" 2> "$out/$capture.time.txt"
    python3 - "$out/$capture.summary.json" "$out/$capture.time.txt" "$capture" <<'PY'
import json, re, sys
summary = json.load(open(sys.argv[1]))
t = open(sys.argv[2]).read()
cpu = float(re.search(r"User time \(seconds\): ([\d.]+)", t).group(1)) + float(re.search(r"System time \(seconds\): ([\d.]+)", t).group(1))
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1))
p = summary["packets"]
print(f"{sys.argv[3]}: {p} packets, {summary['flows']} flows, {cpu:.2f} CPU-s, "
      f"{p / cpu / 1e6:.2f} Mpps per CPU-second, {p / summary['wall_seconds'] / 1e6:.2f} Mpps wall, peak RSS {rss / 1024:.0f} MiB")
PY
done
