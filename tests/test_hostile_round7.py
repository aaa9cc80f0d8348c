"""A seventh hostile round: the sixth round's leftovers. Each test is a case that passed silently or gave an error
without a way out on the code before it: a byte-order mark in the middle of a JSONL file (what `cat a.jsonl
b.jsonl` makes of two Windows files), a JSONL file saved as UTF-16 or UTF-32 (PowerShell's `>`), an evaluation
time limit sbatch would refuse only at submit, and an `extends` that names no file."""

from __future__ import annotations

import json
import shlex
import subprocess

import pytest

from conftest import RECIPES
from swift_ext.cli.main import run_cli

TINY_SFT = RECIPES / "smoke/tiny-sft.yaml"
ROW = json.dumps({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]})
BOM = b"\xef\xbb\xbf"


def cli(capsys, *argv) -> tuple[int, str, str]:
    code = run_cli([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "internal error" not in err and "Traceback" not in err, err[-2000:]
    return code, out, err


def finding_line(out: str, path) -> str:
    return next(line for line in out.splitlines() if line.startswith(str(path)))


# --- 1. a byte-order mark past the first line ----------------------------------------------------------------------

def test_a_byte_order_mark_inside_the_file_is_named_with_a_command_that_removes_it(capsys, write):
    # the first line's mark is accepted (ms-swift's loader reads utf-8-sig); the second file's mark, after `cat`,
    # starts a line of its own and was reported as "invalid character (byte 0)", nothing more
    path = write("joined.jsonl", BOM + ROW.encode() + b"\n" + BOM + ROW.encode() + b"\n")
    code, out, _ = cli(capsys, "data", "check", path)
    assert code == 1
    line = finding_line(out, path)
    assert line.startswith(f"{path}:2: E001") and "byte-order mark" in line
    command = line.split("remove it: ", 1)[1]
    subprocess.run(command, shell=True, check=True)  # the command given really mends the file
    assert path.read_bytes() == (ROW + "\n").encode() * 2  # every mark gone: ms-swift needs none
    code, out, _ = cli(capsys, "data", "check", path)
    assert "E001" not in out


# --- 2. UTF-16 / UTF-32 files ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("encoding, named", [("utf-16", "UTF-16LE (with a byte-order mark)"), ("utf-16-le", "UTF-16LE"),
                                             ("utf-16-be", "UTF-16BE"), ("utf-32", "UTF-32LE (with a byte-order mark)")])
def test_a_wide_encoding_is_named_with_the_conversion(capsys, write, encoding, named):
    # was "binary data, not JSON Lines": true for ms-swift, which reads UTF-8, but no way to mend it
    path = write("rows.jsonl", ((ROW + "\n") * 2).encode(encoding))
    code, out, _ = cli(capsys, "data", "check", path)
    assert code == 1
    line = finding_line(out, path)
    assert "E005" in line and f"{named} text, not UTF-8" in line
    command = line.split("convert it: ", 1)[1]
    assert shlex.split(command)[:4] == ["iconv", "-f", named.split()[0], "-t"]
    if subprocess.run(["iconv", "--version"], capture_output=True).returncode == 0:
        subprocess.run(command, shell=True, check=True)
        code, out, _ = cli(capsys, "data", "check", path.with_name("rows.utf8.jsonl"))
        assert code == 0 or "E00" not in out


def test_binary_data_that_is_no_text_encoding_is_still_called_binary(capsys, write):
    path = write("rows.jsonl", b"\x00\x01\x02garbage\x00" * 10)
    _, out, _ = cli(capsys, "data", "check", path)
    assert "binary data, not JSON Lines" in finding_line(out, path)


# --- 3. eval.launch.time --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["forever", "1h", "10:00:00:00", "-5", "1:00:00:00"])
def test_an_eval_time_limit_sbatch_refuses_is_refused_by_plan(capsys, value):
    # was accepted by plan and refused only when `submit` built the evaluation job's sbatch line
    code, _, err = cli(capsys, "plan", TINY_SFT, f"eval.launch.time={value}")
    assert code == 2
    assert "eval.launch.time: not a Slurm time limit" in err


@pytest.mark.parametrize("value", ["30", "01:00:00", "10:00:00", "2-00:00:00", "1-12", "unlimited", "INFINITE",
                                   "-1"])  # Slurm's time_str2secs: "-1" is INFINITE
def test_time_limits_slurm_reads_plan(capsys, value):
    code, _, err = cli(capsys, "plan", TINY_SFT, f"eval.launch.time={value}")
    assert code == 0, err


# --- 4. extends naming no file --------------------------------------------------------------------------------------

@pytest.mark.parametrize("extends", ["''", "['  ']", "0", "false"])
def test_an_extends_that_names_no_file_is_refused(capsys, write, extends):
    # `extends: ''` (a template left unfilled) and `extends: 0` read as "no base" and planned without it
    path = write("r.yaml", f"extends: {extends}\n" + TINY_SFT.read_text())
    code, _, err = cli(capsys, "plan", path)
    assert code == 2
    assert f"{path}:1:1: extends:" in err


@pytest.mark.parametrize("extends", ["[]", "null"])
def test_an_empty_extends_list_still_means_no_base(capsys, write, extends):
    path = write("r.yaml", f"extends: {extends}\n" + TINY_SFT.read_text())
    code, _, err = cli(capsys, "plan", path)
    assert code == 0, err
