"""Training recipes: strict YAML parsed into typed pydantic models, with ``--set key=value`` overrides.

Strict on purpose: a typo in a recipe (``bach_size``) must stop the run before hours of training, not be
silently ignored. Every error names the file (or the override), the key, the expected type and the value.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import hashlib
import json
import math
import types
import typing
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from medenc.core.errors import RecipeError
from medenc.core.modeling import RANDOM_SHAPES, SHAPES
from medenc.training.losses import LOSSES
from medenc.training.phase_specs import PHASES

Precision = Literal["auto", "fp32", "bf16", "fp16"]
# A recipe's ``phaseN.loss``: a name of medenc.training.losses.LOSSES, the one list of losses (a loss added
# there is a recipe value at once; pydantic refuses any other name, listing these).
LossName = Literal[tuple(LOSSES)]


class _Strict(BaseModel):
    """Unknown keys are refused; no coercion ("32" is not an int, a bool is not an int) but int -> float."""

    model_config = ConfigDict(extra="forbid", strict=True)


class PhaseConfig(_Strict):
    """What every phase shares: data sources, schedule, checkpointing."""

    enabled: bool = True
    # source name -> max rows (null = all rows of that source, 0 = left out: one `--set` removes a source)
    sources: dict[str, int | None] = Field(default_factory=dict)
    epochs: float = 1.0
    max_steps: int | None = None
    batch_size: int = 16
    learning_rate: float = 2e-5
    warmup_ratio: float = 0.1
    eval_steps: int = 100
    save_steps: int = 100
    logging_steps: int = 10
    max_seq_length: int | None = None  # None: the recipe-wide max_seq_length
    validation_rows: int = 200  # cap on validation rows, so evaluation stays cheap
    # Speed options (docs/bench.md; measure with `make bench`): the defaults keep plain Trainer behaviour.
    group_by_length: bool = False  # batches of similar length (less padding); MNRL keeps no-duplicates
    dataloader_workers: int = 0
    torch_compile: bool = False
    # sdpa: MPNet self-attention through torch's fused scaled_dot_product_attention (same math; modeling.py)
    attention: Literal["eager", "sdpa"] = "eager"
    # adamw_torch_fused: one fused kernel updates every parameter (fewer kernel launches a step)
    optimizer: Literal["adamw_torch", "adamw_torch_fused"] = "adamw_torch"
    # Pad each batch's token length up to a multiple of this (null: to its longest text, the default). Masked
    # padding changes no embedding; a compiled model (torch_compile) sees a few shapes, not one per batch.
    pad_to_multiple_of: int | None = Field(default=None, gt=0)
    # Tokenize the training and validation rows once (cached on disk, medenc/training/tokenize.py); the
    # collator only pads. Same batches and features as tokenizing every batch in the training process.
    pretokenize: bool = False
    # Run each batch through the encoder in length-sorted chunks of this many rows, each padded only to its
    # own longest text (null: the whole batch at once). The same batches, embeddings and gradients up to
    # rounding; less arithmetic where one batch mixes short and long texts (docs/bench.md).
    length_chunks: int | None = Field(default=None, gt=0)
    # Multi-dataset training: one training set per source (phase 3: curated and mined), every batch drawn from
    # one of them, as the base model was trained; null = one mixed set (the shipped recipes). Validation stays
    # one set.
    multi_dataset: Literal["proportional", "round_robin"] | None = None
    # Any other SentenceTransformerTrainingArguments field, by the library's own name (checked against its
    # fields), e.g. {gradient_accumulation_steps: 2}; those the recipe sets through its own keys are refused.
    trainer_args: dict[str, Any] = Field(default_factory=dict)
    mini_batch_size: int = 16  # only for cached_mnrl
    # Matryoshka training: the loss is also applied to the first N dimensions of each embedding for every N
    # listed (e.g. [768, 256, 128]), so that truncated vectors stay useful; null = off.
    matryoshka_dims: list[int] | None = None

    def used_sources(self) -> dict[str, int | None]:
        """The sources this phase reads: those not set to 0 rows."""
        return {name: rows for name, rows in self.sources.items() if rows != 0}

    def curated_sources(self) -> dict[str, int | None]:
        """The sources whose prepared rows this phase trains on as they are (mined rows come later)."""
        return self.used_sources()

    def mines_negatives(self) -> bool:
        """Whether the phase mines hard negatives with the previous phase's model before training."""
        return False


class Phase1Config(PhaseConfig):
    """Graded pairs (sentence1, sentence2, score)."""

    loss: LossName = "cosine"


class _LaterPhaseConfig(PhaseConfig):
    """Phases 2 and 3: they can replay phase 1's graded pairs so its gain (BIOSSES) is kept."""

    # That many of phase 1's graded pairs (its sources, the recipe seed) as their own dataset with phase 1's
    # loss; needs multi_dataset (a loss per dataset). 0 = off.
    replay_graded: int = 0
    # mnrl_keep only: the weight of its term that keeps each text's embedding near the start model's (the
    # mean cosine distance to it; medenc/training/keep_loss.py).
    keep_weight: float = Field(default=1.0, gt=0)


class Phase2Config(_LaterPhaseConfig):
    """(anchor, positive) pairs with in-batch negatives."""

    loss: LossName = "mnrl"
    # Near misses inside the contrastive loss: curated triplets of these sources (source -> max rows, as in
    # `sources`), each its own dataset, whose negative (an ICD-10-CM excluded condition or sibling, a Disease
    # Ontology sibling: a close but wrong name) joins the in-batch negatives from the first step, rather than
    # only in phase 3. Needs multi_dataset and a loss that takes triplets. {} = off.
    near_miss_sources: dict[str, int | None] = Field(default_factory=dict)

    def near_misses(self) -> dict[str, int | None]:
        """The near-miss triplet sources this phase reads (those not set to 0 rows)."""
        return {name: rows for name, rows in self.near_miss_sources.items() if rows != 0}


class MiningConfig(_Strict):
    """Arguments of ``mine_hard_negatives`` (phase-2 model, corpus = positives of the phase-2 pairs)."""

    anchors: int | None = 1000  # how many phase-2 training pairs to mine negatives for (null = all)
    # Pair sources to mine over (name -> max rows, null = all, 0 = left out); null = phase 2's selection.
    # Question -> answer pairs give the negatives that help retrieval; mined short synonym pairs mostly
    # yield other names of the same thing (results/ablation.md, round 4).
    sources: dict[str, int | None] | None = None
    range_min: int = 0
    range_max: int | None = 30
    # A candidate is dropped when its score is within this fraction of the positive's score, so
    # near-duplicates of the positive (false negatives) are not taken.
    relative_margin: float | None = 0.05
    absolute_margin: float | None = None
    max_score: float | None = None
    num_negatives: int = 1
    sampling: Literal["top", "random"] = "top"
    batch_size: int = 32


class Phase3Config(_LaterPhaseConfig):
    """(anchor, positive, negative) triplets: mined and/or curated; ``sources`` selects curated triplets."""

    loss: LossName = "triplet"  # or mnrl / cached_mnrl: the negative joins the in-batch ones
    margin: float = 0.3  # triplet only
    distance: Literal["cosine", "euclidean"] = "cosine"  # the triplet loss's and the validation's
    negatives: Literal["mined", "curated", "both"] = "both"
    mining: MiningConfig = Field(default_factory=MiningConfig)
    max_rows: int | None = None  # cap on all triplets (mined + curated)

    def curated_sources(self) -> dict[str, int | None]:
        return {} if self.negatives == "mined" else self.used_sources()

    def mines_negatives(self) -> bool:
        return self.negatives != "curated"


class AverageConfig(_Strict):
    """Weight averaging with the starting model (WiSE-FT, medenc/training/averaging.py): ``final/`` is
    ``(1 - w) * start + w * last phase`` for the share ``w`` that scores best on the validation split."""

    enabled: bool = False
    # Candidate shares of the tuned weights, each in (0, 1]; 1.0 (no averaging) is always tried too.
    weights: list[float] = Field(default_factory=lambda: [0.5, 0.75, 1.0])


class Recipe(_Strict):
    """A complete training recipe."""

    # base: the verified all-mpnet-base-v2. tiny / random-base: MPNet with random weights (tests; timing the
    # full recipe on a GPU machine the real weights cannot travel to), never a model to release.
    model: Literal["base", "tiny", "random-base"] = "base"
    # A sentence-transformers folder the first enabled phase starts from instead of ``model`` (ablations of
    # later phases start from an earlier run's phase folder rather than retraining it).
    init_from: str | None = None
    seed: int = 42
    max_seq_length: int = 128
    precision: Precision = "auto"
    # Where the Trainer reports loss, learning rate and the validation figures: TensorBoard event files under
    # outputs/<run>/logs/phase-N/ (shipped with the release), or nowhere.
    report_to: Literal["tensorboard", "none"] = "tensorboard"
    phase1: Phase1Config = Field(default_factory=Phase1Config)
    phase2: Phase2Config = Field(default_factory=Phase2Config)
    phase3: Phase3Config = Field(default_factory=Phase3Config)
    average: AverageConfig = Field(default_factory=AverageConfig)

    def phase(self, n: int) -> PhaseConfig:
        """The config of phase ``n`` (1, 2 or 3)."""
        return {1: self.phase1, 2: self.phase2, 3: self.phase3}[n]

    def seq_len(self, n: int) -> int:
        """The effective max_seq_length of phase ``n``."""
        return self.phase(n).max_seq_length or self.max_seq_length


# --- pydantic errors as RecipeErrors ---------------------------------------------------------------------

_UNKNOWN_KEY = ("extra_forbidden", "invalid_key")  # invalid_key: a non-string key where fields are expected


def _is_model(tp: Any) -> bool:
    """Whether ``tp`` is one of the recipe models (a mapping with named keys)."""
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _type_name(tp: Any) -> str:
    """How a declared type reads in an error: ``int | null``, ``'top' | 'random'``, ``mapping (...)``."""
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is dict:
        k, v = typing.get_args(tp)
        return f"mapping of {_type_name(k)} to {_type_name(v)}"
    if _is_model(tp):
        return f"mapping ({tp.__name__})"
    return "null" if tp is type(None) else tp.__name__


def _declared(loc: tuple[str | int, ...]) -> Any:
    """The declared type at a pydantic error location (a mapping key's location ends in '[key]')."""
    tp: Any = Recipe
    for i, part in enumerate(loc):
        if _is_model(tp):
            tp = tp.model_fields[part].annotation
        elif loc[i + 1 :] == ("[key]",):
            return typing.get_args(tp)[0]
        elif isinstance(part, int):  # an item of a list (phase2.matryoshka_dims): list[int] | None -> int
            tp = next(a for a in (tp, *typing.get_args(tp)) if typing.get_origin(a) is list).__args__[0]
        else:  # a mapping of source names: every key has the value type
            tp = typing.get_args(tp)[1]
    return tp


def _first_error(exc: ValidationError) -> dict[str, Any]:
    """One problem to report: an unknown key (most likely a typo) before a wrong value."""
    errors = exc.errors()
    return next((e for e in errors if e["type"] in _UNKNOWN_KEY), errors[0])


def _recipe_error(err: dict[str, Any], where: str) -> RecipeError:
    """A pydantic error worded for the recipe's author: file, dotted key, expected type, value found."""
    loc, value = err["loc"], err["input"]
    key = _cut(".".join(str(p) for p in loc if p != "[key]"))
    if err["type"] in _UNKNOWN_KEY:
        known = ", ".join(sorted(_declared(loc[:-1]).model_fields))
        return RecipeError(f"{where}: unknown key '{key}' (known keys here: {known})")
    # YAML 1.1 reads 2e-5 as a string; tell the user how to write it.
    as_text = err["type"] == "float_type" and isinstance(value, str)
    hint = " (write floats with a dot, e.g. 2.0e-5)" if as_text else ""
    return RecipeError(
        f"{where}: key '{key}': expected {_type_name(_declared(loc))}, found {_shown(value)}{hint}"
    )


SHOWN_CHARS = 80  # an echoed value or override is cut here: an error is one short line, whatever the input


def _shown(value: Any) -> str:
    """``repr(value)``, cut to SHOWN_CHARS (a huge value must not become a huge error line)."""
    text = repr(value)
    return text if len(text) <= SHOWN_CHARS else f"{text[:SHOWN_CHARS]}... ({len(text)} characters)"


def _cut(text: str) -> str:
    return text if len(text) <= SHOWN_CHARS else f"{text[:SHOWN_CHARS]}..."


# --- YAML: no aliases, no duplicate keys -------------------------------------------------------------------


class _RecipeLoader(yaml.SafeLoader):
    """safe_load, but an alias (``*name``) or a key given twice is an error.

    Aliases are refused outright rather than bounded: no recipe needs them, and an alias bomb (nested
    aliases, billions of nodes from a few lines) would otherwise be expanded before any key is checked.
    """

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.MarkedYAMLError(
                problem=f"an alias (*{_cut(str(event.anchor))}): recipes take no YAML aliases; write the "
                "value out",
                problem_mark=event.start_mark,
            )
        # A recipe is a few levels deep; 5000 nested brackets once ended in a RecursionError traceback.
        self._depth = getattr(self, "_depth", 0) + 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.MarkedYAMLError(
                    problem=f"values nested more than {MAX_DEPTH} levels deep",
                    problem_mark=self.peek_event().start_mark,
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_yaml_int(self, node: Any) -> Any:
        try:
            return super().construct_yaml_int(node)
        except ValueError:  # Python refuses to read an integer of more than 4300 digits
            raise yaml.MarkedYAMLError(
                problem=f"an integer of {len(str(node.value))} characters", problem_mark=node.start_mark
            ) from None

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, typing.Hashable) and key in seen:
                raise yaml.MarkedYAMLError(
                    problem=f"the key {_shown(key)} a second time in the same mapping",
                    problem_mark=key_node.start_mark,
                )
            if isinstance(key, typing.Hashable):
                seen.add(key)
        return super().construct_mapping(node, deep)


_RecipeLoader.add_constructor("tag:yaml.org,2002:int", _RecipeLoader.construct_yaml_int)
MAX_DEPTH = 20  # levels of nesting a recipe may have (it uses four)


def _yaml_load(text: str) -> Any:
    return yaml.load(text, Loader=_RecipeLoader)  # a SafeLoader subclass: no arbitrary objects


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """A YAML error in one short line: what, and where (line, column) - never the echoed input."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        return where + _cut(str(exc.problem or exc.context or "invalid YAML").replace("\n", " "))
    return _cut(str(exc).replace("\n", " "))


# --- Reading recipes and overrides -----------------------------------------------------------------------


def _override_shown(text: str) -> str:
    """An override as an error shows it: cut short, and with its value hidden when it may hold a token."""
    key, sep, _ = text.partition("=")
    return _cut(f"{key}{sep}***" if sep and "token" in text.lower() else text)


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parse ``phase2.batch_size=32`` into (["phase2", "batch_size"], 32); the value is read as YAML."""
    where = f"--set {_override_shown(text)}"
    if "=" not in text:
        raise RecipeError(f"{where}: expected KEY=VALUE, e.g. phase2.batch_size=32")
    key, raw = text.split("=", 1)
    path = key.strip().split(".")
    if not all(path):
        raise RecipeError(f"{where}: expected a dotted key such as phase2.batch_size")
    try:
        value = _yaml_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise RecipeError(f"{where}: the value is not valid YAML ({_yaml_problem(exc)})") from None
    nested: Any = value
    for part in reversed(path):
        nested = {part: nested}
    try:  # types only: every other key keeps its default, so the value checks wait for the whole recipe
        Recipe.model_validate(nested)
    except ValidationError as exc:
        err = _first_error(exc)
        if err["type"] not in _UNKNOWN_KEY and len(err["loc"]) < len(path):
            # the wrong "value" is the mapping built from the rest of the key: the key goes inside a scalar
            inner = ".".join(path[: len(err["loc"]) + 1])
            raise RecipeError(f"{where}: '{inner}' goes inside a value that is not a mapping") from None
        raise _recipe_error(err, where) from None
    return path, value


def recipe_from_dict(data: Any, where: str = "<recipe>") -> Recipe:
    """Build and validate a Recipe from plain data."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise RecipeError(f"{where}: expected a mapping of recipe keys, found {type(data).__name__}")
    try:
        recipe = Recipe.model_validate(data)
    except ValidationError as exc:
        raise _recipe_error(_first_error(exc), where) from None
    validate(recipe, where)
    return recipe


MAX_POSITIONS = 512  # the tokens MPNet (514 position embeddings, offset 2) can encode


def _validate_phase(recipe: Recipe, n: int, where: str) -> None:
    """Value checks of phase ``n``."""
    ph = recipe.phase(n)
    for key in ("batch_size", "eval_steps", "save_steps", "logging_steps", "validation_rows"):
        if getattr(ph, key) < 1:
            raise RecipeError(f"{where}: key 'phase{n}.{key}': expected at least 1, found {getattr(ph, key)}")
    for key in ("batch_size", "mini_batch_size"):
        _check_batch(getattr(ph, key), f"phase{n}.{key}", where)
    if ph.dataloader_workers < 0:
        raise RecipeError(f"{where}: key 'phase{n}.dataloader_workers': expected at least 0")
    if ph.max_seq_length is not None:
        _check_length(ph.max_seq_length, f"phase{n}.max_seq_length", where)
    if ph.max_steps is not None and ph.max_steps < 1:
        raise RecipeError(f"{where}: key 'phase{n}.max_steps': expected at least 1 or null")
    if ph.learning_rate <= 0 or not 0 <= ph.warmup_ratio < 1 or ph.epochs <= 0:
        raise RecipeError(
            f"{where}: phase{n}: expected learning_rate > 0, 0 <= warmup_ratio < 1 and epochs > 0"
        )
    for name, rows in ph.sources.items():
        if rows is not None and rows < 0:
            raise RecipeError(
                f"{where}: key 'phase{n}.sources.{name}': expected a row count >= 0 (0 leaves it out) "
                "or null (all rows)"
            )
    if isinstance(ph, _LaterPhaseConfig):
        _validate_replay(recipe, n, ph, where)
    if isinstance(ph, Phase3Config):
        _validate_mining_sources(ph.mining, where)
    if ph.enabled and not ph.curated_sources() and not ph.mines_negatives():
        raise RecipeError(f"{where}: phase{n} is enabled but 'phase{n}.sources' names no source")
    _validate_loss(ph, n, where)
    _validate_trainer_args(ph.trainer_args, n, where)


def _validate_loss(ph: PhaseConfig, n: int, where: str) -> None:
    """The loss must take the columns of the phase's data set; Matryoshka widths distinct and >= 1."""
    data_set = PHASES[n].data_set
    if data_set not in LOSSES[ph.loss].data_sets:
        fits = ", ".join(name for name, spec in LOSSES.items() if data_set in spec.data_sets)
        raise RecipeError(
            f"{where}: key 'phase{n}.loss': {ph.loss!r} does not take phase {n}'s {data_set}; "
            f"losses that do: {fits}"
        )
    dims = ph.matryoshka_dims
    if dims is not None and (not dims or min(dims) < 1 or len(set(dims)) != len(dims)):
        raise RecipeError(
            f"{where}: key 'phase{n}.matryoshka_dims': expected distinct dimensions >= 1 "
            f"(e.g. [768, 256, 128]) or null, found {dims}"
        )


# SentenceTransformerTrainingArguments fields training sets itself (trainer.argument_values) and what sets
# each (a recipe key, or the run), so trainer_args cannot contradict the recipe or the run folder's layout.
RECIPE_TRAINER_ARGS = {
    "output_dir": "--run and --output-dir", "num_train_epochs": "epochs", "max_steps": "max_steps",
    "per_device_train_batch_size": "batch_size", "per_device_eval_batch_size": "batch_size",
    "learning_rate": "learning_rate", "warmup_steps": "warmup_ratio", "fp16": "precision",
    "bf16": "precision", "use_cpu": "the machine (CUDA or not)", "eval_strategy": "validation_rows",
    "eval_steps": "eval_steps", "save_strategy": "save_steps", "save_steps": "save_steps",
    "save_total_limit": "resume (it keeps two checkpoints)", "logging_steps": "logging_steps",
    "logging_first_step": "logging_steps", "seed": "seed", "data_seed": "seed",
    "batch_sampler": "loss and group_by_length", "dataloader_num_workers": "dataloader_workers",
    "dataloader_persistent_workers": "dataloader_workers",
    "dataloader_pin_memory": "the machine (CUDA or not)",
    "torch_compile": "torch_compile", "optim": "optimizer", "report_to": "report_to",
    "run_name": "--run", "multi_dataset_batch_sampler": "multi_dataset",
}  # fmt: skip


# Fields that would let training publish or hold a credential. Publishing is `make release`'s job alone (its
# checks, one commit, the token read from the environment and never written): the Trainer's own push would
# ship unchecked weights and a pickled training_args.bin, and a token here lands in recipe.yaml and the logs.
_PUBLISHING_PREFIXES = ("push_to_hub", "hub_", "trackio_")


def _publishes(key: str) -> bool:
    return key.startswith(_PUBLISHING_PREFIXES) or key.endswith("token")


# Fields that change which weights a phase ends with, or what a complete checkpoint and a resume are: a phase
# is "done" when it trained the recipe's steps from its own checkpoints, and `make train` resumes to the same
# weights only with the Trainer's defaults for these.
DONE_TRAINER_ARGS = {
    "resume_from_checkpoint": "medenc resumes from the run's own newest complete checkpoint",
    "load_best_model_at_end": "the phase's weights are those of its last step",
    "metric_for_best_model": "the phase's weights are those of its last step",
    "greater_is_better": "the phase's weights are those of its last step",
    "save_only_model": "a resumable checkpoint holds the optimizer and scheduler",
    "ignore_data_skip": "a resumed phase skips the batches it already trained on",
    "restore_callback_states_from_checkpoint": "a resumed phase restores what its checkpoint holds",
    "enable_jit_checkpoint": "checkpoints are written every save_steps, whole",
    "save_on_each_node": "checkpoints are written every save_steps, whole",
    "auto_find_batch_size": "the phase trains at the recipe's batch_size",
    "local_rank": "the launcher (accelerate) sets it",
    "deepspeed": "checkpoints and weights are saved by the Trainer alone",
    "fsdp": "checkpoints and weights are saved by the Trainer alone",
    "fsdp_config": "checkpoints and weights are saved by the Trainer alone",
    "parallelism_config": "checkpoints and weights are saved by the Trainer alone",
}
# Counts that must be >= 1 (gradient_accumulation_steps=-5 ran 0 steps and marked the phase done).
_MIN_ONE_TRAINER_ARGS = ("gradient_accumulation_steps", "eval_accumulation_steps", "torch_empty_cache_steps")


def _validate_trainer_args(args: dict[str, Any], n: int, where: str) -> None:
    """``phaseN.trainer_args``: SentenceTransformerTrainingArguments fields the recipe does not set itself,
    that neither publish nor change what a finished phase is, with values of the field's type."""
    if not args:
        return  # sentence-transformers (and torch) are imported only for a recipe that needs them
    from sentence_transformers import SentenceTransformerTrainingArguments

    fields = {f.name: f.type for f in dataclasses.fields(SentenceTransformerTrainingArguments) if f.init}
    for key, value in args.items():
        at = f"{where}: key 'phase{n}.trainer_args.{_cut(str(key))}'"
        if _publishes(str(key)):
            raise RecipeError(
                f"{at}: training never pushes to the Hub or holds a token; remove it and publish with "
                "`make release` (HF_TOKEN in the environment)"
            )
        if key in DONE_TRAINER_ARGS:
            raise RecipeError(f"{at}: not settable, {DONE_TRAINER_ARGS[key]}; remove it")
        if key in RECIPE_TRAINER_ARGS:
            raise RecipeError(f"{at}: medenc sets this field from {RECIPE_TRAINER_ARGS[key]}; change that")
        if key not in fields:
            close = difflib.get_close_matches(str(key), sorted(fields), n=3)
            hint = f"; did you mean {' or '.join(close)}?" if close else ""
            raise RecipeError(f"{at}: not a SentenceTransformerTrainingArguments field{hint}")
        expected = _arg_mismatch(fields[key], value)
        if expected:
            raise RecipeError(f"{at}: expected {expected}, found {_shown(value)}")
        if key in _MIN_ONE_TRAINER_ARGS and value is not None and value < 1:
            raise RecipeError(f"{at}: expected at least 1, found {value}")


def _is_a(tp: type, value: Any) -> bool:
    """``isinstance``, strict as the recipe: a bool is no number, an int is a float."""
    if isinstance(value, bool) or tp is bool:
        return tp is bool and isinstance(value, bool)
    return isinstance(value, (int, float) if tp is float else tp)


def _arg_mismatch(tp: Any, value: Any) -> str | None:
    """What a training-arguments field of type ``tp`` takes, when ``value`` is not that; None when it is.

    Strict as the recipe (a bool is not an int, "2" is not a number); a string for an enum field must be one
    of its names (an unknown lr_scheduler_type failed only when the phase started). Types this cannot read
    (callables, nested mappings) are left to the library.
    """
    args = typing.get_args(tp) if typing.get_origin(tp) in (typing.Union, types.UnionType) else (tp,)
    names = [m.value for a in args if isinstance(a, type) and issubclass(a, enum.Enum) for m in a]
    if isinstance(value, str) and names:
        return None if value in names else " | ".join(repr(v) for v in names)
    simple = {bool: "bool", int: "int", float: "float", str: "str", type(None): "null"}
    if not all(a in simple or (isinstance(a, type) and issubclass(a, enum.Enum)) for a in args):
        return None
    others = [a for a in args if a in simple and not (names and a is str)]  # with names, a str is a name
    fits = any(_is_a(a, value) for a in others)
    return None if fits else " | ".join([*(repr(v) for v in names), *(simple[a] for a in others)])


def _validate_mining_sources(mining: MiningConfig, where: str) -> None:
    """``phase3.mining.sources``: row counts as in ``sources``, and at least one source when set."""
    if mining.sources is None:
        return
    for name, rows in mining.sources.items():
        if rows is not None and rows < 0:
            raise RecipeError(
                f"{where}: key 'phase3.mining.sources.{name}': expected a row count >= 0 (0 leaves it out) "
                "or null (all rows)"
            )
    if not any(rows != 0 for rows in mining.sources.values()):
        raise RecipeError(f"{where}: key 'phase3.mining.sources' names no source (null: phase 2's selection)")


def _validate_near_misses(recipe: Recipe, where: str) -> None:
    """Near-miss triplets in phase 2 need their own datasets (phase 2's losses, MNRL and its cached form,
    take a negative column as they take pairs)."""
    ph, key = recipe.phase2, "phase2.near_miss_sources"
    if not ph.near_misses():
        return
    if ph.multi_dataset is None:
        raise RecipeError(
            f"{where}: key '{key}' needs 'phase2.multi_dataset' (proportional or round_robin): each source's "
            "triplets are a dataset of their own, beside the pairs"
        )
    shared = sorted(set(ph.near_misses()) & set(ph.used_sources()))
    if shared:
        raise RecipeError(
            f"{where}: key '{key}': {shared} also in 'phase2.sources'; a source is one or the other"
        )
    for name, rows in ph.near_misses().items():
        if rows is not None and rows < 0:
            raise RecipeError(f"{where}: key '{key}.{name}': expected a row count >= 0 or null, found {rows}")


def _validate_replay(recipe: Recipe, n: int, ph: _LaterPhaseConfig, where: str) -> None:
    """Replay needs a row count >= 0, a loss per dataset (multi_dataset) and phase 1's sources."""
    key = f"phase{n}.replay_graded"
    if ph.replay_graded < 0:
        raise RecipeError(
            f"{where}: key '{key}': expected a row count >= 0 (0 = off), found {ph.replay_graded}"
        )
    if ph.replay_graded and ph.multi_dataset is None:
        raise RecipeError(
            f"{where}: key '{key}' needs 'phase{n}.multi_dataset' (proportional or round_robin): "
            "the replayed graded pairs are their own dataset with phase 1's loss"
        )
    if ph.replay_graded and not recipe.phase1.used_sources():
        raise RecipeError(f"{where}: key '{key}' draws from 'phase1.sources', which names no source")


MAX_BATCH = 65_536  # texts in one batch: far above any that fits a GPU, far below what overflows torch


def _check_batch(value: int, key: str, where: str) -> None:
    # A batch of 10**23 passed `>= 1` and failed in the data loader, after the run folder was made.
    if value > MAX_BATCH:
        raise RecipeError(f"{where}: key '{key}': expected at most {MAX_BATCH} texts a batch, found {value}")


MAX_SEED = 2**32 - 1  # numpy and the data loader's generators take seeds from 0 to 2**32 - 1


def _check_length(value: int, key: str, where: str) -> None:
    # MPNet has 514 positions, 2 of them reserved: a longer sequence would fail deep inside the model.
    if not 1 <= value <= MAX_POSITIONS:
        raise RecipeError(f"{where}: key '{key}': expected a length from 1 to {MAX_POSITIONS}, found {value}")


def _check_finite(data: Any, where: str, key: str = "") -> None:
    """Every number finite: NaN or infinity (YAML .nan, .inf) passes ``> 0`` style checks and fails later."""
    if isinstance(data, dict):
        for k, v in data.items():
            _check_finite(v, where, f"{key}.{k}" if key else str(k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            _check_finite(v, where, f"{key}.{i}")
    elif isinstance(data, float) and not math.isfinite(data):
        raise RecipeError(f"{where}: key '{_cut(key)}': expected a finite number, found {data}")
    elif isinstance(data, int) and not isinstance(data, bool) and not -(2**63) <= data < 2**63:
        # torch and the Trainer hold counts in 64 bits: a larger one overflows deep inside a phase
        raise RecipeError(f"{where}: key '{_cut(key)}': expected a number below 2**63, found {_shown(data)}")


def _validate_padding(recipe: Recipe, n: int, where: str) -> None:
    """The tokenizer refuses to truncate at a length that is not a multiple of ``pad_to_multiple_of``."""
    pad = recipe.phase(n).pad_to_multiple_of
    length = recipe.seq_len(n)
    if pad is not None and length % pad:
        source = f"phase{n}.max_seq_length" if recipe.phase(n).max_seq_length else "max_seq_length"
        raise RecipeError(
            f"{where}: key 'phase{n}.pad_to_multiple_of': expected a divisor of the phase's sequence length "
            f"('{source}' = {length}), found {pad}"
        )


def _validate_counts(recipe: Recipe, n: int, where: str) -> None:
    """Counts that only reach the training code after earlier phases trained: checked now."""
    ph = recipe.phase(n)
    counts = {f"phase{n}.mini_batch_size": ph.mini_batch_size}
    if isinstance(ph, Phase3Config):
        counts["phase3.max_rows"] = ph.max_rows
        counts["phase3.mining.anchors"] = ph.mining.anchors
    for key, value in counts.items():
        if value is not None and value < 1:
            raise RecipeError(
                f"{where}: key '{key}': expected at least 1 (or null where allowed), found {value}"
            )
    dims = ph.matryoshka_dims
    if dims and recipe.init_from is None:
        width = SHAPES[RANDOM_SHAPES.get(recipe.model, "base")][0]
        if max(dims) > width:
            raise RecipeError(
                f"{where}: key 'phase{n}.matryoshka_dims': {dims} exceeds the {width} embedding dimensions "
                f"of model '{recipe.model}'"
            )


def validate(recipe: Recipe, where: str) -> None:
    """Value checks that types alone cannot express (kept out of the models: they span phases)."""
    _check_finite(recipe.model_dump(), where)
    _check_length(recipe.max_seq_length, "max_seq_length", where)
    if not 0 <= recipe.seed <= MAX_SEED:
        raise RecipeError(f"{where}: key 'seed': expected a number from 0 to {MAX_SEED}, found {recipe.seed}")
    for n in (1, 2, 3):
        _validate_phase(recipe, n, where)
        _validate_padding(recipe, n, where)
        _validate_counts(recipe, n, where)
    _validate_near_misses(recipe, where)
    if recipe.phase3.enabled and recipe.phase3.mines_negatives() and not recipe.phase2.used_sources():
        raise RecipeError(
            f"{where}: phase3 mines negatives over the phase-2 pairs, but 'phase2.sources' is empty"
        )
    if recipe.init_from is not None and not (Path(recipe.init_from) / "modules.json").is_file():
        raise RecipeError(
            f"{where}: key 'init_from': expected a sentence-transformers model folder (with modules.json), "
            f"found {recipe.init_from!r}"
        )
    m = recipe.phase3.mining
    _check_batch(m.batch_size, "phase3.mining.batch_size", where)
    if m.num_negatives < 1 or m.range_min < 0 or m.batch_size < 1:
        raise RecipeError(
            f"{where}: phase3.mining: expected num_negatives >= 1, range_min >= 0, batch_size >= 1"
        )
    if m.range_max is not None and m.num_negatives > m.range_max - m.range_min:
        raise RecipeError(
            f"{where}: phase3.mining: num_negatives ({m.num_negatives}) must fit between range_min "
            f"({m.range_min}) and range_max ({m.range_max})"
        )
    if not any(recipe.phase(n).enabled for n in (1, 2, 3)):
        raise RecipeError(f"{where}: every phase is disabled; enable at least one")
    bad = [w for w in recipe.average.weights if not 0 < w <= 1]
    if bad or (recipe.average.enabled and not recipe.average.weights):
        raise RecipeError(
            f"{where}: key 'average.weights': expected shares of the tuned weights in (0, 1], found "
            f"{recipe.average.weights}"
        )


def _read_recipe_file(path: Path) -> Any:
    """The recipe file's YAML; a folder, a missing or unreadable file, non-UTF-8 or bad YAML: one line."""
    if path.is_dir():
        raise RecipeError(f"{path}: is a folder; expected a recipe YAML file, e.g. recipes/cpu.yaml")
    try:
        return _yaml_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise RecipeError(f"{path}: no such recipe file") from exc
    except UnicodeDecodeError as exc:
        raise RecipeError(
            f"{path}: not UTF-8 text (byte {exc.start}); a recipe is a UTF-8 YAML file"
        ) from None
    except OSError as exc:
        raise RecipeError(f"{path}: cannot be read ({exc.strerror or type(exc).__name__})") from None
    except yaml.YAMLError as exc:
        raise RecipeError(f"{path}: not valid YAML ({_yaml_problem(exc)})") from None


def load_recipe(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Recipe:
    """Read a recipe YAML file and apply ``--set`` overrides (which win); strict about keys and types."""
    path = Path(path)
    data = _read_recipe_file(path)
    data = {} if data is None else data
    # Check the file alone first, so an error names the file rather than an override.
    recipe_from_dict(data, str(path))
    for text in overrides:
        keys, value = parse_override(text)
        node = data
        for part in keys[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[keys[-1]] = value
    shown = " ".join(_override_shown(text) for text in overrides)
    where = f"{path} with --set {_cut(shown)}" if overrides else str(path)
    return recipe_from_dict(data, where)


def to_yaml(recipe: Recipe) -> str:
    """The resolved recipe as YAML (stable key order, so its hash identifies the run)."""
    return yaml.safe_dump(recipe.model_dump(), sort_keys=False, default_flow_style=False)


def recipe_sha256(recipe: Recipe, before_phase: int | None = None) -> str:
    """sha256 of the resolved recipe YAML; with ``before_phase=N``, of all but phases N and later.

    The partial hash decides whether a run's finished phases before N can be kept while N onwards retrain.
    """
    if before_phase is None:
        return hashlib.sha256(to_yaml(recipe).encode("utf-8")).hexdigest()
    data = recipe.model_dump(mode="json")
    for n in range(before_phase, 4):
        data.pop(f"phase{n}")
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode("utf-8")).hexdigest()
