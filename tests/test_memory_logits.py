"""The floor under the transformers engine's loss (planner/memory_logits.py): the weights plus the logits of the longest
answer a recipe's local data certainly trains. The bytes per logit are measured here through the installed model and
loss code; the refusal is checked on a recipe whose data holds one long answer, and its near-by fitting setups."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch.multiprocessing.reductions import StorageWeakRef
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from swift_ext.planner.memory_logits import BYTES_PER_LOGIT
from swift_ext.planner.plan import make_plan
from swift_ext.spec.recipe import load_recipe


class LiveVocabBytes(TorchDispatchMode):
    """Bytes of the live storages of the [tokens, vocab] tensors the ops create (at least `rows` x vocab elements,
    the vocabulary last: not the 64 x vocab copy of the head's weight CPU's linear makes), and their peak with the
    op at it."""

    def __init__(self, rows: int, vocab: int):
        super().__init__()
        self.rows, self.vocab, self.refs, self.peak, self.at = rows, vocab, {}, 0, None

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor) and t.shape[-1:] == (self.vocab,) and t.numel() >= self.rows * self.vocab:
                s = t.untyped_storage()
                self.refs.setdefault(s.data_ptr(), (StorageWeakRef(s), s.nbytes()))
        self.refs = {k: v for k, v in self.refs.items() if not v[0].expired()}
        live = sum(n for _, n in self.refs.values())
        if live > self.peak:
            self.peak, self.at = live, func.__name__
        return out


@pytest.fixture(scope="module")
def tiny_model():
    from transformers import AutoModelForCausalLM

    from swift_ext.planner.tinymodel import ensure_model

    return AutoModelForCausalLM.from_pretrained(ensure_model("tiny-qwen3_6-moe"), dtype=torch.bfloat16)


@pytest.mark.parametrize("trainer_loss", [False, True])
def test_the_loss_holds_10_then_12_bytes_per_logit_of_each_trained_token(tiny_model, trainer_loss):
    from swift.trainers.mixin import SwiftMixin
    from swift.trainers.utils import per_token_loss_func

    length, trained = 160, 120
    ids = torch.randint(0, 1000, (1, length))
    labels = ids.clone()
    labels[:, :length - trained] = -100
    inputs = {"input_ids": ids, "labels": labels}
    # ms-swift's own logits_to_keep for a one-row batch (packing, padding_free, batch size 1)
    owner = SimpleNamespace(template=SimpleNamespace(sequence_parallel_size=1),
                            args=SimpleNamespace(tuner_backend="peft"))
    SwiftMixin.prepare_logits_to_keep(owner, inputs)
    rows = int(inputs["logits_to_keep"].sum())
    assert rows == trained + 1  # a logits row for each position whose next token is trained, and the last one
    logits = rows * tiny_model.config.vocab_size
    live = LiveVocabBytes(rows, tiny_model.config.vocab_size)
    with live:
        if trainer_loss:  # Seq2SeqTrainer took the labels out (loss_scale, channel loss, loss_type cross_entropy)
            out = tiny_model(input_ids=ids, logits_to_keep=inputs["logits_to_keep"])
            loss = per_token_loss_func(out, inputs["labels"]).sum()
        else:  # the model's own ForCausalLMLoss
            out = tiny_model(**inputs)
            loss = out.loss
    forward = (live.peak / logits, live.at)
    del out  # the trainer drops the outputs when compute_loss returns, before the backward
    live.peak = 0
    with live:
        loss.backward()
    assert forward == (10.0, "_log_softmax.default")  # bf16 logits + fp32 copy + fp32 log_softmax
    assert (live.peak / logits, live.at) == (BYTES_PER_LOGIT, "_log_softmax_backward_data.default")


def _recipe(tmp_path, answer_words: int, *overrides: str, gpu: str = "A10"):
    data = tmp_path / "long.jsonl"
    overrides = tuple(o.replace("{}", str(data)) for o in overrides)
    rows = [{"messages": [{"role": "user", "content": "Write it out."},
                          {"role": "assistant", "content": " ".join(["word"] * answer_words)}]},
            *[{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]}] * 40]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    path = tmp_path / "recipe.yaml"
    path.write_text(f"""command: sft
engine: swift
launch: {{gpus_per_node: 1, nodes: 1, gpu: {gpu}}}
args:
  model: Qwen/Qwen3.5-4B
  tuner_type: lora
  dataset: [{data}]
  torch_dtype: bfloat16
  max_length: 16384
  per_device_train_batch_size: 1
  gradient_accumulation_steps: 1
  num_train_epochs: 1
""")
    return load_recipe(path, list(overrides))


def _logits_errors(recipe):
    return [e for e in make_plan(recipe, oracle=False).errors if e.code == "memory-logits"]


@pytest.mark.parametrize("same", [[], ["args.packing=true"], ["args.loss_scale=last_round"],
                                  ["args.deepspeed=zero2"]])
def test_an_answer_whose_logits_with_the_weights_exceed_the_gpu_is_refused_on_max_length(tmp_path, same):
    # ~8,000 trained tokens x 248,320 vocabulary x 12 bytes = 22 GiB, with ~8 GiB of bf16 weights, on 24 GiB; a
    # pack holds the row whole
    found = _logits_errors(_recipe(tmp_path, 8000, *same))
    assert [e.path for e in found] == ["args.max_length"], found
    assert "GiB" in found[0].message and "use_liger_kernel" in found[0].hint


@pytest.mark.parametrize("fits", [
    ["args.use_liger_kernel=true"],  # fused linear cross entropy: no logits
    ["args.max_length=4096"],  # the long row is over max_length: truncation_strategy delete drops it
    ["launch.gpu=H100"],  # 80 GiB
    ["args.deepspeed=zero3_offload"],  # the weights on the CPU: the logits alone (22 GiB) fit
    ["args.sequence_parallel_size=2"],  # splits the sequence (not judged)
    ["args.split_dataset_ratio=0.5"],  # the row may go to the validation split
    ["args.loss_scale=hermes"],  # an agent loss scale may mask the answer
    ["args.dataset=[{}#20]"],  # 20 rows sampled: perhaps not the long one
    ["args.max_steps=40"],  # the run may end before the row comes (41 steps an epoch)
    ["args.label_smoothing_factor=0.1"],  # HF's LabelSmoother: no upcast
])
def test_setups_near_it_that_fit_or_are_not_judged_are_not_refused(tmp_path, fits):
    assert _logits_errors(_recipe(tmp_path, 8000, *fits)) == []


def test_a_short_answer_is_not_refused(tmp_path):
    assert _logits_errors(_recipe(tmp_path, 2000)) == []


STEP = """
import json, sys
sys.path.insert(0, {tests!r})
from test_memory_logits import LiveVocabBytes
from swift.pipelines import sft_main
live = LiveVocabBytes({rows}, {vocab})
with live:
    sft_main(["--model", {model!r}, "--template", "qwen3_5", "--dataset", {data!r}, "--tuner_type", "lora",
              "--max_steps", "1", "--per_device_train_batch_size", "1", "--gradient_accumulation_steps", "1",
              "--torch_dtype", "bfloat16", "--use_cpu", "true", "--output_dir", {out!r}, "--save_strategy", "no",
              "--report_to", "none", "--dataloader_num_workers", "0", "--dataset_num_proc", "1", "--max_length", "2048"])
print("LIVE " + json.dumps([live.peak, live.at]))
"""


def test_a_real_swift_sft_step_holds_at_least_the_floors_logits(tmp_path):
    """ms-swift's own `swift sft` step (Seq2SeqTrainer with its default use_logits_to_keep, compute_loss, accuracy)
    on CPU with the tiny model: its [tokens, vocab] storages peak at 12 bytes a logit for each trained token (and the
    last position), at or above what the floor counts from swift-ext's own count of the same row."""
    from swift_ext.datasets.lengths import measure
    from swift_ext.planner.datafit import counting_settings
    from swift_ext.planner.memory_logits import TEMPLATE_SLACK, longest_answer
    from swift_ext.planner.tinymodel import ensure_model

    model = str(ensure_model("tiny-qwen3_6-moe"))
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"messages": [{"role": "user", "content": "Write."},
                                             {"role": "assistant", "content": " ".join(["word"] * 300)}]}) + "\n")
    settings, _ = counting_settings(model, template="qwen3_5")
    counted = longest_answer(measure([str(data)], settings, allow_msswift=False), 2048)
    vocab = 248320
    script = STEP.format(tests=str(Path(__file__).parent), rows=counted - TEMPLATE_SLACK, vocab=vocab, model=model,
                         data=str(data), out=str(tmp_path / "out"))
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)})
    lines = [line for line in run.stdout.splitlines() if line.startswith("LIVE ")]
    assert lines, run.stderr[-3000:]
    peak, at = json.loads(lines[-1][5:])
    rows = peak / (BYTES_PER_LOGIT * vocab)
    assert at == "_log_softmax_backward_data.default"
    assert rows == int(rows) and counted - TEMPLATE_SLACK <= rows <= counted  # measured: 303 rows, 306 counted
