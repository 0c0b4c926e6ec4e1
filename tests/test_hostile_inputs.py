"""Small hostile inputs cost bounded time and memory and end in a one-line error, not a traceback:
mixture specs, dataset cards (README.md) and parquet files of local dataset copies."""

import random
import time

import hubdata
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from specfiles import write_spec
from typer.testing import CliRunner

from taskcli.cli import app
from taskcli.export import export
from taskcli.files import parquet
from taskcli.files.parquet import ParquetRows
from taskcli.hub import data
from taskcli.mixing.plan import build_plan
from taskcli.mixing.spec import load_spec

runner = CliRunner()
BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + n)}: &{chr(98 + n)} [{', '.join(['*' + chr(97 + n)] * 9)}]\n" for n in range(9)
)  # nine levels of nine aliases each: 9**10 strings once expanded


def one_line_error(result, code: int) -> str:
    """The command failed with `code` and said why in one `Error:` line (a `Hint:` line may
    follow), with no traceback."""
    assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    message = result.stderr.strip()
    lines = message.splitlines()
    assert lines[0].startswith("Error: "), message
    assert len(lines) == 1 or (len(lines) == 2 and lines[1].startswith("Hint: ")), message
    return message


def dry_run(spec, *args):
    start = time.monotonic()
    result = runner.invoke(app, ["export", str(spec), "--dry-run", *args])
    assert time.monotonic() - start < 10
    return result


# --- mixture specs ------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["subset", "seed", "size", "repeat", "path"])
def test_a_yaml_alias_bomb_in_a_spec_is_refused_at_once(tmp_path, key):
    where = "seed: *j\n" if key == "seed" else f"    {key}: *j\n"
    spec = write_spec(
        tmp_path,
        BOMB + ("" if key != "seed" else where) + "tasks:\n  - task: spellingbee\n"
        + ("" if key == "seed" else where),
    )  # fmt: skip
    assert "aliases (*" in one_line_error(dry_run(spec), 2)


def test_deep_nesting_in_a_spec_is_refused(tmp_path):
    spec = write_spec(tmp_path, "tasks: " + "[" * 100_000 + "]" * 100_000 + "\n")
    assert "nested deeper than" in one_line_error(dry_run(spec), 2)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("    repeat: 1000000000", "repeat must be an integer from 1 to 1,000"),
        ("    repeat: 1e9", "repeat must be an integer from 1 to 1,000"),
        ("    start: 1000000000000000000000000000000", "start must be at most"),
        ("    stop: 1000000000000000000000000000000", "stop must be at most"),
        ("    step: 1000000000000000000000000000000", "step must be at most"),
        ("    repeat: 1000000000000000000000000000000", "repeat must be an integer from 1"),
        ("    size: 1000000000000000000000000000000", "size must be between 0 and"),
    ],
)
def test_every_number_of_an_entry_is_range_checked(tmp_path, line, expected):
    words = tmp_path / "words.txt"
    words.write_text("apple\n")
    spec = write_spec(tmp_path, f"tasks:\n  - task: spellingbee\n    word_list: {words}\n{line}\n")
    assert expected in one_line_error(dry_run(spec), 2)


@pytest.mark.parametrize(
    ("seed", "expected"),
    [
        ("18446744073709551616", "seed: must be between -2**63 and 2**64-1"),
        ("9" * 5000, "a number of 5000 digits is too large"),
    ],
)
def test_a_seed_out_of_range_is_a_usage_error_and_the_output_is_kept(tmp_path, seed, expected):
    words = tmp_path / "words.txt"
    words.write_text("apple\n")
    spec = write_spec(
        tmp_path, f"seed: {seed}\ntasks:\n  - task: spellingbee\n    word_list: {words}\n"
    )
    out = tmp_path / "train.jsonl"
    out.write_text("old\n")
    result = runner.invoke(app, ["export", str(spec), "-o", str(out)])
    assert expected in one_line_error(result, 2)
    assert out.read_text() == "old\n"
    assert not (tmp_path / "train.jsonl.manifest.json").exists()


def test_a_spec_with_too_many_entries_is_refused_before_any_task_is_made(tmp_path):
    spec = write_spec(tmp_path, "tasks:\n" + "  - task: spellingbee\n" * 20_000)
    assert "at most 1,000 entries, got 20,000" in one_line_error(dry_run(spec), 2)


def test_a_huge_spec_file_is_refused_unread(tmp_path):
    spec = tmp_path / "mixture.yaml"
    spec.write_text("tasks:\n" + "# padding\n" * 200_000)
    assert "at most 1,048,576 bytes" in one_line_error(dry_run(spec), 2)


# --- dataset cards -----------------------------------------------------------------------------


def smoltalk_copy(tmp_path, front_matter: str | None = None, raw: bytes | None = None):
    """A local SmolTalk copy whose README front matter is `front_matter` (or bytes `raw`)."""
    hubdata.write_smoltalk(tmp_path, rows_per_split=6)
    readme = tmp_path / "HuggingFaceTB" / "smol-smoltalk" / "README.md"
    if raw is not None:
        readme.write_bytes(raw)
    elif front_matter is not None:
        readme.write_text(f"---\n{front_matter}---\n# SmolTalk\n")
    return tmp_path


def show_smoltalk(data_dir):
    start = time.monotonic()
    result = runner.invoke(app, ["show", "smoltalk", "--split", "test", "--data-dir", data_dir])
    assert time.monotonic() - start < 10
    return result


@pytest.mark.parametrize(
    ("front_matter", "expected"),
    [
        (BOMB + "configs: *j\n", "aliases (*a) are not allowed"),
        ("configs:\n- config_name: default\n  data_files: /etc/passwd\n", "outside the dataset"),
        ("configs:\n- config_name: default\n  data_files: ../../*/*.parquet\n", "outside the"),
        ("configs:\n- config_name: default\n  data_files: {test: [a/../../x]}\n", "outside the"),
        ("configs:\n- config_name: default\n  data_files: 7\n", "data_files must be a path"),
        ("configs:\n- config_name: default\n  data_files: {test: [1, 2]}\n", "must be paths"),
        ("configs: [" * 1000 + "]" * 1000 + "\n", "nested deeper than"),
    ],
)
def test_a_malformed_dataset_card_is_invalid_data_naming_it(tmp_path, front_matter, expected):
    message = one_line_error(show_smoltalk(smoltalk_copy(tmp_path, front_matter)), 1)
    assert "README.md" in message and expected in message


def test_a_dataset_card_that_is_not_utf8_is_invalid_data(tmp_path):
    data_dir = smoltalk_copy(tmp_path, raw=b"---\nconfigs: \xff\xfe\n---\n")
    assert "not UTF-8" in one_line_error(show_smoltalk(data_dir), 1)


def test_data_files_naming_a_folder_find_no_files(tmp_path):
    front = "configs:\n- config_name: default\n  data_files: {test: data}\n"
    message = one_line_error(show_smoltalk(smoltalk_copy(tmp_path, front)), 1)
    assert "has no data files" in message


def test_parquet_outside_the_copy_is_never_read(tmp_path):
    outside = tmp_path / "secret"
    outside.mkdir()
    pq.write_table(pa.table({"n": [1]}), outside / "test-0.parquet")
    data_dir = tmp_path / "dir"
    front = "configs:\n- config_name: default\n  data_files: {test: ../../../secret/*.parquet}\n"
    message = one_line_error(show_smoltalk(smoltalk_copy(data_dir, front)), 1)
    assert "outside the dataset" in message


# --- parquet files -----------------------------------------------------------------------------


def test_damaged_parquet_files_are_invalid_data_never_a_traceback(tmp_path):
    data_dir = smoltalk_copy(tmp_path)
    (path,) = (tmp_path / "HuggingFaceTB" / "smol-smoltalk" / "data").glob("test-*.parquet")
    original = path.read_bytes()
    rng = random.Random(7)
    outcomes = set()
    for _ in range(60):
        damaged = bytearray(original)
        for _ in range(rng.randint(1, 8)):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        path.write_bytes(bytes(damaged))
        for command in (["show", "smoltalk", "--count", "6"], ["stats", "smoltalk"]):
            result = runner.invoke(
                app, [*command, "--split", "test", "--data-dir", str(data_dir), "--json"]
            )
            assert isinstance(result.exception, SystemExit | None), result.exception
            assert result.exit_code in (0, 1)
            outcomes.add(result.exit_code)
    assert outcomes == {0, 1}  # some damage is harmless, some is reported


def test_invalid_utf8_in_a_string_column_is_reported_with_the_file(tmp_path):
    path = tmp_path / "t.parquet"
    bad = pa.array([b"ok", b"\xff\xfe"], pa.binary()).view(pa.string())
    pq.write_table(pa.table({"s": bad}), path)
    with pytest.raises(data.InvalidData, match=r"t\.parquet"):
        ParquetRows([path]).take([1])


@pytest.mark.parametrize("rows_per_group", [5000, 7])
def test_a_large_row_group_is_read_in_slices(tmp_path, monkeypatch, rows_per_group):
    monkeypatch.setattr(parquet, "BLOCK_ROWS", 8)
    monkeypatch.setattr(parquet, "WHOLE_GROUP_BYTES", 0)  # random reads stream the slices too
    path = tmp_path / "n.parquet"
    pq.write_table(pa.table({"n": list(range(100))}), path, row_group_size=rows_per_group)
    rows = ParquetRows([path])
    assert max(int(n) for n in rows.starts[1:] - rows.starts[:-1]) <= 8
    order = list(range(100))
    random.Random(3).shuffle(order)
    assert [row["n"] for row in rows.take(order)] == order
    seen = {}
    rows.read_ahead()
    for positions, block in ParquetRows([path]).scan_blocks(order):
        assert block.num_rows <= 8
        seen.update(zip(positions.tolist(), block.column("n").to_pylist(), strict=True))
    assert seen == dict(enumerate(order))


def test_export_is_the_same_whatever_the_row_group_size(tmp_path, monkeypatch):
    monkeypatch.setattr(parquet, "BLOCK_ROWS", 5)
    outputs = []
    for group in (3, 1000):
        folder = tmp_path / str(group)
        hubdata.write_smoltalk(folder, rows_per_split=40, rows_per_group=group)
        spec = write_spec(folder, "tasks:\n  - task: smoltalk\n    split: test\n")
        export(build_plan(load_spec(spec), data_dir=folder), folder / "out.jsonl")
        outputs.append((folder / "out.jsonl").read_bytes())
    assert outputs[0] == outputs[1] and len(outputs[0].splitlines()) == 40
