"""Chat templates through the command line: --chat-template and --train-on on every command that
renders, the mask rule named where tokens are shown, conversations that train nothing counted
(stats) and judged (validate's template-error and trains-nothing), packed rows padded, and
browse's token pane.

The templates and the tokenizer are tests/test_chat_template.py's: written by the tests, the
tokenizer trained locally; nothing is fetched.
"""

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import taskcli
from taskcli.cli import app
from tests.test_chat_template import (
    CHATML,
    CHATML_GENERATION,
    chat,
    chat_tokenizer_json,  # noqa: F401 (a fixture)
    model_folder,
)

# Generation blocks around system messages only: a chat without one trains nothing.
SYSTEM_ONLY = CHATML_GENERATION.replace("== 'assistant'", "== 'system'")
# Drops each content's first character: the assistant rule cannot find "Xbye" as written.
DROPS_A_CHARACTER = CHATML.replace("message['content']", "message['content'][1:]")
# Refuses system messages, as Gemma's and Mistral's templates do.
NO_SYSTEM = (
    "{%- if messages[0]['role'] == 'system' %}\n"
    "{{- raise_exception('System role not supported') }}\n"
    "{%- endif %}\n" + CHATML_GENERATION
)


def invoke(*args):
    return CliRunner().invoke(app, [str(arg) for arg in args])


def write_chats(path, *conversations):
    path.write_text("".join(json.dumps(c) + "\n" for c in conversations))
    return path


@pytest.fixture
def files(chat_tokenizer_json, tmp_path):  # noqa: F811 (the fixture imported above)
    """A tokenizer.json without a config, template files beside it, model folders, and data."""
    folder = tmp_path / "tok"
    folder.mkdir()
    tokenizer = folder / "tokenizer.json"
    tokenizer.write_bytes(chat_tokenizer_json.read_bytes())
    made = {"tokenizer": tokenizer, "data": write_chats(tmp_path / "chats.jsonl", chat("q", "a"))}
    for name, template in (
        ("chatml", CHATML),
        ("generation", CHATML_GENERATION),
        ("system-only", SYSTEM_ONLY),
        ("drops", DROPS_A_CHARACTER),
        ("no-system", NO_SYSTEM),
    ):
        made[name] = tmp_path / f"{name}.jinja"
        made[name].write_text(template)
    made["model"] = model_folder(tmp_path / "model", chat_tokenizer_json, CHATML_GENERATION)
    return made


def lines_of(text):
    return [line for line in text.splitlines() if line.strip()]


# ---------------------------------------------------------------- the options


COMMANDS = {
    "show": ["show", "{data}"],
    "stats": ["stats", "{data}"],
    "export": ["export", "{data}", "-f", "tokens", "-o", "{out}"],
    "pack": ["pack", "{data}", "--max-seq-len", "64", "--device-batch-size", "1"],
    "validate": ["validate", "{data}"],
    "browse": ["browse", "{data}"],
}


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(
    "options",
    [["--chat-template", "{chatml}"], ["--train-on", "all"]],
    ids=["chat-template", "train-on"],
)
def test_template_options_without_a_tokenizer_are_one_usage_error(
    files, tmp_path, monkeypatch, command, options
):
    monkeypatch.delenv("TASKCLI_TOKENIZER", raising=False)
    out = tmp_path / "out.parquet"
    args = [a.format(**files, out=out) for a in COMMANDS[command] + options]
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    flag = options[0]
    assert lines_of(result.stderr) == [
        f"Error: {flag} is about rendering with a tokenizer, and none was given: add "
        "--tokenizer SPEC (or set TASKCLI_TOKENIZER)."
    ]
    assert not out.exists()


def test_the_tokenizer_may_come_from_the_environment(files, monkeypatch):
    monkeypatch.setenv("TASKCLI_TOKENIZER", str(files["tokenizer"]))
    result = invoke("show", files["data"], "--chat-template", files["chatml"], "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["rule"] == "assistant"  # --chat-template implies --tokens


def test_a_template_file_beside_a_tokenizer_json_renders_with_the_rule_it_names(files):
    args = ["show", files["data"], "-t", files["tokenizer"], "--chat-template"]
    plain = invoke(*args, files["chatml"])
    assert plain.exit_code == 0, plain.output
    assert "2 trained · 0 cut off · mask: assistant content" in plain.stdout  # "a", <|im_end|>
    generation = invoke(*args, files["generation"])
    assert "2 trained · 0 cut off · mask: generation blocks" in generation.stdout
    everything = invoke(*args, files["chatml"], "--train-on", "all", "--json")
    row = json.loads(everything.stdout)
    assert row["rule"] == "all" and set(row["mask"]) == {1}
    assert (row["missed"], row["trains_nothing"]) == (0, False)
    assert everything.stderr == ""


def test_train_on_assistant_for_a_template_with_generation_blocks_is_a_note(files):
    result = invoke("show", files["data"], "-t", files["model"], "--train-on", "assistant")
    assert result.exit_code == 0, result.output
    assert "mask: generation blocks" in result.stdout
    (note,) = lines_of(result.stderr)
    assert note.startswith("note: chat template ") and "{% generation %} blocks" in note
    assert "--train-on assistant finds assistant contents only in templates without" in note


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (
            ["-t", "{model}", "--train-on", "everything"],
            [
                "Error: unknown train_on 'everything': expected assistant or all",
                "Hint: Set it with --train-on.",
            ],
        ),
        (
            ["-t", "{tokenizer}", "--train-on", "all"],
            [
                "Error: tokenizer {tokenizer}: train_on chooses a chat template's mask, and it "
                "has none",
                "Hint: Give a Hugging Face model folder, or a chat template file (set with "
                "--chat-template).",
            ],
        ),
        (
            ["-t", "{tokenizer}", "--chat-template", "{tokenizer}.jinja"],
            [
                "Error: chat template {tokenizer}.jinja: no such file",
                "Hint: Set it with --chat-template.",
            ],
        ),
    ],
    ids=["unknown-rule", "no-template", "missing-file"],
)
def test_wrong_template_options_name_their_flag(files, options, expected):
    result = invoke("show", files["data"], *[o.format(**files) for o in options])
    assert result.exit_code == 2
    assert lines_of(result.stderr) == [line.format(**files) for line in expected]


def test_template_options_are_only_for_formats_that_render(files, tmp_path):
    out = tmp_path / "out.jsonl"
    args = ["export", files["data"], "-o", out, "-t", files["tokenizer"]]
    result = invoke(*args, "--chat-template", files["chatml"])
    assert result.exit_code == 2
    assert "--chat-template: only for --format tokens or packed" in result.stderr
    assert not out.exists()


# ---------------------------------------------------------------- show


def test_show_warns_of_a_conversation_that_trains_nothing(files, tmp_path):
    data = write_chats(tmp_path / "two.jsonl", chat("q", "a"), chat("q", "a", system="s"))
    args = ["show", data, "-n", "2", "-t", files["tokenizer"], "--chat-template"]
    result = invoke(*args, files["system-only"])
    assert result.exit_code == 0, result.output
    assert lines_of(result.stderr) == [
        "warning: example 0: the chat template trains none of its tokens (mask: generation "
        "blocks): in training, it would teach the model nothing."
    ]
    assert "0 trained · 0 cut off · mask: generation blocks" in result.stdout
    rows = [
        json.loads(line)
        for line in invoke(*args, files["system-only"], "--json").stdout.splitlines()
    ]
    assert [row["trains_nothing"] for row in rows] == [True, False]
    assert [row["rule"] for row in rows] == ["generation", "generation"]


def test_show_warns_of_nothing_when_only_the_cut_leaves_nothing_trained(files):
    args = ["show", files["data"], "-t", files["model"], "--max-tokens", "3"]
    result = invoke(*args)
    assert "0 trained · " in result.stdout and "cut off at 3" in result.stdout
    assert result.stderr == ""


def test_show_notes_assistant_contents_the_rule_did_not_find(files, tmp_path):
    data = write_chats(tmp_path / "x.jsonl", chat("q", " hello", "q2", "Xbye"))
    args = ["show", data, "-t", files["tokenizer"], "--chat-template", files["drops"]]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    (note,) = lines_of(result.stderr)
    assert note.startswith(
        "note: example 0: 1 assistant message's content was not found in the text the "
        "template wrote (it changes them), so not trained"
    )
    assert json.loads(invoke(*args, "--json").stdout)["missed"] == 1


# ---------------------------------------------------------------- stats


def test_stats_names_the_template_and_counts_what_trains_nothing_before_the_cut(files, tmp_path):
    with_system = [chat(f"q{i}", f"a{i}", system="s") for i in range(300)]
    without = [chat(f"question {i}", f"answer {i}") for i in range(300)]
    write_chats(tmp_path / "with.jsonl", *with_system)
    write_chats(tmp_path / "without.jsonl", *without)
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "tasks:\n  - {task: customjson, path: with.jsonl}\n"
        "  - {task: customjson, path: without.jsonl, repeat: 2}\n"
    )
    # 300 rows a source: rendered in worker processes. The cut at 4 tokens leaves nothing
    # trained in any row, yet only the rows whose whole rendering trains nothing are counted.
    args = ["stats", spec, "-t", files["tokenizer"], "--chat-template", files["system-only"]]
    result = invoke(*args, "--max-tokens", "4", "--json")
    assert result.exit_code == 0, result.output
    tokens = json.loads(result.stdout)["tokens"]
    assert tokens["trains_nothing"] == 600
    assert tokens["trained"]["max"] == 0
    sources = json.loads(result.stdout)["sources"]
    assert [source["trains_nothing"] for source in sources] == [0, 600]
    recorded = tokens["tokenizer"]["chat_template"]
    sha256 = hashlib.sha256(SYSTEM_ONLY.encode()).hexdigest()
    assert (recorded["sha256"], recorded["rule"]) == (sha256, "generation")

    report = invoke(*args).stdout
    said = " ".join(report.split())
    assert "\nchat template " in report and "system-only.jinja" in said.replace(" ", "")
    assert f"(sha256 {sha256[:12]}) · mask: generation blocks" in said
    assert (
        "600 conversations (66.7%) train nothing: no token of theirs is trained, even before "
        "the cut (600 from tasks[1] (customjson))." in said
    )


def test_stats_with_nanochats_render_counts_conversations_that_train_nothing(tokenizer_folders):
    result = invoke(
        "stats", "examples/identity.jsonl", "-t", tokenizer_folders["nanochat"], "--json"
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["tokens"]["trains_nothing"] == 0
    report = invoke("stats", "examples/identity.jsonl", "-t", tokenizer_folders["nanochat"])
    assert "train nothing" not in report.stdout  # said only of templates, or when some do


# ---------------------------------------------------------------- validate


def test_validate_renders_rows_through_the_template(files, tmp_path):
    data = write_chats(
        tmp_path / "data.jsonl",
        chat("q", "a"),
        chat("q", "a", system="s"),  # refused
        chat("q", "a"),  # a duplicate, and rendered all the same
        {"messages": [{"role": "user", "content": "q"}]},  # no-exchange: never rendered
    )
    rejects, valid = tmp_path / "rejects.jsonl", tmp_path / "valid.jsonl"
    args = ["validate", data, "-t", files["tokenizer"], "--chat-template", files["no-system"]]
    result = invoke(*args, "--rejects", rejects, "--output-valid", valid)
    assert result.exit_code == 1, result.output
    first, summary, *_ = lines_of(result.stdout)
    sha256 = hashlib.sha256(NO_SYSTEM.encode()).hexdigest()[:12]
    assert first == (
        f"rows rendered through chat template {files['no-system']} (sha256 {sha256}) · mask: "
        "generation blocks"
    )
    assert summary == f"✗ {data}: 4 conversations (2 invalid), 2 errors, 1 warning  invalid"
    assert (
        f"{data}:2: [template-error] chat template {files['no-system']}, line 2: the template "
        "raised an error: System role not supported" in result.stdout
    )
    assert [json.loads(line)["line"] for line in rejects.read_text().splitlines()] == [2, 4]
    assert len(valid.read_text().splitlines()) == 2

    nothing = ["validate", data, "-t", files["tokenizer"], "--chat-template"]
    code, document = json_of(invoke(*nothing, files["system-only"], "--json"))
    (entry,) = document["files"]
    assert code == 1  # no-exchange
    assert [(p["rule"], p["line"]) for p in entry["warnings"]] == [
        ("trains-nothing", 1),
        ("trains-nothing", 3),
        ("duplicate", 3),
    ]
    assert entry["warnings"][0]["message"] == (
        "the chat template trains none of its tokens (mask: generation blocks)"
    )


def json_of(result):
    assert "Traceback" not in result.output
    return result.exit_code, json.loads(result.stdout)


def test_validate_renders_parquet_rows_found_fine_in_bulk(files, tmp_path):
    """Rows that Arrow shows to break no rule are spared their own check, not the template."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [chat("q", "a")["messages"]] * 3 + [chat("q", "a", system="s")["messages"]]
    path = tmp_path / "data.parquet"
    pq.write_table(pa.table({"messages": rows}), path)
    args = ["validate", path, "-t", files["model"], "--json"]
    assert json_of(invoke(*args))[0] == 0
    refusing = model_folder(tmp_path / "refusing", files["tokenizer"], NO_SYSTEM)
    code, document = json_of(invoke("validate", path, "-t", refusing, "--json"))
    assert code == 1
    assert [(p["row"], p["rule"]) for p in document["files"][0]["errors"]] == [
        (3, "template-error")
    ]


def test_validate_renders_only_when_asked(files, tmp_path, monkeypatch):
    data = write_chats(tmp_path / "data.jsonl", chat("q", "a", system="s"))
    refusing = model_folder(tmp_path / "refusing", files["tokenizer"], NO_SYSTEM)
    monkeypatch.setenv("TASKCLI_TOKENIZER", str(refusing))  # kept for export and stats
    assert invoke("validate", data).exit_code == 0
    assert invoke("validate", data, "-t", refusing).exit_code == 1
    assert invoke("validate", data, "--train-on", "all").exit_code == 1  # it names the template


def test_validate_without_a_tokenizer_imports_none_of_the_rendering(tmp_path):
    data = write_chats(tmp_path / "data.jsonl", chat("q", "a"))
    code = (
        "import sys\nfrom taskcli.cli import main\n"
        f"sys.argv = ['taskcli', 'validate', {str(data)!r}]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "loaded = [m for m in ('tokenizers', 'tiktoken', 'jinja2', 'numpy', "
        "'taskcli.training.tokenizer') if m in sys.modules]\n"
        "print('LOADED', loaded, file=sys.stderr)"
    )
    env = {"TASKCLI_TOKENIZER": "tiktoken:cl100k_base"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert "LOADED []" in done.stderr


def test_validate_with_a_tokenizer_without_a_template_says_there_is_nothing_to_check(
    tokenizer_folders, tmp_path
):
    data = write_chats(tmp_path / "data.jsonl", chat("q", "a"))
    result = invoke("validate", data, "-t", tokenizer_folders["nanochat"])
    assert result.exit_code == 2
    assert lines_of(result.stderr)[0].startswith(
        f"Error: tokenizer {tokenizer_folders['nanochat']} renders with nanochat's chat tokens, "
        "which train every conversation validate accepts"
    )


# ---------------------------------------------------------------- export and pack


def test_export_records_the_template_file_and_rule_it_was_given(files, tmp_path):
    import pyarrow.parquet as pq

    out = tmp_path / "out.parquet"
    args = ["export", files["data"], "-f", "tokens", "-o", out, "-t", files["tokenizer"]]
    result = invoke(*args, "--chat-template", files["chatml"], "--train-on", "all")
    assert result.exit_code == 0, result.output
    (row,) = pq.read_table(out).to_pylist()
    assert set(row["mask"]) == {1}
    manifest = json.loads((tmp_path / "out.parquet.manifest.json").read_text())
    recorded = manifest["tokens"]["tokenizer"]["chat_template"]
    assert recorded["name"] == str(files["chatml"])
    assert recorded["sha256"] == hashlib.sha256(CHATML.encode()).hexdigest()
    assert recorded["rule"] == "all"


def test_packed_rows_through_a_template_are_padded_with_its_own_token(files, tmp_path):
    import pyarrow.parquet as pq

    from taskcli.training.tokenizer import load_tokenizer

    data = write_chats(tmp_path / "many.jsonl", *[chat(f"q{i}", f"a{i}") for i in range(20)])
    sizes = ["--max-seq-len", "63", "--device-batch-size", "1"]
    pad = load_tokenizer(str(files["model"])).special_ids["<|endoftext|>"]  # its pad_token
    shown = invoke("pack", data, "-t", files["model"], *sizes, "--row", "0", "--tokens")
    assert shown.exit_code == 0, shown.output
    assert "<|endoftext|> × " in shown.stdout and "masked: their targets are -1" in shown.stdout
    row = json.loads(
        invoke(
            "pack", data, "-t", files["model"], *sizes, "--row", "0", "--tokens", "--json"
        ).stdout
    )
    padding = row["capacity"] - row["content_len"]
    assert padding > 0 and row["ids"][-padding:] == [pad] * padding
    out = tmp_path / "packed.parquet"
    written = invoke("export", data, "-f", "packed", "-o", out, "-t", files["model"], *sizes)
    assert written.exit_code == 0, written.output
    first = pq.read_table(out).to_pylist()[0]
    assert first["ids"][first["content_len"] :] == [pad] * (64 - first["content_len"])

    args = ["pack", data, "-t", files["tokenizer"], "--chat-template", files["generation"]]
    bare = invoke(*args, *sizes, "--row", "0", "--tokens")  # no config: no token to pad with
    assert bare.exit_code == 2
    assert lines_of(bare.stderr)[0].startswith(
        f"Error: tokenizer {files['tokenizer']}: no token to pad packed rows with"
    )


# ---------------------------------------------------------------- browse and the library


def test_browse_names_the_mask_rule_in_the_token_pane(files, monkeypatch):
    from taskcli import cli
    from taskcli.ui.browse import app as browse
    from tests.test_browse import drive

    opened = []
    monkeypatch.setattr(browse, "run", opened.append)
    monkeypatch.setattr(cli, "_is_terminal", lambda: True)
    args = ["browse", files["data"], "-t", files["tokenizer"], "--chat-template"]
    result = invoke(*args, files["chatml"], "--train-on", "all")
    assert result.exit_code == 0, result.output
    (browser,) = opened
    app = drive(browser, ["t"], size=(120, 24))
    assert "mask: all" in app.last_screen and "<|im_start|>" in app.last_screen


def test_template_rendering_is_public():
    from taskcli.training.chat_template import TemplateRendering

    assert "TemplateRendering" in taskcli.__all__
    assert taskcli.TemplateRendering is TemplateRendering
    assert issubclass(TemplateRendering, taskcli.Rendering)


# ---------------------------------------------------------------- the bundled model folder


def test_the_bundled_model_folder_is_what_its_script_writes(tmp_path):
    """examples/chatml-model is reproducible: the script writes the same template and config,
    and a tokenizer that gives every bundled conversation the same tokens (its JSON's bytes may
    differ between versions of tokenizers). transformers renders it as taskcli does."""
    import runpy

    from transformers import PreTrainedTokenizerFast

    from taskcli.targets import open_target
    from taskcli.training.render import render
    from taskcli.training.tokenizer import load_tokenizer

    root = Path(__file__).resolve().parent.parent
    bundled = root / "examples" / "chatml-model"
    runpy.run_path(str(root / "scripts" / "make_example_model.py"))["write_model"](tmp_path)
    for name in ("chat_template.jinja", "tokenizer_config.json"):
        assert (tmp_path / name).read_bytes() == (bundled / name).read_bytes(), name
    made, shipped = load_tokenizer(str(tmp_path)), load_tokenizer(str(bundled))
    hf = PreTrainedTokenizerFast.from_pretrained(bundled)
    task = open_target(str(root / "examples" / "identity.jsonl")).sources[0].task
    for index in range(len(task)):
        conversation = task.get_example(index)
        rendering = render(conversation, shipped, 0)
        assert tuple(rendering) == tuple(render(conversation, made, 0))
        assert rendering.rule == "assistant" and rendering.num_trained > 0
        messages = conversation["messages"]
        if all(isinstance(message["content"], str) for message in messages):
            assert rendering.ids == hf.apply_chat_template(messages)["input_ids"]
