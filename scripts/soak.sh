#!/usr/bin/env bash
# Memory soak (issue 3): a fresh `regime serve` on loopback, mixed reads (wrk on current,
# history, regimes) and paced Arrow IPC ingest for DURATION seconds; RSS sampled every 10 s.
#   scripts/soak.sh [DURATION=600] [REGIME_BIN] [INGEST_LOAD_BIN]
# Prints the RSS series and its spread after the first two minutes (warm-up: page cache,
# models). The binaries default to target/release (paths resolved before it moves to its
# temporary directory).
set -euo pipefail
DUR="${1:-600}"
BIN="${2:-target/release/regime}"
LOAD="${3:-target/release/examples/ingest_load}"
PORT="${SOAK_PORT:-18095}"
# everything the run needs, checked before it starts rather than found missing at its end
for need in "$BIN" "$LOAD"; do
  [[ -x "$need" ]] || { echo "soak: $need not found (cargo build --release -p regime-server --bins --examples)" >&2; exit 1; }
done
command -v wrk >/dev/null || { echo "soak: wrk not found (apt-get install wrk)" >&2; exit 1; }
BIN="$(realpath "$BIN")" LOAD="$(realpath "$LOAD")"
DIR="$(mktemp -d)"
cd "$DIR"
printf 'performance: {max_workers: 2}\nfeeds: {demo: true}\n' > config.yaml
REGIME_DEV_KEY=soak "$BIN" serve --config config.yaml --bind "127.0.0.1:$PORT" >out.txt 2>err.txt &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
sleep 3
"$LOAD" "127.0.0.1:$PORT" soak 1 2000 "$DUR" 30 15000 >ingest.txt 2>&1 &
INGEST=$!
LOADERS=()
for p in /api/v1/regime/current /api/v1/regimes "/api/v1/regime/history?symbol=SYN000&limit=200"; do
  wrk -t1 -c2 -d"${DUR}s" "http://127.0.0.1:$PORT$p" >"wrk_$(echo "$p" | tr '/?=&' '____').txt" 2>&1 &
  LOADERS+=($!)
done
: >rss.txt
for ((t = 0; t <= DUR; t += 10)); do
  echo "$t $(awk '/VmRSS/ {print $2}' /proc/$PID/status)" >>rss.txt
  sleep 10
done
# a soak whose ingest stopped early measured reads alone: say so and fail (`wait PID` gives
# that loader's own status, which `wait` on a list would lose)
INGEST_RC=0
wait "$INGEST" || INGEST_RC=$?
wait "${LOADERS[@]}"
cat ingest.txt
if [[ $INGEST_RC -ne 0 ]]; then
  echo "soak: the ingest load failed (exit $INGEST_RC, above): not a soak of reads and ingest" >&2
  exit 1
fi
grep -h 'Requests/sec' wrk_*.txt || true
# warm-up: the first 2 minutes (page caches, pipelines, models); then compare the first and
# the last third of the remaining samples (a leak shows as a rising mean)
awk -v dur="$DUR" '$1 >= 120 { v[n++] = $2; if (min == "" || $2 < min) min = $2; if ($2 > max) max = $2; s += $2 }
     END { if (n < 3) { print "RSS: fewer than 3 samples after the 120 s warm-up: run longer for the spread"; exit }
           k = int(n / 3); for (i = 0; i < k; i++) { a += v[i]; b += v[n - k + i] }
           printf "RSS after warm-up (t >= 120 s): mean %d KiB, min %d, max %d (spread %.1f%% of mean); first-third mean %d KiB, last-third mean %d KiB (drift %+.1f%%)\n", s/n, min, max, (max-min)/(s/n)*100, a/k, b/k, (b-a)/a*100 }' rss.txt
echo "series (s KiB): $(tr '\n' ' ' <rss.txt)"
ls -la data/
echo "dir: $DIR"
