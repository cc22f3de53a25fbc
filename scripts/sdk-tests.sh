#!/usr/bin/env bash
# Runs the SageMaker Python SDK v2 client tests against `ntm serve` on the loopback interface.
#
# The script makes a virtual environment with the SDK, pytest and scipy (for the SDK's sparse
# RecordIO writer) and builds `ntm`. It trains a small model on the four-block test corpus and
# writes golden topic weights with `ntm infer`. Then it starts `ntm serve` on 127.0.0.1 with a
# free port and runs crates/ntm-serve/tests/sdk/ with pytest. Nothing is sent to AWS.
#
# Environment:
#   NTM_SDK_VENV  virtual environment to create or reuse (default: a temporary folder)
#   NTM_BIN       ntm binary to test (default: built with `cargo build -p ntm-cli`)
#   PYTHON        Python interpreter for the environment (default: python3)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="$(mktemp -d)"
server_pid=""

cleanup() {
    if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid"
        wait "$server_pid" || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

venv="${NTM_SDK_VENV:-$work/venv}"
if [[ ! -x "$venv/bin/python" ]]; then
    "${PYTHON:-python3}" -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check 'sagemaker<3' pytest scipy

if [[ -n "${NTM_BIN:-}" ]]; then
    ntm="$NTM_BIN"
else
    (cd "$root" && cargo build --quiet -p ntm-cli)
    ntm="$root/target/debug/ntm"
fi

corpus="$root/crates/ntm-cli/tests/data/four-block-corpus"
mkdir -p "$work/data/train" "$work/data/auxiliary"
cp "$corpus/train.csv" "$work/data/train/"
cp "$corpus/vocab.txt" "$work/data/auxiliary/"
"$ntm" train --data "$work/data" --output "$work/model" --num-topics 4 --epochs 20 \
    --threads 1 2>"$work/train.log"

# The validation documents and one empty document, with golden weights from `ntm infer`.
rows="$work/rows.csv"
cp "$corpus/validation.csv" "$rows"
echo "0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0" >>"$rows"
"$ntm" infer --model "$work/model/model.tar.gz" --input "$rows" --content-type text/csv \
    --threads 1 --output "$work/golden.jsonl" 2>"$work/infer.log"

"$ntm" serve --model "$work/model/model.tar.gz" --host 127.0.0.1 --port 0 --threads 1 \
    2>"$work/serve.log" &
server_pid=$!

# Wait for the `Listening on 127.0.0.1:PORT` line, then for /ping to return 200.
address=""
for _ in $(seq 1 300); do
    address="$(grep -o 'Listening on 127\.0\.0\.1:[0-9]*' "$work/serve.log" | head -n 1 | cut -d' ' -f3 || true)"
    [[ -n "$address" ]] && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/serve.log" >&2; exit 1; }
    sleep 0.1
done
if [[ -z "$address" ]]; then
    echo "ntm serve did not start listening in 30 s; its log:" >&2
    cat "$work/serve.log" >&2
    exit 1
fi
"$venv/bin/python" - "$address" <<'PY'
import sys, time, urllib.request
url = f"http://{sys.argv[1]}/ping"
for _ in range(300):
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            if response.status == 200:
                sys.exit(0)
    except OSError:
        pass
    time.sleep(0.1)
sys.exit(f"{url} did not return 200 in 30 s")
PY

export NTM_SERVE_URL="http://$address"
export NTM_ROWS_CSV="$rows"
export NTM_GOLDEN="$work/golden.jsonl"
export SAGEMAKER_SUPPRESS_V2_WARNING=1
status=0
"$venv/bin/python" -m pytest -q -p no:cacheprovider "$root/crates/ntm-serve/tests/sdk" || status=$?

kill -TERM "$server_pid"
wait "$server_pid" || status=$?
server_pid=""
if [[ $status -ne 0 ]]; then
    echo "ntm serve log:" >&2
    cat "$work/serve.log" >&2
fi
exit "$status"
