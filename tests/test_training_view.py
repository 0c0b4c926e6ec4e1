"""The training view through the CLI: `show --tokens`, `stats --tokenizer`.

The `bytes` tokenizer (tests/tokenizers_data.py) has no merges: a text's ids are its UTF-8
bytes and the nine chat tokens are 256..264, so every figure below can be worked out by hand.
"""

import json
from pathlib import Path

import pytest
from rich.console import Console
from specfiles import write_spec
from typer.testing import CliRunner

from taskcli.cli import app
from taskcli.training.render import render
from taskcli.training.tokenizer import load_tokenizer
from taskcli.ui import console

runner = CliRunner()
BOS, US, UE, AS, AE = range(256, 261)
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run(*args: str, **kwargs):
    return runner.invoke(app, list(args), **kwargs)


def write_jsonl(path: Path, conversations: list[list[tuple[str, str]]]) -> Path:
    lines = [
        json.dumps([{"role": role, "content": content} for role, content in conversation])
        for conversation in conversations
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def chats(tmp_path):
    return write_jsonl(
        tmp_path / "chats.jsonl",
        [
            [("user", "hi"), ("assistant", "ok")],
            [("system", "sys"), ("user", "q"), ("assistant", "a long answer")],
        ],
    )


@pytest.fixture
def bytes_spec(tokenizer_folders):
    return str(tokenizer_folders["bytes"])


def test_show_tokens_json_rows_are_render_with_their_index(chats, bytes_spec):
    result = run("show", str(chats), "--tokens", "-t", bytes_spec, "-n", "2", "--json")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert rows[0] == {
        "index": 0,
        "ids": [BOS, US, *b"hi", UE, AS, *b"ok", AE],
        "mask": [0, 0, 0, 0, 0, 0, 1, 1, 1],
        "num_tokens": 9,
        "num_trained": 3,
        "truncated": False,
        "tokens_cut": 0,
    }
    # the system message is folded into the first user message, as nanochat renders it
    assert rows[1]["ids"][:8] == [BOS, US, *b"sys\n\nq"]
    assert rows[1]["index"] == 1


def test_show_tokens_cut_at_max_tokens(chats, bytes_spec):
    whole = run("show", str(chats), "--tokens", "-t", bytes_spec, "-i", "1", "--json")
    row = json.loads(whole.output)
    cut = run(
        "show", str(chats), "--tokens", "-t", bytes_spec, "-i", "1", "--max-tokens", "10", "--json"
    )
    short = json.loads(cut.output)
    assert short["ids"] == row["ids"][:10] and short["mask"] == row["mask"][:10]
    assert (short["truncated"], short["tokens_cut"]) == (True, row["num_tokens"] - 10)
    nothing_cut = run(
        "show", str(chats), "--tokens", "-t", bytes_spec, "-i", "1", "--max-tokens", "0", "--json"
    )
    assert json.loads(nothing_cut.output)["ids"] == row["ids"]


def at_80_columns(monkeypatch):
    monkeypatch.setattr(console, "stdout", Console(width=80))


def test_show_tokens_for_people_marks_trained_runs_badges_and_the_cut(
    chats, bytes_spec, monkeypatch
):
    at_80_columns(monkeypatch)
    args = ["show", str(chats), "--tokens", "-t", bytes_spec, "-i", "1", "--max-tokens", "12"]
    result = run(*args)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("─")  # the rule naming the file and example
    assert lines[1].startswith("12 tokens · 2 trained · 12 cut off at 12")
    body = "\n".join(lines[2:])
    # untrained runs bracketed, tokens split by dots, chat tokens by name (no colour in tests)
    assert body.startswith("⟦<|bos|>·<|user_start|>·s·y·s·↵\n·↵\n·q·<|user_end|>·")
    assert "<|assistant_start|>⟧a· " in body
    assert "✂ cut here: 12 more tokens never trained on" in body
    assert all(len(line) <= 80 for line in lines)
    with_ids = run(*args, "--ids")
    assert "<|bos|>:256·<|user_start|>:257·s:115" in with_ids.output


def test_show_tokens_needs_a_tokenizer_and_says_how(chats, monkeypatch):
    monkeypatch.delenv("TASKCLI_TOKENIZER", raising=False)
    result = run("show", str(chats), "--tokens")
    assert result.exit_code == 2
    assert "--tokens needs a tokenizer" in result.output
    assert "Traceback" not in result.output


def test_a_broken_tokenizer_is_a_one_line_error(chats, tmp_path):
    (tmp_path / "tok").mkdir()
    (tmp_path / "tok" / "tokenizer.pkl").write_bytes(b"not a pickle")
    result = run("show", str(chats), "--tokens", "-t", str(tmp_path / "tok"))
    assert result.exit_code == 1
    assert len(result.output.strip().splitlines()) == 1, result.output
    missing = run("stats", str(chats), "-t", str(tmp_path / "nowhere"))
    assert missing.exit_code == 2 and "no such file or folder" in missing.output


def test_the_tokenizer_comes_from_the_environment_too(chats, bytes_spec, monkeypatch):
    monkeypatch.setenv("TASKCLI_TOKENIZER", bytes_spec)
    result = run("show", str(chats), "--tokens", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["num_tokens"] == 9


def test_a_tokenizer_typed_for_show_implies_tokens(chats, bytes_spec, monkeypatch):
    """`show -t SPEC` shows the tokens (it showed the text, silently); the variable alone,
    set for `export` and `stats`, leaves `show` as text."""
    typed = run("show", str(chats), "-t", bytes_spec, "--json")
    assert typed.exit_code == 0, typed.output
    assert json.loads(typed.output)["num_tokens"] == 9  # the token row, not the text row
    people = run("show", str(chats), "--tokenizer", bytes_spec)
    assert "<|user_start|>" in people.output and "trained" in people.output
    monkeypatch.setenv("TASKCLI_TOKENIZER", bytes_spec)
    text = run("show", str(chats), "--json")
    assert json.loads(text.output) == {
        "index": 0,
        "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "ok"}],
    }
    help_text = " ".join(run("show", "--help", terminal_width=200).output.split())
    assert "-t/--tokenizer on the command line implies --tokens" in help_text


def test_stats_token_figures_match_render_by_hand(tmp_path, bytes_spec):
    chats = write_jsonl(
        tmp_path / "chats.jsonl",
        [[("user", "x" * n), ("assistant", "y" * (2 * n))] for n in range(1, 11)],
    )
    result = run("stats", str(chats), "-t", bytes_spec, "--max-tokens", "30", "--json")
    assert result.exit_code == 0, result.output
    tokens = json.loads(result.output)["tokens"]
    # n user bytes + 2n assistant bytes + 4 chat tokens + bos: 3n + 5 tokens, 2n + 1 trained
    rendered = [3 * n + 5 for n in range(1, 11)]
    kept = [min(length, 30) for length in rendered]
    assert tokens["rendered"]["max"] == 35 and tokens["rendered"]["min"] == 8
    assert tokens["tokens"]["max"] == 30
    assert tokens["truncated"] == sum(length > 30 for length in rendered) == 2
    assert tokens["tokens_cut"] == sum(rendered) - sum(kept) == 2 + 5
    assert tokens["trained"]["min"] == 3
    assert tokens["max_tokens"] == 30
    assert tokens["tokenizer"]["special_ids"]["<|bos|>"] == 256
    assert sum(b["count"] for b in tokens["histogram"]) == 10


def test_stats_share_per_source_by_tokens_counts_repeats(tmp_path, tokenizer_folders, monkeypatch):
    write_jsonl(tmp_path / "short.jsonl", [[("user", "a"), ("assistant", "b")]] * 4)
    write_jsonl(tmp_path / "long.jsonl", [[("user", "a" * 50), ("assistant", "b" * 90)]])
    spec = write_spec(
        tmp_path,
        """
        tasks:
          - {task: customjson, path: short.jsonl, repeat: 2}
          - {task: customjson, path: long.jsonl}
        """,
    )
    tokenizer = str(tokenizer_folders["bytes"])
    result = run("stats", str(spec), "-t", tokenizer, "--json")
    assert result.exit_code == 0, result.output
    sources = json.loads(result.output)["sources"]
    loaded = load_tokenizer(tokenizer)
    one_short = render(
        {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]},
        loaded,
    )
    one_long = render(
        {
            "messages": [
                {"role": "user", "content": "a" * 50},
                {"role": "assistant", "content": "b" * 90},
            ]
        },
        loaded,
    )
    assert sources[0]["tokens"] == 8 * one_short.num_tokens
    assert sources[0]["trained"] == 8 * one_short.num_trained
    assert sources[1]["tokens"] == one_long.num_tokens
    total = sources[0]["tokens"] + sources[1]["tokens"]
    assert sources[1]["token_share"] == pytest.approx(one_long.num_tokens / total)
    assert sources[0]["row_share"] == pytest.approx(8 / 9)  # rows say the opposite of tokens
    assert sources[1]["trained_share"] > 0.5
    at_80_columns(monkeypatch)
    people = run("stats", str(spec), "-t", tokenizer)
    assert "Share per source by tokens (after the cut)" in people.output
    assert max(map(len, people.output.splitlines())) <= 80
    assert "The cut reaches 0 conversations" in people.output


def test_stats_without_a_tokenizer_prints_no_token_figures(chats):
    result = run("stats", str(chats), "--json")
    assert json.loads(result.output)["tokens"] is None
    assert "Tokens per conversation" not in run("stats", str(chats)).output


# ---------------------------------------------------------------- export --format tokens

TOKENS_SPEC = """
mode: {mode}
seed: 7
tasks:
  - {{task: smoltalk, split: train}}
  - {{task: gsm8k, subset: main, split: train, stop: 9, repeat: 2}}
  - {{task: customjson, path: chats.jsonl}}
  - {{task: spellingbee, split: train, size: 6, word_list: {words}}}
"""


@pytest.fixture
def token_mixture(tmp_path, chats):
    import hubdata

    hubdata.write_smoltalk(tmp_path)
    hubdata.write_gsm8k(tmp_path)

    def spec(mode: str = "mixture") -> Path:
        text = TOKENS_SPEC.format(mode=mode, words=EXAMPLES / "words.txt")
        return write_spec(tmp_path, text, f"{mode}.yaml")

    return spec


def read_parquet(path: Path) -> list[dict]:
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pylist()


@pytest.mark.parametrize("mode", ["mixture", "sequence"])
def test_token_export_rows_are_render_of_the_plan_in_its_order(
    tmp_path, token_mixture, tokenizer_folders, mode
):
    from taskcli.mixing.plan import build_plan
    from taskcli.mixing.spec import load_spec

    spec = token_mixture(mode)
    tokenizer = str(tokenizer_folders["nanochat"])
    out = tmp_path / "train.parquet"
    args = ["export", str(spec), "--data-dir", str(tmp_path), "-f", "tokens", "-t", tokenizer]
    result = run(*args, "-o", str(out), "--max-tokens", "64")
    assert result.exit_code == 0, result.output
    rows = read_parquet(out)
    plan = build_plan(load_spec(spec), data_dir=tmp_path)
    loaded = load_tokenizer(tokenizer)
    assert len(rows) == plan.total
    owners, indices = plan.placement(range(plan.total))
    for position, row in enumerate(rows):
        expected = render(plan.mixture[position], loaded, 64)
        assert (row["ids"], row["mask"]) == (expected.ids, expected.mask), position
        entry = plan.spec.entries[owners[position]]
        assert (row["entry"], row["task"], row["index"]) == (
            entry.number,
            entry.task,
            indices[position],
        )
        assert (row["subset"], row["split"]) == (entry.subset, entry.split)
    assert any(len(row["ids"]) == 64 for row in rows)  # the cut reached some
    # shards are contiguous parts of the same rows
    parts = []
    for k in (1, 2, 3):
        part = tmp_path / f"part{k}.parquet"
        assert run(*args, "-o", str(part), "--max-tokens", "64", "--shard", f"{k}/3").exit_code == 0
        parts += read_parquet(part)
    assert parts == rows


def test_token_export_in_many_runs_is_the_same_rows(
    tmp_path, token_mixture, tokenizer_folders, monkeypatch
):
    """Runs of 3 rows: every run is its own row group, taken apart while the one before is
    encoded in the writer's thread; the rows and their order must not change."""
    import pyarrow.parquet as pq

    from taskcli.export import order

    tokenizer = str(tokenizer_folders["nanochat"])
    args = ["export", str(token_mixture()), "--data-dir", str(tmp_path), "-f", "tokens"]
    whole, runs = tmp_path / "whole.parquet", tmp_path / "runs.parquet"
    assert run(*args, "-t", tokenizer, "-o", str(whole)).exit_code == 0
    monkeypatch.setattr(order, "BUCKET_ROWS", 3)
    assert run(*args, "-t", tokenizer, "-o", str(runs)).exit_code == 0
    assert read_parquet(runs) == read_parquet(whole)
    written = pq.ParquetFile(runs)
    assert written.metadata.num_row_groups == -(-written.metadata.num_rows // 3) > 3
    schema = written.schema_arrow
    for name, kind in (("ids", "int32"), ("mask", "int8")):  # never null, nor any item
        field = schema.field(name)
        assert not field.nullable and not field.type.value_field.nullable
        assert str(field.type.value_type) == kind


def test_token_export_is_atomic_reproducible_and_recorded(
    tmp_path, token_mixture, tokenizer_folders
):
    import hashlib

    tokenizer = str(tokenizer_folders["nanochat"])
    out = tmp_path / "train.parquet"
    args = ["export", str(token_mixture()), "--data-dir", str(tmp_path), "-f", "tokens"]
    assert run(*args, "-t", tokenizer, "-o", str(out)).exit_code == 0
    first = out.read_bytes()
    assert run(*args, "-t", tokenizer, "-o", str(out)).exit_code == 0
    assert out.read_bytes() == first  # a rerun is byte-identical
    manifest = json.loads((tmp_path / "train.parquet.manifest.json").read_text())
    described = manifest["tokens"]["tokenizer"]
    pickled = Path(tokenizer) / "tokenizer.pkl"
    assert described["sha256"] == hashlib.sha256(pickled.read_bytes()).hexdigest()
    assert (
        described["special_ids"]["<|assistant_end|>"]
        == load_tokenizer(tokenizer).special_ids["<|assistant_end|>"]
    )
    assert described["vocab_size"] > 256
    assert manifest["tokens"]["max_tokens"] == 2048
    assert manifest["output"]["sha256"] == hashlib.sha256(first).hexdigest()
    assert manifest["format"] == "tokens" and manifest["output"]["kind"] == "parquet"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_token_export_loads_in_datasets(tmp_path, token_mixture, tokenizer_folders):
    import datasets

    out = tmp_path / "train.parquet"
    tokenizer = str(tokenizer_folders["bytes"])
    args = ["export", str(token_mixture()), "--data-dir", str(tmp_path), "-f", "tokens"]
    assert run(*args, "-t", tokenizer, "-o", str(out)).exit_code == 0
    loaded = datasets.load_dataset(
        "parquet", data_files=str(out), split="train", cache_dir=str(tmp_path / "cache")
    )
    assert loaded.num_rows == len(read_parquet(out))
    first = loaded[0]
    assert len(first["ids"]) == len(first["mask"]) and first["ids"][0] == BOS


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["-o", "OUT.parquet"], "none was given"),  # no tokenizer
        (["-o", "-", "-t", "TOK"], "Parquet only"),
        (["-o", "OUT.jsonl", "-t", "TOK"], "Parquet only"),
    ],
)
def test_token_export_refuses_what_it_cannot_do(
    tmp_path, chats, tokenizer_folders, monkeypatch, extra, message
):
    monkeypatch.delenv("TASKCLI_TOKENIZER", raising=False)
    tokenizer = str(tokenizer_folders["bytes"])
    extra = [
        str(tmp_path / a[4:]) if a.startswith("OUT.") else tokenizer if a == "TOK" else a
        for a in extra
    ]
    result = run("export", str(chats), "-f", "tokens", *extra)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
    assert not list(tmp_path.glob("OUT*")) and not list(tmp_path.glob(".*"))
