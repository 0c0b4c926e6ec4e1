"""How fast `taskcli export` writes a SmolTalk-sized mixture, and how much memory it needs.

    python benchmarks/bench_export.py                 # 460k SmolTalk rows (~1.5 GB of text)
    python benchmarks/bench_export.py --rows 50000    # the same, scaled down

It builds local copies in the real Hub layouts under `benchmarks/data/` (gitignored; reused
when already there): `HuggingFaceTB/smol-smoltalk` with conversations of realistic length and
shape (system prompts, one to four exchanges, Zipf-distributed words), `openai/gsm8k` and
`allenai/ai2_arc`. Then it runs, each as a separate process, and reports rows/s, MB/s of output
and the child's peak RSS:

- naive: what people write today: ``datasets`` loads the parquet files, ``ds.shuffle(seed=42)``,
  then ``ds[i]`` per row and ``json.dumps`` (the load, which builds the Arrow cache, is timed
  apart);
- ``taskcli export`` of SmolTalk alone, the same rows in the same order;
- ``taskcli export`` of a mixture of about 1M rows (scaled with ``--rows``): SmolTalk, GSM8K
  twice, ARC, SpellingBee and SimpleSpelling;
- the floor: one process doing what a careful user would write with the libraries alone, for
  SmolTalk in the export's order: pyarrow reads the shards, `take` puts a chunk of rows in that
  order, orjson writes each row's messages as a line.

Targets: at least 5x the naive path, peak RSS below 1 GB for the 1M-row mixture, and SmolTalk
alone in at most 0.55x the floor's time (two cores make 0.5 the limit).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "benchmarks" / "data" / "export"
SMOLTALK_ROWS = 460_000
MIXTURE_ROWS = 1_000_000
ROWS_PER_FILE = 120_000
ROWS_PER_GROUP = 10_000

NAIVE = """
import glob, json, sys, time
import datasets
datasets.disable_progress_bars()
started = time.perf_counter()
ds = datasets.load_dataset("parquet", data_files=sorted(glob.glob(sys.argv[1])), split="train")
loaded = time.perf_counter()
ds = ds.shuffle(seed=42)
with open(sys.argv[2], "w", encoding="utf-8") as out:
    for i in range(len(ds)):
        out.write(json.dumps({"messages": ds[i]["messages"]}) + "\\n")
print(json.dumps({"load": loaded - started, "write": time.perf_counter() - loaded}))
"""

# The floor: pyarrow + orjson in one process, the export's order (the seed-42 shuffle of the
# split, then the mixture's `random.Random(42).shuffle`), 8,192 rows a take.
FLOOR = """
import glob, random, sys
import numpy as np, orjson, pyarrow.parquet as pq
table = pq.read_table(sorted(glob.glob(sys.argv[1])), columns=["messages"])
rows = table.num_rows
perm = np.random.default_rng(42).permutation(rows)
order = list(range(rows))
random.Random(42).shuffle(order)
wanted = perm[np.asarray(order, dtype=np.int64)]
dumps, line = orjson.dumps, orjson.OPT_APPEND_NEWLINE
with open(sys.argv[2], "wb") as out:
    for start in range(0, rows, 8192):
        chunk = table.take(wanted[start : start + 8192]).column("messages").to_pylist()
        out.write(b"".join(dumps({"messages": messages}, option=line) for messages in chunk))
"""


def vocabulary(rng: random.Random, size: int = 30_000) -> list[str]:
    letters = "etaoinshrdlcumwfgypbvkjxqz"
    weights = [13, 9, 8, 8, 7, 7, 6, 6, 6, 4, 4, 3, 3, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1]
    words = set()
    while len(words) < size:
        words.add("".join(rng.choices(letters, weights, k=rng.choice((1, 2, 3, 4, 5, 6, 7, 9)))))
    return sorted(words, key=len)


def corpus(rng: random.Random, megabytes: int, extras: tuple[str, ...]) -> str:
    """Running text: Zipf-distributed words, punctuation, paragraphs, now and then an extra."""
    import numpy as np

    words = vocabulary(rng)
    generator = np.random.default_rng(rng.randrange(2**32))
    ranks = np.minimum(generator.zipf(1.15, size=megabytes * 200_000), len(words)) - 1
    pieces, sentence = [], 0
    for rank in ranks.tolist():
        pieces.append(words[rank])
        sentence += 1
        if sentence > 6 and rng.random() < 0.12:
            pieces[-1] += rng.choice((".", ".", ".", "?", "!", ":", ".\n\n", ".\n- "))
            sentence = 0
        elif rng.random() < 0.02:
            pieces.append(rng.choice(extras))
    return " ".join(pieces)


def corpora(rng: random.Random) -> tuple[str, str]:
    """English-like ASCII text, and text with non-ASCII in it (~5% of SmolTalk-like rows)."""
    ascii_extras = ("`code()`", "42", "3.14", "x = y + 1", '"quoted"', "(see above)")
    other_extras = ("é", "ü", "—", "“quoted”", "naïve", "日本語", "¿qué?", "Привет", "😀")
    return corpus(rng, 48, ascii_extras), corpus(rng, 4, other_extras)


def lengths(rng: random.Random, median: int, cap: int) -> int:
    return max(8, min(cap, int(rng.lognormvariate(0, 0.9) * median)))


def smoltalk_rows(rng: random.Random, texts: tuple[str, str], count: int) -> list[dict]:
    """SmolTalk-shaped rows: ~3.4 KB of text each on average, like the real split."""
    rows = []
    for _ in range(count):
        text = texts[rng.random() < 0.05]
        end = len(text) - 20_000
        messages = []
        if rng.random() < 0.3:
            start = rng.randrange(end)
            messages.append(
                {"content": text[start : start + lengths(rng, 150, 2000)], "role": "system"}
            )
        for _ in range(rng.choices((1, 2, 3, 4), (55, 25, 12, 8))[0]):
            start = rng.randrange(end)
            messages.append(
                {"content": text[start : start + lengths(rng, 260, 6000)], "role": "user"}
            )
            start = rng.randrange(end)
            messages.append(
                {"content": text[start : start + lengths(rng, 1050, 15000)], "role": "assistant"}
            )
        rows.append(
            {"messages": messages, "source": rng.choice(("smol-magpie-ultra", "smol-rewrite"))}
        )
    return rows


def write_parquet(rows: list[dict], path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=ROWS_PER_GROUP)


def build_data(smoltalk: int) -> Path:
    """The local copies, built once per size into DATA/<rows>/ and reused afterwards."""
    root = DATA / str(smoltalk)
    done = root / ".complete"
    if done.exists():
        return root
    rng = random.Random(0)
    started = time.perf_counter()
    texts = corpora(rng)
    text = texts[0]
    repo = root / "HuggingFaceTB" / "smol-smoltalk"
    files = -(-smoltalk // ROWS_PER_FILE)
    (repo / "data").mkdir(parents=True, exist_ok=True)
    (repo / "README.md").write_text(
        "---\nconfigs:\n- config_name: default\n  data_files:\n"
        "  - split: train\n    path: data/train-*\n---\n# smol-smoltalk (benchmark copy)\n"
    )
    for number in range(files):
        count = min(ROWS_PER_FILE, smoltalk - number * ROWS_PER_FILE)
        rows = smoltalk_rows(rng, texts, count)
        write_parquet(rows, repo / "data" / f"train-{number:05d}-of-{files:05d}.parquet")
        print(f"  smoltalk file {number + 1}/{files}", file=sys.stderr)
    gsm8k = []
    for _ in range(7473):
        a, b = rng.randrange(2, 99), rng.randrange(2, 99)
        question = f"{text[(s := rng.randrange(100_000)) : s + 250]} What is {a} times {b}?"
        answer = f"{text[s : s + 120]}\n{a}*{b}=<<{a}*{b}={a * b}>>{a * b}\n#### {a * b}"
        gsm8k.append({"question": question, "answer": answer})
    write_parquet(gsm8k, root / "openai" / "gsm8k" / "main" / "train-00000-of-00001.parquet")
    arc = []
    for number in range(2251):
        labels = ["A", "B", "C", "D"]
        arc.append(
            {
                "id": f"ARC-{number}",
                "question": text[(s := rng.randrange(100_000)) : s + 120],
                "choices": {
                    "text": [text[s + 200 * k : s + 200 * k + 30] for k in range(4)],
                    "label": labels,
                },
                "answerKey": rng.choice(labels),
            }
        )
    write_parquet(arc, root / "allenai" / "ai2_arc" / "ARC-Easy" / "train-00000-of-00001.parquet")
    done.write_text("")
    print(f"  built {root} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return root


def write_specs(root: Path, smoltalk: int) -> tuple[Path, Path, int]:
    words = ROOT / "examples" / "words.txt"
    alone = root / "smoltalk.yaml"
    alone.write_text("tasks:\n  - task: smoltalk\n    split: train\n")
    target = round(MIXTURE_ROWS * smoltalk / SMOLTALK_ROWS)
    spelling = max(0, target - smoltalk - 2 * 7473 - 2251 - 20_000)
    mixture = root / "mixture.yaml"
    mixture.write_text(
        "seed: 42\ntasks:\n"
        "  - {task: smoltalk, split: train}\n"
        "  - {task: gsm8k, subset: main, split: train, repeat: 2}\n"
        "  - {task: arc, subset: ARC-Easy, split: train}\n"
        f"  - {{task: spellingbee, split: train, size: {spelling}, word_list: {words}}}\n"
        f"  - {{task: simplespelling, split: train, size: 20000, word_list: {words}}}\n"
    )
    return alone, mixture, smoltalk + 2 * 7473 + 2251 + spelling + 20_000


def measure(command: list[str], env: dict[str, str], out: Path) -> tuple[float, int, str]:
    """Wall seconds, peak RSS in bytes, and stdout of one child process writing `out`.

    The previous run's `out` is removed and the disk caches flushed first: dropping 1.7 GB from
    the page cache takes over a second, and writing back the last run's output seconds more,
    which would otherwise be timed as part of this run (for the naive path as for ours).
    """
    out.unlink(missing_ok=True)
    os.sync()
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    output = process.stdout.read() if process.stdout else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{command} failed with status {status}")
    return elapsed, usage.ru_maxrss * 1024, output


def report(name: str, rows: int, seconds: float, out: Path, rss: int) -> float:
    size = out.stat().st_size / 1e6
    rate = rows / seconds
    print(
        f"{name:<34} {rows:>9,} rows {seconds:7.1f} s {rate:>9,.0f} rows/s "
        f"{size / seconds:7.0f} MB/s  peak RSS {rss / 1e6:6.0f} MB  ({size:,.0f} MB out)"
    )
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=SMOLTALK_ROWS, help="SmolTalk rows to build.")
    parser.add_argument("--skip-naive", action="store_true", help="Skip the slow naive run.")
    args = parser.parse_args()

    root = build_data(args.rows)
    alone, mixture, mixture_rows = write_specs(root, args.rows)
    out = root / "out"
    out.mkdir(exist_ok=True)
    env = {
        **os.environ,
        "HF_HOME": str(root / "hf-home"),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TASKCLI_CACHE_DIR": str(root / "cache"),
    }
    export = [sys.executable, "-m", "taskcli", "export", "--json", "--data-dir", str(root)]

    print(f"SmolTalk copy: {args.rows:,} rows; mixture: {mixture_rows:,} rows\n")
    rates = {}
    if not args.skip_naive:
        shutil.rmtree(root / "hf-home", ignore_errors=True)  # time the load a first run pays
        pattern = str(root / "HuggingFaceTB" / "smol-smoltalk" / "data" / "train-*.parquet")
        naive_out = out / "naive.jsonl"
        seconds, rss, printed = measure(
            [sys.executable, "-c", NAIVE, pattern, str(naive_out)], env, naive_out
        )
        phases = json.loads(printed)
        print(
            f"naive: the whole run took {seconds:.1f} s, of which load_dataset "
            f"{phases['load']:.1f} s (Arrow cache built once) and the loop {phases['write']:.1f} s"
        )
        rates["naive"] = report(
            "naive shuffle + ds[i] + json.dumps", args.rows, phases["write"], naive_out, rss
        )
        rates["naive+load"] = args.rows / (phases["load"] + phases["write"])
        rates["naive, whole run"] = args.rows / seconds
    seconds, rss, _ = measure(
        [*export, str(alone), "-o", str(out / "smoltalk.jsonl")], env, out / "smoltalk.jsonl"
    )
    rates["alone"] = report(
        "taskcli export smoltalk", args.rows, seconds, out / "smoltalk.jsonl", rss
    )
    pattern = str(root / "HuggingFaceTB" / "smol-smoltalk" / "data" / "train-*.parquet")
    floor, rss, _ = measure(
        [sys.executable, "-c", FLOOR, pattern, str(out / "floor.jsonl")], env, out / "floor.jsonl"
    )
    report("floor: pyarrow take + orjson", args.rows, floor, out / "floor.jsonl", rss)
    print(
        f"  taskcli export smoltalk took {args.rows / rates['alone'] / floor:.2f}x the floor's time"
    )
    seconds, rss, _ = measure(
        [*export, str(mixture), "-o", str(out / "mixture.jsonl")], env, out / "mixture.jsonl"
    )
    rates["mixture"] = report(
        "taskcli export mixture", mixture_rows, seconds, out / "mixture.jsonl", rss
    )
    if "naive" in rates:
        print(
            f"\nspeed-up of taskcli export (SmolTalk alone, whole run) over the naive path: "
            f"{rates['alone'] / rates['naive']:.1f}x over its loop alone, "
            f"{rates['alone'] / rates['naive+load']:.1f}x over its load_dataset + loop, "
            f"{rates['alone'] / rates['naive, whole run']:.1f}x over its whole run"
        )
        print(
            f"rows/s of the mixture export (whole run) over the naive loop's: "
            f"{rates['mixture'] / rates['naive']:.1f}x"
        )


if __name__ == "__main__":
    main()
