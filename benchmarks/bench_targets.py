"""How long the commands take on one big conversation file, as a user runs them.

    python benchmarks/bench_targets.py               # a 1.5 GB, 3M-conversation JSONL file
    python benchmarks/bench_targets.py --mb 200      # a smaller one, same cases

It writes the file (and a one-entry mixture spec over it) to `benchmarks/data/` (gitignored;
reused when already there), then times each case as a separate process, the way a shell runs it:

- ``show FILE --index 5`` and ``show FILE --index N-10`` (near the end): a file this big is read
  only up to the rows shown, and its other lines are counted, not parsed;
- counting the lines alone (`taskcli.files.reader.count_lines`), in seconds per GB;
- ``stats FILE`` and ``validate FILE``: one full pass each;
- ``export FILE -o - | head -1`` and ``export SPEC -o - | head -1``: the time to the first line
  (every row is checked before the first is written, so this is a full conversion).
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
TEXT = (
    "the a model answer question data train token mixture file line row count spell letter because "
    "which would could python result value first second third number über café"
)
WORDS = TEXT.split()


def conversation(rng: random.Random) -> bytes:
    """About 500 bytes: a user question and an assistant answer, sometimes a system prompt."""

    def text(words: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(words))

    messages = [
        {"role": "user", "content": text(rng.randint(10, 30))},
        {"role": "assistant", "content": text(rng.randint(30, 70))},
    ]
    if rng.random() < 0.1:
        messages.insert(0, {"role": "system", "content": text(8)})
    return orjson.dumps({"messages": messages})


def make_file(megabytes: int) -> Path:
    """The benchmark file, written once: distinct lines from a pool, repeated in a fixed order."""
    path = DATA / f"big-{megabytes}mb.jsonl"
    if path.exists():
        return path
    DATA.mkdir(exist_ok=True)
    rng = random.Random(0)
    pool = [conversation(rng) + b"\n" for _ in range(20000)]
    target = megabytes * 1_000_000
    written = 0
    partial = path.with_suffix(".partial")
    with partial.open("wb") as out:
        while written < target:
            block = b"".join(rng.choices(pool, k=4096))
            out.write(block)
            written += len(block)
    partial.rename(path)
    return path


def timed(command: str) -> float:
    """Seconds the shell command took; it must succeed."""
    started = time.perf_counter()
    done = subprocess.run(
        command,
        shell=True,
        cwd=DATA,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"`{command}` failed ({done.returncode}): {done.stderr[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=1500, help="size of the file in MB")
    args = parser.parse_args()
    path = make_file(args.mb)
    spec = DATA / f"big-{args.mb}mb.yaml"
    spec.write_text(f"mode: sequence\ntasks:\n  - {{task: customjson, path: {path.name}}}\n")
    size = path.stat().st_size
    sys.path.insert(0, str(ROOT))  # this checkout's taskcli, as the timed commands use
    from taskcli.files.reader import count_lines

    started = time.perf_counter()
    lines = count_lines(str(path))
    counting = time.perf_counter() - started
    print(f"{path.name}: {size / 1e9:.2f} GB, {lines:,} conversations")
    print(f"  count_lines: {counting:.2f} s ({counting / (size / 1e9):.2f} s per GB)")
    taskcli = f"{sys.executable} -m taskcli"
    cases = [
        ("show FILE --index 5", f"{taskcli} show {path.name} --index 5"),
        (f"show FILE --index {lines - 10}", f"{taskcli} show {path.name} --index {lines - 10}"),
        ("stats FILE", f"{taskcli} stats {path.name}"),
        ("validate FILE", f"{taskcli} validate {path.name}"),
        ("export FILE -o - | head -1", f"{taskcli} export {path.name} -o - | head -1"),
        ("export SPEC -o - | head -1", f"{taskcli} export {spec.name} -o - | head -1"),
    ]
    for label, command in cases:
        print(f"  {label:<36} {timed(command):7.2f} s", flush=True)


if __name__ == "__main__":
    main()
