#!/usr/bin/env bash
# Load test of `ntm serve` on loopback with wrk.
#
# Trains a K=50 model on 20 Newsgroups (2,000 words), builds sparse JSON request bodies from the
# test documents (1 and 100 documents per request), starts `ntm serve --threads 1` pinned to
# CPU 0 and runs wrk pinned to CPU 1 at 1, 8 and 64 connections. Prints one Markdown table row
# per run: requests/s, documents/s, p50 and p99 latency, and errors (connect, read, write,
# timeout and non-2xx responses together).
#
# Usage: benches/serve_load.sh [NTM_BINARY] [WORK_FOLDER]
# Environment: NTM_DATA (folder with 20news-bydate-{train,test}.jsonl.gz), DURATION (seconds
# per run, default 10), PORT (default 18080), CONNECTIONS (default "1 8 64"),
# BODY_SIZES (default "1 100").
# Needs wrk (Debian package `wrk`), curl, python3 and taskset.

set -euo pipefail

NTM=$(realpath "${1:-target/release/ntm}")
WORK=${2:-/tmp/ntm-serve-load}
DATA=${NTM_DATA:?set NTM_DATA to the folder with 20news-bydate-train.jsonl.gz and -test}
DURATION=${DURATION:-10}
PORT=${PORT:-18080}
CONNECTIONS=${CONNECTIONS:-1 8 64}
BODY_SIZES=${BODY_SIZES:-1 100}

mkdir -p "$WORK"
cd "$WORK"

if [[ ! -f model/model.tar.gz ]]; then
    "$NTM" prepare "$DATA/20news-bydate-train.jsonl.gz" --test "$DATA/20news-bydate-test.jsonl.gz" \
        --max-features 2000 --strip-newsgroup --format csv --output data
    "$NTM" train --data data --output model --num-topics 50 --epochs 3 --seed 1
fi

# Request bodies, one per line: each test document once in 1-document bodies, and the test
# documents in order in 100-document bodies.
python3 - data/test/test.csv <<'EOF'
import json, sys
rows = []
with open(sys.argv[1]) as f:
    for line in f:
        counts = [float(v) for v in line.split(",")]
        keys = [k for k, c in enumerate(counts) if c != 0.0]
        values = [int(counts[k]) if counts[k].is_integer() else counts[k] for k in keys]
        rows.append({"data": {"features": {"keys": keys, "values": values, "shape": [len(counts)]}}})
for size in (1, 100):
    with open(f"bodies-{size}.txt", "w") as out:
        for start in range(0, len(rows) - size + 1, size):
            out.write(json.dumps({"instances": rows[start:start + size]}, separators=(",", ":")))
            out.write("\n")
EOF

cat > post.lua <<'EOF'
-- Posts the bodies of the file NTM_BODIES (one per line) in turn.
local bodies = {}
for line in io.lines(os.getenv("NTM_BODIES")) do bodies[#bodies + 1] = line end
local next_body = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json"
request = function()
    next_body = next_body % #bodies + 1
    return wrk.format(nil, "/invocations", nil, bodies[next_body])
end
done = function(summary, latency, requests)
    local e = summary.errors
    io.write(string.format("RESULT %d %d %d %d %d\n", summary.requests, summary.duration,
        latency:percentile(50), latency:percentile(99),
        e.connect + e.read + e.write + e.status + e.timeout))
end
EOF

taskset -c 0 "$NTM" serve --model model/model.tar.gz --host 127.0.0.1 --port "$PORT" \
    --threads 1 2> serve.log &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
    curl -fs "http://127.0.0.1:$PORT/ping" > /dev/null && break
    sleep 0.1
done

# A check that the server scores a body before measuring.
head -n 1 bodies-100.txt | curl -fs -H 'Content-Type: application/json' --data-binary @- \
    "http://127.0.0.1:$PORT/invocations" | python3 -c \
    'import json, sys; p = json.load(sys.stdin)["predictions"]; assert len(p) == 100 and len(p[0]["topic_weights"]) == 50'

echo "load before the runs: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| documents per request | connections | requests/s | documents/s | p50 (ms) | p99 (ms) | errors | load (1 min) |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|"
for size in $BODY_SIZES; do
    for connections in $CONNECTIONS; do
        result=$(NTM_BODIES="bodies-$size.txt" taskset -c 1 wrk -t1 -c"$connections" \
            -d"${DURATION}s" -s post.lua "http://127.0.0.1:$PORT/invocations" | grep '^RESULT')
        read -r _ requests duration_us p50_us p99_us errors <<< "$result"
        load=$(cut -d' ' -f1 /proc/loadavg)
        awk -v s="$size" -v c="$connections" -v r="$requests" -v d="$duration_us" \
            -v p50="$p50_us" -v p99="$p99_us" -v e="$errors" -v l="$load" 'BEGIN {
                rps = r / (d / 1e6);
                printf "| %d | %d | %.0f | %.0f | %.2f | %.2f | %d | %s |\n",
                    s, c, rps, rps * s, p50 / 1000, p99 / 1000, e, l }'
    done
done
