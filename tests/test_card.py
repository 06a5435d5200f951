"""The model card: parseable front matter, a model-index equal to results.json, real images, every license."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from fakes import REPO_ID, SETS, json_loader, make_run, stage
from huggingface_hub import ModelCard

from medenc.core.errors import ReleaseError
from medenc.core.eval_sets import EVAL_SETS, IN_DOMAIN, ZERO_SHOT
from medenc.core.layout import RELEASE_DIR
from medenc.core.paths import PROJECT_ROOT
from medenc.release.card import SOURCES_FALLBACK, render_card
from medenc.release.hub import stage_release


@pytest.fixture
def staged(tmp_path):
    run_dir = make_run(tmp_path)
    return stage(run_dir)


def test_front_matter_parses(staged):
    text = (staged / "README.md").read_text(encoding="utf-8")
    meta = yaml.safe_load(re.match(r"^---\n(.*?)\n---\n", text, re.S).group(1))
    assert meta["license"] == "apache-2.0"
    assert meta["base_model"] == "sentence-transformers/all-mpnet-base-v2"
    assert meta["library_name"] == "sentence-transformers"
    assert meta["pipeline_tag"] == "sentence-similarity"
    assert meta["language"] == "en"
    assert {"sentence-transformers", "medical", "biomedical", "clinical"} <= set(meta["tags"])
    # Training sources only (test-only sets are not training data).
    assert "https://github.com/abachaa/MedQuAD" in meta["datasets"]
    assert "https://github.com/pubmedqa/pubmedqa" not in meta["datasets"]
    card = ModelCard.load(staged / "README.md")
    assert card.data.model_name == "MPNet-medical"


def test_model_index_equals_final_results(staged):
    results = json_loader(staged.parent).doc  # the file itself, not read through the card's own reader
    final = results["results"][results["models"]["final"]["from"]]
    card = ModelCard.load(staged / "README.md")
    got = {(r.dataset_name, r.metric_type): r.metric_value for r in card.data.eval_results}
    want = {(info["title"], m): final[s][m]["value"] for s, info in SETS.items() for m in info["metrics"]}
    assert got == want
    tasks = {r.dataset_type: r.task_type for r in card.data.eval_results}
    assert tasks["bigbio/biosses"] == "semantic-similarity" and tasks["medquad"] == "information-retrieval"
    assert tasks["rqe"] == "binary-classification" and tasks["triplets"] == "triplet"


def test_referenced_images_exist(staged):
    text = (staged / "README.md").read_text(encoding="utf-8")
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert sorted(images) == ["assets/deltas.png", "assets/phases.png"]
    for image in images:
        assert (staged / image).is_file(), image


def test_every_source_and_license_listed(staged):
    text = (staged / "README.md").read_text(encoding="utf-8")
    for info in SOURCES_FALLBACK.values():
        row = next(line for line in text.splitlines() if line.startswith(f"| {info['name']} |"))
        assert info["license"] in row and info["url"] in row


def test_manifest_wins_over_fallback(tmp_path):
    run_dir = make_run(tmp_path)
    manifest = {"sources": [{"folder": "meqsum", "license": "CC BY 4.0 (manifest)", "role": "train"}]}
    results = json_loader(run_dir)
    record = json.loads((run_dir / "run.json").read_text())
    card = render_card(run_dir, REPO_ID, results=results, record=record, manifest=manifest, charts=[])
    assert "| MeQSum | CC BY 4.0 (manifest) | train |" in str(card)


def test_ci_marker_and_small_set_warning(staged):
    text = (staged / "README.md").read_text(encoding="utf-8")
    biosses = next(line for line in text.splitlines() if line.startswith("| BIOSSES"))
    stsb = next(line for line in text.splitlines() if line.startswith("| STS Benchmark"))
    assert biosses.count("†") == 3  # CI straddles zero in every phase
    assert "†" not in stsb
    assert "† marks a difference whose CI includes zero" in text
    assert "BIOSSES cannot support claims" in text


def test_training_details_and_usage_come_from_the_run(staged):
    text = (staged / "README.md").read_text(encoding="utf-8")
    assert 'SentenceTransformer("org/mpnet-medical")' in text and "high blood pressure" in text
    assert "used `fp32`" in text and "Test CPU 9000" in text  # run.json, not retyped
    assert "MultipleNegativesRankingLoss" in text and "medquad_qa: 60" in text
    assert "Not for clinical decisions" in text and "English only" in text
    assert "Maximum sequence length:** 256 tokens" in text  # the released model's, not a training length
    assert "make setup" in text and "make train evaluate release RECIPE=tiny" in text


def test_missing_front_matter_is_refused(tmp_path):
    run_dir = make_run(tmp_path)
    template = tmp_path / "no_meta.md"
    template.write_text("# {{ model_name }}\n")
    with pytest.raises(ReleaseError, match="front matter"):
        stage_release(run_dir, REPO_ID, results_loader=json_loader, template_path=template)
    assert not (run_dir / RELEASE_DIR).exists()


HUB_TASK_IDS = {"semantic-similarity", "information-retrieval", "binary-classification", "triplet"}


def test_plain_transformers_snippet_gives_the_sentence_transformers_vectors(tmp_path, tiny_model):
    """The card's "Without sentence-transformers" code, run as written against the released folder."""
    import numpy as np
    from sentence_transformers import SentenceTransformer

    run_dir = make_run(tmp_path, model=tiny_model)
    staged = stage(run_dir, test_release=True)
    text = (staged / "README.md").read_text(encoding="utf-8")
    section = text.split("### Without sentence-transformers", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1).replace(REPO_ID, str(staged))
    scope: dict = {}
    exec(code, scope)
    want = SentenceTransformer(str(staged), device="cpu").encode(scope["sentences"], convert_to_numpy=True)
    np.testing.assert_allclose(scope["embeddings"].numpy(), want, atol=1e-5)


def test_card_from_the_published_run_uses_hub_task_ids_and_dataset_ids(tmp_path, repo_root):
    """Rendered from real suite output (results/cpu, the published CPU run), not from a hand-made fixture."""
    import shutil

    from medenc.release.publish import rerender_card

    published = tmp_path / "cpu"
    shutil.copytree(repo_root / "results" / "cpu", published)
    card = ModelCard.load(rerender_card(published, REPO_ID))
    results = json.loads((published / "results.json").read_text())
    assert {r.task_type for r in card.data.eval_results} <= HUB_TASK_IDS
    final = results["results"][results["models"]["final"]["from"]]
    assert {(r.dataset_name, r.metric_type): r.metric_value for r in card.data.eval_results} == {
        (results["sets"][s]["title"], m): final[s][m]["value"] for s in results["sets"] for m in final[s]
    }
    by_set = {r.dataset_name: r for r in card.data.eval_results}
    assert by_set["BIOSSES"].dataset_type == "bigbio/biosses"  # the same 100 pairs are on the Hub
    medquad = by_set[results["sets"]["medquad"]["title"]]
    assert medquad.dataset_revision == results["data_manifest_sha256"]  # our own held-out split
    assert medquad.source_url == "https://github.com/abachaa/MedQuAD"
    assert "sentence-transformers/stsb" in card.data.datasets
    text = (published / "model_card.md").read_text(encoding="utf-8")
    for alt, path in re.findall(r"!\[([^\]]*)\]\(([^)]+)\)", text):
        assert (published / path).is_file() and len(alt) > 40, (alt, path)  # shown, and described
    assert "@inproceedings{reimers2019sentencebert" in text and "@article{sogancioglu2017biosses" in text
    # Credited as trained on only where the run used its rows: that recipe took no MeQSum pair.
    assert "https://github.com/obophenotype/human-phenotype-ontology" in card.data.datasets
    assert "https://github.com/abachaa/MeQSum" not in card.data.datasets
    # ... and the sources prepared since (the passage sources of issue 39) are listed beside it.
    assert "Prepared, but not used by this run's recipe: MeQSum; Cochrane plain-language summaries" in text
    assert "| MeQSum | CC BY 4.0 | train+validation: pairs (CHQ->summary) (*not used by this run*) |" in text
    # The evaluation's two groups, each its own table: zero-shot sets first, then in-domain ones.
    evaluation = text.split("## Evaluation", 1)[1]
    zero, domain = (evaluation.index(f"**{g}**") for g in (ZERO_SHOT, IN_DOMAIN))
    assert zero < domain
    for name, info in results["sets"].items():
        at = evaluation.index(f"| {info['title']} (n={info['n']}) |")
        assert (zero < at < domain) is EVAL_SETS[name].zero_shot and at > zero, name


def test_a_source_the_run_took_no_rows_of_is_not_credited_as_training_data(tmp_path):
    from medenc.release.card import data_sources, trained_row_sources

    record = {"phases": [{"status": "done", "rows": {"stsb": 8, "meqsum": 0}},
                           {"status": "done", "rows": {"rqe": 4, "mined": 6}, "mined_from": ["medquad_qa"]},
                           {"status": "skipped"}]}  # fmt: skip
    used = trained_row_sources(record)
    assert used == {"stsb", "rqe", "medquad_qa"}
    train = {s["folder"] for s in data_sources(None, used) if s["train"]}
    assert train == {"stsbenchmark", "rqe_amia2016", "medquad"}
    assert trained_row_sources({"phases": []}) is None  # no record: the roles decide, as before
    assert "meqsum" in {s["folder"] for s in data_sources(None, None) if s["train"]}


def test_smaller_embeddings_table_only_when_results_have_dimensions(tmp_path):
    """results.json's `dimensions` block becomes a widths x sets table (released model / base)."""
    from medenc.core.io import fmt
    from medenc.evaluation.results import Results

    run_dir = make_run(tmp_path)
    results = json_loader(run_dir).doc
    record = json.loads((run_dir / "run.json").read_text())

    def render() -> str:
        checked = Results.from_doc(results, run_dir / "eval" / "results.json")
        return str(render_card(run_dir, REPO_ID, results=checked, record=record, charts=[]))

    assert "Smaller embeddings" not in render()
    final = results["models"]["final"]["from"]
    block = {
        str(d): {m: {s: results["results"][m][s] for s in ("biosses", "medquad")} for m in ("base", final)}
        for d in (768, 256, 128)
    }
    block["128"] = json.loads(json.dumps(block["128"]))
    block["128"][final]["medquad"]["ndcg@10"]["value"] = 0.4321
    results["dimensions"] = block
    text = render()
    assert "### Smaller embeddings" in text and "truncate_dim=128)" in text
    assert "| Dimensions | BIOSSES spearman | MedQuAD ndcg@10 |" in text
    rows = {line.split(" |")[0]: line for line in text.splitlines() if line.startswith("| 128 |")}
    base_mq = fmt(results["results"]["base"]["medquad"]["ndcg@10"]["value"], digits=3)
    assert rows["| 128"].rstrip().endswith(f"| 0.432 / {base_mq} |")


def test_model_details_are_read_from_the_shipped_model_in_either_pooling_spelling(tmp_path, tiny_model):
    """The card's width and pooling come from the model folder, as this sentence-transformers writes it and
    as the base model's (older) folder spells it."""
    from medenc.core.modeling import save_model
    from medenc.release.card import model_details

    save_model(tiny_model, tmp_path / "all")  # both spellings, for every reader
    both = model_details(tmp_path / "all")
    assert both["pooling"] == "mean" and both["all_readers"]
    tiny_model.save(str(tmp_path / "m"))
    details = model_details(tmp_path / "m")
    assert details["dimensions"] == 32 and details["pooling"] == "mean" and details["normalized"]
    assert not details["all_readers"]  # sentence-transformers 6's own layout: TEI and 5.x do not read it
    old = {"word_embedding_dimension": 768, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True}
    (tmp_path / "m" / "1_Pooling" / "config.json").write_text(json.dumps(old))
    details = model_details(tmp_path / "m")
    assert details["dimensions"] == 768 and details["pooling"] == "mean"


def test_share_alike_sources_the_run_trained_on_are_named_with_what_share_alike_means(staged):
    text = (staged / "README.md").read_text(encoding="utf-8")
    line = next(line for line in text.splitlines() if line.startswith("**Share-alike sources.**"))
    by_sa = {s["folder"]: s["name"] for s in SOURCES_FALLBACK.values() if "BY-SA" in s["license"]}
    # the stand-in run trains STS-B and takes no Simple Wikipedia rows: only what it trained on is named
    assert by_sa["stsbenchmark"] in line and by_sa["simplewiki_medical"] not in line
    assert "same licence" in line and "retrain without these sources" in line


def test_a_weight_average_is_described_with_its_validation_choice(tmp_path, repo_root):
    """run.json's final.average (recipe key `average`) becomes one sentence: the shares and the choice."""
    import shutil

    from medenc.release.publish import rerender_card

    published = tmp_path / "cpu"
    shutil.copytree(repo_root / "results" / "cpu", published)
    record = json.loads((published / "run.json").read_text())
    candidates = [
        {"weight": w, "scores": {}, "mean": m} for w, m in ((0.5, 0.8076), (0.75, 0.8131), (1.0, 0.8117))
    ]
    record["final"]["average"] = {"of": "phase-3-triplet", "weight": 0.75, "candidates": candidates}
    (published / "run.json").write_text(json.dumps(record))
    text = (rerender_card(published, REPO_ID)).read_text(encoding="utf-8")
    assert "averaged with the base model's (WiSE-FT), 0.75 of the fine-tuned and 0.25 of the base's" in text
    assert "among 0.5 (0.8076), 0.75 (0.8131), 1.0 (0.8117)" in text
    record["final"]["average"]["weight"] = 1.0  # validation preferred the fine-tuned weights: nothing to say
    (published / "run.json").write_text(json.dumps(record))
    assert "WiSE-FT" not in rerender_card(published, REPO_ID).read_text(encoding="utf-8")


def test_the_card_says_what_the_model_inherits_and_that_medquad_is_mtebs_medical_qa(staged, tmp_path):
    text = " ".join((staged / "README.md").read_text(encoding="utf-8").split())
    inherits = text.split("### What the model inherits from its base", 1)[1].split("## Intended use", 1)[0]
    assert "`license: apache-2.0`" in inherits and "1,170,060,424 training tuples" in inherits
    for name in ("Reddit comments", "S2ORC", "WikiAnswers", "PAQ", "Stack Exchange", "MS MARCO"):
        assert name in inherits, name
    assert "terms of their own" in inherits and "before commercial use" in inherits
    assert "MedQuAD trains this model: its figure on that task is in-domain, not zero-shot" in inherits
    # A run that took no MedQuAD rows does not claim it; a test release (random weights) inherits nothing.
    run_dir = make_run(tmp_path / "no-medquad")
    record = json.loads((run_dir / "run.json").read_text())
    for phase in record["phases"]:
        phase["rows"] = {k: v for k, v in phase["rows"].items() if k != "medquad_qa"}
    (run_dir / "run.json").write_text(json.dumps(record))
    assert "MedicalQARetrieval" not in (stage(run_dir) / "README.md").read_text(encoding="utf-8")


@pytest.mark.integration
def test_the_inherited_data_are_those_of_the_base_models_own_card():
    """The card's figures of the base model's training data, against its README in the verified download."""
    from medenc.core.base_model import resolve_base_model

    readme = (resolve_base_model() / "README.md").read_text(encoding="utf-8")
    assert "license: apache-2.0" in readme.split("---", 2)[1].splitlines()  # its front matter
    assert "| **Total** | | **1,170,060,424** |" in readme
    template = " ".join((PROJECT_ROOT / "model_card" / "template.md").read_text(encoding="utf-8").split())
    assert "1,170,060,424 training tuples from Reddit comments (2015-2018; 726 million of them)" in template
    assert "[Reddit comments (2015-2018)]" in readme and "| 726,484,430 |" in readme
    for name in ("S2ORC", "WikiAnswers", "PAQ", "Stack Exchange", "MS MARCO", "SPECTER", "TriviaQA"):
        assert name in readme and name in template, name
