"""Byte-identity across a change: the sha256 of every export format of the benchmark mixtures.

    python benchmarks/ref_hashes.py --write   # before a change: record benchmarks/data/ref.sha256
    python benchmarks/ref_hashes.py           # after it: every hash must match (exit 1 if not)
    python benchmarks/ref_hashes.py --rows 50000 --write   # smaller data, its own record

It uses `bench_export.py`'s local copies (built when missing) and exports, with the `taskcli` on
the path, the SmolTalk spec and the ~1M-row mixture in every format of `taskcli.export.FORMATS`,
plus shard 2 of 3 of the first 300,000 rows in `full` (the `tokens` format, which needs a
tokenizer and writes Parquet, is held to `render` by the test suite instead). The refactorings
of the fast paths are held to these hashes, not only to the test suite's small data. A record
belongs to its checkout: `full` rows name the word list by its absolute path, so compare before
and after in one place.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_export import DATA, SMOLTALK_ROWS, build_data, write_specs

from taskcli.export import FORMATS


def exports(root: Path, specs: dict[str, Path]) -> list[tuple[str, list[str]]]:
    """(name, extra arguments) of every export the record holds."""
    runs = []
    for name, spec in specs.items():
        lines = [fmt for fmt, export_format in FORMATS.items() if not export_format.renders_tokens]
        runs += [(f"{name}.{fmt}", [str(spec), "-f", fmt]) for fmt in lines]
        shard = ["--shard", "2/3", "--limit", "300000", "-f", "full"]
        runs.append((f"{name}.shard2of3.full", [str(spec), *shard]))
    return runs


def sha256_of(path: Path) -> str:
    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=SMOLTALK_ROWS, help="SmolTalk rows to build.")
    parser.add_argument("--write", action="store_true", help="Record the hashes instead.")
    args = parser.parse_args()

    root = build_data(args.rows)
    alone, mixture, _ = write_specs(root, args.rows)
    record = DATA.parent / (
        "ref.sha256" if args.rows == SMOLTALK_ROWS else f"ref-{args.rows}.sha256"
    )
    env = {**os.environ, "HF_HOME": str(root / "hf-home"), "HF_HUB_OFFLINE": "1"}
    env["TASKCLI_CACHE_DIR"] = str(root / "cache")
    lines = []
    with tempfile.TemporaryDirectory(dir=root) as folder:
        out = Path(folder) / "out.jsonl"
        for name, arguments in exports(root, {"smoltalk": alone, "mixture": mixture}):
            command = [sys.executable, "-m", "taskcli", "export", "--data-dir", str(root)]
            subprocess.run(
                [*command, *arguments, "-o", str(out)],
                check=True,
                env=env,
                stderr=subprocess.DEVNULL,
            )
            lines.append(f"{sha256_of(out)}  {name}\n")
            print(lines[-1], end="", flush=True)
    if args.write:
        record.write_text("".join(lines))
        print(f"recorded {record}")
        return 0
    expected = record.read_text().splitlines(keepends=True)
    differing = [line.split()[-1] for line in expected if line not in lines]
    if differing:
        print(f"differ from {record}: {', '.join(differing)}")
        return 1
    print(f"all {len(expected)} outputs match {record}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
