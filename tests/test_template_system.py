"""msswift/template_system.py's set against the installed ms-swift (TEMPLATE_MAPPING's support_system), and the
template-system rule on the system argument and on a dataset's system turns."""

from __future__ import annotations

import json

from swift_ext.msswift.template_system import NO_SYSTEM_TEMPLATES
from swift_ext.planner.plan import make_plan
from swift_ext.spec.recipe import load_recipe
from test_msrules import SWIFT_SFT, problems

OCR = ["args.model=deepseek-ai/DeepSeek-OCR-2", "args.template=null"]  # the base recipe names qwen3_5


def test_set_is_the_installed_registry():
    from swift.template import TEMPLATE_MAPPING

    assert NO_SYSTEM_TEMPLATES == {name for name, meta in TEMPLATE_MAPPING.items() if not meta.support_system}


def test_generation_template_has_no_system():
    # what `pt` (use_chat_template false) builds: Template.__init__ -> to_generate_template_meta()
    from swift.template import TEMPLATE_MAPPING

    assert not TEMPLATE_MAPPING["qwen2_5"].to_generate_template_meta().support_system


def test_system_argument():
    errors, _ = problems(SWIFT_SFT, *OCR, "args.system=You are an OCR engine.")
    assert ("template-system", "args.system") in errors, errors
    errors, _ = problems(SWIFT_SFT, "args.model=Qwen/Qwen2.5-VL-7B-Instruct", "args.system=You are an OCR engine.")
    assert "template-system" not in {c for c, _ in errors}, errors
    errors, _ = problems(SWIFT_SFT, "args.model=Qwen/Qwen3-8B", "command=pt", "args.system=Be brief.")
    assert ("template-system", "args.system") in errors, errors
    errors, _ = problems(SWIFT_SFT, "args.model=Qwen/Qwen3-8B", "command=pt", "args.use_chat_template=true",
                         "args.system=Be brief.")
    assert "template-system" not in {c for c, _ in errors}, errors


def _rows(tmp_path, systems: int, plain: int):
    path = tmp_path / "ocr.jsonl"
    row = {"messages": [{"role": "user", "content": "<image>Read the text."}, {"role": "assistant", "content": "x"}],
           "images": ["https://example.com/a.png"]}
    sys_row = {**row, "messages": [{"role": "system", "content": "OCR."}, *row["messages"]]}
    path.write_text("".join(json.dumps(r) + "\n" for r in [sys_row] * systems + [row] * plain))
    return path


def _codes(path, *extra):
    recipe = load_recipe(SWIFT_SFT, [*OCR, f"args.dataset=[{path}]", "args.val_dataset=null", *extra])
    plan = make_plan(recipe)
    return ({(f.code, f.severity) for f in plan.errors}, {(f.code, f.severity) for f in plan.warnings})


def test_system_rows(tmp_path):
    errors, _ = _codes(_rows(tmp_path, 3, 0))
    assert ("template-system", "error") in errors, errors
    errors, warnings = _codes(_rows(tmp_path, 1, 2))
    assert ("template-system", "warning") in warnings and "template-system" not in {c for c, _ in errors}
    errors, warnings = _codes(_rows(tmp_path, 0, 3))
    assert "template-system" not in {c for c, _ in errors | warnings}
