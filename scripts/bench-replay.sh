#!/usr/bin/env bash
# Replay benchmark: generate the project's own large captures (deterministic, seed 42) and
# time `netwarden replay` on them, reporting packets per CPU-second and peak RSS: the mix
# with the shipped configuration (flows, metrics and the 12 default detection rules) and
# with no rules (decode + flow + counting only), and the spoofed SYN flood.
#
#   scripts/bench-replay.sh [OUTDIR]        # default bench-data/
#
# For the side-by-side comparison with softflowd, nfpcapd, argus… use the shared harness:
#   ../shared/bench/peer-bench.sh -n 3 -t softflowd,nfpcapd,ours bench-data/nw-mix.pcap \
#       'target/release/netwarden replay {pcap} --json'
# (add `--config bench-data/no-rules/netwarden.toml` for the figure without detection).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-bench-data}
mkdir -p "$out"
cargo build --release -p netwarden -p netwarden-synth --bins
gen=target/release/netwarden-pcapgen
[ -s "$out/nw-mix.pcap" ] || "$gen" mix --out "$out/nw-mix.pcap" > "$out/nw-mix.truth.json"
[ -s "$out/nw-flood.pcap" ] || "$gen" syn-flood --out "$out/nw-flood.pcap" > "$out/nw-flood.truth.json"
command -v /usr/bin/time >/dev/null || { apt-get update -qq && apt-get install -y -qq time; }
# The shipped configuration beside an empty rules directory: no detection rules.
mkdir -p "$out/no-rules/rules.d"
cp config/netwarden.toml "$out/no-rules/netwarden.toml"
for run in nw-mix:shipped nw-mix:no-rules nw-flood:shipped; do
    capture=${run%%:*} setup=${run#*:}
    config=()
    [ "$setup" = no-rules ] && config=(--config "$out/no-rules/netwarden.toml")
    # Warm the page cache so the figure is about netwarden, not the disk.
    cat "$out/$capture.pcap" > /dev/null
    /usr/bin/time -v target/release/netwarden replay "$out/$capture.pcap" --json "${config[@]}" \
        > "$out/$capture.$setup.summary.json" 2> "$out/$capture.$setup.time.txt"
    python3 - "$out/$capture.$setup.summary.json" "$out/$capture.$setup.time.txt" "$capture ($setup)" <<'PY'
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
