"""The one swift-ext cache folder, and writes into it that a concurrent reader never sees half-done.

Two `make test` runs at once share the cache; these tests run real concurrent processes against a
private SWIFT_EXT_CACHE.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import sys
from pathlib import Path

import platformdirs
import pytest

from conftest import swift_ext
from swift_ext.spec.cachedirs import build_dir_atomic, cache_dir, cache_root, write_text_atomic


def test_swift_ext_cache_wins_exactly(monkeypatch, tmp_path):
    monkeypatch.setenv("SWIFT_EXT_CACHE", str(tmp_path / "c"))
    assert cache_root() == tmp_path / "c"
    assert cache_dir("stats") == tmp_path / "c" / "stats"


def test_without_swift_ext_cache_the_user_cache_folder(monkeypatch, tmp_path):
    for value in (None, ""):  # an empty variable counts as unset, as it always did
        if value is None:
            monkeypatch.delenv("SWIFT_EXT_CACHE", raising=False)
        else:
            monkeypatch.setenv("SWIFT_EXT_CACHE", value)
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
        assert cache_root() == Path(platformdirs.user_cache_dir("swift-ext", appauthor=False))
        if sys.platform.startswith("linux"):  # what the old XDG rule gave
            assert cache_root() == tmp_path / "xdg" / "swift-ext"


def _writer(path: str, tag: str, rounds: int, start) -> None:
    start.wait()
    for i in range(rounds):
        # big enough that a plain write_text is visibly non-atomic to a reader
        write_text_atomic(Path(path), json.dumps({"tag": tag, "i": i, "pad": tag * 200_000}))


def test_concurrent_writers_never_show_a_reader_half_a_file(tmp_path):
    target = tmp_path / "cache" / "entry.json"
    write_text_atomic(target, json.dumps({"tag": "seed", "i": -1, "pad": ""}))
    ctx = mp.get_context("fork")
    start = ctx.Barrier(3)
    writers = [ctx.Process(target=_writer, args=(str(target), tag, 40, start)) for tag in "ab"]
    for w in writers:
        w.start()
    start.wait()
    reads = 0
    while any(w.is_alive() for w in writers) or reads == 0:
        data = json.loads(target.read_text())  # raises on a torn file
        assert data["pad"] == data["tag"] * 200_000 or data["tag"] == "seed"
        reads += 1
    for w in writers:
        w.join()
        assert w.exitcode == 0
    assert json.loads(target.read_text())["i"] == 39
    assert [p.name for p in target.parent.iterdir()] == ["entry.json"], "temporary files left behind"


def _complete(p: Path) -> bool:
    return (p / "done").is_file()


def _builder(target: str, tag: str, both_building, out) -> None:
    def build(folder: Path) -> None:
        (folder / "weights").write_text(tag * 1000)
        both_building.wait()  # both processes are mid-build: exactly one rename can win
        (folder / "done").write_text(tag)

    result = build_dir_atomic(Path(target), build, _complete)
    out.put((tag, str(result), (result / "done").read_text(), (result / "weights").read_text()))


def test_two_processes_building_one_folder_both_end_with_a_complete_one(tmp_path):
    target = tmp_path / "cache" / "models" / "m-v1"
    ctx = mp.get_context("fork")
    both_building, out = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_builder, args=(str(target), tag, both_building, out)) for tag in "ab"]
    for p in procs:
        p.start()
    results = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join()
        assert p.exitcode == 0
    winner = (target / "done").read_text()
    assert winner in ("a", "b")
    for tag, path, done, weights in results:
        assert path == str(target) and done == winner and weights == winner * 1000  # one whole model, not a mix
    assert sorted(p.name for p in target.parent.iterdir()) == ["m-v1"], "build folders left behind"


def test_a_half_built_folder_from_an_old_in_place_build_is_replaced(tmp_path):
    target = tmp_path / "m-v1"
    target.mkdir()
    (target / "weights").write_text("partial")  # no `done`: interrupted

    def build(folder: Path) -> None:
        (folder / "weights").write_text("whole")
        (folder / "done").write_text("x")

    assert build_dir_atomic(target, build, _complete) == target
    assert (target / "weights").read_text() == "whole"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m-v1"]


def test_a_complete_folder_is_not_rebuilt(tmp_path):
    target = tmp_path / "m-v1"
    target.mkdir()
    (target / "done").write_text("x")

    def build(folder: Path) -> None:
        raise AssertionError("rebuilt a complete folder")

    assert build_dir_atomic(target, build, _complete) == target


@pytest.mark.slow
def test_two_build_model_commands_at_once_share_one_complete_tiny_model(tmp_path):
    import subprocess

    from conftest import ROOT

    env = {**os.environ, "PYTHONPATH": str(ROOT), "SWIFT_EXT_CACHE": str(tmp_path / "cache")}
    procs = [subprocess.Popen([sys.executable, "-m", "swift_ext", "build-model"], env=env, cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    paths = {out.strip().splitlines()[-1] for out, _ in outs}
    assert len(paths) == 1
    model = Path(paths.pop())
    assert (model / "swift-ext-complete").is_file()
    assert json.loads((model / "config.json").read_text())["model_type"] == "qwen3_5_moe"
    assert sorted(p.name for p in model.parent.iterdir()) == [model.name], "build folders left behind"
    again = swift_ext("build-model", env={"SWIFT_EXT_CACHE": str(tmp_path / "cache")})
    assert again.stdout.strip() == str(model)
