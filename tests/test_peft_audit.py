"""The audit of the installed peft 0.20 / trl 0.29.1 checks ms-swift 4.6's transformers engine reaches
(bench/peft_audit): peft_checks.tsv's plan column must be what `plan` says today on each case (a published working
setup changed until the library's check trips), and the peft-config refusals fire on their flag while the nearest
legal variant plans clean."""

from __future__ import annotations

import csv
import sys

import pytest

from conftest import FIXTURES, ROOT
from swift_ext.planner.plan import make_plan
from swift_ext.spec.recipe import load_recipe

AUDIT = ROOT / "bench" / "peft_audit"
sys.path.insert(0, str(AUDIT))
from peft_audit import verdict  # noqa: E402
from peft_cases import CASES, DPO, MISSED, NOT_REACHABLE  # noqa: E402

ROWS = list(csv.reader((AUDIT / "peft_checks.tsv").read_text(encoding="utf-8").splitlines(), delimiter="\t"))
CASE_ROWS = {row[0]: row for row in ROWS[1:] if row[0] != "-"}
WORKING = FIXTURES / "working"


def test_every_case_has_a_row_and_every_row_a_case():
    assert ROWS[0][5:] == ["recipe overrides used", "plan verdict", "rule code"]
    assert sorted(CASE_ROWS) == sorted(c[0] for c in CASES)
    assert len([r for r in ROWS[1:] if r[0] == "-"]) == len(NOT_REACHABLE)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_plan_column_is_what_plan_says_today(case):
    cid, where, _cond, flag, base, overrides = case
    row = CASE_ROWS[cid]
    assert row[1] == where
    assert (row[6], row[7]) == verdict(base, overrides, flag), f"{cid}: peft_checks.tsv is stale; rerun peft_audit.py"


def test_reachable_checks_are_refused_on_their_flag_but_the_listed_misses():
    assert {cid for cid, r in CASE_ROWS.items() if r[6] != "refused-on-flag"} == MISSED


def _refused(*overrides: str, base: str = DPO) -> set[str]:
    result = make_plan(load_recipe(WORKING / base, list(overrides)), oracle=False)
    return {p.path for p in result.errors if p.code == "peft-config"}


def test_published_adapter_setup_is_clean():
    assert _refused() == set()


@pytest.mark.parametrize("value", ["true", "false", "gaussian", "pissa", "pissa_niter_16", "olora", "orthogonal",
                                   "eva"])
def test_init_weights_peft_knows(value):
    assert _refused(f"args.init_weights={value}") == set()


def test_init_weights_loftq_and_unknown():
    assert _refused("args.init_weights=loftq") == {"args.init_weights"}
    assert _refused("args.init_weights=kaiming") == {"args.init_weights"}
    assert _refused("args.init_weights=corda") == {"args.init_weights"}  # needs preprocess_corda, never run
    # swift's own LoRA (use_swift_lora) does not build peft's LoraConfig; a loaded adapter skips prepare_adapter
    assert _refused("args.init_weights=kaiming", "args.use_swift_lora=true") == set()
    assert _refused("args.init_weights=loftq", "args.adapters=[output/v0/checkpoint-100]") == set()


def test_orthogonal_init_needs_an_even_rank():
    assert _refused("args.init_weights=orthogonal", "args.lora_rank=7") == {"args.lora_rank"}
    assert _refused("args.init_weights=orthogonal", "args.lora_rank=8") == set()
    assert _refused("args.lora_rank=7") == set()


def test_adalora():
    ada = "args.tuner_type=adalora"
    assert _refused(ada) == set()
    assert _refused(ada, "args.use_dora=true") == {"args.use_dora"}
    assert _refused(ada, "args.adalora_orth_reg_weight=-0.1") == {"args.adalora_orth_reg_weight"}
    assert _refused(ada, "args.adalora_orth_reg_weight=0") == set()
    assert _refused(ada, "args.max_steps=100", "args.adalora_tfinal=100") == {"args.adalora_tfinal"}
    assert _refused(ada, "args.max_steps=100", "args.adalora_tinit=10", "args.adalora_tfinal=89") == set()
    assert _refused(ada, "args.adalora_tfinal=100") == set()  # total_step from the dataset: not judged
    assert _refused("args.use_dora=true") == set()  # DoRA under plain LoRA is fine
    # AdaLoraConfig.__post_init__ runs LoraConfig's: loftq without loftq_config raises there too; an unknown name
    # does not (AdaLoRA's layers initialise their own way)
    assert _refused(ada, "args.init_weights=loftq") == {"args.init_weights"}
    assert _refused(ada, "args.init_weights=kaiming") == set()


def test_boft_block_size_xor_num():
    boft = "args.tuner_type=boft"
    assert _refused(boft) == set()  # ms-swift's defaults 4 / 0
    assert _refused(boft, "args.boft_block_size=0") == {"args.boft_block_size"}
    assert _refused(boft, "args.boft_block_num=2") == {"args.boft_block_num"}
    assert _refused(boft, "args.boft_block_size=0", "args.boft_block_num=2") == set()


def test_fourierft_and_bone():
    assert _refused("args.tuner_type=fourierft", "args.fourier_n_frequency=0") == {"args.fourier_n_frequency"}
    assert _refused("args.tuner_type=fourierft") == set()
    assert _refused("args.tuner_type=bone") == {"args.tuner_type"}
    assert _refused("args.tuner_type=bone", "args.resume_from_checkpoint=output/v0/checkpoint-100") == set()


def test_target_modules_none_found():
    def refused(*overrides):
        result = make_plan(load_recipe(WORKING / DPO, list(overrides)), oracle=False)
        return {p.path for p in result.errors if p.code == "peft-target-modules"}
    assert refused("args.target_modules=[no_such_proj]") == {"args.target_modules"}
    assert refused("args.tuner_type=boft", "args.target_modules=[qkv_proj]") == {"args.target_modules"}
    assert refused("args.target_modules=[no_such_proj,q_proj]") == set()  # one match is enough for peft
    assert refused("args.target_modules=[all-linear]") == set()
    assert refused("args.target_modules=[q_proj,v_proj]") == set()
    assert refused("args.target_modules=[no_such_proj]", "args.use_swift_lora=true") == set()
    assert refused("args.target_modules=[no_such_proj]", "args.adapters=[output/v0/checkpoint-100]") == set()
    assert refused("args.target_modules=[model.layers.0.self_attn.qq]") == set()  # dotted paths not judged


def test_target_modules_on_a_guessed_shape_or_with_plugins_is_not_refused():
    """A path plan cannot read gets the bundled config of its directory's name (shape_lookup.
    _bundled_by_directory_name): the directory may hold another architecture, so a miss is a warning there; an
    external_plugins file may register the model's loader (adding modules) or a tuner under that tuner_type
    (tuner_plugin tuners_map, which TunerMixin.prepare_model prefers over prepare_adapter)."""
    def found(*overrides):
        result = make_plan(load_recipe(WORKING / DPO, list(overrides)), oracle=False)
        return ({p.path for p in result.errors if p.code == "peft-target-modules"},
                {p.path for p in result.warnings if p.code == "peft-target-modules"})
    miss = "args.target_modules=[no_such_proj]"
    assert found(miss) == ({"args.target_modules"}, set())  # the hub id's own config: still refused
    assert found(miss, "args.model=/data/models/Qwen2.5-7B-Instruct") == (set(), {"args.target_modules"})
    assert found("args.target_modules=[q_proj]", "args.model=/data/models/Qwen2.5-7B-Instruct") == (set(), set())
    assert found(miss, "args.external_plugins=[plugin.py]") == (set(), set())
