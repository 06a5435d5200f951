"""Recipes: strict keys and types, command-line overrides, the shipped recipes parse."""

from __future__ import annotations

from pathlib import Path

import pytest
from datasets import Dataset

from medenc.core.errors import RecipeError
from medenc.training.recipe import load_recipe, parse_override, recipe_sha256, to_yaml

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", ["cpu", "gpu", "tiny"])
def test_shipped_recipes_parse(name):
    recipe = load_recipe(ROOT / "recipes" / f"{name}.yaml")
    assert recipe.phase2.loss == "mnrl"
    assert load_recipe(ROOT / "recipes" / f"{name}.yaml") == recipe  # deterministic


def test_gpu_recipe_carries_the_cpu_choices_at_full_scale():
    """The ablation tunes recipes/cpu.yaml; gpu.yaml makes the same choices on every row of each source.

    The GPU recipe may add sources the CPU budget leaves out (MeQSum, DO definitions),
    never drop one.
    """
    cpu = load_recipe(ROOT / "recipes" / "cpu.yaml")
    gpu = load_recipe(ROOT / "recipes" / "gpu.yaml")
    assert cpu.model == gpu.model == "base"
    for n in (1, 2, 3):
        c, g = cpu.phase(n), gpu.phase(n)
        assert c.enabled == g.enabled and c.loss == g.loss, f"phase {n}"
        assert set(c.used_sources()) <= set(g.used_sources()), f"phase {n} sources"
        assert c.multi_dataset == g.multi_dataset, f"phase {n} multi_dataset"
        replay = [bool(getattr(p, "replay_graded", 0)) for p in (c, g)]
        assert replay[0] == replay[1], f"phase {n} replay"
        # the CPU run caps its large sources (a small one, such as LayMaker's 436 pairs, may go in whole)
        assert any(v is not None for v in c.used_sources().values()), f"phase {n}: the CPU run is a subset"
        assert all(v is None for v in g.used_sources().values()), f"phase {n}: the GPU run uses every row"
    assert cpu.phase3.negatives == gpu.phase3.negatives and cpu.phase3.margin == gpu.phase3.margin
    assert cpu.phase3.mining.relative_margin == gpu.phase3.mining.relative_margin
    assert cpu.average == gpu.average, "the final model is averaged with the base in both, or in neither"
    assert cpu.phase2.near_misses().keys() <= gpu.phase2.near_misses().keys()
    mined = [{k for k, v in (p.phase3.mining.sources or {}).items() if v != 0} for p in (cpu, gpu)]
    assert mined[0] <= mined[1], "phase 3 mines over the same kinds of pairs"


def _write(tmp_path, text):
    p = tmp_path / "r.yaml"
    p.write_text(text)
    return p


def test_unknown_key_names_key_and_file(tmp_path):
    p = _write(tmp_path, "model: tiny\nphase2:\n  bach_size: 3\n")
    with pytest.raises(RecipeError, match=r"r\.yaml.*unknown key 'phase2\.bach_size'"):
        load_recipe(p)
    with pytest.raises(RecipeError, match="unknown key 'colour'"):
        load_recipe(_write(tmp_path, "colour: red\n"))


def test_wrong_type_names_key_type_and_value(tmp_path):
    with pytest.raises(RecipeError, match=r"key 'phase1\.batch_size': expected int, found 'big'"):
        load_recipe(_write(tmp_path, "phase1:\n  batch_size: big\n"))
    with pytest.raises(RecipeError, match=r"phase1\.learning_rate.*2e-5.*2\.0e-5"):
        load_recipe(_write(tmp_path, "phase1:\n  learning_rate: 2e-5\n"))
    with pytest.raises(RecipeError, match="precision"):
        load_recipe(_write(tmp_path, "precision: fp8\n"))
    with pytest.raises(RecipeError, match=r"phase2\.sources\.meqsum"):
        load_recipe(_write(tmp_path, "phase2:\n  sources: {meqsum: lots}\n"))
    with pytest.raises(RecipeError, match="enabled"):
        load_recipe(_write(tmp_path, "phase1:\n  enabled: 'yes'\n"))


def test_types_are_strict_but_an_int_is_a_float(tmp_path):
    """No coercion: a bool or the text "32" is not an int; an int where a float goes becomes a float."""
    with pytest.raises(RecipeError, match=r"key 'phase1\.batch_size': expected int, found True"):
        load_recipe(_write(tmp_path, "phase1:\n  batch_size: true\n"))
    with pytest.raises(RecipeError, match=r"key 'phase1\.batch_size': expected int, found '32'"):
        load_recipe(_write(tmp_path, "phase1:\n  batch_size: '32'\n"))
    with pytest.raises(RecipeError, match=r"'phase3\.mining\.range_max': expected int \| null, found 'x'"):
        load_recipe(_write(tmp_path, "phase3:\n  mining: {range_max: x}\n"))
    r = load_recipe(ROOT / "recipes" / "tiny.yaml", ["phase1.epochs=2", "phase3.mining.max_score=1"])
    assert isinstance(r.phase1.epochs, float) and isinstance(r.phase3.mining.max_score, float)
    assert "epochs: 2.0\n" in to_yaml(r)
    with pytest.raises(RecipeError, match=r"--set phase2\.batch_size\.x=1: 'phase2\.batch_size\.x' goes in"):
        parse_override("phase2.batch_size.x=1")


def test_overrides_win_and_are_checked():
    tiny = ROOT / "recipes" / "tiny.yaml"
    r = load_recipe(tiny, ["phase2.batch_size=32", "phase3.mining.num_negatives=2", "phase2.sources.rqe=5"])
    assert r.phase2.batch_size == 32 and r.phase3.mining.num_negatives == 2 and r.phase2.sources["rqe"] == 5
    assert load_recipe(tiny, ["phase1.max_steps=null"]).phase1.max_steps is None
    with pytest.raises(RecipeError, match=r"--set phase2\.batch_size=x.*expected int, found 'x'"):
        load_recipe(tiny, ["phase2.batch_size=x"])
    with pytest.raises(RecipeError, match=r"--set phase2\.bogus=1: unknown key 'phase2\.bogus'"):
        load_recipe(tiny, ["phase2.bogus=1"])
    with pytest.raises(RecipeError, match="KEY=VALUE"):
        parse_override("phase2.batch_size")
    with pytest.raises(RecipeError, match="loss"):
        load_recipe(tiny, ["phase2.loss=triplet"])


def test_zero_rows_leaves_a_source_out(tmp_path):
    """Ablations remove one source with `--set phaseN.sources.NAME=0`; every source at 0 is no source."""
    tiny = ROOT / "recipes" / "tiny.yaml"
    r = load_recipe(tiny, ["phase2.sources.rqe=0"])
    assert "rqe" in r.phase2.sources and "rqe" not in r.phase2.used_sources()
    with pytest.raises(RecipeError, match=r"phase2\.sources\.rqe.*>= 0"):
        load_recipe(tiny, ["phase2.sources.rqe=-1"])
    with pytest.raises(RecipeError, match="names no source"):
        load_recipe(_write(tmp_path, "phase1:\n  sources: {stsb: 0}\n"))


def test_mining_sources_choose_the_pairs_phase_3_mines(tmp_path):
    """null mines phase 2's selection; a dict chooses its own, checked like any source list."""
    from medenc.training.data import mining_pairs

    tiny = ROOT / "recipes" / "tiny.yaml"
    pairs = Dataset.from_dict(
        {
            "anchor": [f"q{i}" for i in range(6)],
            "positive": [f"a{i}" for i in range(6)],
            "source": ["medquad_qa"] * 3 + ["rqe"] * 3,
        }
    )

    def loader(split, set_name):
        return pairs

    r = load_recipe(tiny, ["phase2.sources={medquad_qa: null, rqe: null}"])
    assert sorted(mining_pairs(r, loader, "train", None)["anchor"]) == [f"q{i}" for i in range(6)]
    r = load_recipe(tiny, ["phase2.sources={medquad_qa: null, rqe: null}", "phase3.mining.sources={rqe: 2}"])
    assert set(mining_pairs(r, loader, "train", None)["anchor"]) < {"q3", "q4", "q5"}  # 2 of the rqe rows
    with pytest.raises(RecipeError, match=r"phase3\.mining\.sources' names no source"):
        load_recipe(tiny, ["phase3.mining.sources={rqe: 0}"])
    with pytest.raises(RecipeError, match=r"phase3\.mining\.sources\.rqe.*>= 0"):
        load_recipe(tiny, ["phase3.mining.sources={rqe: -1}"])


def test_value_checks(tmp_path):
    with pytest.raises(RecipeError, match="names no source"):
        load_recipe(_write(tmp_path, "phase1:\n  sources: {}\n"))
    with pytest.raises(RecipeError, match="every phase is disabled"):
        load_recipe(
            _write(tmp_path, "phase1: {enabled: false}\nphase2: {enabled: false}\nphase3: {enabled: false}\n")
        )
    with pytest.raises(RecipeError, match=r"phase2\.batch_size.*at least 1"):
        load_recipe(ROOT / "recipes" / "tiny.yaml", ["phase2.batch_size=0"])


def test_resolved_yaml_round_trips(tmp_path):
    r = load_recipe(ROOT / "recipes" / "tiny.yaml", ["phase2.batch_size=7"])
    again = load_recipe(_write(tmp_path, to_yaml(r)))
    assert again == r and recipe_sha256(again) == recipe_sha256(r)
    assert recipe_sha256(load_recipe(ROOT / "recipes" / "tiny.yaml")) != recipe_sha256(r)


def test_init_from_must_be_a_model_folder(tmp_path):
    with pytest.raises(RecipeError, match=r"init_from.*modules\.json"):
        load_recipe(ROOT / "recipes" / "tiny.yaml", [f"init_from={tmp_path}"])
    (tmp_path / "modules.json").write_text("[]")
    assert load_recipe(ROOT / "recipes" / "tiny.yaml", [f"init_from={tmp_path}"]).init_from == str(tmp_path)


@pytest.mark.parametrize("key", ["max_seq_length", "phase2.max_seq_length"])
@pytest.mark.parametrize("value", [-1, 0, 513])
def test_sequence_lengths_are_range_checked_before_any_run(key, value):
    """A negative length used to fail as a raw OverflowError after run.json said "running"."""
    with pytest.raises(RecipeError, match=rf"key '{key}': expected a length from 1 to 512, found {value}"):
        load_recipe(ROOT / "recipes" / "tiny.yaml", [f"{key}={value}"])


def test_matryoshka_dims_are_off_by_default_and_checked():
    for name in ("cpu", "gpu", "tiny"):  # not turned on before its cost at full width is measured
        assert load_recipe(ROOT / "recipes" / f"{name}.yaml").phase2.matryoshka_dims is None
    tiny = ROOT / "recipes" / "tiny.yaml"
    r = load_recipe(tiny, ["phase2.matryoshka_dims=[32,16,8]"])  # the tiny model is 32 wide
    assert r.phase2.matryoshka_dims == [32, 16, 8] and "- 16\n" in to_yaml(r)
    # Wider than the model: refused at load, not when phase 2 starts after phase 1 trained.
    with pytest.raises(
        RecipeError, match=r"'phase2\.matryoshka_dims': \[768, 256\] exceeds the 32 embedding"
    ):
        load_recipe(tiny, ["phase2.matryoshka_dims=[768,256]"])
    assert load_recipe(ROOT / "recipes" / "cpu.yaml", ["phase2.matryoshka_dims=[768,256]"])
    assert recipe_sha256(r) != recipe_sha256(load_recipe(tiny))
    for bad in ("[]", "[0, 8]", "[8, 8]"):
        with pytest.raises(RecipeError, match=r"key 'phase2\.matryoshka_dims': expected distinct dimensions"):
            load_recipe(tiny, [f"phase2.matryoshka_dims={bad}"])
    with pytest.raises(RecipeError, match=r"key 'phase2\.matryoshka_dims\.0': expected int, found 'a'"):
        load_recipe(tiny, ["phase2.matryoshka_dims=[a]"])


def test_loss_names_are_the_table_of_losses_and_fit_the_phase_data():
    """``phaseN.loss``: any name of medenc.training.losses.LOSSES whose inputs the phase's data set has."""
    from medenc.training.losses import LOSSES
    from medenc.training.phase_specs import PHASES

    tiny = ROOT / "recipes" / "tiny.yaml"
    for name, spec in LOSSES.items():  # every loss of the table, in every phase whose data set it takes
        for n in (1, 2, 3):
            if PHASES[n].data_set in spec.data_sets:
                assert load_recipe(tiny, [f"phase{n}.loss={name}"]).phase(n).loss == name
    every = r" \| ".join(f"'{name}'" for name in LOSSES)  # an unknown name is refused, naming them all
    with pytest.raises(RecipeError, match=rf"'phase3\.loss': expected {every}, found 'nope'$"):
        load_recipe(tiny, ["phase3.loss=nope"])
    assert load_recipe(tiny, ["phase3.loss=mnrl"]).phase3.loss == "mnrl"  # MNRL on triplets
    with pytest.raises(RecipeError, match=r"'phase1\.loss': 'mnrl' does not take .*: cosine, cosent$"):
        load_recipe(tiny, ["phase1.loss=mnrl"])
    with pytest.raises(RecipeError, match=r"'phase2\.loss': 'triplet' does not take .*mnrl, cached_mnrl"):
        load_recipe(tiny, ["phase2.loss=triplet"])


def test_trainer_args_are_checked_against_the_training_arguments_fields():
    """``phaseN.trainer_args``: the library's own field names; a typo is refused with the close names."""
    tiny = ROOT / "recipes" / "tiny.yaml"
    recipe = load_recipe(tiny, ["phase2.trainer_args={gradient_accumulation_steps: 2, max_grad_norm: 0.5}"])
    assert recipe.phase2.trainer_args == {"gradient_accumulation_steps": 2, "max_grad_norm": 0.5}
    with pytest.raises(RecipeError) as err:
        load_recipe(tiny, ["phase2.trainer_args={gradient_acumulation_steps: 2}"])
    assert "key 'phase2.trainer_args.gradient_acumulation_steps'" in str(err.value)
    assert "not a SentenceTransformerTrainingArguments field" in str(err.value)
    assert "did you mean gradient_accumulation_steps" in str(err.value)
    # A field the recipe sets through its own key would contradict it: refused, naming that key.
    with pytest.raises(RecipeError, match=r"learning_rate': medenc sets this field from learning_rate;"):
        load_recipe(tiny, ["phase1.trainer_args={learning_rate: 0.1}"])


# --- combinations and inputs that used to fail late, or not at all ------------------------------------
TINY_RECIPE = ROOT / "recipes" / "tiny.yaml"


def test_pad_to_multiple_of_must_divide_each_phase_sequence_length():
    """24 with a sequence length of 32 crashed phase 3 in the tokenizer after phases 1 and 2 trained."""
    with pytest.raises(RecipeError) as e:
        load_recipe(TINY_RECIPE, ["phase3.pad_to_multiple_of=24"])
    assert "key 'phase3.pad_to_multiple_of'" in str(e.value) and "'max_seq_length' = 32" in str(e.value)
    with pytest.raises(RecipeError, match=r"'phase1\.pad_to_multiple_of'.*'phase1\.max_seq_length' = 20"):
        load_recipe(TINY_RECIPE, ["phase1.max_seq_length=20", "phase1.pad_to_multiple_of=8"])
    assert load_recipe(TINY_RECIPE, ["phase3.pad_to_multiple_of=8"]).phase3.pad_to_multiple_of == 8


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("phase3.mining.anchors=0", "phase3.mining.anchors"),
        ("phase3.max_rows=0", "phase3.max_rows"),
        ("phase2.mini_batch_size=0", "phase2.mini_batch_size"),
    ],
)
def test_counts_used_only_by_later_phases_are_checked_at_load(override, key):
    with pytest.raises(RecipeError, match=rf"key '{key}': expected at least 1"):
        load_recipe(TINY_RECIPE, [override])


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("phase1.learning_rate=.nan", "phase1.learning_rate"),
        ("phase2.epochs=.inf", "phase2.epochs"),
        ("phase3.mining.max_score=-.inf", "phase3.mining.max_score"),
        ("phase2.trainer_args={max_grad_norm: .nan}", "phase2.trainer_args.max_grad_norm"),
    ],
)
def test_non_finite_numbers_are_refused(override, key):
    with pytest.raises(RecipeError, match=rf"key '{key}': expected a finite number, found"):
        load_recipe(TINY_RECIPE, [override])


def test_yaml_aliases_are_refused_fast_with_a_short_error(tmp_path):
    """An alias bomb under a known key cost 4 GB and a 1.4 GB error line."""
    import time

    levels = ['  - &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    levels += [f"  - &a{i} [{','.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    p = _write(tmp_path, "seed:\n" + "\n".join(levels) + "\n")  # 9**10 strings under a known key
    t0 = time.perf_counter()
    with pytest.raises(RecipeError) as e:
        load_recipe(p)
    assert time.perf_counter() - t0 < 2
    msg = str(e.value)
    assert "line 3, column 10: an alias (*a0)" in msg and len(msg) < 300 and "\n" not in msg
    with pytest.raises(RecipeError, match=r"--set seed=.*alias"):
        load_recipe(TINY_RECIPE, ["seed=*x"])


def test_duplicate_keys_are_refused_naming_key_and_line(tmp_path):
    p = _write(tmp_path, "seed: 1\nphase1:\n  batch_size: 4\n  epochs: 1\n  batch_size: 8\n")
    with pytest.raises(
        RecipeError, match=r"r\.yaml: not valid YAML \(line 5, column 3: the key 'batch_size' a second"
    ):
        load_recipe(p)


def test_a_huge_wrong_value_gives_a_short_error(tmp_path):
    p = _write(tmp_path, "seed: [" + ", ".join(["1"] * 100_000) + "]\n")
    with pytest.raises(RecipeError, match=r"key 'seed': expected int, found \[1, 1") as e:
        load_recipe(p)
    assert len(str(e.value)) < 300


def test_a_recipe_path_that_is_a_folder_or_not_utf8_is_one_line(tmp_path):
    with pytest.raises(RecipeError, match=r"is a folder; expected a recipe YAML file"):
        load_recipe(tmp_path)
    p = tmp_path / "latin1.yaml"
    p.write_bytes("seed: 1 # caf\xe9\n".encode("latin-1"))
    with pytest.raises(RecipeError, match=r"latin1\.yaml: not UTF-8 text \(byte 13\)"):
        load_recipe(p)


# --- trainer_args that would publish, hold a token or change what a finished phase is (issue 42) ----------
FAKE_TOKEN = "hf_abcdefghijklmnopqrstuvwxyz0123"


@pytest.mark.parametrize(
    "override",
    [
        "phase1.trainer_args.push_to_hub=true",
        "phase1.trainer_args.hub_model_id=someone/x",
        f"phase1.trainer_args.hub_token={FAKE_TOKEN}",
        "phase2.trainer_args.hub_strategy=end",
        "phase3.trainer_args.hub_private_repo=false",
        "phase1.trainer_args.trackio_space_id=someone/space",
    ],
)
def test_trainer_args_never_push_or_hold_a_token(override):
    """The Trainer's own push shipped unchecked weights and wrote the token into recipe.yaml and the logs."""
    key = override.split("=", 1)[0]
    with pytest.raises(RecipeError) as err:
        load_recipe(TINY_RECIPE, [override])
    msg = str(err.value)
    assert f"key '{key}': training never pushes to the Hub or holds a token" in msg and "make release" in msg
    assert FAKE_TOKEN not in msg


def test_a_token_in_any_override_is_never_echoed():
    """The error line repeats the overrides: a token among them is shown as ***."""
    overrides = [f"phase1.trainer_args={{hub_token: {FAKE_TOKEN}}}", "phase1.batch_size=0"]
    with pytest.raises(RecipeError) as err:
        load_recipe(TINY_RECIPE, overrides)
    assert FAKE_TOKEN not in str(err.value) and "phase1.trainer_args=***" in str(err.value)
    with pytest.raises(RecipeError) as err:
        load_recipe(TINY_RECIPE, [f"phase1.hub_token={FAKE_TOKEN}"])
    assert FAKE_TOKEN not in str(err.value)


@pytest.mark.parametrize(
    "key",
    ["resume_from_checkpoint: x", "load_best_model_at_end: true", "save_only_model: true",
     "ignore_data_skip: true", "auto_find_batch_size: true", "metric_for_best_model: loss"],
)  # fmt: skip
def test_trainer_args_that_change_what_done_means_are_refused(key):
    name = key.split(":")[0]
    with pytest.raises(
        RecipeError, match=rf"key 'phase2\.trainer_args\.{name}': not settable, .*; remove it"
    ):
        load_recipe(TINY_RECIPE, [f"phase2.trainer_args={{{key}}}"])


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "phase1.trainer_args.gradient_accumulation_steps=-5",
            r"gradient_accumulation_steps': expected at least 1",
        ),
        (
            "phase1.trainer_args.gradient_accumulation_steps=0",
            r"gradient_accumulation_steps': expected at least 1",
        ),
        (
            "phase1.trainer_args.gradient_accumulation_steps=true",
            r"gradient_accumulation_steps': expected int, ",
        ),
        ("phase2.trainer_args.lr_scheduler_type=nope", r"lr_scheduler_type': expected 'linear' \| 'cosine'"),
        ("phase2.trainer_args.max_grad_norm='1.0'", r"max_grad_norm': expected float, found '1\.0'"),
        (
            "phase1.batch_size=100000000000000000000000",
            r"'phase1\.batch_size': expected a number below 2\*\*63",
        ),
        ("phase1.batch_size=100000", r"'phase1\.batch_size': expected at most 65536 texts a batch"),
        ("phase2.mini_batch_size=100000", r"'phase2\.mini_batch_size': expected at most 65536"),
        ("phase3.mining.batch_size=100000", r"'phase3\.mining\.batch_size': expected at most 65536"),
        ("seed=-1", r"key 'seed': expected a number from 0 to 4294967295, found -1"),
        ("seed=4294967296", r"key 'seed': expected a number from 0 to 4294967295"),
    ],
)
def test_values_that_would_train_nothing_or_fail_later_are_refused_at_load(override, message):
    """Each passed the recipe check: a phase of 0 steps marked done, or a failure in the run folder."""
    with pytest.raises(RecipeError, match=message):
        load_recipe(TINY_RECIPE, [override])


def test_trainer_args_of_the_right_type_still_pass():
    over = [
        "phase1.trainer_args={lr_scheduler_type: cosine, weight_decay: 0, gradient_accumulation_steps: 2}"
    ]
    args = load_recipe(TINY_RECIPE, over).phase1.trainer_args
    assert args == {"lr_scheduler_type": "cosine", "weight_decay": 0, "gradient_accumulation_steps": 2}
    assert load_recipe(TINY_RECIPE, ["seed=0", "phase1.batch_size=65536"]).seed == 0


def test_a_refused_recipe_leaves_no_run_folder(tmp_path):
    """scripts/train.py: the refusal comes before anything is written under the outputs folder."""
    import os
    import subprocess
    import sys

    out = tmp_path / "outputs"
    out.mkdir()
    over = "phase1.trainer_args.gradient_accumulation_steps=-5"
    env = {**os.environ, "MEDENC_VERBOSE": "", "PYTHONPATH": str(ROOT)}  # this tree's medenc
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "train.py"), "--recipe", str(TINY_RECIPE), "--run", "r",
         "--output-dir", str(out), "--set", over],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert proc.returncode == 2 and "error: RecipeError:" in proc.stderr, proc.stderr[-2000:]
    assert list(out.iterdir()) == []


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("9" * 5000, "an integer of 5000 characters"),
        ("[" * 5000 + "]" * 5000, "nested more than 20 levels deep"),
    ],
    ids=["5000-digit-integer", "5000-deep-nesting"],
)
def test_a_huge_integer_or_deep_nesting_is_a_one_line_error(tmp_path, value, problem):
    """Each ended in a raw traceback (ValueError of Python's digit limit, RecursionError)."""
    p = _write(tmp_path, f"seed: {value}\n")
    with pytest.raises(RecipeError, match=rf"r\.yaml: not valid YAML \(line 1, column \d+: .*{problem}") as e:
        load_recipe(p)
    assert len(str(e.value)) < 300
    with pytest.raises(RecipeError, match=rf"--set seed=.*: the value is not valid YAML .*{problem}"):
        load_recipe(TINY_RECIPE, [f"seed={value}"])
