# Thin verbs over the `swift-ext` CLI. Every target creates and fills .venv itself on first use.
PYTHON ?= python3.11
VENV   ?= .venv
BIN     = $(VENV)/bin
SX      = $(BIN)/swift-ext
EXT_SUFFIX := $(shell $(PYTHON) -c "import sysconfig; print(sysconfig.get_config_var('EXT_SUFFIX'))" 2>/dev/null)
ROWCHECK = swift_ext/datasets/_rowcheck$(EXT_SUFFIX)
RECIPE ?= recipes/smoke/tiny-sft.yaml
ARGS   ?=

CKPT   ?=
RUN    ?=

DATA   ?= data/sft/train.jsonl

NODES  ?=

.PHONY: help setup build sft rlhf plan run validate submit merge infer report watch test test-fast bench slurm-up slurm-down clean-venv

help:
	@echo "make sft [RECIPE=...] [ARGS='args.lr=1e-5 ...']   run an SFT recipe (default: tiny CPU recipe)"
	@echo "make rlhf RECIPE=... [ARGS=...]                   run an RLHF (GRPO/DPO) recipe"
	@echo "make plan RECIPE=... [ARGS=...]                   pre-flight checks and the exact command"
	@echo "make submit RECIPE=... [NODES=2] [ARGS='--partition gpu --time 2-00:00:00 --then merge']  Slurm"
	@echo "make slurm-up / make slurm-down                   a local 2-node test Slurm (root; slurm-up installs Slurm+munge if missing)"
	@echo "make validate DATA=file.jsonl [ARGS='--task grpo']    check a dataset (swift-ext data check)"
	@echo "make merge CKPT=.../checkpoint-N                    merge a LoRA checkpoint (ms-swift export)"
	@echo "make infer CKPT=.../checkpoint-N                    swift infer on the val split + metrics.json"
	@echo "make report RUN=output/<run>                        loss/reward curves + summary.md"
	@echo "make watch RUN=output/<run>                         live step time, tokens/s, MFU, GRPO health"
	@echo "make test                                         the test-suite (CPU, real ms-swift)"
	@echo "make bench                                        benchmarks"

# torch is pinned and installed first: an unpinned torch pulls a multi-GB build, and this pair is the
# one whose torchvision imports next to it on CPU (qwen_vl_utils needs torchvision for qwen3_5_moe).
$(BIN)/.installed: pyproject.toml requirements/cpu-lock.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -qq --upgrade pip
	$(BIN)/python -m pip install -qq torch==2.14.1 torchvision==0.29.1
	$(BIN)/python -m pip install -qq -c requirements/cpu-lock.txt ms-swift==4.6.0 -e '.[test]'
	touch $@

setup: $(BIN)/.installed $(ROWCHECK)

# The dataset validator's per-row check in C (swift_ext/datasets/_rowcheck.c; needs gcc and Python headers).
# Optional: without it the validator runs its Python twin, about half as fast.
$(ROWCHECK): swift_ext/datasets/_rowcheck.c setup.py $(BIN)/.installed
	$(BIN)/python setup.py -q build_ext --inplace || echo "note: swift_ext/datasets/_rowcheck.c not built; the validator uses its Python twin"

build: $(ROWCHECK)

# `make sft`/`make rlhf` refuse a recipe of another command (run --expect) rather than run it silently;
# `make rlhf` without RECIPE= runs the tiny GRPO recipe.
sft: setup
	$(SX) run --expect sft $(RECIPE) $(ARGS)

rlhf: setup
	$(SX) run --expect rlhf $(if $(filter file,$(origin RECIPE)),recipes/smoke/tiny-grpo.yaml,$(RECIPE)) $(ARGS)

plan: setup
	$(SX) plan $(RECIPE) $(ARGS)

run: setup
	$(SX) run $(RECIPE) $(ARGS)

submit: setup
	$(SX) submit $(RECIPE) $(if $(NODES),--nodes $(NODES)) $(ARGS)

# The only target that installs system packages (Slurm and munge, via slurm/local/install.sh); `make test`
# installs nothing and its Slurm tests skip without them. The cluster lives in .slurm/ (SLURM_CONF=.slurm/slurm.conf).
slurm-up:
	bash slurm/local/install.sh
	bash slurm/local/up.sh

slurm-down:
	bash slurm/local/down.sh

validate: setup
	$(SX) data check $(DATA) $(ARGS)

merge: setup
	@test -n "$(CKPT)" || { echo "usage: make merge CKPT=output/<run>/checkpoint-N [ARGS='--out DIR']" >&2; exit 2; }
	$(SX) merge $(CKPT) $(ARGS)

infer: setup
	@test -n "$(CKPT)" || { echo "usage: make infer CKPT=output/<run>/checkpoint-N [ARGS='--split val']" >&2; exit 2; }
	$(SX) infer $(CKPT) $(ARGS)

report: setup
	@test -n "$(RUN)" || { echo "usage: make report RUN=output/<run>" >&2; exit 2; }
	$(SX) report $(RUN)

watch: setup
	@test -n "$(RUN)" || { echo "usage: make watch RUN=output/<run>" >&2; exit 2; }
	$(SX) watch $(RUN)

test: setup
	$(BIN)/python -m pytest -q -ra

test-fast: setup
	$(BIN)/python -m pytest -q -ra -m "not slow and not slurm"

bench: setup
	$(BIN)/python bench/run_all.py

clean-venv:
	rm -rf $(VENV)
