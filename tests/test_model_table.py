"""ms-swift's model -> template -> support_padding_free table (swift_ext/msswift/msswift-models.json), read from
the installed source with ast: the shipped file is what the installed ms-swift gives, the reader follows every
registration, and lookups resolve names the way ms-swift's get_matched_model_meta does."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import ROOT
from swift_ext.msswift import model_table
from swift_ext.msswift.registry_reader import build_table
from swift_ext.msswift.schema import installed_version

needs_msswift = pytest.mark.skipif(installed_version() is None, reason="ms-swift is not installed")


@needs_msswift
def test_shipped_table_is_what_the_installed_source_gives():
    shipped = json.loads(model_table.TABLE.read_text())
    assert shipped == model_table.generate(), "regenerate: python -m swift_ext.msswift.model_table"


@needs_msswift
def test_reader_follows_every_registration():
    table = build_table()
    assert table["skipped"] == []
    # ms-swift 4.6 registers a few hundred templates and model types and over a thousand model ids.
    assert len(table["templates"]) > 200 and len(table["model_types"]) > 200 and len(table["models"]) > 1000


@pytest.mark.slow
@needs_msswift
def test_table_agrees_with_ms_swift_runtime_registry():
    """Imports ms-swift (torch; ~20 s) in a child process and compares its registries with the ast table."""
    script = r"""
import json, sys, warnings
warnings.filterwarnings("ignore")
from swift.model import MODEL_MAPPING
from swift.model.model_meta import get_matched_model_meta
from swift.template import TEMPLATE_MAPPING
def default(meta):
    c = meta.candidate_templates
    return meta.template or (c[0] if len(c) == 1 else None)
names = {v.rsplit('/', 1)[-1].lower() for meta in MODEL_MAPPING.values() for g in meta.model_groups
         for m in g.models for v in (m.ms_model_id, m.hf_model_id, m.model_path) if isinstance(v, str)}
out = {"templates": {k: t.template_cls.support_padding_free for k, t in TEMPLATE_MAPPING.items()},
       "model_types": {k: {"template": default(m), "multimodal": m.is_multimodal, "reward": m.is_reward,
                           "task_type": m.task_type, "mcore_model_type": m.mcore_model_type,
                           "architectures": list(m.architectures)}
                       for k, m in MODEL_MAPPING.items()},
       "models": {}}
for n in names:
    meta = get_matched_model_meta(n)
    out["models"][n] = {"model_type": meta.model_type, "template": default(meta)}
print(json.dumps(out))
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-2000:]
    runtime = json.loads(run.stdout.strip().splitlines()[-1])
    table = build_table()
    for key in ("templates", "model_types", "models"):
        assert table[key] == runtime[key], key


def test_model_names_resolve_as_ms_swift_matches_them():
    # swift/model/model_meta.py get_model_name: hub cache paths, modelscope's '___' for '.', last component.
    assert model_table.model_name("Qwen/Qwen3.6-35B-A3B") == "qwen3.6-35b-a3b"
    assert model_table.model_name("/cache/hub/models--Qwen--Qwen3-VL-8B-Instruct/snapshots/abc/") == "qwen3-vl-8b-instruct"
    assert model_table.model_name("/data/models/Qwen/Qwen3___6-35B-A3B") == "qwen3.6-35b-a3b"
    qwen36 = model_table.template_for("Qwen/Qwen3.6-35B-A3B")
    assert (qwen36.template, qwen36.model_type, qwen36.supports_padding_free) == ("qwen3_5", "qwen3_5_moe", True)
    assert model_table.template_for("/data/models/Qwen/Qwen3___6-35B-A3B") == qwen36


def test_lookup_follows_ms_swift_precedence():
    gpt_oss = model_table.template_for("openai/gpt-oss-20b")
    assert (gpt_oss.template, gpt_oss.supports_padding_free) == ("gpt_oss", False)
    # A named template wins over the registry's; an unknown model with a template whose support is None is unknown.
    assert model_table.template_for("openai/gpt-oss-20b", template="qwen3").supports_padding_free is True
    assert model_table.template_for("/ckpt/my-model", template="qwen3").supports_padding_free is None
    assert model_table.template_for("/ckpt/my-model") is None
    # An explicit model_type replaces the matched one (get_model_info_meta): multimodal, template None -> cannot pack.
    vl2 = model_table.template_for("/ckpt/my-model", model_type="deepseek_vl2")
    assert (vl2.model_type, vl2.supports_padding_free) == ("deepseek_vl2", False)
    # ... and a type with several candidate templates and none of its own leaves the choice to ms-swift.
    assert model_table.template_for("/ckpt/my-model", model_type="ernie_vl") is None
    assert model_table.model_meta("deepseek-ai/DeepSeek-V4.1-Flash")["model_type"] == "deepseek_v41"


def test_lookup_imports_neither_torch_nor_ms_swift():
    code = ("import sys; from swift_ext.msswift.model_table import template_for; template_for('Qwen/Qwen3-8B'); "
            "print(sorted(m for m in ('torch', 'swift', 'transformers') if m in sys.modules))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"


def test_an_unreadable_registry_of_another_version_keeps_the_shipped_table(monkeypatch, tmp_path):
    """An ms-swift whose registry this reader cannot follow must not stop a plan: the shipped table answers."""
    from swift_ext.msswift import registry_reader

    def unreadable():
        raise SyntaxError("registry laid out differently")

    monkeypatch.setenv("SWIFT_EXT_CACHE", str(tmp_path))
    monkeypatch.setattr(model_table, "installed_version", lambda: "99.0.0")
    monkeypatch.setattr(registry_reader, "build_table", unreadable)
    model_table.load.cache_clear()
    try:
        assert model_table.load()["ms_swift"] == json.loads(model_table.TABLE.read_text())["ms_swift"]
    finally:
        model_table.load.cache_clear()


# -- mcore-bridge's registry (swift_ext/msswift/mcore_support.py, mcore-bridge-models.json) --------------------------

@needs_msswift
def test_mcore_bridge_table_is_read_from_the_release_ms_swift_requires():
    import re

    from swift_ext.msswift import mcore_support

    shipped = json.loads(mcore_support.TABLE.read_text())
    pin = mcore_support.ms_swift_pin()
    assert shipped["ms_swift"] == installed_version() and shipped["ms_swift_requires"] == pin
    floor = re.search(r">=\s*([\w.]+)", pin).group(1)
    assert shipped["mcore_bridge"] == floor, "regenerate: python -m swift_ext.msswift.mcore_support <that wheel> ..."
    assert shipped["source"].startswith(f"mcore_bridge-{floor}-") and "sha256" in shipped["source"]
    assert all(r["mcore_model_type"] for r in shipped["registrations"])
    # the model this project trains, and the seven types ms-swift maps itself (ModelMeta.mcore_model_type)
    qwen36 = model_table.model_meta("Qwen/Qwen3.6-35B-A3B")
    assert mcore_support.mcore_model_type(qwen36["model_type"], qwen36["mcore_model_type"], shipped) == \
        mcore_support.McoreSupport("qwen3_5", "always", floor)
    overrides = {k: v["mcore_model_type"] for k, v in model_table.load()["model_types"].items() if v["mcore_model_type"]}
    assert overrides["qwen3_emb"] == "qwen3_emb" and overrides["qwen3_reranker"] == "gpt" and len(overrides) >= 5


def test_mcore_bridge_reader_follows_conditional_registrations(tmp_path):
    from swift_ext.msswift import mcore_support

    pkg = tmp_path / "mcore_bridge"
    (pkg / "model" / "gpts").mkdir(parents=True)
    (pkg / "model" / "mm_gpts").mkdir()
    (pkg / "version.py").write_text("__version__ = '9.9'\n")
    (pkg / "model" / "register.py").write_text("")
    (pkg / "model" / "constant.py").write_text("class LLMModelType:\n    gpt = 'gpt'\n    nx = 'nx'\n    hy = 'hy'\n")
    (pkg / "model" / "gpts" / "__init__.py").write_text("from . import llm, nx, nx_gdn, hy\n")
    (pkg / "model" / "mm_gpts" / "__init__.py").write_text("")
    (pkg / "model" / "gpts" / "llm.py").write_text("register_model(ModelMeta(ModelType.gpt, ['llama', 'qwen3']))\n")
    (pkg / "model" / "gpts" / "nx.py").write_text("if not use_gdn:\n    register_model(ModelMeta(ModelType.nx, ['nx']))\n")
    (pkg / "model" / "gpts" / "nx_gdn.py").write_text("if use_gdn:\n    register_model(ModelMeta(ModelType.nx, ['nx']))\n")
    (pkg / "model" / "gpts" / "hy.py").write_text("if HYBRID:\n    register_model(ModelMeta(ModelType.hy, ['hy']))\n"
                                                  "def later():\n    register_model(ModelMeta('zz', ['zz']))\n")
    table = mcore_support.read_registry(pkg)
    assert table["mcore_bridge"] == "9.9" and len(table["registrations"]) == 4
    assert table["skipped"] == ["mcore_bridge/model/gpts/hy.py:4 (register_model outside module-level code)"]
    support = {t: mcore_support.mcore_model_type(t, None, table).registered for t in ("qwen3", "nx", "hy", "mistral")}
    assert support == {"qwen3": "always", "nx": "always", "hy": "conditional", "mistral": "no"}
    assert mcore_support.mcore_model_type("mistral", "gpt", table).mcore_model_type == "gpt"  # ms-swift's own wins
