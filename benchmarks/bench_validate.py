"""How fast `taskcli validate` is, and whether its memory stays flat as files grow.

    python benchmarks/bench_validate.py              # 200 MB file, plus a 20 MB one for memory
    python benchmarks/bench_validate.py --mb 2000    # a bigger file, same comparison

It writes files of realistic chat conversations (system prompts, multi-turn dialogues, tool-call
parts, some non-ASCII) to `benchmarks/data/` (gitignored; reused when already there), then runs
three programs over each as separate processes and reports throughput and the child's peak RSS:

- baseline: what people write by hand today, a stdlib ``json.loads`` loop with nanochat-style
  asserts (stops at the first bad line, no line numbers), streaming; and "baseline, kept", the
  same loop keeping the conversations in a list as nanochat's CustomJSON loader does;
- floor: bare ``orjson.loads`` over every line, with no checks at all;
- ``taskcli validate``: every rule, every line.

Targets: at least 3x the baseline, within 2x of the floor, and about the same peak RSS for a
file 10x smaller.
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

DATA = Path(__file__).resolve().parent / "data"
FILE = "<file>"  # where each command takes the file's path

# The loop people write by hand: the checks of nanochat's CustomJSON loader, in streaming form.
BASELINE = """
import json, sys
KEEP = sys.argv[2:] == ["keep"]
conversations = []
with open(sys.argv[1], encoding="utf-8") as f:
    for line in f:
        line = line.strip()
        if not line:
            continue
        row = json.loads(line)
        messages = row["messages"] if isinstance(row, dict) else row
        assert isinstance(messages, list) and len(messages) >= 2
        if messages[0]["role"] == "system":
            messages = messages[1:]
        for i, message in enumerate(messages):
            assert "role" in message and "content" in message
            assert message["role"] == ("user" if i % 2 == 0 else "assistant")
            content = message["content"]
            if isinstance(content, list):
                for part in content:
                    assert part["type"] in ("text", "python", "python_output")
                    assert isinstance(part["text"], str)
            else:
                assert isinstance(content, str)
        if KEEP:
            conversations.append(messages)
"""

FLOOR = """
import orjson, sys
with open(sys.argv[1], "rb") as f:
    for line in f:
        if line.strip():
            orjson.loads(line)
"""

WORDS = (
    "the",
    "a",
    "an",
    "model",
    "data",
    "train",
    "token",
    "loss",
    "batch",
    "answer",
    "question",
    "because",
    "which",
    "people",
    "small",
    "learn",
    "write",
    "read",
    "number",
    "result",
    "check",
    "file",
    "line",
    "example",
    "simple",
    "value",
    "always",
    "often",
    "python",
    "function",
    "return",
    "list",
    "string",
    "count",
    "letter",
    "word",
    "sentence",
    "explain",
    "reason",
    "step",
    "first",
    "then",
    "finally",
    "however",
    "also",
    "would",
    "could",
    "should",
    "about",
    "there",
    "their",
)
# Most chat data is English with some other languages, code and the odd emoji mixed in.
OTHER = [
    "Le modèle apprend vite, mais il faut vérifier les données.",
    "Das Ergebnis ist nicht ganz richtig, prüfe noch einmal.",
    "日本語の文章も少し含まれています。",
    "Привет! Как дела? Всё хорошо.",
    "¿Qué significa esta función? 🙂",
    'Here is the code:\n```python\ndef double(x):\n    return 2 * x\n```\nCall it as "double(21)".',
]

SYSTEM_PROMPTS = [
    "You are a helpful assistant.",
    "You are nanobot, a small assistant. Answer briefly and honestly.",
    "Answer in the language of the question.",
]


def sentence(rng: random.Random) -> str:
    if rng.random() < 0.03:
        return rng.choice(OTHER)
    words = rng.choices(WORDS, k=rng.randint(6, 24))
    return " ".join(words).capitalize() + rng.choice(".!?")


def text(rng: random.Random, sentences: list[str], low: int, high: int) -> str:
    return " ".join(rng.choices(sentences, k=rng.randint(low, high)))


def conversation(rng: random.Random, sentences: list[str], number: int) -> dict:
    messages = []
    if rng.random() < 0.3:
        messages.append({"role": "system", "content": rng.choice(SYSTEM_PROMPTS)})
    for _ in range(rng.choices((1, 2, 3, 4, 6), weights=(40, 25, 15, 12, 8))[0]):
        messages.append({"role": "user", "content": text(rng, sentences, 1, 6)})
        if rng.random() < 0.1:
            a, b = rng.randint(2, 999), rng.randint(2, 999)
            content: str | list = [
                {"type": "text", "text": text(rng, sentences, 1, 4) + " "},
                {"type": "python", "text": f"{a}*{b}"},
                {"type": "python_output", "text": str(a * b)},
                {"type": "text", "text": f" So the answer is {a * b}. #### {a * b}"},
            ]
        else:
            content = text(rng, sentences, 2, 20)
        messages.append({"role": "assistant", "content": content})
    return {"messages": messages, "source": "bench", "id": number}


def build(path: Path, megabytes: int) -> None:
    """A JSONL file of about `megabytes` MB, written once and reused."""
    if path.exists():
        return
    rng = random.Random(megabytes)
    sentences = [sentence(rng) for _ in range(20_000)]
    target = megabytes * 1_000_000
    written = number = 0
    temp = path.with_suffix(".tmp")
    with temp.open("wb") as out:
        while written < target:
            line = orjson.dumps(
                conversation(rng, sentences, number), option=orjson.OPT_APPEND_NEWLINE
            )
            out.write(line)
            written += len(line)
            number += 1
    temp.rename(path)


def measure(command: list[str], runs: int) -> tuple[float, float, float, int]:
    """(wall seconds, CPU seconds, peak RSS in MB, exit code) of a child process, best of `runs`.

    CPU time (user + system) is what the comparison uses: on a shared machine wall time mostly
    measures the neighbours.
    """
    results = []
    for _ in range(runs):
        started = time.perf_counter()
        child = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        _, status, usage = os.wait4(child.pid, 0)
        elapsed = time.perf_counter() - started
        cpu = usage.ru_utime + usage.ru_stime
        results.append((elapsed, cpu, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status)))
    return min(results, key=lambda result: result[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=int, default=200, help="size of the main file in MB")
    parser.add_argument("--runs", type=int, default=3, help="runs per program; the best counts")
    args = parser.parse_args()
    DATA.mkdir(exist_ok=True)
    small_mb = max(1, args.mb // 10)
    files = {mb: DATA / f"conversations-{mb}mb.jsonl" for mb in (args.mb, small_mb)}
    for mb, path in files.items():
        build(path, mb)
    tiny = DATA / "one-conversation.jsonl"
    tiny.write_bytes(
        b'[{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hi!"}]\n'
    )

    python = sys.executable
    programs = {
        "baseline": [python, "-c", BASELINE, FILE],
        "baseline, kept": [python, "-c", BASELINE, FILE, "keep"],
        "floor": [python, "-c", FLOOR, FILE],
        "taskcli validate": [python, "-m", "taskcli", "validate", FILE],
    }
    startup = measure(
        [str(tiny) if arg == FILE else arg for arg in programs["taskcli validate"]], args.runs
    )[1]
    speed: dict[str, float] = {}
    peak: dict[tuple[str, int], float] = {}
    print(f"{'program':18} {'file':>7} {'wall s':>7} {'CPU s':>7} {'MB/s':>7} {'peak RSS':>9} exit")
    for mb, path in files.items():
        size = path.stat().st_size / 1e6
        for name, command in programs.items():
            wall, cpu, rss, code = measure(
                [str(path) if arg == FILE else arg for arg in command], args.runs
            )
            peak[name, mb] = rss
            if mb == args.mb:
                speed[name] = size / cpu
                if name == "taskcli validate":
                    speed["without start-up"] = size / (cpu - startup)
            print(
                f"{name:18} {size:5.0f}MB {wall:7.2f} {cpu:7.2f} {size / cpu:7.1f} "
                f"{rss:7.1f}MB {code:4}"
            )

    ours, floor = speed["taskcli validate"], speed["floor"]
    big, small = peak["taskcli validate", args.mb], peak["taskcli validate", small_mb]
    print(f"\nMB/s per CPU second; taskcli's start-up (a one-line file) costs {startup:.2f} CPU s.")
    for label, key in (
        ("taskcli validate", "taskcli validate"),
        ("  without start-up", "without start-up"),
    ):
        print(
            f"{label:20} {speed[key] / speed['baseline']:.2f}x the baseline, "
            f"{speed[key] / speed['baseline, kept']:.2f}x the kept baseline (target >= 3x), "
            f"{floor / speed[key]:.2f}x slower than the floor (target <= 2x)"
        )
    print(f"peak RSS {big:.1f} MB for {args.mb} MB against {small:.1f} MB for {small_mb} MB")
    return 0 if ours >= 3 * speed["baseline"] and floor <= 2 * ours else 1


if __name__ == "__main__":
    sys.exit(main())
