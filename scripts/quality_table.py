#!/usr/bin/env python3
"""Build the quality table of docs/quality.md in one run: ntm and its peers on the same channels.

usage: quality_table.py --bench DIR --work DIR [--ntm BINARY] [--ks 20 50] [--seeds 0 10 20]
                        [--peer-seeds 1 2 3] [--peers MODEL ...] [--threads 1] [--quick]

--bench is the folder of the benchmark scripts (run_baselines.py). The script

1. writes the protocol's channels with run_baselines.py: 20 Newsgroups bydate, headers, quoted
   lines and signatures removed, scikit-learn's English stop words dropped, every word in at
   least 20 and at most half of the training posts (5,760 words), into WORK/channels;
2. trains ntm on them for every K and seed with SageMaker's defaults, the quality preset, the
   preset with five restarts, and the preset with topics chosen across five and across ten
   restarts, and reads NPMI@10 (test split) and TD@25 from each training log;
3. runs the peers with run_baselines.py on the same corpus (WORK/peers);
4. writes WORK/quality-table.md: mean and sample standard deviation of NPMI@10 and TD@25 per
   model and K, and prints it.

Step 3 needs what run_baselines.py needs (numpy, scipy, scikit-learn, gensim, tomotopy, and
PyTorch for ProdLDA and NVDM); --peers narrows the list. With every default, the full run takes
roughly seven hours on a 2-core machine (an estimate from the times of single jobs); --ks and
--seeds narrow it. --quick checks the whole chain in minutes: two epochs, two restarts, and
run_baselines.py's own --quick.
"""
import argparse
import json
import re
import statistics
import subprocess
import sys
from pathlib import Path

PROTOCOL = ["--vocab-size", "0", "--min-df", "20"]
PEERS = ["gensim", "sklearn", "tomotopy", "prodlda", "nvdm"]
NTM_SETUPS = [
    ("ntm, SageMaker defaults", []),
    ("ntm, `--preset quality`", ["--preset", "quality"]),
    ("ntm, `--preset quality --restarts 5`", ["--preset", "quality", "--restarts", "5"]),
    (
        "ntm, `--preset quality --restarts 5 --restart-selection topics`",
        ["--preset", "quality", "--restarts", "5", "--restart-selection", "topics"],
    ),
    (
        "ntm, `--preset quality --restarts 10 --restart-selection topics`",
        ["--preset", "quality", "--restarts", "10", "--restart-selection", "topics"],
    ),
]
QUALITY_LINE = re.compile(r"Topic uniqueness TU@10 ([\d.]+), topic diversity TD@25 ([\d.]+)")
NPMI_LINE = re.compile(r"Topic coherence on the test channel: NPMI@10 (-?[\d.]+)")


def run(command, log=None):
    """Runs a command, stopping the script with its output when it fails."""
    print("+", " ".join(str(part) for part in command), flush=True)
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if log is not None:
        Path(log).write_text(result.stdout)
    if result.returncode != 0:
        sys.exit(f"command failed with exit code {result.returncode}:\n{result.stdout[-4000:]}")
    return result.stdout


def ntm_flags(flags, quick):
    """Returns the flags of one ntm setup, shortened to two epochs and two restarts with --quick."""
    if not quick:
        return flags
    short = ["2" if previous == "--restarts" else part for previous, part in zip([""] + flags, flags)]
    return short + ["--epochs", "2"]


def train_ntm(args, channels, name, flags, k, seed):
    """Trains one ntm model and returns its NPMI@10 on the test split and its TD@25."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    output = args.work / "ntm" / f"{slug}-k{k}-seed{seed}"
    command = [args.ntm, "train", "--data", channels, "--output", output, "--num-topics", k,
               "--seed", seed, "--threads", args.threads, *ntm_flags(flags, args.quick)]
    log = run([str(part) for part in command], log=f"{output}.log")
    quality = QUALITY_LINE.search(log)
    npmi = NPMI_LINE.search(log)
    if quality is None or npmi is None:
        sys.exit(f"no TD@25 or NPMI@10 line in {output}.log")
    return float(npmi.group(1)), float(quality.group(2))


def summary(values):
    """Formats the mean and the sample standard deviation of a list."""
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bench", type=Path, required=True, help="folder of run_baselines.py")
    parser.add_argument("--work", type=Path, required=True, help="folder for channels and results")
    parser.add_argument("--ntm", default="target/release/ntm", help="the ntm binary")
    parser.add_argument("--ks", nargs="+", type=int, default=[20, 50])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 10, 20])
    parser.add_argument("--peer-seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--peers", nargs="+", choices=PEERS, default=PEERS)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="check the chain in minutes")
    args = parser.parse_args()
    baselines = args.bench / "run_baselines.py"
    if not baselines.is_file():
        sys.exit(f"{baselines} not found: --bench must name the folder of run_baselines.py")
    args.work.mkdir(parents=True, exist_ok=True)
    (args.work / "ntm").mkdir(exist_ok=True)

    # 1. The protocol's channels.
    channels = args.work / "channels"
    if not (channels / "train").is_dir():
        run([sys.executable, baselines, *PROTOCOL, "--export-channel", channels])

    # 2. ntm, every setup, K and seed.
    rows = {}
    for k in args.ks:
        for name, flags in NTM_SETUPS:
            for seed in args.seeds:
                npmi, td = train_ntm(args, channels, name, flags, k, seed)
                rows.setdefault((k, name), []).append((npmi, td))

    # 3. The peers on the same corpus.
    peers_out = args.work / "peers"
    command = [sys.executable, baselines, *PROTOCOL, "--models", *args.peers,
               "--ks", *map(str, args.ks), "--seeds", *map(str, args.peer_seeds),
               "--out", peers_out]
    run(command + (["--quick"] if args.quick else []))
    results = json.loads((peers_out / "results.json").read_text())
    for r in results["runs"]:
        rows.setdefault((r["K"], r["model"]), []).append((r["npmi_test"], r["diversity_top25"]))

    # 4. The table.
    lines = [
        "| model | K | runs | NPMI@10 | TD@25 |",
        "|---|---:|---:|---:|---:|",
    ]
    names = [name for name, _ in NTM_SETUPS] + args.peers
    for k in args.ks:
        for name in names:
            values = rows.get((k, name))
            if not values:
                continue
            npmi = summary([v[0] for v in values])
            td = summary([v[1] for v in values])
            lines.append(f"| {name} | {k} | {len(values)} | {npmi} | {td} |")
    table = "\n".join(lines) + "\n"
    if args.quick:
        table = "Quick check (two epochs, tiny peer runs): not a quality result.\n\n" + table
    (args.work / "quality-table.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
