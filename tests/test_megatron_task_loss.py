"""megatron-task-loss (swift_ext/msswift/startup_rules_megatron.py): Megatron's embedding and reranker trainers build
loss_map[loss_type] unguarded. The refusing and passing recipes are in test_startup_rules.CASES; here, the engines
and task types it does not judge, a plugin that registers the loss, and the installed lines it mirrors."""

from __future__ import annotations

import pytest

from test_msrules import MEG_SFT, SWIFT_SFT, problems

CODE = "megatron-task-loss"


@pytest.mark.parametrize("base, given", [
    (SWIFT_SFT, ["args.task_type=embedding"]),  # the transformers engine skips a loss_type of None
    (MEG_SFT, []),  # causal_lm: MegatronTrainer reads no loss_map
])
def test_not_judged_elsewhere(base, given):
    errors, _ = problems(base, *given)
    assert CODE not in {r for r, _ in errors}, errors


def test_a_plugin_loss_passes(tmp_path):
    plugin = tmp_path / "loss_plugin.py"
    plugin.write_text("from swift.loss import loss_map\nclass MyLoss:\n    pass\nloss_map['my_infonce'] = MyLoss\n")
    errors, _ = problems(MEG_SFT, "args.task_type=embedding", "args.loss_type=my_infonce",
                         f"args.external_plugins={plugin}")
    assert CODE not in {r for r, _ in errors}, errors
    errors, _ = problems(MEG_SFT, "args.task_type=embedding", "args.loss_type=other_loss",
                         f"args.external_plugins={plugin}")  # the plugin is read: a name it lacks is still refused
    assert (CODE, "args.loss_type") in errors, errors


def test_the_installed_trainers_index_loss_map_unguarded():
    from swift_ext.msswift.schema import _package_dir

    root = _package_dir("swift")
    if root is None:
        pytest.skip("ms-swift is not installed here")
    for name in ("embedding_trainer.py", "reranker_trainer.py"):
        text = (root / "megatron/trainers" / name).read_text(encoding="utf-8")
        assert "self._loss_func = loss_map[args.loss_type](args, self)" in text, name
    mixin = (root / "trainers/mixin.py").read_text(encoding="utf-8")
    assert "if args.loss_type is not None:\n            res['compute_loss_func'] = loss_map[args.loss_type]" in mixin


@pytest.mark.parametrize("model", ["JinaAI/jina-reranker-m0", "BAAI/bge-reranker-v2-m3"])
def test_a_registry_reranker_is_routed_to_the_reranker_trainer(model):
    # No Megatron task_type argument takes 'reranker', but ms-swift's registry gives it to these models and
    # MegatronSft.prepare_trainer sends 'reranker' to MegatronRerankerTrainer, which indexes loss_map unguarded.
    from swift_ext.msswift.schema import _package_dir

    if _package_dir("swift") is None:
        pytest.skip("ms-swift is not installed here: the registry decides the task")
    errors, _ = problems(MEG_SFT, f"args.model={model}")
    assert (CODE, "args.loss_type") in errors, errors
    errors, _ = problems(MEG_SFT, f"args.model={model}", "args.loss_type=pointwise_reranker")
    assert CODE not in {r for r, _ in errors}, errors
