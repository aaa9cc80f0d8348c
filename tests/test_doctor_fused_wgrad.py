"""doctor-fused-wgrad: what a Megatron recipe's gradient_accumulation_fusion / defer_embedding_wgrad_compute need of
apex on the training machine (plan cannot see it). An apex without its CUDA extensions is a plain `apex` package with no
fused_weight_gradient_mlp_cuda module beside it: the tests lay out exactly that on sys.path (this machine has no apex)."""

from __future__ import annotations

import inspect

import pytest

from conftest import RECIPES
from swift_ext.runs.doctor import fused_wgrad_here
from swift_ext.spec.recipe import load_recipe

MEG_SFT = RECIPES / "qwen3_6/sft-lora-4x32g.yaml"
DEFER = ("args.pipeline_model_parallel_size=2",
         "args.megatron_extra_kwargs={defer_embedding_wgrad_compute: true}")


def codes(*over) -> list[str]:
    return [f.message for f in fused_wgrad_here(load_recipe(MEG_SFT, list(over)))]


@pytest.fixture
def apex_without_kernels(tmp_path, monkeypatch):
    (tmp_path / "apex").mkdir()
    (tmp_path / "apex" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_the_engine_sources_say_what_the_check_assumes():
    from megatron.core import model_parallel_config
    from megatron.core.tensor_parallel import layers

    source = inspect.getsource(layers)
    assert "import fused_weight_gradient_mlp_cuda" in source
    assert "module is not found" in inspect.getsource(layers.ColumnParallelLinear.__init__)
    assert "Cannot defer embedding wgrad compute when gradient accumulation fusion is not used" in \
        inspect.getsource(model_parallel_config.ModelParallelConfig.__post_init__)
    # swift.megatron imports mcore_bridge, which is not installed here: the file is read, not imported
    from swift_ext.msswift.source_reader import _package_dir

    post = (_package_dir("swift") / "megatron/arguments/megatron_args.py").read_text()
    assert "import apex" in post and "self.gradient_accumulation_fusion = False" in post


def test_defer_without_apex_is_refused_and_the_same_recipe_without_defer_is_not():
    pytest.importorskip("megatron.core")
    import importlib.util

    if importlib.util.find_spec("apex") is not None:
        pytest.skip("apex is installed here")
    (message,) = codes(*DEFER)
    assert "defer_embedding_wgrad_compute needs gradient_accumulation_fusion" in message and "apex" in message
    # ms-swift turns the fusion off without apex: a recipe that does not defer builds
    assert codes("args.pipeline_model_parallel_size=2") == []
    # gradient_accumulation_fusion false is plan's refusal (mcore-parallel), not doctor's
    assert codes(*DEFER, "args.gradient_accumulation_fusion=false") == []


def test_apex_without_its_extension_fails_the_default_fusion(apex_without_kernels):
    (message,) = codes()
    assert "fused_weight_gradient_mlp_cuda" in message and "RuntimeError" in message
    assert codes("args.gradient_accumulation_fusion=false") == []
    (kernels := apex_without_kernels / "fused_weight_gradient_mlp_cuda.py").write_text("")
    assert codes() == [] and codes(*DEFER) == []
    kernels.unlink()


def test_extra_kwargs_forcing_the_fusion_need_the_extension_even_without_apex():
    import importlib.util

    if importlib.util.find_spec("fused_weight_gradient_mlp_cuda") is not None:
        pytest.skip("apex's extension is installed here")
    (message,) = codes("args.megatron_extra_kwargs={gradient_accumulation_fusion: true}")
    assert "megatron_extra_kwargs sets gradient_accumulation_fusion" in message


def test_engine_swift_is_not_judged():
    recipe = load_recipe(RECIPES / "smoke/tiny-sft.yaml")
    assert recipe.engine == "swift" and fused_wgrad_here(recipe) == []
