"""quant-method-megatron (swift_ext/msswift/startup_rules.py quant_bits): quant_method parses on the Megatron engine but
nothing there reads it -- QLoRA trains as LoRA over bf16 weights. Said on Megatron, not on the transformers engine
(where it quantizes), and read against the installed ms-swift: no Megatron module consumes quant_method."""

from __future__ import annotations

import pytest

from test_msrules import MEG_SFT, SWIFT_SFT, problems


@pytest.mark.parametrize("given", [["args.quant_method=bnb", "args.quant_bits=4"], ["args.quant_method=fp8"]])
def test_said_on_megatron(given):
    errors, warnings = problems(MEG_SFT, *given)
    assert ("quant-method-megatron", "args.quant_method") in warnings, warnings


@pytest.mark.parametrize("base, given", [(MEG_SFT, []), (SWIFT_SFT, ["args.quant_method=bnb", "args.quant_bits=4"])])
def test_not_said_without_it_or_where_it_quantizes(base, given):
    errors, warnings = problems(base, *given)
    assert "quant-method-megatron" not in {r for r, _ in errors | warnings}, warnings


def test_no_megatron_module_reads_quant_method():
    from swift_ext.msswift.schema import _package_dir

    root = _package_dir("swift")
    if root is None:
        pytest.skip("ms-swift is not installed here")
    readers = [p for p in (root / "megatron").rglob("*.py") if "quant_method" in p.read_text(encoding="utf-8")
               or "get_quantization_config" in p.read_text(encoding="utf-8")]
    assert readers == [], readers
    sft = (root / "megatron/pipelines/train/sft.py").read_text(encoding="utf-8")
    assert "kwargs = {'load_model': False}" in sft and "with torch.device('meta'):" in sft
