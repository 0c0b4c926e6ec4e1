"""How fast conversations are rendered through a Hugging Face chat template, against transformers.

    python benchmarks/bench_chat_template.py               # 50k SmolTalk-like rows
    python benchmarks/bench_chat_template.py --rows 460000 # the full-size copy
    python benchmarks/bench_chat_template.py --repeat 3    # each contender 3 times, the best counts

The rows are `bench_export.py`'s local SmolTalk copy (built there on first use, under the
gitignored `benchmarks/data/`). The model is made once beside it, under
`benchmarks/data/chat-template/`: a byte-level BPE tokenizer of 32k tokens trained with
`tokenizers` on the copy's own text, with SmolLM2's special tokens (``<|im_start|>``,
``<|im_end|>``, ``<|endoftext|>``), and SmolLM2's ChatML template with ``{% generation %}``
around the assistant's turns (what TRL's ``assistant_only_loss`` needs) in its
tokenizer_config.json; a second folder holds the same template without the blocks.

Each contender runs as a separate process reading the same parquet files in the same order, and
is reported in conversations/s, CPU seconds (its own and its workers') and peak RSS, with the
load average beside (other work on the machine shows there):

- read only: the parquet reading alone, the floor under every contender;
- transformers: ``apply_chat_template(messages, tokenize=True, return_dict=True,
  return_assistant_tokens_mask=True)`` per conversation in one process, what a training script
  does (``PreTrainedTokenizerFast.from_pretrained`` of the folder, loaded before the clock);
- ``taskcli.training.render.render_batches`` with 1 worker (in this process) and 2 worker
  processes (each compiles the template once), as ``stats --tokenizer`` renders;
- the same with 2 workers and the template without generation blocks: the ``assistant`` rule,
  which renders twice to find the contents;
- the command itself, ``taskcli stats smoltalk.yaml --tokenizer MODEL --max-tokens 0``, on 2
  cores, start-up, planning and reading included.

Nothing is cut (``max_tokens`` 0), so every contender sums the same tokens and trained tokens
into a checksum, which must agree: the assistant rule's too, since in ChatML it trains exactly
what the blocks hold. Target: ``stats --tokenizer MODEL`` (and render_batches) on 2 cores at least
1.5x transformers' loop.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]
MODELS = ROOT / "benchmarks" / "data" / "chat-template"
VOCAB_SIZE = 32_000
TRAINING_ROWS = 10_000  # conversations whose text trains the tokenizer

CONTENDERS = (
    "read-only",
    "transformers",
    "render_batches-1",
    "render_batches-2",
    "render_batches-2, assistant rule",
)
COMMAND = "taskcli stats, 2 cores"

SMOLLM2_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
    "Face<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\\n'}}"
    "{% if message['role'] == 'assistant' %}{% generation %}"
    "{{ message['content'] + '<|im_end|>' }}{% endgeneration %}"
    "{% else %}{{ message['content'] + '<|im_end|>' }}{% endif %}{{ '\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def build_models(files: list[Path]) -> tuple[Path, Path]:
    """The two model folders (with and without generation blocks), made once."""
    with_blocks, without = MODELS / "smollm2-like", MODELS / "smollm2-like-no-generation"
    done = MODELS / ".complete"
    if done.exists():
        return with_blocks, without
    from bench_tokens import conversations
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    started = time.perf_counter()
    texts = (
        message["content"]
        for conversation in itertools.islice(conversations(files), TRAINING_ROWS)
        for message in conversation["messages"]
    )
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
    )
    tokenizer.train_from_iterator(texts, trainer)
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": "<|im_start|>",
        "eos_token": "<|im_end|>",
        "pad_token": "<|im_end|>",
        "unk_token": "<|endoftext|>",
        "model_max_length": 8192,
    }
    for folder, template in (
        (with_blocks, SMOLLM2_TEMPLATE),
        (
            without,
            SMOLLM2_TEMPLATE.replace("{% generation %}", "").replace("{% endgeneration %}", ""),
        ),
    ):
        folder.mkdir(parents=True, exist_ok=True)
        tokenizer.save(str(folder / "tokenizer.json"))
        (folder / "tokenizer_config.json").write_text(
            json.dumps({**config, "chat_template": template}, indent=1)
        )
    done.touch()
    print(f"  trained the tokenizer in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return with_blocks, without


def run(contender: str, files: list[Path], model: Path, plain: Path) -> dict:
    """One contender in this process: seconds, conversations, checksum, peak RSS, CPU."""
    from bench_tokens import Descendants

    if contender == "transformers":
        from transformers import PreTrainedTokenizerFast

        renderer = PreTrainedTokenizerFast.from_pretrained(model)
    elif contender.startswith("render_batches"):
        from taskcli.training.tokenizer import load_tokenizer

        renderer = load_tokenizer(str(plain if contender.endswith("rule") else model))
    else:
        renderer = None
    with Descendants(os.getpid()) as workers:
        started, times = time.perf_counter(), os.times()
        count, checksum = render_all(contender, files, renderer)
        seconds = time.perf_counter() - started
        spent = [after - before for before, after in zip(times, os.times(), strict=True)]
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {
        "seconds": seconds,
        "conversations": count,
        "checksum": checksum,
        "peak_rss": own + workers.peak,
        # user and system, of this process and its workers
        "cpu_seconds": sum(spent[:2]) + workers.cpu_seconds,
    }


def render_all(contender: str, files: list[Path], renderer: Any) -> tuple[int, int]:
    """What `contender` does with every conversation: how many, and their checksum."""
    from bench_tokens import conversations

    from taskcli.training.render import render_batches

    count = checksum = 0
    if contender == "read-only":
        for _ in conversations(files):
            count += 1
    elif contender == "transformers":
        for conversation in conversations(files):
            out = renderer.apply_chat_template(
                conversation["messages"],
                tokenize=True,
                return_dict=True,
                return_assistant_tokens_mask=True,
            )
            count += 1
            checksum += len(out["input_ids"]) + sum(out["assistant_masks"])
    else:
        workers = int(contender.split(",")[0].rsplit("-", 1)[1])
        for batch in render_batches(conversations(files), renderer, 0, workers):
            for tokens, trained in zip(batch.num_tokens(), batch.num_trained(), strict=True):
                count += 1
                checksum += tokens + trained
    return count, checksum


def run_command(root: Path, model: Path) -> dict:
    """``taskcli stats`` of the copy with the model, as a child process: seconds, peak RSS, and
    the checksum of its token totals."""
    from bench_export import write_specs
    from bench_tokens import Descendants

    alone = write_specs(root, int(root.name))[0]
    command = [sys.executable, "-m", "taskcli", "stats", str(alone), "--data-dir", str(root)]
    command += ["--tokenizer", str(model), "--max-tokens", "0", "--json"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(root / "hf-home")}
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, env=env)
    with Descendants(process.pid) as workers:
        printed = process.stdout.read() if process.stdout else b""
        _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{command} failed with status {status}")
    tokens = json.loads(printed)["tokens"]
    totals = [tokens[key]["mean"] * tokens[key]["count"] for key in ("tokens", "trained")]
    return {
        "seconds": seconds,
        "peak_rss": max(usage.ru_maxrss * 1024, workers.peak),  # its own, or its largest worker's
        "cpu_seconds": usage.ru_utime + usage.ru_stime + workers.cpu_seconds,
        "checksum": round(sum(totals)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=1, help="runs of each; the best counts")
    parser.add_argument("--only", choices=CONTENDERS, help="run one contender in this process")
    parser.add_argument("--files", nargs="*", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--models", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.only:
        print(json.dumps(run(args.only, args.files, *args.models)))
        return

    from bench_export import build_data

    root = build_data(args.rows)
    files = sorted((root / "HuggingFaceTB" / "smol-smoltalk" / "data").glob("*.parquet"))
    models = build_models(files)
    results: dict[str, dict] = {}
    for _, contender in itertools.product(range(args.repeat), CONTENDERS):
        done = subprocess.run(
            [
                *(sys.executable, __file__, "--only", contender),
                *("--files", *map(str, files), "--models", *map(str, models)),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        result = json.loads(done.stdout)
        result["load"] = os.getloadavg()[0]
        best = results.get(contender)
        if best is None or result["seconds"] < best["seconds"]:
            results[contender] = result
    for contender, result in results.items():
        rate = result["conversations"] / result["seconds"]
        print(
            f"{contender:>32}: {result['conversations']} conversations in "
            f"{result['seconds']:.1f} s = {rate:,.0f}/s, CPU {result['cpu_seconds']:.1f} s, "
            f"peak RSS {result['peak_rss'] / 2**20:.0f} MB, load average {result['load']:.1f}"
        )
    checksums = {r["checksum"] for c, r in results.items() if c != "read-only"}
    assert len(checksums) == 1, f"the contenders disagree: {results}"
    base = results["transformers"]["conversations"] / results["transformers"]["seconds"]
    for contender in CONTENDERS[2:]:
        rate = results[contender]["conversations"] / results[contender]["seconds"]
        print(f"{contender} / transformers: {rate / base:.2f}x")

    rows = results["transformers"]["conversations"]
    best = None
    for _ in range(args.repeat):
        result = run_command(root, models[0])
        best = result if best is None or result["seconds"] < best["seconds"] else best
    assert best["checksum"] == checksums.pop(), f"{COMMAND} disagrees: {best}"
    rate = rows / best["seconds"]
    print(
        f"{COMMAND:>32}: {rows} conversations in {best['seconds']:.1f} s = {rate:,.0f}/s "
        f"({rate / base:.2f}x transformers), CPU {best['cpu_seconds']:.1f} s, "
        f"peak RSS {best['peak_rss'] / 2**20:.0f} MB, load average {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
