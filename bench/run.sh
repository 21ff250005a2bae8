#!/usr/bin/env bash
# Compile benchmark: build release, generate the synthetic cluster (once),
# time `balancer compile` on cluster.json, cluster.compact.json and cluster.yaml
# against orjson.loads(cluster.json) (always) and a Python peer (json.load /
# PyYAML CSafeLoader, optional), print a table and PASS/MISS targets.
# See bench/README.md.  Called by `make bench`.
#
# Environment knobs (defaults in brackets):
#   BENCH_SERVICES [10000]  BENCH_NODES [1000]  BENCH_EPS [15]  BENCH_SEED [1]
#   BENCH_RUNS [3]          compiler runs per format (best-of)
#   BENCH_ORJSON_RUNS [3]   read + orjson.loads(cluster.json) runs (best-of; always >= 1)
#   BENCH_PEER_RUNS [1]     json.load / PyYAML parses per format (best-of; YAML ~35 s each; 0 = none)
#   BENCH_NO_PEER [0]       1 = skip the json.load / PyYAML peer (orjson still runs)
#   BENCH_STRICT [0]        1 = exit 2 if any target is missed
#   BENCH_SKIP_BUILD [0]    1 = use the existing release binary
#   BENCH_BIN               compiler executable to time instead of the release build
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH="$ROOT/bench"
OUT="$BENCH/out"
cd "$ROOT"

say() { printf '==> %s\n' "$*" >&2; }

# --- tools -------------------------------------------------------------------
if [ ! -x /usr/bin/time ]; then
    say "installing GNU time (/usr/bin/time is missing)"
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get install -y time >/dev/null 2>&1 ||
        { $SUDO apt-get update >/dev/null && $SUDO apt-get install -y time >/dev/null; }
fi
if ! python3 -c 'import orjson' 2>/dev/null; then
    say "installing orjson (the peer every format is measured against)"
    python3 -m pip install --quiet orjson
fi
if [ "${BENCH_NO_PEER:-0}" != 1 ] && [ "${BENCH_PEER_RUNS:-1}" != 0 ] &&
   ! python3 -c 'import yaml, sys; sys.exit(0 if yaml.__with_libyaml__ else 1)' 2>/dev/null; then
    say "installing PyYAML with libyaml (needed for the peer)"
    python3 -m pip install --quiet pyyaml
fi

# --- build ---------------------------------------------------------------------
if [ -n "${BENCH_BIN:-}" ]; then
    BIN="$BENCH_BIN"
else
    if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
        say "swift build -c release"
        swift build -c release
    fi
    BIN="$(swift build -c release --show-bin-path)/balancer"
fi
[ -x "$BIN" ] || { echo "bench: $BIN not found (build failed?)" >&2; exit 1; }

# --- input -----------------------------------------------------------------------
mkdir -p "$OUT"
say "cluster in $OUT (generated only if missing or stale)"
python3 "$BENCH/gen_cluster.py" --if-stale --out "$OUT" \
    --services "${BENCH_SERVICES:-10000}" --nodes "${BENCH_NODES:-1000}" \
    --endpoints-per-service "${BENCH_EPS:-15}" --seed "${BENCH_SEED:-1}"

# --- measure ---------------------------------------------------------------------
args=(--bin "$BIN" --out "$OUT" --runs "${BENCH_RUNS:-3}" --peer-runs "${BENCH_PEER_RUNS:-1}"
      --orjson-runs "${BENCH_ORJSON_RUNS:-3}")
[ "${BENCH_NO_PEER:-0}" = 1 ] && args+=(--no-peer)
[ "${BENCH_STRICT:-0}" = 1 ] && args+=(--strict)
say "measuring"
exec python3 "$BENCH/bench.py" "${args[@]}"
