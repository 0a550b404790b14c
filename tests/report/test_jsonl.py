"""The fast parse path gives exactly what the general one gives, and declines whatever it could misread."""

from __future__ import annotations

import orjson
import pytest

from probes.report import jsonl

MILESTONES = ["20", "32", "42", "55", "58", "60", "88", "100"]


def assert_same(data: bytes, *, milestones: list[str] = MILESTONES) -> jsonl.Parsed:
    """parse_block (fast when it can be) equals parse_general, table for table and count for count."""
    got = jsonl.parse_block(data, is_last=True, milestones=milestones)
    want = jsonl.parse_general(data, is_last=True, milestones=milestones)
    assert got.probes.equals(want.probes), (got.probes.to_pylist()[:2], want.probes.to_pylist()[:2])
    assert got.samples.equals(want.samples), (got.samples.to_pylist()[:3], want.samples.to_pylist()[:3])
    assert (got.bad_lines, got.truncated_last, got.bad_samples) == \
           (want.bad_lines, want.truncated_last, want.bad_samples)
    return got


def takes_fast_path(data: bytes) -> bool:
    return jsonl._parse_fast(data, MILESTONES) is not None


@pytest.fixture(scope="module")
def block(stale_run) -> bytes:
    """A real synthetic run as the writer writes it: orjson, compact, samples last, some failed probes."""
    return (stale_run / "probes.jsonl").read_bytes()


def test_writer_output_takes_the_fast_path_and_matches(block, fast_run):
    assert takes_fast_path(block)
    parsed = assert_same(block)
    assert parsed.samples.num_rows > 100 and parsed.probes.num_rows == block.count(b"\n")
    assert takes_fast_path((fast_run / "probes.jsonl").read_bytes())


def test_probes_without_polls_and_null_fields(block):
    rec = orjson.loads(block.splitlines()[0])
    no_polls = {**rec, "probe_id": "np", "outcome": "upload_error", "samples": [], "milestones": {},
                "dwell": {}, "longest_stall": None, "total_s": None}
    nulls = {**rec, "probe_id": "nulls", "milestones": None,
             "samples": [[0.1, None, None, None, None, None, 0.01], [0.2, 503, None, None, "null", "", 0.02]]}
    data = b"".join(orjson.dumps(r) + b"\n" for r in (no_polls, rec, nulls))
    assert takes_fast_path(data)
    parsed = assert_same(data)
    assert parsed.samples.column("step_name").to_pylist()[-1] == "null"  # a text, not a missing value
    only_empty = orjson.dumps(no_polls) + b"\n"
    assert takes_fast_path(only_empty) and assert_same(only_empty).samples.num_rows == 0


def test_escapes_outside_the_polls_keep_the_fast_path(block):
    rec = orjson.loads(block.splitlines()[0])
    odd = {**rec, "probe_id": 'say "hi"\\', "error": "line\nbreak", "samples": [
        [0.1, 200, 5, 1, "a, 1e, 05 .5 z", "processing", 1e-05], [0.2, 200, 6, 1, "b", "processing", 2.5e3]]}
    data = orjson.dumps(odd) + b"\n" + block
    assert b"\\" in data and takes_fast_path(data)
    assert_same(data)


def first_row_text(data: bytes) -> bytes:
    line = data.splitlines()[0]
    start = line.index(jsonl.SAMPLES_KEY) + len(jsonl.SAMPLES_KEY) + 1
    return line[start:line.index(b"]", start)]


@pytest.mark.parametrize("edit", [
    lambda row: row.replace(b',"', b', "', 1),            # space before a string: CSV would keep the quote
    lambda row: row.replace(b'",', b'" ,', 1),            # space after a string: CSV would keep the space
    lambda row: row.replace(b'"processing"', b'"a," ,'),  # the same, after a text ending in a comma
    lambda row: row.replace(b'"processing"', b"processing"),  # a bare word: not JSON at all
    lambda row: row.replace(b'"processing"', b'"pro""cessing"'),  # a doubled quote: CSV's escape, not JSON's
    lambda row: row.replace(b'"processing"', b'"a\\"b"'),  # an escaped quote
    lambda row: row.replace(b'"processing"', b'"x],[y"'),  # the row separator inside a text
    lambda row: row.replace(b'"processing"', b'"x\ry"'),   # a raw carriage return inside a text
    lambda row: row.replace(b",200,", b',"200",', 1),      # a quoted number
    lambda row: row.replace(b",200,", b",[200],", 1),      # a nested array
    lambda row: row.replace(b",200,", b",", 1),            # six fields
    lambda row: row.replace(b",200,", b",200,7,", 1),      # eight fields
    lambda row: row.replace(b",200,", b",NaN,", 1),        # not a JSON number
    lambda row: row.rsplit(b",", 1)[0] + b",NaN",
    lambda row: row.rsplit(b",", 1)[0] + b",-inf",
    lambda row: row.rsplit(b",", 1)[0] + b",+1",
    lambda row: row.rsplit(b",", 1)[0] + b",.5",
    lambda row: row.rsplit(b",", 1)[0] + b",5.",
    lambda row: row.replace(b",200,", b",0200,", 1),
    lambda row: row.rsplit(b",", 1)[0] + b",1.e5",
    lambda row: row.rsplit(b",", 1)[0] + b",1e",
    lambda row: row.rsplit(b",", 1)[0] + b",",
    lambda row: row.replace(b",200,", b",true,", 1),
], ids=["space-before", "space-after", "comma-space", "bare-word", "doubled-quote", "escape", "separator",
        "carriage-return", "quoted-number", "nested", "six", "eight", "nan", "nan-float", "inf", "plus", "dot-first", "dot-last", "leading-zero", "dot-exponent", "bare-exponent", "empty", "true"])
def test_rows_csv_could_misread_give_what_json_gives(block, edit):
    lines = block.splitlines(keepends=True)
    row = first_row_text(block)
    edited = lines[0].replace(row, edit(row), 1)
    assert edited != lines[0]
    assert_same(b"".join([edited, *lines[1:]]))


@pytest.mark.parametrize("edit", [
    lambda rec: {k: v for k, v in rec.items() if k != "samples"},   # no samples key
    lambda rec: {"samples": rec["samples"], **{k: v for k, v in rec.items() if k != "samples"}},  # not last
    lambda rec: {**rec, "probe_id": 7},                              # a number where text belongs
    lambda rec: {**rec, "upload_s": "slow"},                          # text where a number belongs
    lambda rec: {**rec, "label": {"nested": {"samples": [[1]]}}},     # the key again, nested
    lambda rec: {**rec, "milestones": [1, 2]},
    lambda rec: {**rec, "probe_id": None},
], ids=["no-samples", "samples-first", "numeric-id", "text-number", "nested-key", "milestones-list", "null-id"])
def test_records_of_another_shape_give_what_json_gives(block, edit):
    lines = block.splitlines(keepends=True)
    edited = orjson.dumps(edit(orjson.loads(lines[0]))) + b"\n"
    assert_same(b"".join([edited, *lines[1:]]))


@pytest.mark.parametrize("data", [
    b"{not json\n", b"\n\n", b"[1, 2]\n",
])
def test_junk_lines(block, data):
    assert_same(block + data)


def test_truncated_last_line_is_named(block):
    cut = block[: len(block) - 40]
    assert not takes_fast_path(cut)
    assert assert_same(cut).truncated_last


def test_pretty_printed_json_takes_the_general_path(block):
    rec = orjson.loads(block.splitlines()[0])
    data = (orjson.dumps(rec, option=orjson.OPT_INDENT_2).replace(b"\n", b" ") + b"\n") * 3
    assert not takes_fast_path(data)
    assert assert_same(data).samples.num_rows == 3 * len(rec["samples"])
