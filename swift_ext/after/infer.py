"""`swift-ext infer CKPT`: `swift infer` on the validation split, then score the results.

Results and metrics go to a new `CKPT/eval-<time>/` directory (never an existing one):
`val.jsonl` (the rows used), `infer_result.jsonl` (ms-swift's output) and `metrics.json`.
ms-swift drops unused dataset columns (and keeping them breaks transformers' generate), so gold
fields such as `solution` are joined back from `val.jsonl` by row order.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import importlib.util
import json
import os
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from swift_ext.msswift.conventions import local_dataset_path, without_sample_suffix
from swift_ext.spec.findings import UserError
from swift_ext.planner.launch import Launch
from swift_ext.after.merge import Checkpoint, check_base_model
from swift_ext.planner.vllm_lora import VLLM_DEFAULT_MAX_LORA_RANK, adapter_refusals, max_lora_rank_for
from swift_ext.msswift.model_table import model_meta
from swift_ext.runs.rundir import ADAPTER_CONFIG, manifest_near, merged_path, read_adapter_config, read_args, tuner_of

EMPTY_THINK = "<think>\n\n</think>\n\n"
MEDIA_ENV = ("IMAGE_MAX_TOKEN_NUM", "VIDEO_MAX_TOKEN_NUM", "FPS_MAX_FRAMES", "MAX_PIXELS", "VIDEO_MAX_PIXELS")


@dataclass(frozen=True)
class InferPlan:
    launch: Launch
    eval_dir: Path
    val_file: Path | None  # None when ms-swift re-creates the split itself (load_data_args)
    result_file: Path
    max_new_tokens: int
    model_dir: Path | None
    notes: list[str] = field(default_factory=list)


def find_manifest(ckpt: Checkpoint) -> dict:
    """The newest swift-ext run manifest beside the run (output_dir holds it; vN-* dirs are inside)."""
    return manifest_near(ckpt.run_dir)


def resolve_val(ckpt: Checkpoint, split: str, manifest: dict) -> Path | None:
    """The validation file: `split` when it is a file, else the checkpoint's recorded val_dataset."""
    if split != "val":
        path = Path(split)
        if not path.is_file():
            raise UserError.one("validation file not found", file=split)
        _refuse_invalid_split(path)
        return path
    recorded = ckpt.args.get("val_dataset") or []
    recorded = recorded if isinstance(recorded, list) else [recorded]
    for entry in recorded:
        name = without_sample_suffix(entry)
        for base in (Path.cwd(), Path(manifest.get("cwd") or ".")):
            candidate = base / name if not Path(name).is_absolute() else Path(name)
            if candidate.is_file():
                return candidate
        raise UserError.one(f"the recorded val_dataset {name!r} is not a local file here",
                            file=str(ckpt.args_file), hint="pass --split FILE (eval: eval.dataset=FILE)")
    try:
        ratio = float(ckpt.args.get("split_dataset_ratio") or 0)
    except (TypeError, ValueError):
        raise UserError.one(f"split_dataset_ratio is {ckpt.args.get('split_dataset_ratio')!r}, not a number",
                            file=str(ckpt.args_file), hint="pass --split FILE (eval: eval.dataset=FILE)") from None
    if ratio > 0:
        _refuse_missing_training_data(ckpt, manifest)
        return None  # ms-swift re-creates the split with --load_data_args
    raise UserError.one("this run has no validation split (no val_dataset, split_dataset_ratio 0)",
                        file=str(ckpt.args_file), hint="pass --split FILE with validation rows (eval: eval.dataset=FILE)")


def _refuse_missing_training_data(ckpt: Checkpoint, manifest: dict) -> None:
    """--load_data_args re-reads args.json's `dataset` to re-create the split, from the directory `swift infer`
    runs in. A recorded local file not found there is taken for a hub dataset id (ms-swift dataset/dataset_syntax.py:
    a path only when os.path.exists; dataset/loader.py then downloads it, or raises "The local path does not
    exist" for an absolute one): the run fails after loading the model, or splits a different dataset."""
    entries = ckpt.args.get("dataset") or []
    for entry in entries if isinstance(entries, list) else [entries]:
        path = local_dataset_path(str(entry))
        if path is None or Path(path).expanduser().exists():
            continue
        where = manifest.get("cwd")
        there = where and not Path(path).is_absolute() and (Path(where) / path).exists()
        raise UserError.one(f"the training dataset {path!r} that --load_data_args re-reads to re-create the "
                            f"validation split is not found from here ({Path.cwd()})", file=str(ckpt.args_file),
                            path="dataset",
                            hint=(f"run from {where}, where training ran, " if there else "") +
                                 "or pass --split FILE with validation rows (eval: eval.dataset=FILE)")


def _refuse_invalid_split(path: Path) -> None:
    """The validator first: a bad row would otherwise surface as an Arrow traceback inside `swift infer`."""
    from swift_ext.datasets import check as d

    try:
        report = d.check_file(str(path), d.Options(task="sft"))
    except d.FileCheckError as exc:
        raise UserError.one(str(exc), file=str(path)) from None
    if not report.rows:
        raise UserError.one("the validation split is empty", file=str(path))
    # Task rules (E2xx: e.g. SFT rows end with an answer) do not apply: a prompt without an answer can be run.
    errors = [i for i in report.issues if d.CODES[i.code][0] == "error" and not i.code.startswith("E2")]
    if errors:
        shown = [i.render() for i in errors[:3]]
        raise UserError.one(f"not a usable validation split ({len(errors)} error(s)): {'; '.join(shown)}",
                            file=str(path), hint=f"swift-ext data check {path}")


# ms-swift's --infer_backend values that need a package of their own (swift/infer_engine/).
BACKEND_PACKAGES = {"vllm": "vllm", "lmdeploy": "lmdeploy", "sglang": "sglang"}


def refuse_missing_backend(backend: str) -> None:
    """Before any work: `swift infer` would load the data and the model first, then fail on the import."""
    package = BACKEND_PACKAGES.get(backend)
    if package is not None and importlib.util.find_spec(package) is None:
        raise UserError.one(f"--backend {backend}: the `{package}` package is not installed in this environment",
                            hint=f"pip install {package} (matching ms-swift's supported version), "
                                 "or use --backend transformers")


def vllm_adapter_argv(adapter: Path, backend: str, setting: str) -> list[str]:
    """What `swift infer --infer_backend vllm --adapters DIR` needs for this adapter, checked before a model loads.

    ms-swift hands vLLM `max_lora_rank=vllm_max_lora_rank` (16 unless given; rlhf_trainers/args_mixin.py
    VllmArguments.get_vllm_engine_kwargs), so an adapter of rank 32 fails when vLLM loads it ("LoRA rank 32 is greater
    than max_lora_rank 16", modelscope/ms-swift#4221): past 16, the smallest value vLLM accepts that holds the rank
    is passed.
    Features vLLM's loader refuses at any rank (DoRA, modules_to_save, a bias) are refused here, naming the setting.
    """
    if backend != "vllm":
        return []
    config = read_adapter_config(adapter)
    if config is None:
        return []
    _refuse_vision_lora(adapter, setting)
    pattern = config.get("rank_pattern")
    ranks = [config.get("r")] + (list(pattern.values()) if isinstance(pattern, dict) else [])
    ranks = [r for r in ranks if isinstance(r, int) and not isinstance(r, bool) and r > 0]
    rank = max(ranks) if ranks else None
    refused = adapter_refusals(bool(config.get("use_dora")), config.get("modules_to_save"), config.get("bias"), rank)
    if refused:
        why = "; ".join(f"{flag} ({reason})" for flag, reason in refused)
        raise UserError.one(f"{setting}: vLLM refuses to load this LoRA adapter, trained with {why}",
                            file=str(adapter / ADAPTER_CONFIG),
                            hint=f"{setting.split()[0]} transformers, or merge it first (`swift-ext merge "
                                 f"{adapter}`: a merged model needs no LoRA support)")
    # Only a rank past vLLM's default asks for more: a smaller value is not needed, and max_lora_rank 1 is refused by
    # LoRAConfig before vLLM 0.11.1 (vllm-project/vllm#26461; ms-swift 4.6 lists vLLM 0.11.0), where 16 holds rank 1.
    fits = max_lora_rank_for(rank) if rank and rank > VLLM_DEFAULT_MAX_LORA_RANK else None
    return ["--vllm_max_lora_rank", str(fits)] if fits else []


def _refuse_vision_lora(adapter: Path, setting: str) -> None:
    """LoRA all-linear with the vision tower or aligner unfrozen puts adapters on them (get_multimodal_target_regex,
    both engines; Megatron's peft save writes the same regex), and vLLM applies LoRA to the language model only: it
    refuses the adapter ("expected target modules in [...] but received ['mlp1.1', ...]", modelscope/ms-swift#4974,
    #5252) or drops the vision part with a log line (vllm-project/vllm#27916), so the scores would not be the trained
    model's either way. The recipe-time counterpart is eval-vllm-vision-lora (msswift/multimodal_rules.py)."""
    args = read_args(adapter) or {}
    targets = args.get("target_modules") or []
    targets = targets if isinstance(targets, list) else [targets]
    if "all-linear" not in targets or args.get("target_regex") or tuner_of(args, "lora") not in ("lora", "lora_llm"):
        return
    unfrozen = next((k for k in ("freeze_vit", "freeze_aligner") if args.get(k) is False), None)
    meta = model_meta(str(args.get("model") or ""), args.get("model_type")) if args.get("model") else None
    if unfrozen is None or meta is None or not meta["multimodal"]:
        return
    raise UserError.one(f"{setting}: this LoRA was trained with {unfrozen} false (all-linear on multimodal "
                        f"{meta['model_type']}), so it carries vision-tower / aligner adapters, and vLLM applies LoRA "
                        "to the language model only -- it refuses the adapter or drops that part",
                        file=str(adapter / "args.json"), path=unfrozen,
                        hint=f"{setting.split()[0]} transformers, or merge it first (`swift-ext merge {adapter}`: a "
                             "merged model needs no LoRA support)")


def _refuse_unreachable_base(base: str | None, ckpt: Checkpoint) -> None:
    """`swift infer --adapters CKPT` loads the base model args.json names (BaseArguments.load_args_from_ckpt): one
    that is neither here nor a hub id fails once the job has started. merge's check, with infer's way out."""
    try:
        check_base_model(base, ckpt)
    except UserError as refused:
        hint = (f"restore the base model there, or `swift-ext merge {ckpt.path} --base-model PATH_OR_ID` and infer "
                "the merged model")
        raise UserError([dataclasses.replace(p, hint=hint) for p in refused.problems]) from None


def _swift_reads_as_adapter(ckpt: Path) -> bool:
    """ms-swift's own test for an `--adapters` directory (arguments/base_args/base_args.py
    BaseArguments._check_is_adapter): a PEFT adapter_config.json, or ms-swift's own tuners' layout -- llamapro /
    adapter checkpoints keep theirs in default/ (tuners/base.py SwiftModel.save_pretrained), ReFT its reft/ folder."""
    return (ckpt / ADAPTER_CONFIG).is_file() or (ckpt / "default" / ADAPTER_CONFIG).is_file() \
        or (ckpt / "reft").exists()


def plan_infer(ckpt: Checkpoint, split: str = "val", backend: str = "transformers", max_new_tokens: int = 512,
               limit: int | None = None, now: _dt.datetime | None = None) -> InferPlan:
    manifest = find_manifest(ckpt)
    val = resolve_val(ckpt, split, manifest)
    stamp = (now or _dt.datetime.now()).strftime("%Y%m%d-%H%M%S")
    eval_dir = ckpt.path / f"eval-{stamp}"
    n = 1
    while eval_dir.exists():
        eval_dir = ckpt.path / f"eval-{stamp}-{n}"
        n += 1
    notes: list[str] = []
    merged = merged_path(ckpt.path)
    argv = ["swift", "infer"]
    if merged.is_dir():
        argv += ["--model", str(merged)]
        model_dir = merged
        notes.append(f"using the merged model {merged}")
    elif (ckpt.path / "config.json").is_file():
        argv += ["--model", str(ckpt.path)]
        model_dir = ckpt.path
    else:
        if not _swift_reads_as_adapter(ckpt.path):
            # A Megatron torch_dist checkpoint (iter_N shards, no adapter_config.json / config.json): swift infer's
            # --adapters loads PEFT adapters only, and InferArguments has no mcore_adapter/mcore_model.
            raise UserError.one(f"`swift infer` cannot load this checkpoint: no {ADAPTER_CONFIG} or config.json "
                                f"(a Megatron torch_dist checkpoint, tuner_type {ckpt.tuner})", file=str(ckpt.path),
                                hint=f"`swift-ext merge {ckpt.path}` first (ms-swift's megatron export to Hugging "
                                     "Face format); infer then runs the merged model")
        argv += ["--adapters", str(ckpt.path)] + vllm_adapter_argv(ckpt.path, backend, "--backend vllm")
        base = ckpt.base_model
        _refuse_unreachable_base(base, ckpt)
        model_dir = Path(base) if base and Path(base).is_dir() else None
    for key in ("template", "torch_dtype"):
        if ckpt.args.get(key):
            argv += [f"--{key}", str(ckpt.args[key])]
    thinking = ckpt.args.get("enable_thinking")
    argv += ["--enable_thinking", "true" if thinking else "false"]
    result = eval_dir / "infer_result.jsonl"
    val_used = eval_dir / "val.jsonl" if val is not None else None
    if val_used is not None:
        argv += ["--val_dataset", str(val_used)]
    else:
        argv += ["--load_data_args", "true"]
        notes.append("validation rows re-created by ms-swift from split_dataset_ratio (--load_data_args)")
    argv += ["--infer_backend", backend, "--max_new_tokens", str(max_new_tokens), "--result_path", str(result)]
    env = {k: str(v) for k, v in (manifest.get("env") or {}).items() if k in MEDIA_ENV}
    if limit is not None:
        notes.append(f"first {limit} validation rows")
    launch = Launch(env=env, argv=argv, output_dir=str(eval_dir))
    return InferPlan(launch, eval_dir, val, result, max_new_tokens, model_dir, notes)


def prepare_eval_dir(plan: InferPlan, limit: int | None) -> int:
    """Create the eval dir and write the validation rows used into it; returns how many."""
    plan.eval_dir.mkdir(parents=True, exist_ok=False)
    if plan.val_file is None:
        return 0
    rows = []
    with open(plan.val_file, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                rows.append(line if line.endswith("\n") else line + "\n")
            if limit is not None and len(rows) >= limit:
                break
    if not rows:
        raise UserError.one("the validation split is empty", file=str(plan.val_file))
    (plan.eval_dir / "val.jsonl").write_text("".join(rows), encoding="utf-8")
    return len(rows)


# --------------------------------------------------------------------------------------------------
# Scoring


def read_results(path: Path) -> tuple[list[dict], int]:
    """Rows of a result file, and how many lines were unreadable (a killed `swift infer` leaves a
    truncated last line)."""
    rows, bad = [], 0
    if not path.is_file():
        return rows, 0
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                rows.append(row if isinstance(row, dict) else {})
            except ValueError:
                bad += 1
    return rows, bad


def _answer_text(text: str) -> str:
    close = text.rfind("</think>")
    return (text[close + len("</think>"):] if close >= 0 else text).strip()


def score(result_file: Path, val_file: Path | None, max_new_tokens: int, model_dir: Path | None) -> dict:
    rows, bad = read_results(result_file)
    gold_rows: list[dict] = []
    if val_file is not None and val_file.is_file():
        gold_rows, _ = read_results(val_file)
    expected = len(gold_rows) if gold_rows else len(rows)
    responses = [str(r.get("response") or "") for r in rows]
    labels = [r.get("labels") for r in rows]
    if gold_rows:  # ms-swift keeps rows in input order; the labels are the reference answers
        labels = [_reference(g) if lab is None else lab for lab, g in zip(labels, gold_rows)]
    exact = [(_answer_text(resp) == _answer_text(str(lab))) for resp, lab in zip(responses, labels) if lab is not None]
    metrics: dict = {
        "rows": expected,
        "scored_rows": len(rows),
        "unscored_rows": max(expected - len(rows), 0) + bad,
        "exact_match": _mean(exact),
    }
    solutions = [g.get("solution") for g in gold_rows[: len(rows)]] if gold_rows else []
    if any(s is not None for s in solutions):
        from swift_ext.rewards.verifypool import score_math_offline

        scores, stats = score_math_offline(responses, solutions)
        metrics["math_accuracy"] = _mean(scores)
        metrics["math_accuracy_stats"] = stats.as_dict()
    chars = [len(r) for r in responses]
    # The qwen3_5 template puts an empty think block before non-thinking answers; it was not generated.
    generated = [r[len(EMPTY_THINK):] if r.startswith(EMPTY_THINK) else r for r in responses]
    tokens = _token_counts(generated, model_dir)
    metrics["response_chars"] = _dist(chars)
    if tokens is not None:
        metrics["response_tokens"] = _dist(tokens)
        metrics["hit_token_limit"] = _mean([t >= max_new_tokens for t in tokens])
    metrics["think_block"] = _mean(["<think>" in r and "</think>" in r for r in responses])
    metrics["nonempty_think"] = _mean([bool(r[r.find("<think>") + 7 : r.find("</think>")].strip())
                                       for r in responses if "<think>" in r and "</think>" in r])
    metrics["max_new_tokens"] = max_new_tokens
    return metrics


def _reference(gold_row: dict):
    messages = gold_row.get("messages") or []
    if messages and isinstance(messages[-1], dict) and messages[-1].get("role") == "assistant":
        return messages[-1].get("content")
    return gold_row.get("response")


def _token_counts(responses: list[str], model_dir: Path | None) -> list[int] | None:
    if model_dir is None or not (model_dir / "tokenizer.json").is_file():
        return None
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    return [len(enc.ids) for enc in tok.encode_batch(responses, add_special_tokens=False)] if responses else []


def _mean(values) -> float | None:
    values = list(values)
    return round(sum(map(float, values)) / len(values), 4) if values else None


def _dist(values: list[int]) -> dict:
    if not values:
        return {"mean": None, "p50": None, "p90": None, "max": None}
    from swift_ext.datasets.percentiles import percentiles

    return {"mean": round(statistics.fmean(values), 2), **percentiles(values, (50, 90))}


def write_metrics(eval_dir: Path, metrics: dict) -> Path:
    path = eval_dir / "metrics.json"
    with open(path, "x", encoding="utf-8") as fh:  # never overwrite
        json.dump(metrics, fh, indent=2)
        fh.write("\n")
    return path


def load_metrics(target: str | Path) -> tuple[Path, dict]:
    """metrics.json from a file, an eval dir, or a checkpoint dir (its newest eval)."""
    path = Path(target)
    if path.is_dir() and not (path / "metrics.json").is_file():
        evals = sorted(path.glob("eval-*/metrics.json"), key=os.path.getmtime)
        if not evals:
            raise UserError.one("no metrics.json here or in an eval-* directory below it", file=str(path))
        path = evals[-1]
    elif path.is_dir():
        path = path / "metrics.json"
    try:
        metrics = json.loads(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise UserError.one("metrics file not found", file=str(path)) from None
    except ValueError as exc:
        raise UserError.one(f"not a JSON metrics file: {exc}", file=str(path)) from None
    except RecursionError:
        raise UserError.one("not a JSON metrics file: nested too deeply to read", file=str(path)) from None
    # An empty comparison table would read as "nothing changed"
    if not isinstance(metrics, dict) or not any(isinstance(_get(metrics, k), (int, float)) for k in COMPARED):
        raise UserError.one(f"holds none of the metrics `swift-ext infer` writes ({', '.join(COMPARED)})",
                            file=str(path), hint="compare two metrics.json files written by `swift-ext infer`")
    return path, metrics


COMPARED = ["exact_match", "math_accuracy", "think_block", "hit_token_limit", "response_chars.mean",
            "response_tokens.mean", "scored_rows"]


def compare(a: dict, b: dict) -> list[tuple[str, float | None, float | None, float | None]]:
    out = []
    for key in COMPARED:
        va, vb = _get(a, key), _get(b, key)
        if va is None and vb is None:
            continue
        diff = round(vb - va, 4) if isinstance(va, (int, float)) and isinstance(vb, (int, float)) else None
        out.append((key, va, vb, diff))
    return out


def _get(d: dict, dotted: str):
    for part in dotted.split("."):
        if not isinstance(d, dict):
            return None
        d = d.get(part)
    return d
