#!/usr/bin/env python3
"""Build the quality table of docs/quality.md in one run: ntm and its peers on the same channels.

usage: quality_table.py --bench DIR --work DIR [--ntm BINARY] [--ks 20 50] [--seeds 0 10 20]
                        [--peer-seeds 1 2 3] [--peers MODEL ...] [--threads 1] [--jobs 1]
                        [--every-setup] [--quick]

--bench is the folder of the benchmark scripts (run_baselines.py). The script

1. writes the protocol's channels with run_baselines.py: 20 Newsgroups bydate, headers, quoted
   lines and signatures removed, scikit-learn's English stop words dropped, every word in at
   least 20 and at most half of the training posts (5,760 words), into WORK/channels;
2. trains ntm on them for every K and seed with SageMaker's defaults, the quality preset, and the
   preset with topics chosen across restarts (five at K = 20, ten at K = 50), and reads NPMI@10
   (test split) and TD@25 from each training log; --every-setup adds the preset with five
   restarts (run selection) and both restart counts at every K;
3. runs each peer with run_baselines.py on the same corpus (WORK/peers/MODEL);
4. writes WORK/quality-table.md: mean and sample standard deviation of NPMI@10 and TD@25 per
   model and K, and prints it.

--jobs runs that many trainings at once (each ntm job on --threads threads, each peer on the two
threads run_baselines.py gives it). A job whose results are already in WORK, from an earlier
call with the same WORK, is not run again: an interrupted run goes on where it stopped when the
same command is given again. --quick jobs are named apart and never reused by a full run.
Delete WORK, or the job's log, to train it afresh.

Step 3 needs what run_baselines.py needs (numpy, scipy, scikit-learn, gensim, tomotopy, and
PyTorch for ProdLDA and NVDM); --peers narrows the list. With every default, one measured run on
a 2-core machine took about four hours of ntm job time (about two hours with --jobs 2) and an
hour and a half of peers, NVDM most of it; --ks and --seeds narrow it. --quick checks the whole chain in
minutes: two epochs, two restarts, and run_baselines.py's own --quick.
"""
import argparse
import json
import re
import statistics
import subprocess
import sys
import time
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from pathlib import Path

PROTOCOL = ["--vocab-size", "0", "--min-df", "20"]
PEERS = ["gensim", "sklearn", "tomotopy", "prodlda", "nvdm"]
# Each setup: its row name, its flags, and the sizes K it runs at by default (None: every K).
NTM_SETUPS = [
    ("ntm, SageMaker defaults", [], None),
    ("ntm, `--preset quality`", ["--preset", "quality"], None),
    ("ntm, `--preset quality --restarts 5`", ["--preset", "quality", "--restarts", "5"], ()),
    (
        "ntm, `--preset quality --restarts 5 --restart-selection topics`",
        ["--preset", "quality", "--restarts", "5", "--restart-selection", "topics"],
        (20,),
    ),
    (
        "ntm, `--preset quality --restarts 10 --restart-selection topics`",
        ["--preset", "quality", "--restarts", "10", "--restart-selection", "topics"],
        (50,),
    ),
]
QUALITY_LINE = re.compile(r"Topic uniqueness TU@10 ([\d.]+), topic diversity TD@25 ([\d.]+)")
NPMI_LINE = re.compile(r"Topic coherence on the test channel: NPMI@10 (-?[\d.]+)")


class JobFailed(Exception):
    """A command of the run exited with an error."""


def run(command, log=None):
    """Runs a command and returns its output; raises JobFailed with the output's end on failure."""
    command = [str(part) for part in command]
    print("+", " ".join(command), flush=True)
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if log is not None:
        Path(log).write_text(result.stdout)
    if result.returncode != 0:
        raise JobFailed(
            f"{' '.join(command)}\nfailed with exit code {result.returncode}:\n"
            f"{result.stdout[-4000:]}"
        )
    return result.stdout


def ntm_flags(flags, quick):
    """Returns the flags of one ntm setup, shortened to two epochs and two restarts with --quick."""
    if not quick:
        return flags
    short = ["2" if previous == "--restarts" else part for previous, part in zip([""] + flags, flags)]
    return short + ["--epochs", "2"]


def quick_suffix(args):
    """Returns the name suffix of a job's files, so that --quick results are never reused in full."""
    return "-quick" if args.quick else ""


def read_ntm_log(text):
    """Returns NPMI@10 on the test split and TD@25 from a training log, or None without them."""
    quality = QUALITY_LINE.search(text)
    npmi = NPMI_LINE.search(text)
    if quality is None or npmi is None:
        return None
    return float(npmi.group(1)), float(quality.group(2))


def train_ntm(args, channels, name, flags, k, seed):
    """Trains one ntm model, or reuses a finished one, and returns its NPMI@10 and TD@25."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    output = args.work / "ntm" / f"{slug}-k{k}-seed{seed}{quick_suffix(args)}"
    log = Path(f"{output}.log")
    if log.is_file() and (output / "model.tar.gz").is_file():
        found = read_ntm_log(log.read_text())
        if found is not None:
            print(f"= reusing {log}", flush=True)
            return found
    command = [args.ntm, "train", "--data", channels, "--output", output, "--num-topics", k,
               "--seed", seed, "--threads", args.threads, *ntm_flags(flags, args.quick)]
    found = read_ntm_log(run(command, log=log))
    if found is None:
        raise JobFailed(f"no TD@25 or NPMI@10 line in {log}")
    return found


def run_peer(args, baselines, model):
    """Runs one peer at every K and peer seed, or reuses its finished results; returns its runs."""
    out = args.work / "peers" / f"{model}{quick_suffix(args)}"
    results = out / "results.json"
    expected = {(k, seed) for k in args.ks for seed in args.peer_seeds}

    def finished_runs():
        if not results.is_file():
            return None
        runs = [r for r in json.loads(results.read_text())["runs"] if (r["K"], r["seed"]) in expected]
        return runs if {(r["K"], r["seed"]) for r in runs} == expected else None

    runs = finished_runs()
    if runs is not None:
        print(f"= reusing {results}", flush=True)
        return runs
    log = args.work / "peers" / f"{model}{quick_suffix(args)}.log"
    command = [sys.executable, baselines, *PROTOCOL, "--models", model,
               "--ks", *args.ks, "--seeds", *args.peer_seeds, "--out", out]
    run(command + (["--quick"] if args.quick else []), log=log)
    runs = finished_runs()
    if runs is None:
        raise JobFailed(f"{model} failed for some K and seed: see {log}")
    return runs


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
    parser.add_argument("--threads", type=int, default=1, help="threads of each ntm job")
    parser.add_argument("--jobs", type=int, default=1, help="trainings run at once")
    parser.add_argument("--every-setup", action="store_true", help="every ntm setup at every K")
    parser.add_argument("--quick", action="store_true", help="check the chain in minutes")
    args = parser.parse_args()
    if args.jobs < 1:
        sys.exit(f"--jobs {args.jobs}: at least 1 job must run")
    baselines = args.bench / "run_baselines.py"
    if not baselines.is_file():
        sys.exit(f"{baselines} not found: --bench must name the folder of run_baselines.py")
    (args.work / "ntm").mkdir(parents=True, exist_ok=True)
    (args.work / "peers").mkdir(exist_ok=True)
    started = time.monotonic()

    try:
        # 1. The protocol's channels.
        channels = args.work / "channels"
        if not (channels / "train").is_dir():
            run([sys.executable, baselines, *PROTOCOL, "--export-channel", channels])

        # 2 and 3. ntm, every setup, K and seed, and the peers on the same corpus. Jobs with more
        # restarts and a larger K start first, so the jobs that finish last are short ones.
        setups = [
            (name, flags, k)
            for name, flags, ks in NTM_SETUPS
            for k in args.ks
            if args.every_setup or ks is None or k in ks
        ]
        setups.sort(key=lambda s: (-restart_count(s[1]), -s[2]))
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            ntm_jobs = {
                pool.submit(train_ntm, args, channels, name, flags, k, seed): (k, name)
                for name, flags, k in setups
                for seed in args.seeds
            }
            peer_jobs = [pool.submit(run_peer, args, baselines, model) for model in args.peers]
            done, _ = wait([*ntm_jobs, *peer_jobs], return_when=FIRST_EXCEPTION)
            failed = [job for job in done if job.exception() is not None]
            if failed:
                pool.shutdown(cancel_futures=True)
                raise failed[0].exception()
    except JobFailed as error:
        sys.exit(f"quality table: {error}")

    rows = {}
    for job, key in ntm_jobs.items():
        rows.setdefault(key, []).append(job.result())
    for job in peer_jobs:
        for r in job.result():
            rows.setdefault((r["K"], r["model"]), []).append((r["npmi_test"], r["diversity_top25"]))

    # 4. The table.
    lines = [
        f"ntm: {run([args.ntm, '--version']).strip()}; peers: {', '.join(args.peers)}; "
        f"ntm seeds {', '.join(map(str, args.seeds))}, peer seeds "
        f"{', '.join(map(str, args.peer_seeds))}; {(time.monotonic() - started) / 3600:.1f} h "
        f"with {args.jobs} job(s) at once (jobs reused from an earlier call not counted).",
        "",
        "| model | K | runs | NPMI@10 | TD@25 |",
        "|---|---:|---:|---:|---:|",
    ]
    names = [name for name, _, _ in NTM_SETUPS] + args.peers
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


def restart_count(flags):
    """Returns the number of restarts a setup's flags ask for (1 without --restarts)."""
    for previous, part in zip(flags, flags[1:]):
        if previous == "--restarts":
            return int(part)
    return 1


if __name__ == "__main__":
    main()
