"""How fast nanochat's SFT loader is replayed, against nanochat's own loop, and what `taskcli pack`
costs beside `taskcli stats --tokenizer` on the same mixture.

    python benchmarks/bench_pack.py                  # the nanochat SFT mixture's shape, ~790k rows
    python benchmarks/bench_pack.py --scale 0.1      # the same, a tenth of the rows
    python benchmarks/bench_pack.py --repeat 3       # each contender 3 times, the best counts
    python benchmarks/bench_pack.py --part commands  # only the commands (or: --part replay)

**The replay.** The lengths are synthetic, shaped like the mixture ``chat_sft.py`` trains on
(render cut at 2,048, seeded, built once under the gitignored ``benchmarks/data/``): 460k
SmolTalk-like conversations (log-normal, median ~450 tokens, a long tail cut at 2,048), MMLU-like
ones of ~100-400 tokens three times over (3 × 100k), GSM8K-like ones of ~150-400 four times over
(4 × 7.5k), shuffled into one mixture. Each contender runs as a separate process on the same
lengths, for T = 2048 and T = 512 (where the long tail starves the buffer) and T = 512 with the
render cut at T + 1 (the fix proposed upstream), each for world sizes 1 and 8, B = 32, S = 100:

- baseline: what nanochat does, with lengths standing in for ids: one generator per rank that
  scans its buffer for the longest conversation that fits, and the training loop (one micro-batch
  fetched before it, last_step read between steps, MAX over ranks). nanochat would never stop a
  starved run; the baseline stops when every rank's next micro-batch is all padding;
- ``taskcli.training.packing``: `simulate` (every rank as far as the loop reads it), then
  `summarize` (padding, trained tokens, per-source shares, verdict);
- read only: loading the lengths, the floor under both.

Both contenders sum the (mixture index + 1) × (offset + 1) of every conversation placed in a
trained micro-batch, with the optimizer steps: these checksums must agree. Printed: seconds and
peak RSS (``resource.getrusage``) per contender.

**The commands.** The same mixture as local Parquet copies in the Hub layouts: `bench_export.py`'s
SmolTalk-like copy (460k × scale rows) and GSM8K-like copy (7,473 rows), plus an MMLU-like
``all / auxiliary_train`` copy (99,842 × scale rows, built here), read through
``examples/nanochat-sft.yaml`` with ``--data-dir``. Each command runs as a child process, as a
user runs it (start-up included), with tiktoken:cl100k_base, B = 32:

- ``taskcli stats SPEC --tokenizer T``: the render of every conversation, what pack must not
  add much to;
- ``taskcli pack SPEC --max-seq-len 2048`` for 1 rank, its lengths cache cold (it renders and
  stores), and ``--world-size 8`` with ``--no-cache`` (it renders too);
- ``taskcli pack SPEC --max-seq-len 512`` (1 and 8 ranks; it starves early) and ``--max-seq-len
  4096 --world-size 8`` (a whole epoch replayed) again: from the cache.

Printed: wall seconds and peak RSS (the largest of the process and its render workers, from
``wait4``), the ratios to stats, and the cached run's share of the first. Targets: pack ≤ 1.1×
stats for one rank, ≤ 1.5× for 8, the cached run ≤ 5% of the first, peak RSS ≤ 1 GB.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "benchmarks" / "data"
sys.path[:0] = [str(ROOT)]

CONTENDERS = ("read-only", "baseline", "packing")
SMOLTALK_ROWS, MMLU_ROWS = 460_000, 99_842
TOKENIZER = "tiktoken:cl100k_base"
WORLD_SIZES = (1, 8)
CONFIGS = ((2048, 2048), (512, 2048), (512, 513))  # (max_seq_len, render cut)
BATCH, BUFFER = 32, 100


def build_lengths(scale: float) -> Path:
    """The mixture's lengths, trained counts and sources (0: SmolTalk, 1-3: MMLU, 4-7: GSM8K)."""
    import numpy as np

    path = DATA / f"pack-lengths-{scale:g}.npz"
    if path.exists():
        return path
    rng = np.random.default_rng(20260703)
    smoltalk = np.clip(rng.lognormal(np.log(450), 0.8, round(460_000 * scale)), 24, 4096)
    mmlu = rng.triangular(100, 180, 400, round(100_000 * scale))
    gsm8k = rng.triangular(150, 230, 400, round(7_500 * scale))
    parts = [smoltalk, mmlu, mmlu, mmlu, gsm8k, gsm8k, gsm8k, gsm8k]
    lengths = np.concatenate(parts).astype(np.int64)  # before any render cut
    source = np.concatenate([np.full(len(part), entry) for entry, part in enumerate(parts)])
    trained_share = np.where(source == 0, 0.6, np.where(source <= 3, 0.0, 0.5))
    trained = (lengths * trained_share).astype(np.int64) + (source >= 1) * (source <= 3) * 2
    order = rng.permutation(len(lengths))
    DATA.mkdir(parents=True, exist_ok=True)
    np.savez(path, lengths=lengths[order], trained=trained[order], source=source[order])
    return path


def load(path: Path, cut: int):
    """Lengths and trained counts after a render cut at `cut` tokens (the cut keeps the start,
    so it drops trained tokens from the end first: counted as the loss of the last ones)."""
    import numpy as np

    data = np.load(path)
    lengths = np.minimum(data["lengths"], cut)
    trained = np.maximum(data["trained"] - (data["lengths"] - lengths), 0)
    return lengths, trained, data["source"]


def baseline_loader(lengths, T, B, W, S, rank):
    """nanochat's sft_data_generator_bos_bestfit (train split) over lengths: yields each micro-
    batch's placements (index, offset), whether it is all padding, and last_step."""
    last_step = False
    dataset_size = len(lengths)
    row_capacity = T + 1
    conv_buffer = []
    cursor = rank
    consumed = rank
    while True:
        placements = []
        all_padding = True
        for _ in range(B):
            row_len = 0
            while row_len < row_capacity:
                while len(conv_buffer) < S:
                    conv_buffer.append((cursor, lengths[cursor]))
                    cursor += W
                    if cursor >= dataset_size:
                        cursor = cursor % dataset_size
                remaining = row_capacity - row_len
                best_idx = -1
                best_len = 0
                for i, (_, conv_len) in enumerate(conv_buffer):
                    if conv_len <= remaining and conv_len > best_len:
                        best_idx = i
                        best_len = conv_len
                if best_idx < 0:
                    break
                index, conv_len = conv_buffer.pop(best_idx)
                placements.append((index, row_len))
                row_len += conv_len
                consumed += W
            all_padding = all_padding and row_len == 0
        if consumed >= dataset_size:
            last_step = True
        yield placements, all_padding, last_step


def baseline(lengths, T: int, W: int) -> int:
    """chat_sft.py's loop (one micro-batch per step) over `baseline_loader`s: the checksum, with
    the optimizer steps when the run ends."""
    loaders = [baseline_loader(lengths, T, BATCH, W, BUFFER, rank) for rank in range(W)]
    current = [next(loader) for loader in loaders]
    checksum = steps = 0
    while not any(last_step for _, _, last_step in current):
        if all(all_padding for _, all_padding, _ in current):
            return checksum  # starved on every rank: nanochat would go on for ever
        for rank, loader in enumerate(loaders):
            checksum += sum((index + 1) * (offset + 1) for index, offset in current[rank][0])
            current[rank] = next(loader)
        steps += 1
    return checksum + steps


def packing_checksum(run) -> int:
    checksum = run.optimizer_steps or 0
    for loader, fed in zip(run.loaders, run.fed_micro_batches, strict=True):
        _, _, index, offset = loader.flat_rows(fed * BATCH)
        checksum += int(((index + 1) * (offset + 1)).sum())
    return checksum


def run(contender: str, path: Path, T: int, cut: int, W: int) -> dict:
    """One contender in this process: seconds, checksum, peak RSS."""
    started = time.perf_counter()
    lengths, trained, source = load(path, cut)
    result: dict = {"load": time.perf_counter() - started}
    started = time.perf_counter()
    if contender == "baseline":
        result["checksum"] = baseline(lengths.tolist(), T, W)
    elif contender == "packing":
        from taskcli.training.packing import PackSettings, simulate, summarize

        packed = simulate(lengths, PackSettings(T, BATCH, world_size=W, buffer_size=BUFFER))
        result["simulate"] = time.perf_counter() - started
        summary = summarize(packed, trained, source)
        result["checksum"] = packing_checksum(packed)
        result["verdict"] = summary.verdict
        result["padding"] = summary.padding_fraction
        result["steps"] = summary.optimizer_steps
    result["seconds"] = time.perf_counter() - started
    result["peak_rss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return result


def build_mixture(scale: float) -> Path:
    """Local copies of the mixture's datasets, in the Hub layouts: `bench_export.py`'s SmolTalk and
    GSM8K copies, and an MMLU-like auxiliary_train copy (questions of ~20-150 words, four short
    choices) beside them."""
    import random

    import pyarrow as pa
    import pyarrow.parquet as pq

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_export import build_data, vocabulary

    root = build_data(round(SMOLTALK_ROWS * scale))
    done = root / ".mmlu-complete"
    if done.exists():
        return root
    rng = random.Random(1)
    words = vocabulary(rng, 20_000)
    rows = []
    for _ in range(round(MMLU_ROWS * scale)):
        size = max(12, min(150, int(rng.lognormvariate(3.7, 0.5))))
        rows.append(
            {
                "question": " ".join(rng.choices(words, k=size)).capitalize() + "?",
                "subject": "",
                "choices": [" ".join(rng.choices(words, k=rng.randint(1, 8))) for _ in range(4)],
                "answer": rng.randrange(4),
            }
        )
    folder = root / "cais" / "mmlu" / "all"
    folder.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist(rows)
    pq.write_table(table, folder / "auxiliary_train-00000-of-00001.parquet", row_group_size=10_000)
    done.write_text("")
    return root


def run_command(args: list[str], env: dict[str, str]) -> dict:
    """`taskcli ARGS --json` as a child process: wall seconds, peak RSS (the child's or its
    largest render worker's), and what it printed."""
    import os

    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "taskcli", *args, "--json"], stdout=subprocess.PIPE, env=env
    )
    printed = process.stdout.read() if process.stdout else b""
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"taskcli {' '.join(args)} failed with status {status}")
    return {"seconds": seconds, "peak_rss": usage.ru_maxrss * 1024, "json": json.loads(printed)}


def commands(scale: float, repeat: int) -> None:
    """`taskcli stats --tokenizer` and `taskcli pack` on the mixture as local Parquet."""
    import os
    import shutil

    # Built in a child: a child process inherits its parent's peak RSS as its own (Linux records
    # the parent's memory at exec), so this process must stay small for the figures to be theirs.
    done = subprocess.run(
        [sys.executable, __file__, "--scale", str(scale), "--build-mixture"],
        capture_output=True,
        text=True,
        check=True,
    )
    root = Path(done.stdout.strip())
    cache = root / "pack-cache"
    env = {
        **os.environ,
        "HF_HOME": str(root / "hf-home"),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TASKCLI_CACHE_DIR": str(cache),
    }
    spec = str(ROOT / "examples" / "nanochat-sft.yaml")
    common = [spec, "--data-dir", str(root), "--tokenizer", TOKENIZER]
    pack = ["pack", *common, "--device-batch-size", str(BATCH)]
    runs = {
        "stats": ["stats", *common],
        "pack, 1 rank (cache cold)": [*pack, "--max-seq-len", "2048"],
        "pack, 8 ranks (--no-cache)": [
            *pack,
            "--max-seq-len",
            "2048",
            "--world-size",
            "8",
            "--no-cache",
        ],
        "pack T=512, 1 rank (cached)": [*pack, "--max-seq-len", "512"],
        "pack T=512, 8 ranks (cached)": [*pack, "--max-seq-len", "512", "--world-size", "8"],
        "pack T=4096, 8 ranks (cached)": [*pack, "--max-seq-len", "4096", "--world-size", "8"],
    }
    results: dict[str, dict] = {}
    for _ in range(repeat):
        shutil.rmtree(cache, ignore_errors=True)  # the first pack starts cold, every time
        for name, args in runs.items():
            result = run_command(args, env)
            result["load"] = os.getloadavg()[0]
            best = results.get(name)
            if best is None or result["seconds"] < best["seconds"]:
                results[name] = result
    conversations = {name: result["json"]["conversations"] for name, result in results.items()}
    assert len(set(conversations.values())) == 1, f"the commands disagree: {conversations}"
    stats = results["stats"]["seconds"]
    first = results["pack, 1 rank (cache cold)"]["seconds"]
    print(
        f"\nThe commands on {conversations['stats']:,} conversations "
        f"({TOKENIZER}, B={BATCH}, {os.cpu_count()} cores shared):"
    )
    for name, result in results.items():
        line = (
            f"  {name:>29}: {result['seconds']:7.1f} s, peak RSS "
            f"{result['peak_rss'] / 2**20:5.0f} MB, load average {result['load']:.1f}"
        )
        if name != "stats":
            line += f"; {result['seconds'] / stats:.2f}x stats"
        if "cached" in name:
            line += f", {result['seconds'] / first:.1%} of the first pack"
        print(line)
        if name.startswith("pack"):
            print(f"  {'':>29}  {result['json']['verdict']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the ~790k rows")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each; the best counts")
    parser.add_argument(
        "--part", choices=("replay", "commands", "both"), default="both", help="what to time"
    )
    parser.add_argument("--only", choices=CONTENDERS, help=argparse.SUPPRESS)
    parser.add_argument("--config", type=int, nargs=3, help=argparse.SUPPRESS)  # T, cut, W
    parser.add_argument("--build-mixture", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build_mixture:
        print(build_mixture(args.scale))
        return
    if args.part == "commands":
        commands(args.scale, args.repeat)
        return
    path = build_lengths(args.scale)
    if args.only:
        print(json.dumps(run(args.only, path, *args.config)))
        return
    replay(path, args)  # its contenders run in children too, the parent only counts
    if args.part == "both":
        commands(args.scale, args.repeat)


def replay(path: Path, args: argparse.Namespace) -> None:
    """The replay against nanochat's loop, on the synthetic lengths."""
    import numpy as np

    print(f"{len(np.load(path)['lengths']):,} conversations, B={BATCH}, S={BUFFER}")
    for (T, cut), W in ((config, W) for config in CONFIGS for W in WORLD_SIZES):
        results = {}
        for contender in CONTENDERS:
            for _ in range(args.repeat):
                done = subprocess.run(
                    [
                        *(sys.executable, __file__, "--scale", str(args.scale)),
                        *("--only", contender, "--config", str(T), str(cut), str(W)),
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                result = json.loads(done.stdout)
                best = results.get(contender)
                if best is None or result["seconds"] < best["seconds"]:
                    results[contender] = result
        fast, slow = results["packing"], results["baseline"]
        assert fast["checksum"] == slow["checksum"], f"the contenders disagree: {results}"
        print(f"\nT={T}, render cut {cut}, W={W}: {fast['verdict']}")
        steps = "never ending" if fast["steps"] is None else fast["steps"]
        print(f"  padding {fast['padding']:.1%}, optimizer steps: {steps}")
        for contender, result in results.items():
            timing = f"{result['seconds']:6.2f} s"
            if contender == "packing":
                timing += f" (simulate {result['simulate']:.2f} s, summarize "
                timing += f"{result['seconds'] - result['simulate']:.2f} s)"
            elif contender == "read-only":
                timing = f"{result['load']:6.2f} s"
            print(f"  {contender:>9}: {timing}, peak RSS {result['peak_rss'] / 2**20:.0f} MB")
        print(f"  baseline / packing: {slow['seconds'] / fast['seconds']:.1f}x")


if __name__ == "__main__":
    main()
