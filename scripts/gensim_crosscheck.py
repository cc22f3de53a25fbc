#!/usr/bin/env python3
"""Write the gensim reference numbers that ntm-eval's coherence measures are tested against.

usage: gensim_crosscheck.py NTM_BINARY OUT_DIR

The script prepares the shipped 20 Newsgroups test sample (data/20news-sample-test.jsonl.gz)
with `ntm prepare`, takes the tokenised documents it writes (tokens/train.txt), and scores
fixed topic word lists with gensim's CoherenceModel for c_npmi, c_v and u_mass. It writes
to OUT_DIR:

- gensim-texts.txt.gz: the tokenised documents, one per line (gzip header time fixed at 0);
- gensim-reference.json: the topics, the window sizes, gensim's version and its scores per
  topic and overall.

gensim runs with processes=1. With more processes, gensim counts sliding windows of
documents shorter than the window differently, so its numbers change with the machine.
Requires gensim (tested with 4.4.0) and numpy; run it from the repository root.
"""
import gzip
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import gensim
from gensim.corpora import Dictionary
from gensim.models.coherencemodel import CoherenceModel

CORPUS = Path("data/20news-sample-test.jsonl.gz")

# Topic word lists: coherent themes, a mixed list, and one of rare words, so the scores
# spread over the range of each measure. Every word must be in the prepared vocabulary.
TOPICS = [
    ["god", "jesus", "bible", "christian", "church", "faith", "christ", "believe", "religion", "christians"],
    ["game", "team", "season", "players", "play", "hockey", "games", "league", "win", "year"],
    ["windows", "file", "program", "dos", "files", "software", "version", "run", "using", "window"],
    ["car", "engine", "cars", "speed", "drive", "miles", "road", "front", "oil", "dealer"],
    ["government", "law", "gun", "people", "rights", "state", "guns", "federal", "crime", "police"],
    ["space", "nasa", "launch", "orbit", "earth", "moon", "shuttle", "mission", "data", "system"],
    ["key", "encryption", "chip", "government", "clipper", "keys", "security", "phone", "algorithm", "secure"],
    ["god", "car", "windows", "space", "game", "key", "gun", "israel", "card", "drive"],
]

WINDOWS = {"c_npmi": 10, "c_v": 110}


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    ntm, out_dir = sys.argv[1], Path(sys.argv[2])
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        channels = Path(tmp) / "channels"
        subprocess.run(
            [ntm, "prepare", str(CORPUS), "--output", str(channels), "--strip-newsgroup",
             "--max-features", "3000", "--format", "csv"],
            check=True,
        )
        lines = (channels / "tokens" / "train.txt").read_text(encoding="utf-8").splitlines()
    texts = [line.split() for line in lines]
    dictionary = Dictionary(texts)
    for topic in TOPICS:
        missing = [w for w in topic if w not in dictionary.token2id]
        if missing:
            sys.exit(f"topic words not in the prepared vocabulary: {missing}")

    scores = {}
    for measure in ["c_npmi", "c_v", "u_mass"]:
        model = CoherenceModel(
            topics=TOPICS,
            texts=texts,
            dictionary=dictionary,
            coherence=measure,
            window_size=WINDOWS.get(measure),
            topn=len(TOPICS[0]),
            processes=1,
        )
        per_topic = [float(v) for v in model.get_coherence_per_topic()]
        scores[measure] = {"per_topic": per_topic, "overall": float(model.aggregate_measures(per_topic))}
        print(f"{measure}: {scores[measure]['overall']:.6f}")

    texts_path = out_dir / "gensim-texts.txt.gz"
    with open(texts_path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as f:
        f.write("".join(line + "\n" for line in lines).encode("utf-8"))
    reference = {
        "source": f"{CORPUS} prepared by `ntm prepare --strip-newsgroup --max-features 3000`",
        "gensim_version": gensim.__version__,
        "texts": texts_path.name,
        "windows": WINDOWS,
        "topics": TOPICS,
        "scores": scores,
    }
    (out_dir / "gensim-reference.json").write_text(json.dumps(reference, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
