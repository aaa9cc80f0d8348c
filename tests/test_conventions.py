"""ms-swift's command-line spellings read in one place (swift_ext.msswift.conventions)."""

from __future__ import annotations

import pytest

from swift_ext.msswift.conventions import flag_groups, parse_dataset_entry, without_sample_suffix


def test_flag_groups_keep_values_with_their_flag():
    assert flag_groups(["--a", "1", "2", "--b", "--c", "x"]) == [["--a", "1", "2"], ["--b"], ["--c", "x"]]
    assert flag_groups(["config.yaml", "--a", "1"]) == [["config.yaml"], ["--a", "1"]]
    assert flag_groups([]) == []


@pytest.mark.parametrize("entry, base, count", [
    ("data.jsonl#100", "data.jsonl", 100), ("hf::org/ds:sub#5", "hf::org/ds:sub", 5), ("data.jsonl", "data.jsonl", None),
    ("a#b#7", "a#b", 7),  # DatasetSyntax.parse splits at the last '#'
])
def test_dataset_sample_suffix_as_ms_swift_reads_it(entry, base, count):
    parsed = parse_dataset_entry(entry)
    assert (parsed.base, parsed.sample_count, parsed.bad_sample) == (base, count, False)
    assert without_sample_suffix(entry) == base


def test_a_suffix_int_refuses_is_bad_and_an_existing_file_is_taken_whole(tmp_path):
    assert parse_dataset_entry("data.jsonl#ten").bad_sample
    odd = tmp_path / "odd#name.jsonl"
    odd.write_text("{}\n")
    assert parse_dataset_entry(str(odd)).sample is None and without_sample_suffix(str(odd)) == str(odd)


@pytest.mark.parametrize("text, ftype, typed", [
    ("true", {"kind": "bool"}, True), ("1", {"kind": "bool"}, True), ("no", {"kind": "bool"}, False),
    ("4", {"kind": "int"}, 4), ("four", {"kind": "int"}, "four"), ("1e-4", {"kind": "float"}, 1e-4),
    ("007", {"kind": "str"}, "007"), ("yes", None, "yes"), ("true", None, True), ("5e-5", None, 5e-5),
])
def test_text_typed_as_ms_swifts_parser_types_it(text, ftype, typed):
    from swift_ext.msswift.conventions import typed_text

    assert typed_text(text, ftype) == typed and type(typed_text(text, ftype)) is type(typed)
