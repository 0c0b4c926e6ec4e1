"""`taskcli.export.columnar`: the bulk path agrees with the rules and with orjson, row for row."""

import numpy as np
import orjson
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from taskcli.conversation import check_messages, first_error
from taskcli.export import FORMATS, columnar
from taskcli.export.columnar import BINARY, _escaped, _views, json_lines
from taskcli.export.lines import APPEND_NEWLINE
from taskcli.files import arrow_rules
from taskcli.files.arrow_rules import holds_string_messages, rows_without_errors

MESSAGES = pa.list_(pa.struct([("content", pa.string()), ("role", pa.string())]))
LARGE = pa.large_list(pa.struct([("role", pa.large_string()), ("content", pa.large_string())]))

# Text that is hard to escape or to cut apart: quotes, backslashes, control characters, NUL,
# non-ASCII, and pieces of the JSON the lines are made of.
TRICKY = [
    '"',
    "\\",
    '\\"',
    '",',
    '","',
    ',{"messages":[{"',
    "\n",
    "\r\n",
    "\t",
    "\x01",
    "\x1f",
    "\x00",
    "\\u0000",
    "é",
    "😀",
    "\u2028",
    "<|user_start|>",
    " ",
]
texts = st.lists(st.sampled_from(TRICKY) | st.text(max_size=8), max_size=4).map("".join)
roles = st.sampled_from(["system", "user", "assistant"]) | st.sampled_from(["tool", "User", ""])
message = st.fixed_dictionaries({"role": roles | st.none(), "content": texts | st.none()})
well_formed = st.lists(texts.filter(lambda text: "\x00" not in text), min_size=1, max_size=3).map(
    lambda questions: [
        turn
        for question in questions
        for turn in (
            {"role": "user", "content": question},
            {"role": "assistant", "content": question[::-1]},
        )
    ]
)
rows = st.lists(
    st.none() | st.lists(message | st.none(), max_size=5) | well_formed, min_size=1, max_size=8
)


def no_error(row) -> bool:
    return row is not None and first_error(check_messages(row)) is None


@settings(max_examples=300, deadline=None)
@given(rows, st.integers(0, 2))
def test_rows_without_errors_is_exactly_the_rules_verdict(batch, skip):
    for kind in (MESSAGES, LARGE):
        array = pa.array([None] * skip + batch, kind).slice(skip)  # a slice: offsets not at 0
        assert rows_without_errors(array).tolist() == [no_error(row) for row in batch]


@settings(max_examples=200, deadline=None)
@given(st.lists(well_formed, min_size=1, max_size=6), st.booleans(), st.randoms())
def test_json_lines_are_what_orjson_writes_for_each_format(batch, system, rng):
    if system:
        batch = [[{"role": "system", "content": "Be brief."}, *row] for row in batch]
    array = pa.array([batch[0], *batch], MESSAGES).slice(1)  # a slice: offsets not at 0
    assert rows_without_errors(array).all()
    order = list(range(len(batch)))
    rng.shuffle(order)
    for fmt in FORMATS.values():
        layout = fmt.layout
        if layout is None or layout.with_source:  # sources: tests/test_export.py
            continue
        if layout.fold_system and system:  # such rows are written row by row
            assert arrow_rules.start_with_system(array).all()
            continue
        written = [fmt.row({"messages": row}, None, 0) for row in batch]
        assert not any(each.lost for each in written)  # the bulk path never loses anything
        expected = [orjson.dumps(each.record, option=APPEND_NEWLINE) for each in written]
        assert json_lines(array, layout).to_pylist() == expected
        in_order = json_lines(array, layout, order=np.array(order)).to_pylist()
        assert in_order == [expected[i] for i in order]


def test_chunks_too_big_for_string_views_are_written_in_halves(monkeypatch):
    batch = [
        [{"role": "user", "content": f"question {i}"}, {"role": "assistant", "content": "x" * i}]
        for i in range(7)
    ]
    array = pa.array(batch, MESSAGES)
    layout = FORMATS["messages"].layout
    order = np.array([3, 0, 6, 1, 5, 2, 4])
    whole = json_lines(array, layout, order=order).to_pylist()
    monkeypatch.setattr(columnar, "MAX_VIEWED_BYTES", 20)  # every chunk of two rows is too big
    assert json_lines(array, layout, order=order).to_pylist() == whole
    assert whole == [orjson.dumps({"messages": batch[i]}) + b"\n" for i in order]


@given(st.lists(st.binary(max_size=30), max_size=12), st.integers(0, 3))
def test_string_views_point_at_the_very_bytes(values, skip):
    strings = pa.array([b"-"] * skip + values, BINARY).slice(skip)
    views = _views(strings, 1)
    data = strings.buffers()[2] or pa.py_buffer(b"")
    viewed = pa.Array.from_buffers(
        pa.binary_view(), len(values), [None, pa.py_buffer(views), pa.py_buffer(b""), data]
    )
    viewed.validate(full=True)  # lengths, inline bytes, prefixes and offsets all agree
    assert viewed.to_pylist() == values


def test_only_string_messages_take_the_bulk_path():
    assert holds_string_messages(pa.array([], MESSAGES))
    assert holds_string_messages(pa.array([], LARGE))
    parts = pa.list_(pa.struct([("type", pa.string()), ("text", pa.string())]))
    for kind in (
        pa.list_(pa.struct([("role", pa.string()), ("content", parts)])),
        pa.list_(pa.struct([("role", pa.string())])),
        pa.list_(pa.string()),
        pa.string(),
    ):
        assert not holds_string_messages(pa.array([], kind))


def test_a_row_with_a_nul_is_left_to_the_rules_and_its_neighbours_are_not():
    fine = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]
    nul = [{"role": "user", "content": "h\x00i"}, {"role": "assistant", "content": "yo"}]
    array = pa.array([fine, nul, fine], MESSAGES)
    assert rows_without_errors(array).tolist() == [True, False, True]
    assert first_error(check_messages(nul)).rule == "nul-character"


@settings(max_examples=300, deadline=None)
@given(st.lists(texts, max_size=6))
def test_strings_escaped_together_are_cut_apart_exactly(batch):
    for kind in (pa.string(), pa.large_string()):
        escaped = _escaped(pa.array(batch, kind)).to_pylist()
        assert escaped == [orjson.dumps(text)[1:-1] for text in batch]


U = {"role": "user", "content": "hi"}
A = {"role": "assistant", "content": "hello"}
S = {"role": "system", "content": "be brief"}
NO_ROLE = pa.list_(pa.struct([("content", pa.string())]))
NO_CONTENT = pa.list_(pa.struct([("role", pa.string())]))
PARTS = pa.list_(
    pa.struct(
        [
            ("role", pa.string()),
            ("content", pa.list_(pa.struct([("type", pa.string()), ("text", pa.string())]))),
        ]
    )
)
# A row breaking each rule that `arrow_rules.RULE_COVERAGE` says rows of Arrow data can break, with
# the column type it comes in. A new error rule fails the coverage test until it is added there,
# and a CHECKED or ROW_BY_ROW one until it has an example here.
BREAKING = {
    "messages-not-list": (MESSAGES, None),
    "message-not-object": (MESSAGES, [U, None]),
    "unknown-role": (MESSAGES, [U, {"role": "robot", "content": "beep"}]),
    "misplaced-system": (MESSAGES, [U, A, S, U, A]),
    "first-not-user": (MESSAGES, [A, U, A]),
    "roles-not-alternating": (MESSAGES, [U, U, A]),
    "no-exchange": (MESSAGES, [U]),
    "bad-content": (MESSAGES, [U, {"role": "assistant", "content": None}]),
    "nul-character": (MESSAGES, [U, {"role": "assistant", "content": "a\x00b"}]),
    "missing-role": (NO_ROLE, [{"content": "hi"}, {"content": "hello"}]),
    "missing-content": (NO_CONTENT, [{"role": "user"}, {"role": "assistant"}]),
    "bad-part": (
        PARTS,
        [
            {"role": "user", "content": None},
            {"role": "assistant", "content": [{"type": "image", "text": "x"}]},
        ],
    ),
}


def test_every_error_rule_has_a_stated_place_in_the_bulk_check():
    from taskcli.conversation import ERROR, RULES

    errors = {rule for rule, (severity, _) in RULES.items() if severity == ERROR}
    assert set(arrow_rules.RULE_COVERAGE) == errors, (
        "say in RULE_COVERAGE how the bulk check treats it"
    )
    judged_here = {
        rule for rule, how in arrow_rules.RULE_COVERAGE.items() if how != arrow_rules.NOT_A_ROW_RULE
    }
    assert set(BREAKING) == judged_here, "add a breaking example to BREAKING"


@pytest.mark.parametrize("rule", sorted(BREAKING))
def test_no_row_breaking_a_rule_is_marked_fine(rule):
    kind, row = BREAKING[rule]
    fine_row = [U, A]
    array = pa.array([fine_row, row, fine_row], kind) if kind == MESSAGES else pa.array([row], kind)
    broken = array.to_pylist()[1 if kind == MESSAGES else 0]
    assert rule in {p.rule for p in check_messages(broken)}, "the example must break the rule"
    if arrow_rules.RULE_COVERAGE[rule] == arrow_rules.CHECKED:
        assert rows_without_errors(array).tolist() == [True, False, True]
    else:
        assert not holds_string_messages(array)


@settings(max_examples=300, deadline=None)
@given(rows, st.integers(0, 2), st.booleans())
def test_rows_without_problems_are_rows_the_rules_find_nothing_in(batch, skip, allow_system):
    for kind in (MESSAGES, LARGE):
        array = pa.array([None] * skip + batch, kind).slice(skip)
        fine = arrow_rules.rows_without_problems(array, allow_system=allow_system).tolist()
        for row, certain in zip(batch, fine, strict=True):
            if certain:
                assert check_messages(row, allow_system=allow_system) == [], row


def test_plain_rows_are_found_without_problems_and_doubtful_ones_are_left_to_the_rules():
    system = {"role": "system", "content": "Be brief."}
    rows = [
        [U, A],  # fine
        [system, U, A],  # fine unless system messages are refused
        [U, A, U],  # ends-with-user
        [U, {"role": "assistant", "content": "  "}],  # empty-content
        [U, {"role": "assistant", "content": "ok <|user_start|>"}],  # special-token
        [U, {"role": "assistant", "content": "..."}],  # no letter or digit: left to the rules
    ]
    array = pa.array(rows, MESSAGES)
    assert arrow_rules.rows_without_problems(array).tolist() == [True, True] + [False] * 4
    refused = arrow_rules.rows_without_problems(array, allow_system=False).tolist()
    assert refused == [True] + [False] * 5
    assert [check_messages(row) == [] for row in rows] == [True, True, False, False, False, True]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from([[U, A], [S, U, A], [U, A, U, A], [U, {**A, "content": "hi"}]])
        | st.lists(message, max_size=5)
        | well_formed,
        min_size=1,
        max_size=8,
    )
)
def test_rows_without_problems_share_a_key_when_they_hold_the_same_messages(batch):
    array = pa.array(batch, MESSAGES)
    fine = arrow_rules.rows_without_problems(array)
    keys = arrow_rules.row_keys(array.filter(fine))
    held = [row for row, certain in zip(batch, fine.tolist(), strict=True) if certain]
    for i, key in enumerate(keys):
        for j, other in enumerate(keys):
            assert (key == other) == (held[i] == held[j])
