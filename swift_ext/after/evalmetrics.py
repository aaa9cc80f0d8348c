"""Scores of one checkpoint's evaluation, pass@k, and the run's `eval/metrics.jsonl` (read, append, best).

A checkpoint's evaluation is a `swift infer` result file whose rows follow the evaluation rows in order,
each row repeated `num_samples` times. Every metric is a mean over all samples (one number per metric in
metrics.jsonl); per-sample values go to `eval/step-N.jsonl`. Built-in metrics reuse `swift-ext infer`'s
scoring (after/infer.py); any other name is a reward function from ms-swift's `orms` registry (swift-ext's
rewards included), called as GRPO calls it: completions plus the row's extra columns (e.g. `solution`).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from swift_ext.spec.findings import UserError
from swift_ext.runs.rundir import EVAL_METRICS as METRICS_FILE
from swift_ext.spec.recipe import EVAL_METRICS
from swift_ext.after.infer import EMPTY_THINK, _answer_text, _reference, _token_counts

BUILTIN = EVAL_METRICS
# Where a smaller value is the better one (`best` picks the minimum unless told otherwise).
LOWER_IS_BETTER = {"response_tokens", "response_chars", "hit_token_limit"}


def pass_at_k(n: int, c: int, k: int) -> float:
    """The unbiased pass@k estimator (Chen et al. 2021, "Evaluating Large Language Models Trained on Code"):
    1 - C(n-c, k) / C(n, k), the chance that k of the n samples drawn without replacement hold a correct one."""
    if not 0 < k <= n or not 0 <= c <= n:
        raise ValueError(f"pass@{k} needs 0 < k <= n and 0 <= c <= n (n={n}, c={c})")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def ks_for(n: int) -> list[int]:
    """1, 2, 4, ... and n itself."""
    ks, k = [], 1
    while k < n:
        ks.append(k)
        k *= 2
    return ks + [n]


def check_metric_names(names: list[str] | None, where: dict) -> None:
    """Every name is a built-in metric or a registered reward function; else one clear error."""
    if not names:
        return
    unknown = [n for n in names if n not in BUILTIN]
    if not unknown:
        return
    known = set(_reward_registry())
    bad = [n for n in unknown if n not in known]
    if bad:
        import difflib

        close = difflib.get_close_matches(bad[0], list(BUILTIN) + sorted(known), n=1)
        raise UserError.one(f"unknown evaluation metric {bad[0]!r}: neither built-in ({', '.join(BUILTIN)}) "
                            "nor a reward function ms-swift or swift-ext registers",
                            hint=f"did you mean {close[0]!r}?" if close else None, **where)


def _reward_registry() -> dict:
    from swift.rewards import orms

    import swift_ext.rewards  # noqa: F401  (registers swift-ext's reward functions in orms)

    return orms


def score_samples(results: list[dict], gold_rows: list[dict], num_samples: int, max_new_tokens: int,
                  model_dir: Path | None, metrics: list[str] | None) -> tuple[dict, list[dict]]:
    """(summary: one number per metric, per-sample rows). `results` may be shorter than expected (a killed
    `swift infer`): missing samples are counted in `unscored`, never scored as wrong."""
    expected = len(gold_rows) * num_samples if gold_rows else len(results)
    responses = [str(r.get("response") or "") for r in results]
    golds = [gold_rows[i // num_samples] if gold_rows else {} for i in range(len(results))]
    per = [{"row": i // num_samples, "sample": i % num_samples, "response": resp} for i, resp in enumerate(responses)]
    want = set(metrics) if metrics else None
    values: dict[str, list] = {}

    def add(name: str, column: list) -> None:
        if want is not None and name not in want:
            return
        values[name] = column
        for entry, v in zip(per, column):
            entry[name] = v

    labels = [r.get("labels") if r.get("labels") is not None else _reference(g) for r, g in zip(results, golds)]
    if any(lab is not None for lab in labels):
        add("exact_match", [None if lab is None else float(_answer_text(resp) == _answer_text(str(lab)))
                            for resp, lab in zip(responses, labels)])
    solutions = [g.get("solution") for g in golds]
    timeouts = None
    if any(s is not None for s in solutions):
        from swift_ext.rewards.verifypool import score_math_offline

        scores, stats = score_math_offline(responses, solutions)
        add("math_accuracy", list(scores))
        timeouts = stats.timeouts
    generated = [r[len(EMPTY_THINK):] if r.startswith(EMPTY_THINK) else r for r in responses]
    add("response_chars", [len(r) for r in generated])
    tokens = _token_counts(generated, model_dir)
    if tokens is not None:
        add("response_tokens", tokens)
        add("hit_token_limit", [float(t >= max_new_tokens) for t in tokens])
    closed = ["<think>" in r and "</think>" in r for r in responses]
    add("think_block", [float(c) for c in closed])
    add("nonempty_think", [float(bool(r[r.find("<think>") + 7: r.find("</think>")].strip())) if c else None
                           for r, c in zip(responses, closed)])
    for name in (metrics or []):
        if name not in BUILTIN:
            add(name, _reward_scores(name, responses, golds))
    summary: dict = {"rows": len(gold_rows) if gold_rows else len(results), "samples": num_samples,
                     "unscored": max(expected - len(results), 0)}
    for name, column in values.items():
        summary[name] = _mean(column)
    if timeouts is not None:
        summary["math_timeouts"] = timeouts  # items scored 0 because math-verify ran past its deadline
    correct = "math_accuracy" if "math_accuracy" in values else "exact_match" if "exact_match" in values else None
    if num_samples > 1 and correct and gold_rows:
        summary.update(pass_at_ks(values[correct], num_samples))
    return summary, per


def pass_at_ks(correct: list, n: int) -> dict:
    """pass@k per k, averaged over rows that have all n samples scored."""
    rows = [correct[i:i + n] for i in range(0, len(correct) - n + 1, n)]
    rows = [r for r in rows if len(r) == n and all(v is not None for v in r)]
    if not rows:
        return {}
    return {f"pass@{k}": round(sum(pass_at_k(n, sum(v >= 1.0 for v in r), k) for r in rows) / len(rows), 4)
            for k in ks_for(n)}


def _reward_scores(name: str, responses: list[str], golds: list[dict]) -> list:
    """A reward function from ms-swift's registry, over all samples at once (extra columns as lists)."""
    cls = _reward_registry()[name]
    fn = cls(None) if isinstance(cls, type) else cls
    columns = {k for g in golds for k in g if k != "messages"}
    kwargs = {k: [g.get(k) for g in golds] for k in columns}
    try:
        scores = fn(responses, **kwargs)
    except Exception as exc:  # a metric that cannot run is missing, not zero; the evaluation goes on
        print(f"swift-ext eval: reward function {name} failed ({type(exc).__name__}: {exc}); left out", flush=True)
        return [None] * len(responses)
    return [None if s is None else float(s) for s in scores]


def _mean(values) -> float | None:
    values = [float(v) for v in values if v is not None]
    return round(sum(values) / len(values), 4) if values else None


# --------------------------------------------------------------------------------------------------
# eval/metrics.jsonl: one line per evaluated checkpoint


def read_lines(eval_dir: Path) -> list[dict]:
    path = eval_dir / METRICS_FILE
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and isinstance(row.get("step"), int):
            out.append(row)
    return out


def evaluated_steps(eval_dir: Path) -> set[int]:
    return {row["step"] for row in read_lines(eval_dir)}


def append_line(eval_dir: Path, line: dict) -> Path:
    """Rewrite metrics.jsonl with the new line through a temporary file and a rename: a reader (watch,
    report) or an interruption never sees half a line. Callers hold the eval lock."""
    path = eval_dir / METRICS_FILE
    old = path.read_text(encoding="utf-8") if path.is_file() else ""
    if old and not old.endswith("\n"):
        old += "\n"
    write_atomic(path, old + json.dumps(line, ensure_ascii=False) + "\n")
    return path


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def best(eval_dir: Path, metric: str, lower: bool | None = None) -> dict:
    """The line of the best evaluated checkpoint by `metric` (the base model, step 0, is not a candidate);
    ties go to the earlier step."""
    lines = read_lines(eval_dir)
    if not lines:
        raise UserError.one("no evaluated checkpoint yet (no eval/metrics.jsonl lines)", file=str(eval_dir),
                            hint="`swift-ext eval RUN` evaluates the checkpoints")
    candidates = [row for row in lines if row["step"] > 0 and isinstance(row.get(metric), (int, float))
                  and not isinstance(row.get(metric), bool) and math.isfinite(row[metric])]  # NaN is never best
    if not candidates:
        names = sorted({k for row in lines for k, v in row.items() if isinstance(v, (int, float)) and k != "step"})
        raise UserError.one(f"no checkpoint has a numeric {metric!r}", file=str(eval_dir / METRICS_FILE),
                            hint=f"metrics here: {', '.join(names)}" if names else None)
    lower = metric in LOWER_IS_BETTER if lower is None else lower
    return min(candidates, key=lambda row: ((row[metric] if lower else -row[metric]), row["step"]))
