#!/usr/bin/env bash
# Runs every test of the project: the Rust test suite, the SageMaker Python SDK client tests
# against `ntm serve`, and the headless-Chromium check of `ntm report`.
#
# The SDK tests install `sagemaker<3`, pytest and scipy into a virtual environment
# (NTM_SDK_VENV, default target/sdk-venv). The browser check installs Debian's chromium with
# apt-get when it is missing, which needs root. Every server the tests start listens on 127.0.0.1.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

cargo test --workspace --locked

# `cargo test` built target/debug/ntm for the end-to-end tests; building it again for one
# package would resolve features differently and recompile dependencies.
export NTM_BIN="$PWD/target/debug/ntm"
export NTM="$NTM_BIN"
NTM_SDK_VENV="${NTM_SDK_VENV:-$PWD/target/sdk-venv}" scripts/sdk-tests.sh
scripts/report-browser-test.sh
