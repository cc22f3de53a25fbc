#!/usr/bin/env python3
"""Write the demo corpus shipped in data/: a stratified sample of 20 Newsgroups bydate.

usage: make_demo_corpus.py SOURCE_DIR OUT_DIR

SOURCE_DIR contains 20news-bydate-train.jsonl.gz and 20news-bydate-test.jsonl.gz (one JSON object per
post with the fields id, split, label and text). The sample takes the first TRAIN_PER_GROUP posts of
each newsgroup from the train split and the first TEST_PER_GROUP from the test split, in file order,
so the output is the same on every run. gzip's header time is fixed at 0 for the same reason.
"""
import gzip
import json
import sys
from collections import defaultdict
from pathlib import Path

TRAIN_PER_GROUP = 150
TEST_PER_GROUP = 50


def sample(path, per_group):
    taken = defaultdict(int)
    out = []
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            post = json.loads(line)
            if taken[post["label"]] < per_group:
                taken[post["label"]] += 1
                out.append(post)
    return out


def write(posts, path):
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, compresslevel=9) as f:
        for post in posts:
            f.write((json.dumps(post, ensure_ascii=False) + "\n").encode("utf-8"))


def main():
    source, out = Path(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    train = sample(source / "20news-bydate-train.jsonl.gz", TRAIN_PER_GROUP)
    test = sample(source / "20news-bydate-test.jsonl.gz", TEST_PER_GROUP)
    write(train, out / "20news-sample-train.jsonl.gz")
    write(test, out / "20news-sample-test.jsonl.gz")
    print(f"wrote {len(train)} train and {len(test)} test posts to {out}")


if __name__ == "__main__":
    main()
