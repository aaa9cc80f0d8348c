"""unfused-padding-free (swift_ext/msswift/startup_rules_megatron.py): attention_backend unfused makes ms-swift turn
padding_free off, so packing packs nothing. Said for packing and a stated padding_free, not for other backends, and
the installed lines it mirrors."""

from __future__ import annotations

import pytest

from test_msrules import MEG_SFT, problems

CODE = "unfused-padding-free"


@pytest.mark.parametrize("given, flag", [
    (["args.attention_backend=unfused"], "packing"),  # MEG_SFT packs
    (["args.attention_backend=unfused", "args.packing=false", "args.padding_free=true"], "padding_free"),
])
def test_said_under_unfused(given, flag):
    _, warnings = problems(MEG_SFT, *given)
    assert (CODE, f"args.{flag}") in warnings, warnings


@pytest.mark.parametrize("given", [[], ["args.attention_backend=fused"],
                                   ["args.attention_backend=unfused", "args.packing=false"]])
def test_not_said_otherwise(given):
    errors, warnings = problems(MEG_SFT, *given)
    assert CODE not in {r for r, _ in errors | warnings}, warnings


def test_the_installed_check_turns_padding_free_off_for_unfused():
    from swift_ext.msswift.schema import _package_dir

    root = _package_dir("swift")
    if root is None:
        pytest.skip("ms-swift is not installed here")
    text = (root / "megatron/model/utils.py").read_text(encoding="utf-8")
    body = text[text.index("def _check_padding_free"):]
    body = body[:body.index("\ndef ")]
    assert "if attention_backend == 'unfused':" in body and "args.padding_free = False" in body
