"""`taskcli validate`: every rule on the right line, through the CLI and the library.

The corpus in tests/data/bad/ holds one hand-made file per rule id, named after it; each is
checked through the CLI for the rule, its lines and the exit code. Property tests generate valid
conversations, break them in one known way, and check the break is reported where it was made.
"""

import gzip
import io
import json
import os
import tracemalloc
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from taskcli.cli import app
from taskcli.conversation import RULES
from taskcli.errors import UsageError
from taskcli.files.reader import read_lines
from taskcli.files.rules import FirstSeen, check_file, check_lines
from taskcli.tasks.customjson import CustomJSON

ROOT = Path(__file__).resolve().parent.parent
BAD = Path(__file__).resolve().parent / "data" / "bad"
runner = CliRunner()

# rule id -> the lines of tests/data/bad/<rule>.jsonl (.jsonl.gz for `unreadable-file`, a cut
# one) where it must be reported (and only there).
EXPECTED_LINES = {
    "line-too-long": [2],
    "invalid-utf8": [2],
    "invalid-json": [2, 3, 4, 5, 6],
    "not-a-conversation": [2, 3, 4, 5],
    "messages-not-list": [2],
    "message-not-object": [2],
    "missing-role": [2],
    "missing-content": [2],
    "unknown-role": [2],
    "misplaced-system": [2],
    "system-not-allowed": [2],
    "first-not-user": [2],
    "roles-not-alternating": [3],
    "no-exchange": [2, 3],
    "bad-content": [2, 3, 4],
    "bad-part": [2, 3],
    "nul-character": [2],
    "bad-tool-call": [2, 3],
    "mixed-formats": [2],
    "empty-file": [1],
    "unreadable-file": [1],
    "bom": [1],
    "crlf": [2],
    "mixed-shapes": [2],
    "empty-content": [2],
    "unknown-key": [2],
    "ends-with-user": [2],
    "duplicate": [3],
    "special-token": [2],
    "template-error": [2],
    "trains-nothing": [2],
}
# The rules judged only on rows rendered through a chat template (validate --tokenizer): their
# files are checked with the suite's small tokenizer.json and this template, written for them.
TEMPLATE_RULES = ("template-error", "trains-nothing")
TEMPLATE = Path(__file__).resolve().parent / "data" / "templates" / "no-system-thinking.jinja"

USER = {"role": "user", "content": "Hi"}
ASSISTANT = {"role": "assistant", "content": "Hello!"}


def run(*args, input=None):
    return runner.invoke(app, ["validate", *map(str, args)], input=input)


def run_json(*args, input=None) -> tuple[int, dict]:
    result = run("--json", *args, input=input)
    assert "Traceback" not in result.output
    return result.exit_code, json.loads(result.stdout)


def write_lines(path: Path, *lines) -> Path:
    path.write_bytes(
        b"".join((x if isinstance(x, bytes) else orjson.dumps(x)) + b"\n" for x in lines)
    )
    return path


def report_of(data: bytes, **options):
    return check_lines(read_lines(io.BytesIO(data)), "test.jsonl", **options)


def found(report) -> set[tuple[str, int]]:
    return {(p.rule, p.line) for p in report.errors + report.warnings}


# --- the corpus: one bad file per rule, checked through the CLI ---------------------------------


def test_the_corpus_has_one_file_per_rule():
    named = {path.name.split(".")[0] for path in BAD.iterdir()}
    assert named == set(RULES) == set(EXPECTED_LINES)


@pytest.mark.parametrize("rule", sorted(RULES))
def test_each_bad_file_reports_its_rule_on_its_lines(rule, request):
    (path,) = BAD.glob(f"{rule}.*")
    options = {
        "system-not-allowed": ["--no-system"],
        "line-too-long": ["--max-line-bytes", "200"],  # the default (16 MiB) is too big a file
    }.get(rule, [])
    if rule in TEMPLATE_RULES:
        tokenizer = request.getfixturevalue("tokenizer_folders")["hf"]
        options = ["--tokenizer", tokenizer, "--chat-template", TEMPLATE]
    code, document = run_json(*options, path)
    (entry,) = document["files"]
    problems = entry["errors"] + entry["warnings"]
    assert {(p["rule"], p["line"]) for p in problems} == {
        (rule, line) for line in EXPECTED_LINES[rule]
    }
    is_error = RULES[rule][0] == "error"
    assert code == (1 if is_error else 0)
    assert document["valid"] is entry["valid"] is (not is_error)
    listed = entry["errors"] if is_error else entry["warnings"]
    assert [p["line"] for p in listed] == EXPECTED_LINES[rule]

    human = run(*options, path)
    assert human.exit_code == code
    assert f"{path}:{EXPECTED_LINES[rule][0]}: [{rule}]" in human.stdout
    if not is_error:
        assert run("--strict", *options, path).exit_code == 1


def test_every_rule_is_documented_with_a_bad_example_and_a_fix():
    text = (ROOT / "docs" / "rules.md").read_text()
    sections = text.split("\n### ")[1:]
    documented = {section.split("`")[1]: section for section in sections}
    assert set(documented) == set(RULES)
    for rule, (severity, _) in RULES.items():
        heading = "## Errors" if severity == "error" else "## Warnings"
        section_start = text.index(f"### `{rule}`")
        assert text.rindex("\n## ", 0, section_start) == text.index(f"\n{heading}\n")
        assert "\nBad" in documented[rule] and "\nFix" in documented[rule], rule


# --- what a user sees -----------------------------------------------------------------------


def test_the_bundled_example_is_valid_without_warnings():
    path = ROOT / "examples" / "identity.jsonl"
    result = run("--strict", path)
    assert result.exit_code == 0, result.output
    assert f"✓ {path}: 36 conversations, 0 errors, 0 warnings" in result.stdout


def test_json_output_has_exactly_the_documented_shape(tmp_path):
    path = write_lines(tmp_path / "data.jsonl", [USER, ASSISTANT], [USER, USER], [USER])
    code, document = run_json(path)
    assert code == 1
    assert set(document) == {"valid", "files"}
    (entry,) = document["files"]
    assert set(entry) == {"path", "valid", "conversations", "errors", "warnings"}
    assert entry["path"] == str(path) and entry["conversations"] == 3
    assert entry["errors"][0] == {
        "line": 2,
        "rule": "roles-not-alternating",
        "message": "'user' follows 'user'; user and assistant must alternate",
        "path": "messages[1].role",
    }
    for problem in entry["errors"] + entry["warnings"]:
        assert set(problem) == {"line", "rule", "message", "path"}


def test_human_output_groups_by_rule_and_caps_only_what_is_printed(tmp_path):
    lines = [[USER, {"role": "user", "content": f"again {i}"}] for i in range(12)]
    path = write_lines(tmp_path / "many.jsonl", *lines)
    result = run("--max-errors", 3, path)
    assert result.exit_code == 1
    out = result.stdout
    assert "12 conversations (12 invalid), 24 errors, 0 warnings" in out
    assert "roles-not-alternating: 12 errors" in out and "no-exchange: 12 errors" in out
    assert f"{path}:1: [roles-not-alternating] 'user' follows 'user'" in out
    assert "(at messages[1].role)" in out
    assert f"{path}:3: [roles-not-alternating]" in out
    assert f"{path}:4: [roles-not-alternating]" not in out
    assert "… and 9 more" in out
    assert "--json" in out and "--max-errors" in out  # the hint how to see all
    _, document = run_json("--max-errors", 3, path)
    assert len(document["files"][0]["errors"]) == 24  # --json lists them all


def test_strict_makes_warnings_fail(tmp_path):
    path = write_lines(tmp_path / "dup.jsonl", [USER, ASSISTANT], [USER, ASSISTANT])
    assert run(path).exit_code == 0
    result = run("--strict", path)
    assert result.exit_code == 1
    assert "invalid" in result.stdout
    code, document = run_json("--strict", path)
    assert code == 1 and document["valid"] is False


def test_no_system_turns_system_messages_into_errors(tmp_path):
    system = {"role": "system", "content": "Be brief."}
    path = write_lines(tmp_path / "system.jsonl", [system, USER, ASSISTANT])
    assert run(path).exit_code == 0
    code, document = run_json("--no-system", path)
    assert code == 1
    assert document["files"][0]["errors"][0]["rule"] == "system-not-allowed"


def test_several_files_each_get_a_verdict(tmp_path):
    good = write_lines(tmp_path / "good.jsonl", [USER, ASSISTANT])
    bad = write_lines(tmp_path / "bad.jsonl", [USER])
    result = run(good, bad)
    assert result.exit_code == 1
    assert f"{good}: 1 conversation, 0 errors" in result.stdout
    assert f"{bad}: 1 conversation (1 invalid), 1 error" in result.stdout
    assert "2 files: 1 valid, 1 invalid" in result.stdout
    _, document = run_json(good, bad)
    assert [f["valid"] for f in document["files"]] == [True, False]
    assert run(good, good).exit_code == 0


def test_standard_input(tmp_path):
    data = orjson.dumps([USER, ASSISTANT]) + b"\n" + orjson.dumps([USER]) + b"\n"
    code, document = run_json("-", input=data)
    assert code == 1
    assert document["files"][0]["path"] == "<stdin>"
    assert [(p["rule"], p["line"]) for p in document["files"][0]["errors"]] == [("no-exchange", 2)]
    assert run("-", input=orjson.dumps([USER, ASSISTANT])).exit_code == 0


def test_gzip_files_are_read_transparently(tmp_path):
    path = tmp_path / "data.jsonl.gz"
    path.write_bytes(gzip.compress(orjson.dumps([USER, ASSISTANT]) + b"\n" + b"[1]\n"))
    code, document = run_json(path)
    assert code == 1
    assert document["files"][0]["errors"][0]["line"] == 2


def test_a_truncated_gzip_file_is_a_clear_error(tmp_path):
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(gzip.compress(orjson.dumps([USER, ASSISTANT]) * 1000)[:-20])
    result = run(path)
    assert result.exit_code == 1
    assert f"{path}:1: [unreadable-file] cannot be read to the end" in result.stdout
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda tmp: tmp / "missing.jsonl", "no such file"),
        (lambda tmp: tmp, "is a folder"),
        (lambda tmp: write_lines(tmp / "file.jsonl", [USER, ASSISTANT]) / "inside", "cannot open"),
    ],
)
def test_unreadable_inputs_are_usage_errors(tmp_path, make, message):
    result = run(make(tmp_path))
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_bad_options_are_usage_errors(tmp_path):
    path = write_lines(tmp_path / "ok.jsonl", [USER, ASSISTANT])
    assert run("--max-errors", -1, path).exit_code == 2
    assert run("--frobnicate", path).exit_code == 2
    assert run().exit_code == 2


def test_output_valid_and_rejects(tmp_path):
    source = tmp_path / "mixed.jsonl"
    source.write_bytes(
        b"\xef\xbb\xbf"
        + orjson.dumps([USER, ASSISTANT])
        + b"\r\n\n"
        + orjson.dumps({"messages": [USER, ASSISTANT], "id": 7, "source": "hand"})
        + b"\n"
        + b'[{"role": "user", "content": "caf\xe9"}]\n'
        + orjson.dumps([USER, USER])
        + b"\n"
        + orjson.dumps([USER, ASSISTANT])
    )
    before = source.read_bytes()
    clean, rejects = tmp_path / "clean.jsonl", tmp_path / "rejects.jsonl"
    result = run(source, "--output-valid", clean, "--rejects", rejects)
    assert result.exit_code == 1
    assert source.read_bytes() == before  # the input is never modified

    written = [json.loads(line) for line in clean.read_text().splitlines()]
    assert written == [
        {"messages": [USER, ASSISTANT]},
        {"messages": [USER, ASSISTANT], "id": 7, "source": "hand"},
        {"messages": [USER, ASSISTANT]},  # a duplicate is a warning: the line stays
    ]
    code, document = run_json(clean)
    assert code == 0
    assert [p["rule"] for p in document["files"][0]["warnings"]] == ["duplicate"]
    assert len(CustomJSON(path=clean)) == 3

    rejected = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert [(r["file"], r["line"]) for r in rejected] == [(str(source), 4), (str(source), 5)]
    assert rejected[0]["errors"][0]["rule"] == "invalid-utf8"
    assert rejected[0]["raw"] == '[{"role": "user", "content": "caf\\xe9"}]'
    assert [e["rule"] for e in rejected[1]["errors"]] == ["roles-not-alternating", "no-exchange"]
    assert json.loads(rejected[1]["raw"]) == [USER, USER]


def test_outputs_are_not_touched_on_a_usage_error(tmp_path):
    good = write_lines(tmp_path / "good.jsonl", [USER, ASSISTANT])
    clean = tmp_path / "clean.jsonl"
    clean.write_text("old\n")
    result = run(good, tmp_path / "missing.jsonl", "--output-valid", clean)
    assert result.exit_code == 2
    assert clean.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clean.jsonl", "good.jsonl"]


@pytest.mark.parametrize("option", ["--output-valid", "--rejects"])
def test_an_output_may_not_replace_an_input(tmp_path, option):
    good = write_lines(tmp_path / "good.jsonl", [USER, ASSISTANT])
    before = good.read_bytes()
    result = run(good, option, good)
    assert result.exit_code == 2
    assert "also an input" in result.stderr
    assert good.read_bytes() == before


def test_output_folders_must_exist_and_outputs_differ(tmp_path):
    good = write_lines(tmp_path / "good.jsonl", [USER, ASSISTANT])
    result = run(good, "--output-valid", tmp_path / "nowhere" / "clean.jsonl")
    assert result.exit_code == 2 and "does not exist" in result.stderr
    same = tmp_path / "out.jsonl"
    result = run(good, "--output-valid", same, "--rejects", same)
    assert result.exit_code == 2 and "different files" in result.stderr


def test_help_has_an_example():
    result = runner.invoke(app, ["validate", "--help"])
    assert result.exit_code == 0
    assert "Example:" in result.stdout and "--output-valid" in result.stdout


# --- the reader and the file-level rules ------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.integers(min_value=1, max_value=40))
def test_read_lines_splits_like_bytes_split_in_any_chunk_size(data, chunk_size):
    expected = data.split(b"\n")
    if expected[-1] == b"":
        expected.pop()
    assert list(read_lines(io.BytesIO(data), chunk_size=chunk_size)) == expected


def test_line_numbers_count_blank_lines_and_a_last_line_without_newline():
    ok, bad = orjson.dumps([USER, ASSISTANT]), orjson.dumps([USER])
    report = report_of(b"\n" + ok + b"\n  \n\t\n" + bad)
    assert report.conversations == 2
    assert found(report) == {("no-exchange", 5)}


def test_empty_files():
    assert found(report_of(b"")) == {("empty-file", 1)}
    assert "nothing" in report_of(b"").errors[0].message
    assert found(report_of(b"\n\n\r\n")) == {("empty-file", 1), ("crlf", 3)}


def test_a_bom_is_reported_and_skipped():
    report = report_of(b"\xef\xbb\xbf" + orjson.dumps([USER, ASSISTANT]) + b"\n")
    assert found(report) == {("bom", 1)}
    report = report_of(b"\xef\xbb\xbf[1,]\n")
    assert found(report) == {("bom", 1), ("invalid-json", 1)}


def test_crlf_is_one_warning_with_the_count():
    line = orjson.dumps([USER, ASSISTANT])
    report = report_of(line + b"\n" + (line + b"\r\n") * 2 + b"[1\r\n")
    assert found(report) == {("crlf", 2), ("invalid-json", 4), ("duplicate", 2), ("duplicate", 3)}
    (crlf,) = [p for p in report.warnings if p.rule == "crlf"]
    assert crlf.message.startswith("3 line(s) end with CRLF")
    assert [p.line for p in report.warnings] == sorted(p.line for p in report.warnings)


@pytest.mark.parametrize(
    "line, reason",
    [
        (b'[{"role": "user", "content": NaN}]', "NaN and Infinity are not JSON"),
        (b'{"messages": [], "x": -Infinity}', "NaN and Infinity are not JSON"),
        (b"[" * 5000 + b"]" * 5000, "more than 1024 nested"),
        (b"[1e999]", "infinity"),
        (b"[1, 2,]", "trailing comma"),
        (b"[1] [2]", "unexpected content after document"),
        (b"{'role': 'user'}", "column 2"),
        (b'["\\ud800"]', "surrogate"),
    ],
)
def test_invalid_json_is_an_error_with_a_reason_never_a_crash(line, reason):
    report = report_of(b"[]\n" + line + b"\n")
    assert ("invalid-json", 2) in found(report)
    (problem,) = [p for p in report.errors if p.line == 2]
    assert reason in problem.message
    assert "column" in problem.message


def test_invalid_utf8_gives_the_byte_offset():
    report = report_of(b'[{"role": "user", "content": "ab\xc3(c"}]\n')
    (problem,) = report.errors
    assert (problem.rule, problem.line, problem.path) == ("invalid-utf8", 1, None)
    assert "0xC3 at byte offset 32" in problem.message
    report = report_of(b"\xef\xbb\xbf\xff\n")  # offsets count the BOM: they are the file's bytes
    assert "0xFF at byte offset 3" in report.errors[0].message


def test_duplicates_name_the_first_copy_and_ignore_surrounding_whitespace():
    a, b = orjson.dumps([USER, ASSISTANT]), orjson.dumps([USER, {**ASSISTANT, "content": "Yo"}])
    report = report_of(b"\n".join([a, b, b"  " + a + b"\t", b, a]))
    duplicates = [(p.line, p.message) for p in report.warnings]
    assert duplicates == [
        (3, "the same conversation as line 1"),
        (4, "the same conversation as line 2"),
        (5, "the same conversation as line 1"),
    ]


def test_invalid_lines_are_not_duplicates():
    report = report_of(b"[1]\n[1]\n")
    assert {p.rule for p in report.errors} == {"message-not-object", "no-exchange"}
    assert report.warnings == []


def test_mixed_shapes_is_reported_once():
    array = orjson.dumps([USER, ASSISTANT])
    obj = orjson.dumps({"messages": [USER, {**ASSISTANT, "content": "x"}]})
    report = report_of(b"\n".join([obj, array, obj + b" ", array + b" "]))
    assert found(report) == {("mixed-shapes", 2), ("duplicate", 3), ("duplicate", 4)}
    assert "line 1 is an object" in report.warnings[0].message


def test_first_seen_finds_every_key_after_growing():
    seen = FirstSeen()
    keys = [f"line {i}".encode() for i in range(5000)]
    assert all(seen.first_line(key, i) is None for i, key in enumerate(keys, 1))
    assert len(seen.keys) > 5000
    assert [seen.first_line(key, 0) for key in keys] == list(range(1, 5001))


def test_memory_stays_flat_however_long_the_file(tmp_path):
    """Conversations are not kept: validating 8 MB peaks well under 2 MB of Python memory."""
    text = "All work and no play makes a dull model. " * 50
    path = tmp_path / "big.jsonl"
    with path.open("wb") as out:
        for i in range(4000):
            line = [USER, {"role": "assistant", "content": f"{i}: {text}"}]
            out.write(orjson.dumps(line) + b"\n")
    assert path.stat().st_size > 8_000_000
    tracemalloc.start()
    try:
        report = check_file(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert report.conversations == 4000 and not report.errors
    assert peak < 2_000_000


def test_validate_file_reports_a_missing_file_as_usage_error(tmp_path):
    with pytest.raises(UsageError, match="no such file"):
        check_file(tmp_path / "nope.jsonl")


# --- properties: generated conversations, broken in one known way ----------------------------

# Text a rule cannot object to: non-blank, no NUL, no special-token opener.
texts = st.text(min_size=1, max_size=20).filter(
    lambda t: not t.isspace() and "\x00" not in t and "<|" not in t
)
parts = st.lists(
    st.fixed_dictionaries(
        {"type": st.sampled_from(["text", "python", "python_output"]), "text": st.text(max_size=8)}
    ).filter(lambda p: "\x00" not in p["text"] and "<|" not in p["text"]),
    min_size=1,
    max_size=3,
)


@st.composite
def conversations(draw, number: int = 0) -> list[dict]:
    messages = []
    if draw(st.booleans()):
        messages.append({"role": "system", "content": draw(texts)})
    for turn in range(draw(st.integers(1, 3))):
        question = f"#{number}.{turn} " + draw(texts)  # unique, so never a duplicate
        messages.append({"role": "user", "content": question})
        answer = draw(st.one_of(texts, parts))
        messages.append({"role": "assistant", "content": answer})
    return messages


@st.composite
def files(draw) -> tuple[list[list[dict]], bool, list[int]]:
    """Conversations, whether lines are objects, and the blank lines before each line."""
    count = draw(st.integers(1, 5))
    convs = [draw(conversations(number=i)) for i in range(count)]
    as_objects = draw(st.booleans())
    blanks = draw(st.lists(st.integers(0, 2), min_size=count, max_size=count))
    return convs, as_objects, blanks


def encode(messages, as_object: bool) -> bytes:
    return orjson.dumps({"messages": messages, "id": 1} if as_object else messages)


def layout(lines: list[bytes], blanks: list[int]) -> tuple[bytes, list[int]]:
    """The file's bytes and the physical line number of each conversation."""
    data, numbers, number = b"", [], 0
    for line, blank in zip(lines, blanks, strict=True):
        data += b"\n" * blank + line + b"\n"
        number += blank + 1
        numbers.append(number)
    return data, numbers


def _first_user(messages):
    return next(i for i, m in enumerate(messages) if m["role"] == "user")


def _assistant(messages):
    return next(i for i, m in enumerate(messages) if m["role"] == "assistant")


# rule -> how to break one conversation (a list of messages) so that the rule applies.
MUTATIONS = {
    "roles-not-alternating": lambda m: m.insert(_first_user(m) + 1, dict(m[_first_user(m)])),
    "first-not-user": lambda m: m[_first_user(m)].__setitem__("role", "assistant"),
    "missing-role": lambda m: m[-1].pop("role"),
    "missing-content": lambda m: m[-1].pop("content"),
    "unknown-role": lambda m: m[-1].__setitem__("role", "bot"),
    "misplaced-system": lambda m: m.insert(_first_user(m) + 1, {"role": "system", "content": "x"}),
    "no-exchange": lambda m: m.__delitem__(slice(_first_user(m) + 1, None)),
    "bad-content": lambda m: m[_first_user(m)].__setitem__("content", 5),
    "bad-part": lambda m: m[_assistant(m)].__setitem__("content", [{"type": "image", "text": ""}]),
    "nul-character": lambda m: m[-1].__setitem__("content", "a\x00b"),
    "message-not-object": lambda m: m.__setitem__(-1, ["not", "a", "message"]),
    "empty-content": lambda m: m[-1].__setitem__("content", " \n "),
    "unknown-key": lambda m: m[-1].__setitem__("name", "sam"),
    "ends-with-user": lambda m: m.append({"role": "user", "content": "bye"}),
    "special-token": lambda m: m[-1].__setitem__("content", "<|assistant_end|>"),
}
LINE_MUTATIONS = {  # these change the line itself rather than its messages
    "invalid-json": lambda line: line[:-1],
    "invalid-utf8": lambda line: line.replace(b'"content":"', b'"content":"\xff', 1),
    "not-a-conversation": lambda line: b'{"conversation": ' + line + b"}",
    "messages-not-list": lambda line: b'{"messages": {"0": ' + line + b"}}",
    "crlf": lambda line: line + b"\r",
}


def mutated(messages, as_object: bool, rule: str) -> bytes:
    """The line of `messages` after `rule` was broken (the messages may change in place)."""
    if rule in MUTATIONS:
        MUTATIONS[rule](messages)
        return encode(messages, as_object)
    return LINE_MUTATIONS[rule](encode(messages, as_object))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(files(), st.booleans())
def test_valid_conversations_pass(generated, allow_system):
    convs, as_objects, blanks = generated
    data, _ = layout([encode(m, as_objects) for m in convs], blanks)
    report = report_of(data, allow_system=allow_system)
    has_system = any(m[0]["role"] == "system" for m in convs)
    if allow_system or not has_system:
        assert report.errors == [] and report.warnings == []
    else:
        assert {p.rule for p in report.errors} == {"system-not-allowed"}
    assert report.conversations == len(convs)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(files(), st.data())
def test_every_mutation_is_reported_on_its_line(generated, data):
    convs, as_objects, blanks = generated
    target = data.draw(st.integers(0, len(convs) - 1), label="target")
    rule = data.draw(st.sampled_from(sorted([*MUTATIONS, *LINE_MUTATIONS])), label="rule")
    lines = [encode(m, as_objects) for m in convs]
    lines[target] = mutated(convs[target], as_objects, rule)
    content, numbers = layout(lines, blanks)
    report = report_of(content)
    assert (rule, numbers[target]) in found(report)
    errors_on_other_lines = {p.line for p in report.errors} - {numbers[target]}
    assert not errors_on_other_lines
    if RULES[rule][0] == "error":
        assert report.rejected == 1


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(files(), st.data())
def test_file_level_mutations(generated, data):
    convs, as_objects, blanks = generated
    lines = [encode(m, as_objects) for m in convs]
    target = data.draw(st.integers(0, len(convs) - 1))
    content, numbers = layout(lines, blanks)

    duplicated = report_of(content + lines[target] + b"\n")
    (duplicate,) = duplicated.warnings
    assert (duplicate.rule, duplicate.line) == ("duplicate", numbers[-1] + 1)
    assert duplicate.message == f"the same conversation as line {numbers[target]}"

    assert found(report_of(b"\xef\xbb\xbf" + content)) == {("bom", 1)}

    if len(convs) > 1:
        lines[target] = encode(convs[target], not as_objects)
        mixed, _ = layout(lines, blanks)
        expected = numbers[1] if target == 0 else numbers[target]
        assert found(report_of(mixed)) == {("mixed-shapes", expected)}


KEYS = ["role", "content", "messages", "type", "text", "x"]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS), children, max_size=4)
    ),
    max_leaves=20,
).map(json.dumps)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(json_values.map(str.encode), st.binary(max_size=40)), max_size=6))
def test_validate_never_raises_on_anything(lines):
    content = b"\n".join(lines)
    for allow_system in (True, False):
        report = report_of(content, allow_system=allow_system)
        total = content.count(b"\n") + 1
        for problem in report.errors + report.warnings:
            assert problem.rule in RULES
            assert 1 <= problem.line <= total
            assert problem.is_error == (problem in report.errors)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(files(), st.lists(st.sampled_from(sorted([*MUTATIONS, *LINE_MUTATIONS])), max_size=3))
def test_output_valid_validates_clean_and_loads_in_customjson(tmp_path, generated, rules):
    convs, as_objects, blanks = generated
    lines = [encode(m, as_objects) for m in convs]
    for i, rule in enumerate(rules[: len(convs)]):
        lines[i] = mutated(convs[i], as_objects, rule)
    content, _ = layout(lines, blanks)
    source, clean = tmp_path / "source.jsonl", tmp_path / "clean.jsonl"
    source.write_bytes(content)
    result = run(source, "--output-valid", clean)
    assert result.exit_code in (0, 1)

    kept = [orjson.loads(line) for line in lines if not _has_errors(line)]
    expected = [{"messages": r} if isinstance(r, list) else r for r in kept]
    code, document = run_json(clean)
    if expected:
        assert code == 0 and document["files"][0]["errors"] == []
        warnings = {p["rule"] for p in document["files"][0]["warnings"]}
        assert warnings <= {"empty-content", "unknown-key", "ends-with-user", "special-token"}
        task = CustomJSON(path=clean)
        assert list(task) == expected
    else:
        assert clean.read_bytes() == b""
    os.remove(clean)


def _has_errors(line: bytes) -> bool:
    return bool(report_of(line).errors)
