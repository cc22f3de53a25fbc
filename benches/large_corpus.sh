#!/usr/bin/env bash
# Trains on a generated corpus larger than the in-memory limit and reports peak resident memory.
#
# Usage: benches/large_corpus.sh WORK_FOLDER [DOCUMENTS] [VOCABULARY] [TOPICS] [THREADS]
# Defaults: 2,000,000 documents, 20,000 words, 50 topics, 2 threads, one epoch. The corpus takes
# about 1.4 GB of disk under WORK_FOLDER/data/train; the model goes to WORK_FOLDER/model.
set -euo pipefail

work=${1:?usage: benches/large_corpus.sh WORK_FOLDER [DOCUMENTS] [VOCABULARY] [TOPICS] [THREADS]}
documents=${2:-2000000}
vocabulary=${3:-20000}
topics=${4:-50}
threads=${5:-2}
cd "$(dirname "$0")/.."

cargo build --release --quiet -p ntm-cli
cargo build --release --quiet -p ntm-formats --example synthetic_corpus
if [ ! -d "$work/data/train" ]; then
    target/release/examples/synthetic_corpus "$work/data/train" "$documents" "$vocabulary" 50 0
fi

/usr/bin/time -v target/release/ntm train --data "$work/data" --output "$work/model" \
    --feature-dim "$vocabulary" --num-topics "$topics" --epochs 1 --threads "$threads" \
    2> "$work/train.log"
grep -E "train channel|Finished training epoch|throughput_metric" "$work/train.log"
grep -E "Maximum resident set size|Elapsed \(wall clock\)" "$work/train.log"
