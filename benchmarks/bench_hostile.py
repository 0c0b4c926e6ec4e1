"""Peak memory of taskcli on hostile or pathological inputs: it should follow the work, not the
number of problems found, the length of a line or the layout of a parquet file.

    python benchmarks/bench_hostile.py                 # 10M-line files, 200k-row parquet
    python benchmarks/bench_hostile.py --lines 1000000 --rows 50000

Each case runs in its own measuring process, which starts the command, waits for it and prints
``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss``: that command's own peak RSS (a parent's
RUSAGE_CHILDREN keeps the maximum over all its children, hence one measuring process per case).

- ``validate`` on 10M duplicate lines, with and without ``--json``; on 10M invalid lines;
- ``validate`` on ``/dev/zero`` with the line length cap, stopped after 1 GB has been read;
- ``export`` of a 200k-row SmolTalk-shaped parquet file written as ONE row group, and the same
  rows in row groups of 2,000.

Files go to ``benchmarks/data/hostile/`` (gitignored; reused when there).
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "benchmarks" / "data" / "hostile"
GOOD = b'[{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]\n'
INVALID = b'[{"role": "assistant", "content": "no user turn"}]\n'

# The measuring process: runs one command and prints the peak RSS of its children, in MB.
MEASURED = """
import resource, subprocess, sys
command, stdin = sys.argv[2:], sys.argv[1]
source = subprocess.DEVNULL if stdin == "-" else open(stdin, "rb")
with subprocess.Popen(command, stdin=source, stdout=subprocess.DEVNULL) as child:
    child.wait()
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)
"""


def lines_file(name: str, line: bytes, count: int) -> Path:
    path = DATA / f"{name}-{count}.jsonl"
    if not path.exists():
        DATA.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as out:
            block = line * 10_000
            for _ in range(count // 10_000):
                out.write(block)
            out.write(line * (count % 10_000))
    return path


def smoltalk_copy(rows: int, group: int) -> Path:
    """A local SmolTalk copy of `rows` rows in row groups of `group` rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = DATA / f"smoltalk-{rows}-{group}"
    data = folder / "HuggingFaceTB" / "smol-smoltalk" / "data"
    path = data / "train-00000-of-00001.parquet"
    if path.exists():
        return folder
    data.mkdir(parents=True, exist_ok=True)
    rng = random.Random(0)
    words = [
        "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9)))
        for _ in range(5000)
    ]

    def text(count: int) -> str:
        return " ".join(rng.choices(words, k=count))

    rows_data = []
    for _ in range(rows):
        messages = []
        for _ in range(rng.choice((1, 1, 2, 3))):
            messages.append({"content": text(rng.randint(10, 120)), "role": "user"})
            messages.append({"content": text(rng.randint(50, 600)), "role": "assistant"})
        rows_data.append({"messages": messages, "source": "bench"})
    table = pa.Table.from_pylist(rows_data)
    pq.write_table(table, path, row_group_size=group)
    readme = folder / "HuggingFaceTB" / "smol-smoltalk" / "README.md"
    readme.write_text(
        "---\nconfigs:\n- config_name: default\n  data_files:\n  - split: train\n"
        "    path: data/train-*\n---\n"
    )
    return folder


def peak(command: list[str], stdin: str = "-") -> tuple[int, float]:
    """Peak RSS (MB) and seconds of `command`, run alone in a measuring process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", MEASURED, stdin, *command],
        capture_output=True,
        env=env,
        cwd=ROOT,  # `python -m` imports from the current folder first
        check=True,
    )
    return int(result.stdout.decode().split()[-1]), time.monotonic() - start


def taskcli(*args: str) -> list[str]:
    return [sys.executable, "-m", "taskcli", *args]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=10_000_000)
    parser.add_argument("--rows", type=int, default=200_000)
    options = parser.parse_args()

    duplicates = lines_file("duplicates", GOOD, options.lines)
    invalid = lines_file("invalid", INVALID, options.lines)
    cases = [
        (f"validate, {options.lines:,} duplicate lines", taskcli("validate", str(duplicates))),
        (
            f"validate --json, {options.lines:,} duplicate lines",
            taskcli("validate", "--json", str(duplicates)),
        ),
        (f"validate, {options.lines:,} invalid lines", taskcli("validate", str(invalid))),
        (
            "validate, 1 GB of /dev/zero (16 MiB cap)",
            ["sh", "-c", f"head -c 1000000000 /dev/zero | {sys.executable} -m taskcli validate -"],
        ),
    ]
    out = DATA / "out.jsonl"
    for group in (options.rows, 2000):
        folder = smoltalk_copy(options.rows, group)
        spec = folder / "spec.yaml"
        spec.write_text("tasks:\n  - task: smoltalk\n    split: train\n")
        label = "ONE row group" if group == options.rows else f"row groups of {group:,}"
        cases.append(
            (
                f"export, {options.rows:,} rows in {label}",
                taskcli("export", str(spec), "-o", str(out), "--data-dir", str(folder)),
            )
        )
    print(f"{'case':<52} {'peak RSS':>10} {'time':>8}")
    for name, command in cases:
        rss, seconds = peak(command)
        print(f"{name:<52} {rss:>7} MB {seconds:>7.1f}s", flush=True)


if __name__ == "__main__":
    main()
