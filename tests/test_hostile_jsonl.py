"""JSONL inputs that would cost unbounded memory or lose data: endless lines, compressed bombs,
FIFOs, millions of problems. Caps are lowered by options so the inputs stay small."""

import gzip
import json
import os
import resource
import subprocess
import sys
import threading
from pathlib import Path

from typer.testing import CliRunner

from taskcli.cli import app
from taskcli.files.rules import KEEP_PER_RULE, check_lines

ROOT = Path(__file__).resolve().parent.parent
GOOD = b'[{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]\n'
runner = CliRunner()


def peak_rss_of(args: list[str], feed: bytes | None = None, chunks: int = 1) -> tuple[int, bytes]:
    """Run taskcli in a child, feeding `feed` `chunks` times on stdin; its peak RSS in MB."""
    child = subprocess.Popen(
        [sys.executable, "-c", _MEASURED, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )

    def write() -> None:
        try:
            for _ in range(chunks):
                child.stdin.write(feed or b"")
        except BrokenPipeError:
            pass
        child.stdin.close()

    writer = threading.Thread(target=write)
    writer.start()
    err = []
    reader = threading.Thread(target=lambda: err.append(child.stderr.read()))
    reader.start()
    out = child.stdout.read()
    child.wait(120)
    writer.join()
    reader.join()
    err = err[0]
    peak = int(out.decode().strip().splitlines()[-1])
    return peak, err


# The child reports its own peak RSS (kB on Linux) after the command ran.
_MEASURED = """
import resource, sys
from taskcli.cli import app
try:
    app(sys.argv[1:], prog_name="taskcli")
except SystemExit:
    pass
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
"""


def test_an_endless_line_costs_constant_memory():
    """40 MB without a newline (as /dev/zero or a bomb gives) is one over-long line."""
    args = ["validate", "-", "--max-line-bytes", "65536", "--json"]
    small, _ = peak_rss_of(args, b"\0" * 1000)
    large, err = peak_rss_of(args, b"\0" * (1 << 20), chunks=40)
    assert b"Traceback" not in err
    assert large - small < 15, (small, large)  # the old reader held the line: 80 MB and more


def test_dev_zero_style_stream_is_one_line_too_long_then_the_rest_is_checked():
    stream = b"\0" * 300_000 + b"\n" + GOOD
    result = runner.invoke(app, ["validate", "-", "--max-line-bytes", "1000"], input=stream)
    assert result.exit_code == 1
    assert "<stdin>:1: [line-too-long] the line is 300,000 bytes long, over the limit of 1,000" in (
        result.stdout
    )
    assert "1 invalid" in result.stdout


def test_a_compressed_bomb_is_bounded_in_validate_show_and_stats(tmp_path):
    bomb = tmp_path / "bomb.jsonl.gz"
    bomb.write_bytes(gzip.compress(b"[" * 5_000_000))
    assert bomb.stat().st_size < 50_000
    result = runner.invoke(app, ["validate", str(bomb), "--max-line-bytes", "4096"])
    assert result.exit_code == 1 and "[line-too-long]" in result.stdout
    for command in ("show", "stats"):
        result = runner.invoke(app, [command, str(bomb), "--max-line-bytes", "4096"])
        assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
        assert "[line-too-long]" in result.stderr


def test_a_long_valid_line_is_not_called_invalid_json_and_rejects_keep_its_head(tmp_path):
    long_line = json.dumps(
        [{"role": "user", "content": "x" * 2_000_000}, {"role": "assistant", "content": "y"}]
    ).encode()
    data = tmp_path / "data.jsonl"
    data.write_bytes(GOOD + long_line + b"\n" + GOOD)
    rejects = tmp_path / "rejects.jsonl"
    result = runner.invoke(
        app,
        ["validate", str(data), "--max-line-bytes", "1000000", "--rejects", str(rejects), "--json"],
    )
    assert result.exit_code == 1
    (entry,) = json.loads(result.stdout)["files"]
    assert [(e["rule"], e["line"]) for e in entry["errors"]] == [("line-too-long", 2)]
    (rejected,) = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert rejected["line"] == 2 and long_line.decode().startswith(rejected["raw"])
    assert len(rejected["raw"]) == 200
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.jsonl", "rejects.jsonl"]
    # Raised above its length, the line is parsed and valid.
    result = runner.invoke(app, ["validate", str(data), "--max-line-bytes", "3000000"])
    assert result.exit_code == 0


def test_a_fifo_is_read_once_as_a_stream_and_its_writer_loses_nothing(tmp_path):
    fifo = tmp_path / "data.jsonl"
    os.mkfifo(fifo)
    written = []

    def write() -> None:
        with open(fifo, "wb") as pipe:
            for _ in range(2000):
                pipe.write(GOOD)
            written.append(True)

    writer = threading.Thread(target=write)
    writer.start()
    result = subprocess.run(
        [sys.executable, "-m", "taskcli", "validate", str(fifo)],
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"},
        timeout=60,
    )
    writer.join(10)
    assert written == [True]  # no broken pipe
    assert result.returncode == 0, result.stderr
    assert b"2,000 conversations" in result.stdout
    assert b"duplicate" in result.stdout


def test_show_reads_a_fifo_once(tmp_path):
    fifo = tmp_path / "data.jsonl"
    os.mkfifo(fifo)
    threading.Thread(target=lambda: fifo.write_bytes(GOOD * 3), daemon=True).start()
    result = subprocess.run(
        [sys.executable, "-m", "taskcli", "show", str(fifo), "--index", "2", "--json"],
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["messages"][1]["content"] == "Hello"


def test_a_device_as_input_is_read_not_probed():
    result = runner.invoke(app, ["validate", "/dev/null"])
    assert result.exit_code == 1 and "[empty-file]" in result.stdout


def test_problems_are_counted_all_but_kept_per_rule():
    lines = [GOOD.rstrip()] * 50_000 + [b'{"x": 1}'] * 30_000
    report = check_lines(lines, "many.jsonl")
    assert len(report.warnings) == 49_999 and report.warnings.counts == {"duplicate": 49_999}
    assert len(report.warnings.kept) == KEEP_PER_RULE
    assert report.errors.counts == {"not-a-conversation": 30_000}
    assert len(report.errors) == 30_000 and len(report.errors.kept) == KEEP_PER_RULE
    assert report.rejected == 30_000


def test_json_output_lists_every_problem_from_the_spool(tmp_path):
    data = tmp_path / "many.jsonl"
    data.write_bytes(GOOD * 3000 + b'{"x": 1}\n' * 2000)
    result = runner.invoke(app, ["validate", str(data), "--json"])
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    (entry,) = document["files"]
    assert document["valid"] is False and entry["conversations"] == 5000
    assert len(entry["warnings"]) == 2999 and len(entry["errors"]) == 2000
    assert entry["errors"][-1]["line"] == 5000
    human = runner.invoke(app, ["validate", str(data), "--max-errors", "2"])
    assert "duplicate: 2,999 warnings" in human.stdout and "… and 2,997 more" in human.stdout


def test_the_duplicate_table_costs_a_few_bytes_per_distinct_line():
    from taskcli.files.rules import FirstSeen

    seen = FirstSeen()
    for number in range(100_000):
        seen.first_line(b"line %d" % number, number)
    assert (seen.keys.itemsize + seen.lines.itemsize) * len(seen.keys) / 100_000 < 48
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss > 0


def test_an_over_long_answer_line_is_reported_not_parsed(tmp_path):
    import pytest

    from taskcli.errors import InvalidData
    from taskcli.eval import check_answers
    from taskcli.files.reader import line_limit

    answers = tmp_path / "answers.jsonl"
    answers.write_bytes(b'{"index": 0, "completion": "' + b"x" * 5000 + b'"}\n')
    with line_limit(1000), pytest.raises(InvalidData, match="5,030 bytes long, over the limit"):
        check_answers(answers, 10)


def test_the_streamed_json_is_laid_out_as_one_indented_document(tmp_path):
    import orjson

    from taskcli.validate import validate_files

    clean, broken = tmp_path / "clean.jsonl", tmp_path / "broken.jsonl"
    clean.write_bytes(GOOD)
    broken.write_bytes(b"[1]\n" + GOOD * 2 + b"\r\n")
    result = runner.invoke(app, ["validate", str(clean), str(broken), "--json"])
    reports = validate_files([str(clean), str(broken)])
    document = {"valid": False, "files": [report.to_json() for report in reports]}
    assert result.stdout == orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n"


def test_spooled_problems_are_printed_whole_across_read_pieces(tmp_path, monkeypatch):
    from taskcli.files.rules import ProblemLog

    monkeypatch.setattr(ProblemLog, "json_text", _small_pieces(ProblemLog.json_text))
    data = tmp_path / "accents.jsonl"
    data.write_bytes('[{"role": "héhé ✓", "content": "x"}]\n'.encode() * 50)
    result = runner.invoke(app, ["validate", str(data), "--json"])
    (entry,) = json.loads(result.stdout)["files"]
    assert len(entry["errors"]) == 100  # unknown-role and no-exchange on each line


def _small_pieces(json_text):
    """`ProblemLog.json_text` reading its spool 7 bytes at a time, so pieces cut characters."""

    def pieces(self):
        if self.spool is None:
            yield from json_text(self)
            return
        read = self.spool.read
        self.spool.read = lambda size: read(7)
        try:
            yield from json_text(self)
        finally:
            self.spool.read = read

    return pieces
