"""Finding and reading the data of one split: dataset cards, layouts, bulk reads, the Hub probe."""

import os
import random
import socket
import sys
import time

import hubdata
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from taskcli.errors import DataUnavailable, InvalidData
from taskcli.files import parquet
from taskcli.hub import data
from taskcli.hub.data import ParquetRows, matching_files, open_rows, readme_configs, split_patterns


def card(tmp_path, front_matter: str):
    readme = tmp_path / "README.md"
    readme.write_text(f"---\n{front_matter}---\n# A dataset\n", encoding="utf-8")
    return readme


def test_readme_configs_every_data_files_form(tmp_path):
    readme = card(
        tmp_path,
        "license: mit\n"
        "configs:\n"
        "- config_name: listed\n"
        "  data_files:\n"
        "  - split: train\n"
        "    path: listed/train-*\n"
        "  - split: test\n"
        "    path:\n"
        "    - listed/test-a-*\n"
        "    - listed/test-b-*\n"
        "- config_name: one_pattern\n"
        "  data_files: files/*.parquet\n"
        "- config_name: pattern_list\n"
        "  data_files: [a/*.parquet, b/*.parquet]\n"
        "- config_name: by_split\n"
        "  data_files:\n"
        "    train: x/train.parquet\n"
        "    validation: [x/val-1.parquet, x/val-2.parquet]\n"
        "- data_files: data/*.parquet\n",
    )
    assert readme_configs(readme) == {
        "listed": {"train": ["listed/train-*"], "test": ["listed/test-a-*", "listed/test-b-*"]},
        "one_pattern": {"train": ["files/*.parquet"]},
        "pattern_list": {"train": ["a/*.parquet", "b/*.parquet"]},
        "by_split": {
            "train": ["x/train.parquet"],
            "validation": ["x/val-1.parquet", "x/val-2.parquet"],
        },
        "default": {"train": ["data/*.parquet"]},
    }


def test_readme_without_front_matter_or_configs_gives_nothing(tmp_path):
    assert readme_configs(tmp_path / "README.md") == {}
    (tmp_path / "README.md").write_text("# Just prose\n---\n")
    assert readme_configs(tmp_path / "README.md") == {}
    assert readme_configs(card(tmp_path, "license: mit\n")) == {}


def test_broken_front_matter_is_invalid_data(tmp_path):
    readme = card(tmp_path, "configs: [unclosed\n")
    # Where the list opens, in words, not PyYAML's "expected ',' or ']', but got '<stream end>'".
    with pytest.raises(
        InvalidData,
        match=r"README\.md:2:10: its YAML front matter does not parse: this '\[' is never "
        r"closed with '\]'\.$",
    ):
        readme_configs(readme)


def test_split_patterns_from_the_card_else_the_usual_layout(tmp_path):
    card(
        tmp_path,
        "configs:\n- config_name: main\n  data_files:\n  - split: test\n    path: main/test-*\n",
    )
    assert split_patterns(tmp_path, "main", "test") == ["main/test-*"]
    assert split_patterns(tmp_path, "main", "train") == []  # the card says: no such split
    assert split_patterns(tmp_path, "other", "train") == [
        "other/train-*.parquet",
        "data/train-*.parquet",
    ]


def test_matching_files_first_pattern_with_matches_in_shard_order(tmp_path):
    (tmp_path / "data").mkdir()
    for name in ("train-00001-of-00002.parquet", "train-00000-of-00002.parquet"):
        (tmp_path / "data" / name).write_bytes(b"")
    (tmp_path / "data" / "train-dir.parquet").mkdir()  # not a file
    assert [p.name for p in matching_files(tmp_path, ["main/train-*", "data/train-*"])] == [
        "train-00000-of-00002.parquet",
        "train-00001-of-00002.parquet",
    ]
    assert matching_files(tmp_path, ["nothing/*"]) == []


def numbers_file(path, values, rows_per_group):
    pq.write_table(pa.table({"n": values}), path, row_group_size=rows_per_group)
    return path


def test_parquet_rows_take_in_any_order_across_files_and_groups(tmp_path):
    paths = [
        numbers_file(tmp_path / "a.parquet", list(range(0, 50)), 7),
        numbers_file(tmp_path / "b.parquet", list(range(50, 120)), 30),
    ]
    rows = ParquetRows(paths)
    assert rows.num_rows == 120
    wanted = [119, 0, 49, 50, 50, 3, 77, *range(60, 90)]  # some blocks small, one with >16 rows
    assert rows.take(wanted) == [{"n": i} for i in wanted]
    assert rows.row(56) == {"n": 56}
    assert rows.take([]) == []
    with pytest.raises(IndexError):
        rows.take([120])
    with pytest.raises(IndexError):
        rows.take([-1])
    assert [f.size for f in rows.files] == [p.stat().st_size for p in paths]


def test_empty_row_groups_are_skipped(tmp_path):
    path = tmp_path / "gaps.parquet"
    schema = pa.schema([("n", pa.int64())])
    with pq.ParquetWriter(path, schema) as writer:
        writer.write_table(pa.table({"n": [0, 1]}, schema=schema))
        writer.write_table(pa.table({"n": []}, schema=schema))
        writer.write_table(pa.table({"n": [2, 3, 4]}, schema=schema))
    assert pq.ParquetFile(path).metadata.num_row_groups == 3
    rows = ParquetRows([path])
    assert rows.num_rows == 5
    assert rows.take([4, 2, 1, 0, 3]) == [{"n": n} for n in (4, 2, 1, 0, 3)]


def test_only_the_row_groups_asked_for_are_read(tmp_path):
    path = numbers_file(tmp_path / "n.parquet", list(range(100)), 10)
    rows = ParquetRows([path])
    assert rows._read == {}  # opening reads the footer only
    rows.take([35, 31, 87])
    assert sorted(rows._read) == [3, 8]


def test_row_groups_kept_for_random_reads_are_bounded(tmp_path, monkeypatch):

    path = numbers_file(tmp_path / "n.parquet", list(range(1000)), 10)
    rows = ParquetRows([path])
    group_bytes = rows.block(0).nbytes
    monkeypatch.setattr(parquet, "BLOCK_CACHE_BYTES", 3 * group_bytes)
    wanted = list(range(5, 1000, 37))
    assert rows.take(wanted) == [{"n": i} for i in wanted]  # read again when dropped
    assert len(rows._read) == 3
    assert list(rows._read) == sorted({i // 10 for i in wanted})[-3:]  # the latest kept
    rows.take([wanted[-3]])  # used again: now the most recent
    assert list(rows._read)[-1] == wanted[-3] // 10


def test_a_moderate_row_group_is_one_block_decoded_once(tmp_path, monkeypatch):
    monkeypatch.setattr(parquet, "BLOCK_ROWS", 8)
    path = numbers_file(tmp_path / "n.parquet", list(range(100)), 50)
    rows = ParquetRows([path])
    assert len(rows.starts) - 1 == 2  # one block per group, whatever its rows
    decoded = []
    decode = ParquetRows._decode
    monkeypatch.setattr(
        ParquetRows, "_decode", lambda self, n: decoded.append(n) or decode(self, n)
    )
    assert rows.take([49, 3, 20, 77]) == [{"n": n} for n in (49, 3, 20, 77)]
    assert decoded == [0, 1]  # each group once
    monkeypatch.setattr(parquet, "WHOLE_GROUP_BYTES", 0)
    big = ParquetRows([path])
    assert len(big.starts) - 1 == 14  # a big group (by its footer): 7 slices of at most 8 rows
    assert big.take([20]) == [{"n": 20}]
    assert decoded[-1] == 2  # the slice holding row 20 is streamed, not the group decoded


def test_a_pass_decodes_whole_row_groups_two_at_a_time_and_slices_one_at_a_time(
    tmp_path, monkeypatch
):
    import threading

    monkeypatch.setattr(parquet, "BLOCK_ROWS", 8)
    path = numbers_file(tmp_path / "n.parquet", list(range(100)), 10)
    running, most = set(), []
    decode = ParquetRows._decode
    lock = threading.Lock()

    def watched(self, n):
        with lock:
            running.add(n)
            most.append(len(running))
        time.sleep(0.05)  # long enough for a second reader to start
        try:
            return decode(self, n)
        finally:
            with lock:
                running.discard(n)

    monkeypatch.setattr(ParquetRows, "_decode", watched)
    order = list(range(100))
    random.Random(5).shuffle(order)
    for whole_bytes, readers in ((64 << 20, 2), (0, 1)):
        monkeypatch.setattr(parquet, "WHOLE_GROUP_BYTES", whole_bytes)
        rows, most[:] = ParquetRows([path]), []
        seen = {}
        for positions, block in rows.scan_blocks(order):
            seen.update(zip(positions.tolist(), block.column("n").to_pylist(), strict=True))
        assert seen == dict(enumerate(order))
        assert max(most) == readers


def test_threads_read_blocks_at_once_each_block_once(tmp_path, monkeypatch):
    import threading

    path = numbers_file(tmp_path / "n.parquet", list(range(100)), 10)
    rows = ParquetRows([path])
    decoded = []
    decode = ParquetRows._decode
    started = threading.Barrier(4)

    def slow(self, n):
        decoded.append(n)
        time.sleep(0.05)  # long enough for the other threads to ask for the same block
        return decode(self, n)

    monkeypatch.setattr(ParquetRows, "_decode", slow)
    seen = {}

    def read(i):
        started.wait()
        seen[i] = rows.take([i, i + 50])

    threads = [threading.Thread(target=read, args=(i,)) for i in (1, 2, 3, 4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == {i: [{"n": i}, {"n": i + 50}] for i in (1, 2, 3, 4)}
    assert sorted(decoded) == [0, 5]  # four threads, two blocks, each decoded once


def test_a_scan_takes_up_the_blocks_read_ahead_and_reads_each_block_once(tmp_path, monkeypatch):
    path = numbers_file(tmp_path / "n.parquet", list(range(100)), 10)
    rows = ParquetRows([path])
    reads = []
    read_block = ParquetRows.read_block
    monkeypatch.setattr(
        ParquetRows, "read_block", lambda self, n: reads.append(n) or read_block(self, n)
    )
    rows.read_ahead()
    wanted = list(range(99, -1, -1))
    seen = {}
    for positions, block in rows.scan_blocks(wanted):
        seen.update(zip(positions.tolist(), block.column("n").to_pylist(), strict=True))
    assert seen == {i: wanted[i] for i in range(100)}
    assert sorted(reads) == list(range(10))  # blocks 0 and 1 came from the read-ahead
    assert rows._ahead == {}


def test_a_block_that_fails_to_read_ahead_fails_the_scan_that_needs_it(tmp_path):
    path = numbers_file(tmp_path / "n.parquet", list(range(20)), 10)
    rows = ParquetRows([path])
    path.write_bytes(b"PAR1 not any more")  # the footer was read; the row groups are gone
    rows.read_ahead()
    with pytest.raises(InvalidData, match="cannot read row group 0"):
        list(rows.scan_blocks(range(20)))


def test_unreadable_parquet_is_invalid_data_naming_the_file(tmp_path):
    bad = tmp_path / "train-00000-of-00001.parquet"
    bad.write_bytes(b"this is not parquet")
    with pytest.raises(InvalidData, match=r"00001\.parquet is not a readable parquet file"):
        ParquetRows([bad])


def test_local_revision_needs_the_files_to_agree(tmp_path):
    hubdata.write_gsm8k(tmp_path, rows_per_split=4, files_per_split=2, revision="a" * 40)
    repo = tmp_path / "openai" / "gsm8k"
    paths = sorted((repo / "main").glob("train-*"))
    assert data.local_revision(repo, paths) == "a" * 40
    note = repo / ".cache/huggingface/download/main" / f"{paths[1].name}.metadata"
    note.write_text("b" * 40 + "\netag\n1.0\n")
    assert data.local_revision(repo, paths) is None


def test_open_rows_names_the_missing_copy_and_how_to_get_it(tmp_path):
    with pytest.raises(DataUnavailable) as raised:
        open_rows("openai/gsm8k", "main", "test", tmp_path)
    message, hint = str(raised.value), raised.value.hint
    assert f"no local copy at {tmp_path / 'openai' / 'gsm8k'}" in message
    assert "offline mode is on (HF_HUB_OFFLINE is set)" in message
    assert (
        f"hf download openai/gsm8k --repo-type dataset --local-dir {tmp_path / 'openai' / 'gsm8k'}"
    ) in hint
    # The library names its parameter; the CLI adds the flag (--data-dir).
    assert f"use {tmp_path} as the data dir" in hint and raised.value.params == ("data_dir",)


@pytest.mark.parametrize("given", ["root", "org", "dataset"])
def test_a_data_dir_may_be_the_dataset_or_its_organisation_folder(tmp_path, given):
    hubdata.write_gsm8k(tmp_path)
    folder = {"root": tmp_path, "org": tmp_path / "openai", "dataset": tmp_path / "openai/gsm8k"}
    assert data.data_root(folder[given], "openai/gsm8k") == tmp_path
    assert open_rows("openai/gsm8k", "main", "test", folder[given]).num_rows > 0


def test_a_dataset_folder_given_for_another_dataset_is_named_as_such(tmp_path):
    hubdata.write_gsm8k(tmp_path)
    with pytest.raises(DataUnavailable) as raised:
        open_rows("allenai/ai2_arc", "ARC-Easy", "test", tmp_path / "openai" / "gsm8k")
    assert "looks like a dataset's own folder" in str(raised.value)


def test_offline_is_named_only_when_the_user_set_it(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("HF_DATASETS_OFFLINE")
    monkeypatch.setattr(data, "_set_here", set())
    data.use_offline_mode()  # as after finding the Hub unreachable
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert data.offline_variable() is None and not data.offline_requested()
    monkeypatch.setattr(data, "_set_here", set())
    assert data.offline_variable() == "HF_HUB_OFFLINE"


def test_offline_requested_reads_both_variables(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("HF_DATASETS_OFFLINE")
    assert data.offline_requested() is False
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "yes")
    assert data.offline_requested() is True
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "0")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert data.offline_requested() is True


def test_use_offline_mode_reaches_modules_imported_before(monkeypatch):
    import datasets  # noqa: F401 - its config must be loaded already
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(sys.modules["datasets.config"], "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_HUB_OFFLINE")
    data.use_offline_mode()
    assert huggingface_hub.constants.is_offline_mode() is True
    assert sys.modules["datasets.config"].HF_HUB_OFFLINE is True
    assert data.offline_requested() is True


def test_hub_reachable_open_closed_and_stalled_endpoints():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(5)
        assert data.hub_reachable(f"http://127.0.0.1:{server.getsockname()[1]}", 2.0) is True

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    assert data.hub_reachable(f"https://127.0.0.1:{port}", 2.0) is False

    # a listener whose queue is full never completes a handshake: connections stall
    with socket.socket() as stalled:
        stalled.bind(("127.0.0.1", 0))
        stalled.listen(0)
        address = stalled.getsockname()
        fillers = []
        for _ in range(3):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(address)
            fillers.append(filler)
        time.sleep(0.1)
        started = time.monotonic()
        assert data.hub_reachable(f"http://127.0.0.1:{address[1]}", 0.5) is False
        assert time.monotonic() - started < 2
        for filler in fillers:
            filler.close()


def test_hub_reachable_checks_the_proxy_when_one_is_set(monkeypatch):
    with socket.socket() as proxy:
        proxy.bind(("127.0.0.1", 0))
        proxy.listen(5)
        monkeypatch.setenv("https_proxy", f"http://127.0.0.1:{proxy.getsockname()[1]}")
        monkeypatch.delenv("no_proxy", raising=False)
        monkeypatch.delenv("NO_PROXY", raising=False)
        # the endpoint itself does not exist; the proxy in front of it answers
        assert data.hub_reachable("https://hub.invalid", 2.0) is True
