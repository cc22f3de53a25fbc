#!/usr/bin/env bash
# Open a page written by `ntm report` in headless Chromium and check it: no console
# messages, every chart drawn, no network request made by the page, and a screenshot.
#
# Usage: scripts/report-browser-test.sh
#
# The script trains a small model on the shipped 20 Newsgroups sample (`ntm demo`) and writes
# its report. Chromium opens the report twice: once to dump the DOM after load with the
# console log and a net log, and once for a screenshot. scripts/report_browser_check.py checks the
# results. It first runs the same checks on a deliberately broken page and requires them to
# fail, so a check that can no longer see a failure is caught.
#
# Environment:
#   NTM        the ntm binary to use; built with `cargo build -p ntm-cli` when unset
#   CHROMIUM   the Chromium binary; `chromium` from PATH, installed with apt-get when missing
#   KEEP_TEST_FOLDER=1  keep the temporary folder (report, DOM, logs, screenshot) on success;
#              it is always kept on failure, and its path printed
#
# Exits non-zero when any check fails.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/ntm-report-browser.XXXXXX")
topics=8
top_n=10

finish() {
    local status=$?
    if [[ $status -ne 0 || ${KEEP_TEST_FOLDER:-0} == 1 ]]; then
        echo "test folder kept: $work" >&2
    else
        rm -rf "$work"
    fi
    exit "$status"
}
trap finish EXIT

# Chromium, installed from Debian's packages when missing.
chromium=${CHROMIUM:-$(command -v chromium || true)}
if [[ -z $chromium ]]; then
    if [[ $(id -u) -ne 0 ]]; then
        echo "error: chromium is not installed; install it with 'apt-get install chromium' as root" >&2
        exit 1
    fi
    echo "Installing chromium with apt-get" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    chromium=$(command -v chromium)
fi
echo "Using $("$chromium" --version 2>/dev/null | head -n 1)"

# The ntm binary.
if [[ -z ${NTM:-} ]]; then
    (cd "$repo" && cargo build --quiet -p ntm-cli)
    NTM="${CARGO_TARGET_DIR:-$repo/target}/debug/ntm"
fi

# Every run gets a fresh profile. Chromium makes background requests of its own (update
# checks, account lookups), so a proxy on the loopback discard port and a resolver rule that
# resolves nothing keep them on this machine. The page's requests still show in the net log.
run_chromium() {
    local name=$1
    shift
    timeout 120 "$chromium" --headless --no-sandbox --disable-gpu --disable-quic \
        --no-first-run --disable-background-networking --disable-component-update \
        --disable-sync --disable-default-apps --disable-extensions \
        --user-data-dir="$work/profile-$name" \
        --proxy-server=127.0.0.1:9 --host-resolver-rules="MAP * ~NOTFOUND" \
        --enable-logging=stderr --v=0 "$@"
}

# Loads `page` and writes its DOM, Chromium log and net log under $work/<name>.*.
load_page() {
    local name=$1 page=$2
    run_chromium "$name" --log-net-log="$work/$name.netlog.json" --virtual-time-budget=5000 \
        --dump-dom "file://$page" >"$work/$name.dom.html" 2>"$work/$name.chromium.log"
}

echo "Checking that the checks catch a broken page"
cat >"$work/broken.html" <<'EOF'
<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>broken</title></head>
<body><p>No charts here.</p>
<img alt="" src="http://127.0.0.1:9/missing.png">
<script>console.error("deliberate console error");</script>
</body></html>
EOF
load_page broken "$work/broken.html"
if python3 "$repo/scripts/report_browser_check.py" --dom "$work/broken.dom.html" \
    --log "$work/broken.chromium.log" --netlog "$work/broken.netlog.json" \
    --topics "$topics" --top-n "$top_n" >"$work/broken.check.txt"; then
    cat "$work/broken.check.txt"
    echo "error: the checks passed a page with a console error, a request and no charts" >&2
    exit 1
fi
for expected in "FAILED: no console messages" "FAILED: the page makes no network requests" \
    "FAILED: the page's script ran"; do
    if ! grep -qF "$expected" "$work/broken.check.txt"; then
        cat "$work/broken.check.txt"
        echo "error: the broken page did not fail the check: $expected" >&2
        exit 1
    fi
done

echo "Training a $topics-topic model on the shipped sample"
"$NTM" demo --output "$work/demo" --num-topics "$topics" --epochs 30 --threads 1 \
    >"$work/demo.log" 2>&1 || { cat "$work/demo.log" >&2; exit 1; }
"$NTM" report --model "$work/demo/model/model.tar.gz" \
    --reference "$work/demo/channels/tokens/test.txt" --top-n "$top_n" --threads 1 \
    --output "$work/report.html"

echo "Opening the report in Chromium"
load_page report "$work/report.html"
run_chromium screenshot --hide-scrollbars --window-size=1280,4800 \
    --screenshot="$work/report.png" "file://$work/report.html" \
    >/dev/null 2>"$work/screenshot.chromium.log"

python3 "$repo/scripts/report_browser_check.py" --dom "$work/report.dom.html" \
    --log "$work/report.chromium.log" --netlog "$work/report.netlog.json" \
    --screenshot "$work/report.png" --topics "$topics" --top-n "$top_n"
if [[ ${KEEP_TEST_FOLDER:-0} == 1 ]]; then
    echo "screenshot: $work/report.png"
fi
