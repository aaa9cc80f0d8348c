"""infonce-env (swift_ext/msswift/input_rules.py): the recipe env's INFONCE_* values as ms-swift 4.6's InfoNCE loss
parses them (swift/loss/embedding.py InfonceLoss.__call__), each checked against those very parsers."""

from __future__ import annotations

import pytest

from test_msrules import SWIFT_SFT, problems

EMB = ["args.model=Qwen/Qwen3-Embedding-0.6B", "args.task_type=embedding", "args.loss_type=infonce"]

VALUES = [  # (env name, value, refused)
    ("INFONCE_USE_BATCH", "False", False), ("INFONCE_USE_BATCH", "on", False), ("INFONCE_USE_BATCH", "1", False),
    ("INFONCE_USE_BATCH", "batch", True), ("INFONCE_USE_BATCH", "", True),
    ("INFONCE_MASK_FAKE_NEGATIVE", "TRUE", False), ("INFONCE_INCLUDE_QQ", "enabled", True),
    ("INFONCE_TEMPERATURE", "0.02", False), ("INFONCE_TEMPERATURE", "1e-2", False),
    ("INFONCE_TEMPERATURE", "0.1,", True), ("INFONCE_FAKE_NEG_MARGIN", "ten percent", True),
    ("INFONCE_HARD_NEGATIVES", "7", False), ("INFONCE_HARD_NEGATIVES", " 3 ", False),
    ("INFONCE_HARD_NEGATIVES", "7.0", True), ("INFONCE_HARD_NEGATIVES", "all", True),
]


def _ms_swift_refuses(name: str, value: str) -> bool:
    from transformers.utils import strtobool

    parse = strtobool if name.endswith(("USE_BATCH", "FAKE_NEGATIVE", "QQ", "DD")) else \
        int if name == "INFONCE_HARD_NEGATIVES" else float
    try:
        parse(value)
    except ValueError:
        return True
    return False


@pytest.mark.parametrize("name, value, refused", VALUES, ids=[f"{n}={v!r}" for n, v, _ in VALUES])
def test_infonce_env_values(name, value, refused):
    assert _ms_swift_refuses(name, value) == refused  # the loss's own parser agrees with the case
    errors, _ = problems(SWIFT_SFT, *EMB, f"env.{name}={value}")
    assert (("infonce-env", f"env.{name}") in errors) == refused, errors


def test_only_the_infonce_loss_reads_them():
    errors, _ = problems(SWIFT_SFT, *EMB[:2], "args.loss_type=cosine_similarity", "env.INFONCE_USE_BATCH=batch")
    assert "infonce-env" not in {code for code, _ in errors}


def test_a_zero_temperature_is_said():
    _, warnings = problems(SWIFT_SFT, *EMB, "env.INFONCE_TEMPERATURE=0")
    assert ("infonce-env", "env.INFONCE_TEMPERATURE") in warnings


def test_every_encoder_rule_has_a_case():
    # msswift/encoder_rules.py: the argument rules' fail/pass cases are in test_rlhf_rules.py CASES, the env rule here
    import inspect

    from swift_ext.msswift import encoder_rules
    from test_rlhf_rules import CASES

    source = inspect.getsource(encoder_rules)
    named = {line.split('"')[1] for line in source.splitlines() if line.strip().startswith(('err("', 'warn("'))}
    assert named and named <= {c[0] for c in CASES} | {"infonce-env"}, named
