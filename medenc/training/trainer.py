"""Models, losses, batch samplers and the Trainer of a phase: shared by training and the benchmark."""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

from medenc.core.base_model import BASE_MODEL_ID, BASE_MODEL_REVISION, resolve_base_model
from medenc.core.errors import RecipeError
from medenc.core.layout import GRADED_PAIRS, MODEL_NAME, PAIRS, TRIPLETS
from medenc.core.modeling import RANDOM_SHAPES, use_length_chunks, use_sdpa_attention
from medenc.training.losses import LOSSES
from medenc.training.phase_specs import PHASES
from medenc.training.recipe import Recipe

# --- Models and losses ----------------------------------------------------------------------------------


def card_data():
    """Model card data that keeps the base model offline (the generator drops what it cannot verify)."""
    from sentence_transformers import SentenceTransformerModelCardData

    card = SentenceTransformerModelCardData(
        language="en", license="apache-2.0", model_name=MODEL_NAME, local_files_only=True
    )
    # init=False fields in the installed version: set after construction.
    card.base_model = BASE_MODEL_ID
    card.base_model_revision = BASE_MODEL_REVISION
    return card


def load_model(recipe: Recipe, source: Path | None, max_seq_length: int):
    """Phase N's starting model: the previous phase's folder, else the base (or a random-weight) model."""
    from sentence_transformers import SentenceTransformer

    card = card_data()
    source = source or (Path(recipe.init_from) if recipe.init_from else None)
    if source is not None:
        model = SentenceTransformer(str(source), model_card_data=card, device="cpu")
    elif recipe.model != "base":
        from medenc.core.modeling import build_random_model

        shape = RANDOM_SHAPES[recipe.model]
        model = build_random_model(shape, max_seq_length=max_seq_length, seed=recipe.seed, device="cpu")
        model.model_card_data = card
        card.register_model(model)
    else:
        model = SentenceTransformer(str(resolve_base_model()), model_card_data=card, device="cpu")
    # The Trainer moves the model to the right device; loading on CPU keeps every process identical.
    model.max_seq_length = max_seq_length
    return model


def guide_model(recipe: Recipe, n: int, model):
    """The guide of a guided loss: the model the run started from (the base), frozen, read at the same
    length as ``model`` (a shorter guide would make the loss tokenize every batch again)."""
    guide = load_model(recipe, None, model.max_seq_length)
    guide.eval()
    guide.requires_grad_(False)
    use_length_chunks(guide, recipe.phase(n).length_chunks)  # its forward is as long as the model's
    return guide


def make_loss(recipe: Recipe, n: int, model, num_processes: int):
    """Phase ``n``'s loss: ``phaseN.loss`` from the table of losses, Matryoshka-wrapped if asked."""
    cfg = recipe.phase(n)
    spec = LOSSES[cfg.loss]
    if spec.guided:
        loss = spec.build(cfg, model, num_processes, guide_model(recipe, n, model))
    else:
        loss = spec.build(cfg, model, num_processes)
    return _matryoshka(cfg, n, model, loss) if cfg.matryoshka_dims else loss


# The replayed graded pairs' dataset, and the key that routes the one validation set to the phase's loss.
REPLAY = "replay"
VALIDATION = "validation"


def dataset_losses(recipe: Recipe, n: int, model, loss, names, num_processes: int) -> dict[str, Any]:
    """A loss per training dataset: the phase's own (one shared object), phase 1's for the replayed pairs."""
    losses = {name: loss for name in names if name != REPLAY}
    if REPLAY in names:
        losses[REPLAY] = make_loss(recipe, 1, model, num_processes)
    losses[VALIDATION] = loss
    return losses


def _matryoshka(cfg, n: int, model, loss):
    """``loss`` applied at each of ``phaseN.matryoshka_dims`` too, so truncated embeddings stay useful."""
    from sentence_transformers.sentence_transformer.losses import MatryoshkaLoss

    dims = list(cfg.matryoshka_dims or [])
    width = model.get_embedding_dimension()
    if width is not None and max(dims) > width:  # ST's own ValueError would not name the recipe key
        raise RecipeError(
            f"key 'phase{n}.matryoshka_dims': {dims} exceeds the model's {width} embedding dimensions"
        )
    return MatryoshkaLoss(model, loss, matryoshka_dims=dims)


# --- Validation evaluators: a figure per eval step, beside the eval loss ---------------------------------


def _sts_evaluator(val, name: str, batch_size: int, recipe: Recipe):
    """Graded pairs: Spearman (and Pearson) of cosine similarity against the graded scores."""
    from sentence_transformers.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator

    return EmbeddingSimilarityEvaluator(
        val["sentence1"], val["sentence2"], val["score"], name=name, batch_size=batch_size,
        write_csv=False, similarity_fn_names=["cosine"],
    )  # fmt: skip


def _retrieval_evaluator(val, name: str, batch_size: int, recipe: Recipe):
    """Pairs: each anchor retrieves its positive(s) among every validation positive (nDCG@10, MRR@10...)."""
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

    # Ids by text: a repeated anchor is one query with several relevant documents; a repeated positive, one.
    docs = {text: f"d{i}" for i, text in enumerate(dict.fromkeys(val["positive"]))}
    queries = {text: f"q{i}" for i, text in enumerate(dict.fromkeys(val["anchor"]))}
    relevant: dict[str, set[str]] = {}
    for anchor, positive in zip(val["anchor"], val["positive"], strict=True):
        relevant.setdefault(queries[anchor], set()).add(docs[positive])
    return InformationRetrievalEvaluator(
        {q: t for t, q in queries.items()}, {d: t for t, d in docs.items()}, relevant, name=name,
        batch_size=batch_size, write_csv=False, accuracy_at_k=[1], precision_recall_at_k=[5],
    )  # fmt: skip


def _triplet_evaluator(val, name: str, batch_size: int, recipe: Recipe):
    """Triplets: how often the anchor is closer to its positive than to its negative (phase3.distance)."""
    from sentence_transformers.sentence_transformer.evaluation import TripletEvaluator

    return TripletEvaluator(
        val["anchor"], val["positive"], val["negative"], name=name, batch_size=batch_size,
        write_csv=False, similarity_fn_names=[recipe.phase3.distance],
    )  # fmt: skip


# By the phase's data set: what its validation rows can measure, whatever the loss.
_EVALUATORS = {
    GRADED_PAIRS: (_sts_evaluator, "sts"),
    PAIRS: (_retrieval_evaluator, "retrieval"),
    TRIPLETS: (_triplet_evaluator, "triplet"),
}


def make_evaluator(recipe: Recipe, n: int, val):
    """Phase ``n``'s validation evaluator, named ``phase-N-<kind>-dev``; None without validation rows."""
    if val is None or len(val) == 0:
        return None
    return validation_evaluator(PHASES[n].data_set, val, recipe, recipe.phase(n).batch_size, f"phase-{n}")


def validation_evaluator(data_set: str, val, recipe: Recipe, batch_size: int = 32, prefix: str | None = None):
    """The evaluator of validation rows of one kind (GRADED_PAIRS, PAIRS, TRIPLETS), named
    ``<prefix>-<kind>-dev`` (default prefix: the kind's set name), as the phases use it."""
    build, kind = _EVALUATORS[data_set]
    return build(val, f"{prefix or data_set}-{kind}-dev", batch_size, recipe)


# --- Trainer (shared by training and the benchmark, medenc.bench.run) -------------------------------------


class LengthGroupedBatchSampler:
    """Batches of similar length (less padding), in random order; optionally without duplicate texts.

    Rows are shuffled, cut into mega-batches of ``MEGA`` batches, sorted by length (sum of the characters of
    the text columns) inside each mega-batch and then batched; the batch order is shuffled again. With
    ``no_duplicates`` the batches are filled greedily as ST's NoDuplicatesBatchSampler does (a row whose text
    is already in the batch waits for a later one), so MNRL keeps its no-false-negative guarantee.
    """

    MEGA = 16

    def __init__(
        self,
        dataset,
        batch_size: int,
        drop_last: bool,
        valid_label_columns: list[str] | None = None,
        generator=None,
        seed: int = 0,
        no_duplicates: bool = False,
    ) -> None:
        skip = set(valid_label_columns or []) | {"dataset_name"}
        cols = [c for c in dataset.column_names if c not in skip]
        values = [list(dataset[c]) for c in cols]
        self.lengths = [sum(len(str(v[i])) for v in values) for i in range(len(dataset))]
        self.texts = (
            [frozenset(str(v[i]) for v in values) for i in range(len(dataset))] if no_duplicates else None
        )
        self.batch_size, self.drop_last, self.seed, self.epoch = batch_size, drop_last, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        n = len(self.lengths)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def _batches(self, order: list[int]) -> list[list[int]]:
        bs = self.batch_size
        if self.texts is None:
            return [order[i : i + bs] for i in range(0, len(order), bs)]
        batches, remaining = [], order
        while remaining:
            batch, seen, later = [], set(), []
            for i in remaining:
                if len(batch) == bs or not self.texts[i].isdisjoint(seen):
                    later.append(i)
                else:
                    batch.append(i)
                    seen |= self.texts[i]
            batches.append(batch)
            remaining = later
        return batches

    def __iter__(self):
        rng = random.Random(self.seed + self.epoch)
        perm = list(range(len(self.lengths)))
        rng.shuffle(perm)
        mega = self.batch_size * self.MEGA
        order = []
        for s in range(0, len(perm), mega):
            order.extend(sorted(perm[s : s + mega], key=self.lengths.__getitem__, reverse=True))
        batches = self._batches(order)
        if self.drop_last:
            batches = [b for b in batches if len(b) == self.batch_size]
        rng.shuffle(batches)
        yield from batches


def batch_sampler(loss: str, group_by_length: bool, pretokenize: bool = False):
    """A recipe loss's batch sampler: ST's (no duplicates for in-batch negatives) or length-grouped.

    ``pretokenize``: built on the rows' text columns only, so the batches are those of the text rows.
    """
    import functools

    no_duplicates = LOSSES[loss].in_batch_negatives
    if not group_by_length:
        sampler = "no_duplicates" if no_duplicates else "batch_sampler"
    else:
        sampler = functools.partial(LengthGroupedBatchSampler, no_duplicates=no_duplicates)
    if pretokenize:
        from medenc.training.tokenize import text_view_sampler

        return text_view_sampler(sampler)
    return sampler


def training_arguments(
    recipe: Recipe, n: int, *, precision: str, cuda: bool, output_dir: str | Path, **over: Any
):
    """Phase ``n``'s ``SentenceTransformerTrainingArguments``: the recipe's keys, then its ``trainer_args``.

    ``over``: has_validation (eval on or off), save_checkpoints, max_steps (overrides the recipe's), run_name,
    logging_dir (report to the recipe's ``report_to`` there; without it, to nothing: the benchmark).
    """
    from sentence_transformers import SentenceTransformerTrainingArguments

    values = argument_values(recipe, n, precision=precision, cuda=cuda, output_dir=output_dir, **over)
    # Recipe validation keeps trainer_args apart from the fields set above (RECIPE_TRAINER_ARGS).
    return SentenceTransformerTrainingArguments(**values, **recipe.phase(n).trainer_args)


def argument_values(
    recipe: Recipe, n: int, *, precision: str, cuda: bool, output_dir: str | Path, **over: Any
) -> dict[str, Any]:
    """The training arguments the recipe's own keys set (``training_arguments`` adds ``trainer_args``)."""
    cfg = recipe.phase(n)
    workers = cfg.dataloader_workers
    return dict(
        output_dir=str(output_dir),
        num_train_epochs=cfg.epochs,
        max_steps=over.get("max_steps") or cfg.max_steps or -1,
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.batch_size,
        learning_rate=cfg.learning_rate,
        warmup_steps=cfg.warmup_ratio,  # a float in [0, 1) is a ratio of the total steps
        fp16=precision == "fp16",
        bf16=precision == "bf16",
        use_cpu=not cuda,
        eval_strategy="steps" if over.get("has_validation") else "no",
        eval_steps=cfg.eval_steps,
        save_strategy="steps" if over.get("save_checkpoints", True) else "no",
        save_steps=cfg.save_steps,
        save_total_limit=2,
        logging_steps=cfg.logging_steps,
        logging_first_step=True,
        seed=recipe.seed,
        data_seed=recipe.seed,
        batch_sampler=batch_sampler(cfg.loss, cfg.group_by_length, cfg.pretokenize),
        dataloader_num_workers=workers,
        dataloader_persistent_workers=workers > 0,
        dataloader_pin_memory=cuda,
        torch_compile=cfg.torch_compile,
        optim=cfg.optimizer,
        report_to=recipe.report_to if over.get("logging_dir") else "none",
        run_name=over.get("run_name"),
        # Used only with a dict of training sets (phaseN.multi_dataset); proportional is ST's default.
        multi_dataset_batch_sampler=cfg.multi_dataset or "proportional",
    )


def data_collator(model, pad_to_multiple_of: int | None, pretokenize: bool = False):
    """The Trainer's collator; with ``pad_to_multiple_of``, token lengths rounded up to a few buckets.

    ``pretokenize``: one that only pads rows tokenized once (:func:`pretokenized`).
    """
    import functools

    from sentence_transformers.sentence_transformer.data_collator import SentenceTransformerDataCollator

    if pretokenize:
        from medenc.training.tokenize import padding_collator

        return padding_collator(model, pad_to_multiple_of)
    if pad_to_multiple_of is None:
        return None  # the Trainer builds its own
    # A per-call override of the tokenizer's kwargs: nothing is written into the saved model's config.
    text = {"text": {"pad_to_multiple_of": pad_to_multiple_of}}
    return SentenceTransformerDataCollator(
        preprocess_fn=functools.partial(model.preprocess, processing_kwargs=text)
    )


def pretokenized(model, n: int, train, val):
    """Phase ``n``'s training set(s) and validation set tokenized once (cached; medenc.training.tokenize)."""
    from medenc.training.tokenize import tokenized

    def one(ds, name: str):
        return ds if ds is None else tokenized(model, ds, f"phase{n}-{name}")[0]

    if isinstance(train, dict):
        train = {name: one(ds, f"train-{name}") for name, ds in train.items()}
    else:
        train = one(train, "train")
    return train, one(val, VALIDATION)


def build_trainer(
    recipe: Recipe,
    n: int,
    model,
    train,
    val,
    *,
    precision: str,
    cuda: bool,
    output_dir: str | Path,
    num_processes: int,
    max_steps: int | None = None,
    callbacks=(),
    loss=None,
    run_name: str | None = None,
    save_checkpoints: bool = True,
    evaluator=None,
    logging_dir: str | Path | None = None,
):
    """The SentenceTransformerTrainer of phase ``n`` as the recipe says (loss from make_loss unless given).

    ``train``: one dataset, or a dict of them (multi-dataset: a loss each, from ``dataset_losses``, every
    batch from one). ``max_steps`` overrides the recipe's; ``save_checkpoints=False`` turns checkpoints off;
    ``evaluator`` runs at every eval step; ``logging_dir``: where the recipe's ``report_to`` writes.
    """
    from sentence_transformers import SentenceTransformerTrainer

    if recipe.phase(n).attention == "sdpa":
        use_sdpa_attention(model)
    use_length_chunks(model, recipe.phase(n).length_chunks)
    args = training_arguments(
        recipe, n, precision=precision, cuda=cuda, output_dir=output_dir, max_steps=max_steps,
        has_validation=val is not None, save_checkpoints=save_checkpoints, run_name=run_name,
        logging_dir=logging_dir,
    )  # fmt: skip
    loss = loss if loss is not None else make_loss(recipe, n, model, num_processes)
    pretokenize = recipe.phase(n).pretokenize
    if pretokenize:
        train, val = pretokenized(model, n, train, val)
    multi = isinstance(train, dict)
    if multi:  # a dict of losses needs a dict of validation sets too: the one set goes in under VALIDATION
        loss = dataset_losses(recipe, n, model, loss, train, num_processes)
    trainer = SentenceTransformerTrainer(
        model=model,
        args=args,
        train_dataset=train,
        eval_dataset={VALIDATION: val} if multi and val is not None else val,
        loss=loss,
        evaluator=evaluator,
        callbacks=list(callbacks) or None,
        data_collator=data_collator(model, recipe.phase(n).pad_to_multiple_of, pretokenize),
    )
    if multi and val is not None:
        # Unwrapped (its rows now carry the VALIDATION name): one eval_loss and evaluator, as without multi.
        trainer.eval_dataset = trainer.eval_dataset[VALIDATION]
    for callback in _tensorboard_callbacks(trainer):
        # transformers 5 has no logging_dir argument: its default, <output_dir>/runs/<time>_<host>, would sit
        # among the checkpoints that are deleted when the phase is done.
        callback.logging_dir = str(logging_dir)
    return trainer


def _tensorboard_callbacks(trainer) -> list:
    """The Trainer's TensorBoard callbacks (none unless ``report_to`` is tensorboard)."""
    from transformers.integrations import TensorBoardCallback

    return [cb for cb in trainer.callback_handler.callbacks if isinstance(cb, TensorBoardCallback)]


def close_logs(trainer) -> None:
    """Close the TensorBoard writer an ``evaluate()`` after training reopened (training's own is closed)."""
    for callback in _tensorboard_callbacks(trainer):
        if callback.tb_writer is not None:
            callback.tb_writer.close()
            callback.tb_writer = None
