#!/usr/bin/env python3
"""Compare the training speed of `ntm train` with a PyTorch version of the same network.

For every vocabulary size and thread count, each round runs three programs one after the
other on the same channel: `ntm train`, the PyTorch reference with dense input, and the
PyTorch reference with sparse input (`torch.sparse.mm`). The order rotates from round to
round, so that no program always runs first on a warm or cold machine. Every run trains the
same network: K topics, encoder layers `auto` (3K, 2K), sigmoid, no batch normalisation,
AdaDelta, the same mini-batch size and the same number of epochs.

Speed is documents per second over the training passes only, read from each program's own
output:
- ntm: the median of its per-epoch `#throughput_metric` lines. The first epoch is left out when
  it is more than 10% slower than the median of the later epochs;
- the reference: `median_docs_per_second` of its summary line.

Every run is one data point. For each configuration the script prints the median over the
rounds and the ratios ntm/dense and ntm/sparse, computed round by round from runs made side by
side. It writes a Markdown table (`--markdown`) and the raw runs as JSON (`--json`).

The PyTorch reference is a separate script (`--reference`) that needs numpy and torch, so
`--python` names an interpreter that has them. Channels are made with its `--make-channel`
in `--work DIR` when they are not there yet.

Example:
  python3 benches/training_speed.py --ntm target/release/ntm \\
      --reference path/to/torch_ntm_reference.py --python /tmp/benchvenv/bin/python \\
      --work /tmp/ntm-bench --markdown /tmp/ntm-bench/table.md
"""

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

THROUGHPUT = re.compile(r"#throughput_metric: host=\S+, train throughput=([0-9.eE+-]+) records/second")
PROGRAMS = ("ntm", "torch-dense", "torch-sparse")
# The first ntm epoch is dropped when it is slower than this share of the later epochs' median.
FIRST_EPOCH_SLOW_SHARE = 0.9


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ntm", type=Path, default=Path("target/release/ntm"), help="the ntm binary")
    ap.add_argument("--reference", type=Path, required=True, help="the PyTorch reference script")
    ap.add_argument("--python", default=sys.executable, help="Python interpreter with torch and numpy installed")
    ap.add_argument("--work", type=Path, required=True, help="folder for the channels (made when missing) and run output")
    ap.add_argument("--vocab-sizes", type=int, nargs="+", default=[2000, 20000])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--rounds", type=int, default=3)
    # At 100,000 documents per second an epoch of 20 Newsgroups lasts about a tenth of a second,
    # so runs of a few epochs mostly measure start-up and the load of the moment.
    ap.add_argument("--epochs", type=int, default=10, help="epochs per run")
    ap.add_argument("--num-topics", type=int, default=50)
    ap.add_argument("--mini-batch-size", type=int, default=256)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=1800, help="seconds before one run is killed")
    ap.add_argument("--markdown", type=Path, help="write the results table here")
    ap.add_argument("--json", type=Path, help="write every run's figures here")
    return ap.parse_args()


def ensure_channel(args, vocab_size):
    """Return the data folder for `vocab_size`, making it with the reference when missing."""
    folder = args.work / f"v{vocab_size}"
    if not (folder / "train").is_dir() or not (folder / "auxiliary" / "vocab.txt").is_file():
        print(f"making the channel for vocabulary {vocab_size} in {folder}", flush=True)
        subprocess.run(
            [args.python, str(args.reference), "--make-channel", str(folder), "--vocab-size", str(vocab_size)],
            check=True,
        )
    # The reference keeps only the words it found, so read the real size back.
    feature_dim = sum(1 for line in (folder / "auxiliary" / "vocab.txt").open(encoding="utf-8") if line.strip())
    return folder, feature_dim


def run_program(command, timeout):
    """Run `command` and return (stdout and stderr joined, wall seconds). Raise RuntimeError on a non-zero exit."""
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    output = done.stdout + done.stderr
    if done.returncode != 0:
        tail = "\n".join(output.splitlines()[-20:])
        raise RuntimeError(f"command failed with exit status {done.returncode}: {' '.join(command)}\n{tail}")
    return output, time.perf_counter() - started


def ntm_rate(output):
    """Return (documents per second, per-epoch rates, whether epoch 1 was dropped) from ntm's log."""
    rates = [float(m.group(1)) for m in THROUGHPUT.finditer(output)]
    if not rates:
        raise RuntimeError("the ntm output contains no #throughput_metric line")
    dropped = False
    if len(rates) >= 2 and rates[0] < FIRST_EPOCH_SLOW_SHARE * statistics.median(rates[1:]):
        dropped = True
    used = rates[1:] if dropped else rates
    return statistics.median(used), rates, dropped


def reference_rate(output):
    """Return (documents per second, per-epoch rates, summary) from the reference's JSON lines."""
    rates, summary = [], None
    for line in output.splitlines():
        if not line.startswith("{"):
            continue
        record = json.loads(line)
        if "summary" in record:
            summary = record
        elif "docs_per_second" in record:
            rates.append(record["docs_per_second"])
    if summary is None:
        raise RuntimeError("the reference output contains no summary line")
    return summary["median_docs_per_second"], rates, summary


def ntm_command(args, data, threads, output_dir):
    return [
        str(args.ntm), "train",
        "--data", str(data),
        "--output", str(output_dir),
        "--threads", str(threads),
        "--num-topics", str(args.num_topics),
        "--encoder-layers", "auto",
        "--encoder-layers-activation", "sigmoid",
        "--batch-norm", "false",
        "--optimizer", "adadelta",
        "--mini-batch-size", str(args.mini_batch_size),
        "--epochs", str(args.epochs),
        # More patience than epochs disables early stopping, so every run trains every epoch.
        "--num-patience-epochs", str(args.epochs + 1),
        "--seed", str(args.seed),
    ]


def reference_command(args, data, feature_dim, threads, input_kind):
    return [
        args.python, str(args.reference),
        "--channel", str(data / "train"),
        "--feature-dim", str(feature_dim),
        "--num-topics", str(args.num_topics),
        "--encoder-layers", "auto",
        "--activation", "sigmoid",
        "--optimizer", "adadelta",
        "--mini-batch-size", str(args.mini_batch_size),
        "--epochs", str(args.epochs),
        "--threads", str(threads),
        "--input", input_kind,
        "--seed", str(args.seed),
    ]


def run_one(args, program, data, feature_dim, threads, scratch):
    """Train once with `program` and return its figures."""
    if program == "ntm":
        output, wall = run_program(ntm_command(args, data, threads, scratch / "model"), args.timeout)
        rate, epochs, dropped = ntm_rate(output)
        return {"docs_per_second": rate, "epoch_rates": epochs, "first_epoch_dropped": dropped, "wall_seconds": wall}
    input_kind = program.removeprefix("torch-")
    output, wall = run_program(reference_command(args, data, feature_dim, threads, input_kind), args.timeout)
    rate, epochs, summary = reference_rate(output)
    return {"docs_per_second": rate, "epoch_rates": epochs, "torch": summary.get("torch"),
            "documents": summary.get("documents"), "wall_seconds": wall}


def summarise(runs, vocab_size, threads):
    """Medians over rounds and per-round ratios for one configuration."""
    by_program = {p: [r for r in runs if r["program"] == p] for p in PROGRAMS}
    row = {"vocab_size": vocab_size, "threads": threads}
    for program in PROGRAMS:
        row[program] = statistics.median(r["docs_per_second"] for r in by_program[program])
    for other in ("torch-dense", "torch-sparse"):
        ratios = []
        for ntm_run in by_program["ntm"]:
            partner = next(r for r in by_program[other] if r["round"] == ntm_run["round"])
            ratios.append(ntm_run["docs_per_second"] / partner["docs_per_second"])
        row[f"ratio_{other}"] = statistics.median(ratios)
        row[f"ratio_{other}_range"] = (min(ratios), max(ratios))
    return row


def markdown_table(rows, targets):
    lines = [
        "| vocabulary | threads | ntm docs/s | PyTorch dense docs/s | PyTorch sparse docs/s "
        "| ntm / dense (range) | ntm / sparse (range) | targets met |",
        "|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        dense_lo, dense_hi = row["ratio_torch-dense_range"]
        sparse_lo, sparse_hi = row["ratio_torch-sparse_range"]
        met_dense = row["ratio_torch-dense"] >= targets["torch-dense"]
        met_sparse = row["ratio_torch-sparse"] >= targets["torch-sparse"]
        if met_dense and met_sparse:
            verdict = "both"
        elif met_dense:
            verdict = "dense only"
        elif met_sparse:
            verdict = "sparse only"
        else:
            verdict = "neither"
        lines.append(
            f"| {row['vocab_size']:,} | {row['threads']} | {row['ntm']:,.0f} | {row['torch-dense']:,.0f} "
            f"| {row['torch-sparse']:,.0f} | {row['ratio_torch-dense']:.2f}x ({dense_lo:.2f}-{dense_hi:.2f}) "
            f"| {row['ratio_torch-sparse']:.2f}x ({sparse_lo:.2f}-{sparse_hi:.2f}) | {verdict} |"
        )
    return "\n".join(lines) + "\n"


def main():
    args = parse_args()
    if not args.ntm.is_file():
        sys.exit(f"ntm binary not found at {args.ntm}; build it with `cargo build --release -p ntm-cli`")
    if not args.reference.is_file():
        sys.exit(f"reference script not found at {args.reference}")
    args.work.mkdir(parents=True, exist_ok=True)
    targets = {"torch-dense": 3.0, "torch-sparse": 1.5}

    runs, rows = [], []
    with tempfile.TemporaryDirectory(prefix="ntm-bench-") as scratch_name:
        scratch = Path(scratch_name)
        for vocab_size in args.vocab_sizes:
            data, feature_dim = ensure_channel(args, vocab_size)
            for threads in args.threads:
                config_runs = []
                for round_index in range(args.rounds):
                    shift = round_index % len(PROGRAMS)
                    order = PROGRAMS[shift:] + PROGRAMS[:shift]
                    for program in order:
                        figures = run_one(args, program, data, feature_dim, threads, scratch)
                        figures.update(program=program, round=round_index + 1, vocab_size=vocab_size,
                                       feature_dim=feature_dim, threads=threads)
                        config_runs.append(figures)
                        print(f"V={feature_dim:>6} threads={threads} round={round_index + 1} {program:<12} "
                              f"{figures['docs_per_second']:>10,.0f} docs/s  epochs: "
                              + ", ".join(f"{r:,.0f}" for r in figures["epoch_rates"]), flush=True)
                runs.extend(config_runs)
                rows.append(summarise(config_runs, feature_dim, threads))

    table = markdown_table(rows, targets)
    print()
    print(table)
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(table, encoding="utf-8")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"runs": runs, "summary": rows}, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
