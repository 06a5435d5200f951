"""Tests of the data layer: adapters on the real files, stable splits, the leakage guard, bad inputs."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import shutil
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from fakes import RAW, REPO_ID, json_loader, make_run, write_prepared

from medenc.core import layout
from medenc.core.errors import DataError, LeakageError
from medenc.core.io import sha256_file
from medenc.core.paths import PROJECT_ROOT
from medenc.data import (
    catalog,
    checksums,
    filters,
    leakage,
    parsing,
    pins,
    prepare,
    read,
    test_sets,
    twins,
    write,
)
from medenc.data.source import Concept, Dropped, Pin, Source, SourceInfo, concept_held, row
from medenc.data.sources import (
    REGISTRY,
    biosses,
    disease_ontology,
    hpo_layperson,
    medical_abbreviations,
    medquad,
    meqsum,
    pubmedqa,
    rqe_amia2016,
    stsbenchmark,
)

# None where the raw data is not on this machine: the real-data tests are skipped, the rest still run.
needs_raw = pytest.mark.skipif(RAW is None, reason="raw data (../shared/data or $DATA_DIR) not available")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Prepare the real data once into a temp folder, with PREPARED_DIR pointing at it."""
    if RAW is None:
        pytest.skip("raw data not available")
    out = tmp_path_factory.mktemp("prep") / "prepared"
    # A module-scoped fixture cannot take the function-scoped monkeypatch; this context restores the variable.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PREPARED_DIR", str(out))
        prepare.prepare(out)
        yield out


# --- adapters on the real files -----------------------------------------------------------------------------
@needs_raw
def test_real_counts_match_readme() -> None:
    assert len(biosses.read(RAW / "biosses")) == 100
    rqe = rqe_amia2016.read(RAW / "rqe_amia2016")
    assert len(rqe["train"]) == 8588 - 1  # pair 5860 ships an empty <faq> (KNOWN_EMPTY)
    assert len(rqe["test"]) == 302
    pm = pubmedqa.read(RAW / "pubmedqa")
    assert len(pm.items) == 1000 and len(pm.test_ids) == 500
    stsb = stsbenchmark.read(RAW / "stsbenchmark")
    assert [len(stsb[s]) for s in ("train", "dev", "test")] == [5749, 1500, 1379]
    assert len(meqsum.read(RAW / "meqsum")) == 1000
    assert len(medical_abbreviations.read(RAW / "medical_abbreviations")) == 4438
    docs = medquad.read(RAW / "medquad").docs
    assert len(docs) == 11274
    common = [d for d in docs if not d.variant_schema]  # SOURCE.txt counts <QAPair> elements only
    assert sum(len(d.qa) for d in common) == 47441
    assert sum(1 for d in common for q in d.qa if q.answer) == 16407
    assert sum(len(d.synonyms) for d in docs) == 22865


@needs_raw
def test_real_scores_normalised() -> None:
    for p in biosses.read(RAW / "biosses") + stsbenchmark.read(RAW / "stsbenchmark")["test"]:
        assert 0.0 <= p.score <= 1.0


# --- the prepared data --------------------------------------------------------------------------------------
def test_prepared_layout_and_loaders(prepared: Path) -> None:
    from medenc.data import load_manifest, load_retrieval, load_split, manifest_hash

    for split in layout.TRAIN_SPLITS:
        for name, cols in layout.COLUMNS.items():
            ds = load_split(split, name)
            assert set(ds.column_names) == {*cols, "source"} and len(ds) > 0
    assert set(load_split("test", "biosses").column_names) == {"sentence1", "sentence2", "score"}
    assert set(load_split("test", "rqe")["label"]) == {0, 1}
    mq = load_retrieval("medquad")
    assert 400 <= len(mq.corpus) <= 600
    assert all(mq.relevant[q] <= set(mq.corpus) for q in mq.queries)
    pm = load_retrieval("pubmedqa")
    assert len(pm.queries) == len(pm.corpus) == 500
    terms = load_retrieval("terms")
    assert len(terms.queries) >= 800 and len(terms.corpus) >= 400
    assert all(terms.relevant[q] <= set(terms.corpus) for q in terms.queries)
    # Held-out abbreviations and synonyms never reach training, as queries or as answers.
    train_keys = {
        leakage.key(t)
        for s in layout.TRAIN_SPLITS
        for c in ("anchor", "positive")
        for t in load_split(s, "pairs")[c]
    }
    assert not {leakage.key(t) for t in [*terms.queries.values(), *terms.corpus.values()]} & train_keys
    # Every name of a held-out concept (its queries, its name in the corpus) is absent from training.
    concepts = load_retrieval("concepts")
    assert 1000 <= len(concepts.queries) <= 1500 and len(concepts.corpus) > 10000
    held_names = {concepts.corpus[c] for q in concepts.queries for c in concepts.relevant[q]}
    assert not {leakage.key(t) for t in [*concepts.queries.values(), *held_names]} & train_keys
    assert not {q.split("#")[0] for q in concepts.queries} & set(load_split("train", "pairs")["source"])
    man = load_manifest()
    assert man["leakage"]["passed"] and len(manifest_hash()) == 64
    assert man["sources"]["medquad"]["commit"].startswith("577bd37")
    by_source = man["sets"]["train"]["pairs"]["by_source"]
    assert all(by_source[s] > 1000 for s in ("do_synonym", "do_definition", "hpo_lay"))
    assert man["sets"]["train"]["triplets"]["by_source"]["do_sibling"] > 1000
    # Every training row's source belongs to exactly one catalog entry: the card credits sources by it.
    row_sources = [r for info in catalog.CATALOG.values() for r in info.row_sources]
    trained = {s for split in man["sets"]["train"].values() for s in split.get("by_source", {})}
    # Except the twins, made by rule from the other sources' pairs (medenc/data/twins.py): their texts are
    # those sources' texts, one word flipped, and a recipe that selects them credits the sources of its pairs.
    assert len(row_sources) == len(set(row_sources)) and trained == {*row_sources, twins.SOURCE}
    assert {k: (v["license"], v["role"]) for k, v in man["sources"].items()} == {
        k: (v.license, v.role) for k, v in catalog.CATALOG.items()
    }
    assert (prepared / layout.LEAKAGE_REPORT).is_file()


def test_names_held_out_by_concept_group_across_sources(prepared: Path) -> None:
    """The name tests (icd10, drugs, near_misses) on the real build, and the cross-source hold-out: no name
    of a held-out concept group trains under any source, and a group is held on every source or on none."""
    from medenc.data import load_manifest, load_retrieval, load_split, read
    from medenc.data.concept_groups import group_concepts
    from medenc.data.parsing import SkipLog

    train = {
        leakage.key(str(t))
        for s in layout.TRAIN_SPLITS
        for fmt in ("pairs", "triplets")
        for c in layout.COLUMNS[fmt]
        for t in load_split(s, fmt)[c]
    }
    icd, drugs = load_retrieval("icd10"), load_retrieval("drugs")
    assert 500 <= len(icd.queries) <= 1200 and len(icd.corpus) > 6000
    assert 400 <= len(drugs.queries) <= 1000 and len(drugs.corpus) > 4000
    for ret in (icd, drugs):
        answers = {ret.corpus[c] for q in ret.queries for c in ret.relevant[q]}
        assert not {leakage.key(t) for t in [*ret.queries.values(), *answers]} & train
    near = load_split("test", "near_misses")
    held_texts = [*near["anchor"], *near["positive"]]
    assert len(near) > 400 and not {leakage.key(t) for t in held_texts} & train
    assert all(n != p for n, p in zip(near["negative"], near["positive"], strict=True))
    # The decision per group: every (source, id) of one group shares it, and its names never train.
    parsed = read.read_sources(RAW, REGISTRY, SkipLog())
    grouping = group_concepts(REGISTRY, parsed)
    members: dict = {}
    for node, root in grouping.group.items():
        members.setdefault(root, []).append(node)
    multi = [nodes for nodes in members.values() if len({f for f, _ in nodes}) > 1]
    assert len(multi) > 1000  # "hypertension" is a DO disease, an ICD title and a WordNet synset
    assert all(len({grouping.held(f, i) for f, i in nodes}) == 1 for nodes in multi)
    assert grouping.held_keys and not grouping.held_keys & train
    assert any(grouping.held(f, i) for nodes in multi for f, i in nodes)
    info = load_manifest()["info"]
    assert info["concepts_moved_out_of_test_by_grouping"] == grouping.moved > 0


def test_splits_are_stable(prepared: Path) -> None:
    """A second, independent build gives the same rows in the same order as the one on disk."""
    from medenc.data import load_split

    again = prepare.build(RAW)
    for (split, name), rows in again.sets.items():
        on_disk = load_split(split, name).to_list()
        assert on_disk == [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows], (split, name)


def test_terms_test_set_holds_out_whole_abbreviations() -> None:
    """Each meaning of a held-out abbreviation is relevant; a query equal to a corpus text is dropped."""
    row_of = medical_abbreviations.AbbreviationRow
    abbrevs = [row_of(f"x.csv:{i}", f"AB{i}", f"meaning {i}") for i in range(200)]
    abbrevs += [row_of("x.csv:900", a.abbreviation, "second meaning") for a in abbrevs[:200]]
    held = [a for a in abbrevs[:200] if medical_abbreviations.held(a.abbreviation)]
    assert 5 <= len(held) <= 50  # about 10% of 200
    doc = medquad.MedquadDoc("1_x/d1", 1, "Hypertension", ("High blood pressure", "meaning 0"), ())
    other = medquad.MedquadDoc("1_x/d2", 1, "Asthma", ("Wheezing disease",), ())
    mq = medquad.Medquad([doc, other], frozenset({"1_x/d1"}))
    queries = medical_abbreviations.test_sets(abbrevs).terms + medquad.test_sets(mq).terms
    sets, skipped = test_sets.build_terms_test(queries)
    queries = {r["id"]: r["text"] for r in sets[("test", "terms_queries")]}
    corpus = {r["id"]: r["text"] for r in sets[("test", "terms_corpus")]}
    rel: dict[str, set[str]] = {}
    for r in sets[("test", "terms_qrels")]:
        rel.setdefault(r["query_id"], set()).add(corpus[r["corpus_id"]])
    by_text = {queries[q]: rel[q] for q in queries}
    for a in held:
        assert by_text[a.abbreviation] == {a.meaning, "second meaning"}
    assert by_text["High blood pressure"] == {"Hypertension"}
    assert "Wheezing disease" not in by_text  # its document is not held out
    # "meaning 0" is a corpus text only if AB0 is held out; then the synonym query equal to it is skipped.
    assert ("meaning 0" in by_text) == ("meaning 0" not in corpus.values())
    assert skipped == int("meaning 0" in corpus.values())


def test_catalog_covers_every_source() -> None:
    """One catalog entry per raw source folder, each with every field the manifest and the card need."""
    assert list(catalog.CATALOG) == [s.folder for s in REGISTRY]
    for folder, info in catalog.CATALOG.items():
        assert info.folder == folder
        optional = {"hub_dataset"}  # only where the Hub holds the same data
        if "test only" in info.role:
            optional.add("row_sources")  # no training rows
        if "pypi.org" in info.url or "Debian" in info.url:
            optional.add("commit")  # a package's bundled file: no git commit
        assert all(getattr(info, f.name) for f in dataclasses.fields(info) if f.name not in optional), folder


def _prepare_script() -> ModuleType:
    """scripts/prepare_data.py as a module: its ``main(argv)`` is what ``make data`` runs."""
    spec = importlib.util.spec_from_file_location(
        "prepare_data", PROJECT_ROOT / "scripts" / "prepare_data.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- a new source is one module and one registry line -----------------------------------------------------
TOY_LINES = [f"toy term {i}\ttoy meaning number {i}\n" for i in range(40)]
TOY_COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _toy_source(folder: Path) -> Source:
    """A source as its module would declare it: one TSV of (term, meaning) lines, its pin, its catalog entry,
    its reader and one training-row builder."""

    def read_toy(path: Path, skips: parsing.SkipLog) -> list[list[str]]:
        return [line.split("\t") for line in parsing.read_utf8(path / "toy.tsv").splitlines()]

    def pairs(items: list[list[str]], skips: parsing.SkipLog) -> dict[str, list[dict]]:
        return {
            layout.PAIRS: [row(layout.PAIRS, "toy_terms", term, term, meaning) for term, meaning in items]
        }

    return Source(
        info=SourceInfo(
            folder="toy",
            name="Toy terms",
            license="CC0 1.0",
            role="train+validation: pairs (term->meaning)",
            url="https://example.org/toy",
            commit=TOY_COMMIT,
            attribution="Toy et al., 2026, A toy glossary",
            row_sources=("toy_terms",),
        ),
        files=("toy.tsv",),
        pins={"toy.tsv": Pin(sha256_file(folder / "toy.tsv"), len(TOY_LINES))},
        read=read_toy,
        training_rows=pairs,
    )


def test_a_registered_source_reaches_the_manifest_and_the_card(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A toy source, registered, flows through the build into the manifest and the card's source table."""
    from medenc.release import card

    folder = tmp_path / "raw" / "toy"
    folder.mkdir(parents=True)
    (folder / "toy.tsv").write_text("".join(TOY_LINES), encoding="utf-8")
    (folder / "SOURCE.txt").write_text(
        f"source: https://example.org/toy\ncommit: {TOY_COMMIT}\nlicense: CC0 1.0 (LICENSE)\n",
        encoding="utf-8",
    )
    registry = (_toy_source(folder),)
    path, manifest = prepare.prepare(tmp_path / "prepared", registry=registry, root=folder.parent)
    rows = {split: manifest["sets"][split]["pairs"].get("by_source", {}) for split in layout.TRAIN_SPLITS}
    assert sum(by_source.get("toy_terms", 0) for by_source in rows.values()) == len(TOY_LINES)
    assert manifest["raw_files_sha256"]["toy/toy.tsv"] == sha256_file(folder / "toy.tsv")
    assert manifest["sources"] == {
        "toy": {
            "license": "CC0 1.0",
            "license_upstream_note": "CC0 1.0 (LICENSE)",
            "role": "train+validation: pairs (term->meaning)",
            "url": "https://example.org/toy",
            "commit": TOY_COMMIT,
        }
    }
    assert manifest["leakage"]["passed"] and (path / "train" / "pairs" / "dataset_info.json").is_file()
    assert checksums.verify(path) == sha256_file(path / layout.MANIFEST)  # every file written is listed
    # The card reads the catalog the registry gives (here: the real sources and the toy one).
    monkeypatch.setattr(card, "CATALOG", catalog.catalog_of(REGISTRY + registry))
    monkeypatch.setattr(card, "SOURCES_FALLBACK", {k: dataclasses.asdict(v) for k, v in card.CATALOG.items()})
    (toy,) = card.data_sources(manifest, trained={"toy_terms"})
    assert (toy["name"], toy["license"], toy["url"], toy["commit"]) == (
        "Toy terms",
        "CC0 1.0",
        "https://example.org/toy",
        TOY_COMMIT,
    )
    assert toy["train"] and not toy["test_only"] and toy["attribution"] == "Toy et al., 2026, A toy glossary"
    # ... and the rendered card's sources table has its row (a fake run that did not train on it).
    run_dir = make_run(tmp_path / "run")
    record = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    text = str(
        card.render_card(run_dir, REPO_ID, results=json_loader(run_dir), record=record, manifest=manifest)
    )
    line = next(ln for ln in text.splitlines() if ln.startswith("| Toy terms |"))
    assert line.startswith(
        "| Toy terms | CC0 1.0 | train+validation: pairs (term->meaning) (*not used by this run*) |"
    )
    assert f"[https://example.org/toy](https://example.org/toy) @ `{TOY_COMMIT[:12]}`" in line
    assert line.endswith("| Toy et al., 2026, A toy glossary |")


def test_stale_temporary_folders_of_a_killed_make_data_are_removed(tmp_path: Path) -> None:
    """A killed ``make data`` leaves ``.prepared.tmp-PID``; the next one removes it unless PID still runs."""
    import subprocess
    import sys

    folder = tmp_path / "raw" / "toy"
    folder.mkdir(parents=True)
    (folder / "toy.tsv").write_text("".join(TOY_LINES), encoding="utf-8")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True)
    stale = tmp_path / f".prepared.tmp-{int(dead.stdout)}"
    running = tmp_path / f".prepared.tmp-{os.getppid()}"  # a make data still at work: left alone
    for d in (stale, running):
        (d / "train").mkdir(parents=True)
    prepare.prepare(tmp_path / "prepared", registry=(_toy_source(folder),), root=folder.parent)
    assert not stale.exists() and running.exists()


def test_every_source_declares_what_it_reads() -> None:
    """Each registered source names its files and pins them; a test-only source yields no training rows."""
    for source in REGISTRY:
        assert source.files and source.pins, source.folder
        assert (source.training_rows is None) == ("test only" in source.info.role), source.folder
        assert source.test_sets is not None or source.training_rows is not None, source.folder


def test_load_split_missing_says_make_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from medenc.data import load_manifest, load_split

    monkeypatch.setenv("PREPARED_DIR", str(tmp_path / "nothing"))
    with pytest.raises(DataError, match="make data") as e:
        load_split("train", "pairs")
    assert "nothing/train/pairs" in str(e.value)
    with pytest.raises(DataError, match="make data"):
        load_manifest()


# --- the prepared files against their checksums ----------------------------------------------------------
def _small_prepared(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A prepared folder as ``make data`` leaves it (tests/fakes.py), with PREPARED_DIR pointing at it."""
    target = write_prepared(tmp_path / "prepared")
    monkeypatch.setenv("PREPARED_DIR", str(target))
    return target


def test_make_data_writes_checksums_that_bind_the_files_to_the_manifest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from medenc.data import load_split, manifest_hash

    target = _small_prepared(tmp_path, monkeypatch)
    doc = json.loads((target / checksums.CHECKSUMS).read_text())
    assert doc["manifest_sha256"] == sha256_file(target / layout.MANIFEST)
    assert "train/pairs/dataset_info.json" in doc["files"] and layout.MANIFEST not in doc["files"]
    assert manifest_hash() == sha256_file(target / layout.MANIFEST)  # the data hash keeps its meaning
    assert len(load_split("train", "pairs")) == 20


@pytest.mark.parametrize("change", ["halve", "same size"])
def test_a_changed_prepared_training_file_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    """Halving a training file or putting text in it used to leave the data hash (the manifest's) as is."""
    from medenc.data import load_split, manifest_hash

    target = _small_prepared(tmp_path, monkeypatch)
    manifest_hash()  # hashed once: a later change must still be seen (the cache keys on size and mtime)
    arrow = next((target / "train" / "pairs").glob("*.arrow"))
    data = arrow.read_bytes()
    if change == "halve":
        arrow.write_bytes(data[: len(data) // 2])
    else:
        i = data.index(b"asthma")
        arrow.write_bytes(data[:i] + b"ASTHMA" + data[i + 6 :])
        st = arrow.stat()
        os.utime(arrow, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    for call in (manifest_hash, lambda: load_split("validation", "pairs")):
        with pytest.raises(DataError, match="run `make data`") as e:
            call()
        assert e.value.path == str(arrow)
        assert ("bytes" if change == "halve" else "changed after `make data`") in str(e.value)
        assert "\n" not in str(e.value)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (None, "manifest.json: expected the JSON manifest"),  # truncated
        ("[1, 2]", "manifest.json: expected a JSON object"),
        ('{"test": false}\n', "manifest.json: expected the manifest the prepared files were written with"),
    ],
)
def test_an_invalid_or_foreign_manifest_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str | None, match: str
) -> None:
    from medenc.data import load_split, manifest_hash

    target = _small_prepared(tmp_path, monkeypatch)
    path = target / layout.MANIFEST
    path.write_text(path.read_text()[:5] if text is None else text)
    for call in (manifest_hash, lambda: load_split("train", "pairs")):
        with pytest.raises(DataError, match=match) as e:
            call()
        assert "make data" in str(e.value) and len(str(e.value)) < 400


def test_a_prepared_folder_without_checksums_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from medenc.data import manifest_hash

    target = _small_prepared(tmp_path, monkeypatch)
    (target / checksums.CHECKSUMS).unlink()
    with pytest.raises(DataError, match=r"checksums\.json: expected the prepared files' sha256.*make data"):
        manifest_hash()
    write_prepared(target)
    (target / "train" / "pairs" / "state.json").unlink()
    with pytest.raises(DataError, match=r"pairs/state\.json: expected a prepared file listed"):
        manifest_hash()


# --- leakage guard ------------------------------------------------------------------------------------------
def test_guard_finds_planted_overlap() -> None:
    test_text = "the quick brown fox jumps over the lazy dog near the river bank today"
    train = [("stsb", "A cat sleeps."), ("meqsum", "Yesterday " + test_text + " again.")]
    with pytest.raises(LeakageError, match="quick brown fox") as e:
        leakage.check_leakage({"stsb": [test_text]}, train, threshold=0.5)
    ex = e.value.report["examples"][0]
    assert ex["test_set"] == "stsb" and ex["train_source"] == "meqsum"
    # Short texts are only checked exactly; an exact match fails regardless of length.
    assert leakage.check_leakage({"x": ["A cat sleeps now."]}, [("s", "A cat sleeps now, yes.")])["passed"]
    with pytest.raises(LeakageError, match=r"A cat\s+sleeps"):
        leakage.check_leakage({"x": ["A cat  sleeps."]}, [("s", "a cat sleeps.")])


def test_guard_planted_in_real_data(prepared: Path) -> None:
    from medenc.data import load_split

    planted = load_split("test", "pubmedqa_corpus")["text"][0]
    train = [("rqe", t) for t in load_split("train", "pairs")["positive"][:2000]] + [("planted", planted)]
    with pytest.raises(LeakageError) as e:
        leakage.check_leakage({"pubmedqa_corpus": [planted]}, train)
    assert e.value.report["examples"][0]["train_source"] == "planted"


def test_guard_threshold_configurable() -> None:
    t = "one two three four five six seven eight nine ten"  # 3 eight-grams
    train = [("s", "one two three four five six seven eight")]  # contains 1 of 3
    assert leakage.check_leakage({"x": [t]}, train, threshold=0.5)["passed"]
    with pytest.raises(LeakageError):
        leakage.check_leakage({"x": [t]}, train, threshold=0.2)


# --- bad inputs ---------------------------------------------------------------------------------------------
def test_malformed_xml(tmp_path: Path) -> None:
    f = tmp_path / "bad.xml"
    f.write_text('<RQE><pair pid="1" value="true"><chq>x</chq><faq>y</faq></pair>\n<pair>')
    with pytest.raises(DataError, match=r"bad\.xml, line 2") as e:
        rqe_amia2016.read_file(f)
    assert "well-formed XML" in str(e.value)


def test_rqe_bad_value_and_empty_text(tmp_path: Path) -> None:
    f = tmp_path / "r.xml"
    f.write_text('<R><pair pid="7" value="maybe"><chq>x</chq><faq>y</faq></pair></R>')
    with pytest.raises(DataError, match=r"r\.xml, pair pid=7.*value=\"true\""):
        rqe_amia2016.read_file(f)
    f.write_text('<R><pair pid="9" value="true"><chq>  </chq><faq>y</faq></pair></R>')
    with pytest.raises(DataError, match=r"r\.xml, pair pid=9 \(#1\) <chq>: expected a non-empty text"):
        rqe_amia2016.read_file(f)


def test_stsb_missing_field_and_bad_score(tmp_path: Path) -> None:
    f = tmp_path / "sts-x.csv"
    f.write_text("g\tf\t2012\t1\t3.0\tA man.\tA woman.\ng\tf\t2012\t2\t3.0\tonly one sentence\n")
    with pytest.raises(DataError, match=r"sts-x\.csv, line 2: expected at least 7 tab-separated"):
        stsbenchmark.read_file(f)
    f.write_text("g\tf\t2012\t1\t5.5\tA man.\tA woman.\n")
    with pytest.raises(DataError, match=r"sts-x\.csv, line 1, column 5: expected a score in \[0, 5\]"):
        stsbenchmark.read_file(f)
    f.write_text('g\tf\t2012\t1\t2\t"A man.\t \n')
    with pytest.raises(DataError, match=r"line 1, column 7 \(sentence2\): expected a non-empty text"):
        stsbenchmark.read_file(f)
    # Quotes are text, not CSV quoting; two extra columns are fine.
    f.write_text('g\tf\t2012\t1\t2.5\t"A man.\tA "big" woman.\tsrc1\tsrc2\n')
    assert stsbenchmark.read_file(f)[0].sentence1 == '"A man.'


def test_abbreviations_bad_rows(tmp_path: Path) -> None:
    f = tmp_path / "A.csv"
    f.write_text("Abbreviation/Shorthand,Meaning,More Info\r\nHTN,hypertension,\r\nBP\r\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"A\.csv, row 3: expected at least 2 fields"):
        medical_abbreviations.read_file(f)
    f.write_text("Abbr,Meaning\r\nHTN,hypertension\r\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"A\.csv, line 1: expected the header"):
        medical_abbreviations.read_file(f)
    f.write_bytes(b"Abbreviation/Shorthand,Meaning,More Info\r\nHTN,\xff\xfe,\r\n")
    with pytest.raises(DataError, match=r"A\.csv, byte \d+: expected UTF-8"):
        medical_abbreviations.read_file(f)


def test_unreadable_docx_and_xlsx(tmp_path: Path) -> None:
    d = tmp_path / "x.docx"
    d.write_text("not a zip")
    with pytest.raises(DataError, match=r"x\.docx: expected a Word \.docx file"):
        biosses.read_docx_table(d)
    x = tmp_path / "x.xlsx"
    x.write_text("not a workbook")
    with pytest.raises(DataError, match=r"x\.xlsx: expected an Excel \.xlsx workbook"):
        meqsum.read_file(x)


def _docx(path: Path, rows: list[list[str]]) -> None:
    import zipfile

    w = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
    trs = "".join(
        "<w:tr>" + "".join(f"<w:tc><w:p><w:r><w:t>{c}</w:t></w:r></w:p></w:tc>" for c in r) + "</w:tr>"
        for r in rows
    )
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(
            "word/document.xml",
            f'<w:document xmlns:w="{w}"><w:body><w:tbl>{trs}</w:tbl></w:body></w:document>',
        )


def test_biosses_score_out_of_scale(tmp_path: Path) -> None:
    root = tmp_path / "raw"
    (root / "biosses").mkdir(parents=True)
    _docx(root / "biosses" / "Annotation-Pairs.docx", [["", "S1", "S2"], ["1", "a b", "c d"]])
    _docx(
        root / "biosses" / "Annotator-Scores.docx",
        [["No", "A", "B", "C", "D", "E"], ["1", "4", "3", "5", "2", "1"]],
    )
    with pytest.raises(
        DataError, match=r"Annotator-Scores\.docx, table row 2, cell 4: expected a score in \[0, 4\]"
    ):
        biosses.read(root / "biosses")
    _docx(
        root / "biosses" / "Annotator-Scores.docx",
        [["No", "A", "B", "C", "D", "E"], ["1", "4", "3", "4", "2", "2"]],
    )
    assert biosses.read(root / "biosses")[0].score == pytest.approx(15 / 5 / 4)


def test_meqsum_empty_text(tmp_path: Path) -> None:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["File", "CHQ", "Summary"])
    ws.append(["f1", "a question", "a summary"])
    ws.append(["f2", "another question", "   "])
    f = tmp_path / "m.xlsx"
    wb.save(f)
    with pytest.raises(
        DataError, match=r"m\.xlsx, sheet 'Sheet', row 3, column C \(Summary\): expected a non-empty"
    ):
        meqsum.read_file(f)


def test_medquad_malformed_and_empty_question(tmp_path: Path) -> None:
    sub = tmp_path / "2_GARD_QA"
    sub.mkdir()
    f = sub / "0001.xml"
    f.write_text("<Document id='1'><Focus>X</Focus><QAPairs><QAPair pid='1'><Question qid='1-1'></Question>")
    with pytest.raises(DataError, match=r"0001\.xml, line 1, column \d+: expected well-formed XML"):
        medquad.read_file(f, 2)
    f.write_text(
        "<Document id='1'><Focus>X</Focus><QAPairs><QAPair pid='3'><Question qid='1-3'> </Question>"
        "<Answer>a</Answer></QAPair></QAPairs></Document>"
    )
    with pytest.raises(
        DataError, match=r"0001\.xml, <QAPair pid='3'> \(#1\) <Question>: expected a non-empty"
    ):
        medquad.read_file(f, 2)
    # An empty answer is upstream's "answer removed": not an error, not a pair.
    f.write_text(
        "<Document id='1'><Focus>X</Focus><QAPairs><QAPair pid='1'><Question qid='1-1'>What is X?</Question>"
        "<Answer></Answer></QAPair></QAPairs></Document>"
    )
    assert medquad.read_file(f, 2).qa[0].answer is None


def test_pubmedqa_bad_json(tmp_path: Path) -> None:
    (tmp_path / "pubmedqa").mkdir()
    (tmp_path / "pubmedqa" / "ori_pqal.json").write_text('{"1": {"QUESTION": "q", "CONTEXTS": ["a"]}')
    with pytest.raises(DataError, match=r"ori_pqal\.json, line 1, column \d+: expected valid UTF-8 JSON"):
        pubmedqa.read(tmp_path / "pubmedqa")


def test_missing_source_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(DataError) as e:
        read.read_sources(tmp_path, (meqsum.SOURCE,), parsing.SkipLog())
    msg = str(e.value)
    assert str(tmp_path / "meqsum") in msg and "MeQSum_ACL2019_BenAbacha_Demner-Fushman.xlsx" in msg
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "nope"))
    assert _prepare_script().main(["--out", str(tmp_path / "p")]) == 2
    assert not (tmp_path / "p").exists()


def test_missing_data_dir_names_every_source_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "nope"))
    with pytest.raises(DataError) as e:
        prepare.prepare(tmp_path / "p")
    assert all(f" {s.folder}/" in str(e.value) for s in REGISTRY) and "set DATA_DIR" in str(e.value)
    (tmp_path / "toy").mkdir()
    (tmp_path / "toy" / "toy.tsv").write_text("".join(TOY_LINES), encoding="utf-8")
    toy = _toy_source(tmp_path / "toy")
    with pytest.raises(DataError, match=r"upstream files: toy/; set DATA_DIR"):
        prepare.prepare(tmp_path / "p", registry=(toy,))


@needs_raw
def test_missing_folder_in_copy_fails_before_writing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A raw root with every source but one (symlinks: never copy or modify the raw files).
    root = tmp_path / "raw"
    root.mkdir()
    for name in (s.folder for s in REGISTRY):
        if name != "biosses":
            (root / name).symlink_to(RAW / name)
    monkeypatch.setenv("DATA_DIR", str(root))
    with pytest.raises(DataError, match=r"raw/biosses: expected the source folder 'biosses/'"):
        prepare.prepare(tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


def test_leakage_failure_leaves_prepared_untouched(
    prepared: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "prepared"
    shutil.copytree(prepared, target)
    before = (target / layout.MANIFEST).read_bytes()
    real_check = leakage.check_leakage

    def planted(test_texts: dict, train_texts: object, threshold: float = 0.5, **kw: object) -> dict:
        train = [*list(train_texts), ("planted", next(iter(test_texts["biosses"])))]
        return real_check(test_texts, train, threshold, **kw)

    monkeypatch.setattr(leakage, "check_leakage", planted)
    with pytest.raises(LeakageError, match="biosses"):
        prepare.prepare(target)
    assert (target / layout.MANIFEST).read_bytes() == before
    report = json.loads((tmp_path / "prepared.failed" / layout.LEAKAGE_REPORT).read_text())
    assert not report["passed"] and report["examples"][0]["train_source"] == "planted"


# --- pinned raw files and torn last lines ------------------------------------------------------------------
STS_ROWS = 30


@pytest.fixture
def small_raw(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A small raw root (every source folder, a 30-line sts-train.csv, two MedQuAD subsets), pinned as is."""
    root = tmp_path / "raw"
    for name in (s.folder for s in REGISTRY):
        (root / name).mkdir(parents=True)
    rows = [
        f"g\tf\t2012\t{i}\t3.0\tA man plays tune {i}.\tA woman sings song {i}.\n" for i in range(STS_ROWS)
    ]
    (root / "stsbenchmark" / "sts-train.csv").write_text("".join(rows), encoding="utf-8")
    for sub, docs in {"1_CancerGov_QA": ("a", "b"), "2_GARD_QA": ("c",)}.items():
        (root / "medquad" / sub).mkdir()
        for d in docs:
            (root / "medquad" / sub / f"{d}.xml").write_text(f"<Document><Focus>{d}</Focus></Document>")
    monkeypatch.setenv("DATA_DIR", str(root))
    monkeypatch.delenv("MEDENC_VERBOSE", raising=False)
    return root


@pytest.fixture
def small_registry(small_raw: Path) -> tuple[Source, ...]:
    """The registry with every source pinned to its files in ``small_raw`` as they are now."""
    return pins.repin(small_raw)


def _old_prepared(tmp_path: Path) -> tuple[Path, bytes]:
    """A prepared folder from an earlier run, and its manifest's bytes."""
    target = tmp_path / "prepared"
    target.mkdir()
    (target / layout.MANIFEST).write_text('{"earlier": "run"}')
    return target, (target / layout.MANIFEST).read_bytes()


def _cut_mid_line(path: Path, fraction: float) -> int:
    """Cut ``path`` to ``fraction`` of its bytes, inside a line; return the lines left, the torn one too."""
    data = path.read_bytes()
    cut = int(len(data) * fraction)
    assert data[cut - 1 : cut] != b"\n"
    path.write_bytes(data[:cut])
    return data[:cut].count(b"\n") + 1


def test_truncated_source_refused_before_writing(
    small_raw: Path, small_registry: tuple[Source, ...], tmp_path: Path
) -> None:
    f = small_raw / "stsbenchmark" / "sts-train.csv"
    pinned = sha256_file(f)
    lines = _cut_mid_line(f, 1 / 3)
    target, before = _old_prepared(tmp_path)
    with pytest.raises(DataError) as e:
        prepare.prepare(target, registry=small_registry)
    msg = str(e.value)
    assert e.value.path == str(f)
    assert f"expected the pinned upstream file: sha256 {pinned}, {STS_ROWS} lines" in msg
    assert f"found sha256 {sha256_file(f)}, {lines} lines" in msg
    assert "SOURCE.txt" in msg and "make data DATA_ARGS=--accept-upstream" in msg
    assert (target / layout.MANIFEST).read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prepared", "raw"]


def test_accept_upstream_recorded_in_manifest_torn_line_still_refused(
    small_raw: Path, small_registry: tuple[Source, ...], tmp_path: Path
) -> None:
    f = small_raw / "stsbenchmark" / "sts-train.csv"
    # A newer upstream version (here: fewer, whole lines) is refused, then accepted on purpose.
    f.write_text("".join(f.read_text().splitlines(keepends=True)[:20]))
    with pytest.raises(DataError, match=r"sts-train\.csv: expected the pinned upstream file"):
        read.check_raw_files(small_raw, small_registry)
    raw_files, accepted = read.check_raw_files(small_raw, small_registry, accept_upstream=True)
    assert accepted == {"stsbenchmark/sts-train.csv": sha256_file(f)}
    prep = write.Prepared(raw_files=raw_files, upstream_accepted=accepted)
    assert write.make_manifest(prep, small_raw, small_registry)["upstream_accepted"] == accepted
    plain = write.make_manifest(write.Prepared(raw_files=raw_files), small_raw, small_registry)
    assert "upstream_accepted" not in plain
    # A torn last line is refused whatever the pins say, naming the line (most lines kept: not emptied).
    line = _cut_mid_line(f, 0.9)
    target, before = _old_prepared(tmp_path)
    with pytest.raises(DataError) as e:
        prepare.prepare(target, accept_upstream=True, registry=small_registry)
    err = str(e.value)
    assert f"sts-train.csv, line {line} (the last): expected a final newline" in err
    assert "field(s) and no final newline: the file looks cut off mid-line" in err
    assert (target / layout.MANIFEST).read_bytes() == before


def test_changed_medquad_file_refused_naming_its_folder(
    small_raw: Path, small_registry: tuple[Source, ...], tmp_path: Path
) -> None:
    folder = small_raw / "medquad" / "1_CancerGov_QA"
    (folder / "b.xml").write_text("<Document><Focus>B, edited</Focus></Document>")
    target, before = _old_prepared(tmp_path)
    with pytest.raises(DataError) as e:
        prepare.prepare(target, registry=small_registry)
    assert e.value.path == str(folder)
    assert "expected the pinned upstream folder" in str(e.value)
    assert e.value.found is not None and ", 2 files." in e.value.found
    (folder / "d.xml").write_text("<Document><Focus>d</Focus></Document>")  # an added document, too
    with pytest.raises(DataError, match=r"1_CancerGov_QA: expected .*, 2 files, found sha256 \w+, 3 files"):
        prepare.prepare(target, registry=small_registry)
    assert (target / layout.MANIFEST).read_bytes() == before


def test_print_pins_of_the_raw_files_as_they_are(small_raw: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _prepare_script().main(["--print-pins"]) == 0
    out = capsys.readouterr().out
    sha = sha256_file(small_raw / "stsbenchmark" / "sts-train.csv")
    assert f"# medenc/data/sources/stsbenchmark.py\n    'sts-train.csv': Pin('{sha}', {STS_ROWS})," in out
    assert "    '1_CancerGov_QA': Pin('" in out and ", 2, 'files')," in out


def test_torn_last_row_of_abbreviations(tmp_path: Path) -> None:
    """The upstream CSVs end without a newline: a last row is torn only when it lacks fields."""
    f = tmp_path / "A.csv"
    head = "Abbreviation/Shorthand,Meaning,More Info\r\nHTN,hypertension,\r\n"
    f.write_text(head + "BP,blood pressure,", encoding="utf-8", newline="")
    assert [r.meaning for r in medical_abbreviations.read_file(f)] == ["hypertension", "blood pressure"]
    f.write_text(head + 'BP,"blood pres', encoding="utf-8", newline="")
    with pytest.raises(DataError, match=r"A\.csv, line 3 \(the last\): expected 3 fields, as in the header"):
        medical_abbreviations.read_file(f)


@needs_raw
def test_pins_match_the_real_data() -> None:
    raw_files = pins.hash_raw_files(RAW)
    table = pins.pins_of(REGISTRY)
    assert table.differences(raw_files) == {}
    assert table.current(RAW, raw_files) == pins.PINS  # line and file counts too
    assert [s.pins for s in pins.repin(RAW)] == [dict(s.pins) for s in REGISTRY]


# --- ontologies: Human Disease Ontology and HPO layperson synonyms --------------------------------------
OBO_HEAD = "format-version: 1.2\ndata-version: doid/releases/2026-07-31/subsets/DO_rare_slim.obo\n\n"
OBO_TERMS = """[Term]
id: DOID:0040093
name: drug-induced lupus erythematosus
def: "A lupus erythematosus caused by chronic use of certain drugs." [url:https\\://www.ncbi.nlm.nih.gov/pubmed/1378852]
synonym: "DIL" EXACT OMO:0003012 []
synonym: "drug lupus" RELATED []
is_a: DOID:9074 ! systemic lupus erythematosus

[Term]
id: DOID:9074
name: systemic lupus erythematosus
synonym: "SLE" EXACT []

[Term]
id: DOID:1
name: gone
is_obsolete: true

[Typedef]
id: has_symptom
name: has symptom
"""
HUMANDO_TSV = (
    "id\tlabel\tsubClassOf\n"
    '"DOID:0040093"\t"drug-induced lupus erythematosus"\t"systemic lupus erythematosus"\n'
    '"DOID:0080000"\t"neonatal lupus erythematosus"\t"systemic lupus erythematosus"\n'
    '"DOID:9074"\t"systemic lupus erythematosus"\t"lupus erythematosus"\n'
)
HPO_TSV = (
    "?term\t?term_label\t?layperson\n"
    '<http://purl.obolibrary.org/obo/HP_0002648>\t"Abnormality of calvarial morphology"\t'
    '"Abnormally shaped skull"\n'
    '<http://purl.obolibrary.org/obo/HP_0025251>\t"Open comedo"@en\t"Blackhead"\n'
    '<http://purl.obolibrary.org/obo/HP_0025251>\t"Open comedo"@en\t"Open comedo"\n'
)


DO_FOLDER, HPO_FOLDER = disease_ontology.SOURCE.folder, hpo_layperson.SOURCE.folder


def _ontology_root(tmp_path: Path, obo: str = OBO_TERMS, hpo: str = HPO_TSV) -> Path:
    """A raw root with the two ontology folders: one small OBO subset (the others empty), HumanDO, HPO."""
    do = tmp_path / DO_FOLDER
    do.mkdir(parents=True)
    for name in disease_ontology.DO_OBO_FILES:
        (do / name).write_text(OBO_HEAD + (obo if name == "DO_rare_slim.obo" else ""), encoding="utf-8")
    (do / disease_ontology.DO_TSV).write_text(HUMANDO_TSV, encoding="utf-8")
    (tmp_path / HPO_FOLDER).mkdir()
    (tmp_path / HPO_FOLDER / hpo_layperson.HPO_TSV).write_text(hpo, encoding="utf-8")
    return tmp_path


def _read_do(root: Path, skips: parsing.SkipLog | None = None) -> list[Concept]:
    return disease_ontology.read(root / DO_FOLDER, skips)


def _read_hpo(root: Path) -> list[Concept]:
    return hpo_layperson.read(root / HPO_FOLDER)


def _ontology_rows(do: list[Concept], hp: list[Concept]) -> tuple[list[dict], list[dict]]:
    """(pairs, triplets) the two ontology sources yield for training."""
    skips = parsing.SkipLog()
    do_rows, hp_rows = disease_ontology.training_rows(do, skips), hpo_layperson.training_rows(hp, skips)
    return do_rows[layout.PAIRS] + hp_rows[layout.PAIRS], do_rows[layout.TRIPLETS]


def test_ontology_adapters_on_excerpts(tmp_path: Path) -> None:
    root = _ontology_root(tmp_path)
    skips = parsing.SkipLog()
    do = {c.id: c for c in _read_do(root, skips)}
    assert list(do) == ["DOID:0040093", "DOID:9074", "DOID:0080000"]  # OBO first, then HumanDO-only
    dil = do["DOID:0040093"]
    assert dil.name == "drug-induced lupus erythematosus" and dil.synonyms == ["DIL"]  # EXACT only
    assert dil.definition == "A lupus erythematosus caused by chronic use of certain drugs."
    assert dil.parents == ["DOID:9074"] and do["DOID:0080000"].parents == ["DOID:9074"]
    assert skips.counts == {"disease_ontology: obsolete term (DO_rare_slim.obo)": 1}
    hpo = _read_hpo(root)
    assert [(c.id, c.name, c.synonyms) for c in hpo] == [
        ("HP:0002648", "Abnormality of calvarial morphology", ["Abnormally shaped skull"]),
        ("HP:0025251", "Open comedo", ["Blackhead", "Open comedo"]),
    ]
    pairs, triplets = _ontology_rows(list(do.values()), hpo)
    by_source = {(r["source"], r["anchor"], r["positive"]) for r in pairs}
    assert ("do_synonym", "DIL", dil.name) in by_source and (
        "hpo_lay",
        "Blackhead",
        "Open comedo",
    ) in by_source
    assert ("do_definition", dil.name, dil.definition) in by_source
    # DIL's sibling under systemic lupus erythematosus is neonatal lupus (from HumanDO.tsv).
    assert [(t["anchor"], t["positive"], t["negative"]) for t in triplets] == [
        ("DIL", dil.name, "neonatal lupus erythematosus")
    ]


def test_obo_without_name_or_malformed_refused_nothing_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _ontology_root(tmp_path / "raw", obo=OBO_TERMS.replace("name: systemic lupus erythematosus\n", ""))
    with pytest.raises(DataError) as e:
        _read_do(root)
    msg = str(e.value)
    assert "DO_rare_slim.obo, [Term] stanza #2 (id: DOID:9074): expected a 'name:' line" in msg
    bad = OBO_TERMS.replace('synonym: "SLE" EXACT []', 'synonym: "SLE EXACT []')
    (root / DO_FOLDER / "DO_rare_slim.obo").write_text(OBO_HEAD + bad, encoding="utf-8")
    with pytest.raises(DataError, match=r"DO_rare_slim\.obo, line 15: expected well-formed OBO 1\.4"):
        _read_do(root)
    # Through `make data`: refused before anything is written (pins taken as they are, to reach the parser).
    # A registry of the DO alone, pinned as its files are, reaches its parser.
    registry = pins.repin(root, (disease_ontology.SOURCE,))
    monkeypatch.setenv("DATA_DIR", str(root))
    target, before = _old_prepared(tmp_path)
    with pytest.raises(DataError, match="line 15"):
        prepare.prepare(target, registry=registry)
    assert (target / layout.MANIFEST).read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prepared", "raw"]


def test_accept_upstream_refuses_an_emptied_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A header-only HPO file was taken under --accept-upstream, silently dropping a third of the concepts."""
    root = _ontology_root(tmp_path / "raw")
    registry = pins.repin(root, (hpo_layperson.SOURCE,))  # pinned as the excerpt is: 4 lines
    tsv = root / HPO_FOLDER / hpo_layperson.HPO_TSV
    tsv.write_text(HPO_TSV.splitlines(keepends=True)[0], encoding="utf-8")
    monkeypatch.setenv("DATA_DIR", str(root))
    target, before = _old_prepared(tmp_path)
    with pytest.raises(DataError) as e:
        prepare.prepare(target, accept_upstream=True, registry=registry)
    assert e.value.path == str(tsv) and "even with --accept-upstream" in str(e.value)
    assert "found 1 lines: a cut or emptied copy" in str(e.value)
    # Pinned header-only (a deliberate repin): it parses to nothing, which is refused too.
    with pytest.raises(DataError, match=r"hpo_layperson: expected records in layperson-synonyms\.tsv"):
        prepare.prepare(target, registry=pins.repin(root, (hpo_layperson.SOURCE,)))
    assert (target / layout.MANIFEST).read_bytes() == before


def test_obo_with_bad_utf8_names_file_byte_and_line(tmp_path: Path) -> None:
    """fastobo's own error ("stream did not contain valid UTF-8") named neither the file nor the place."""
    root = _ontology_root(tmp_path)
    obo = root / DO_FOLDER / "DO_rare_slim.obo"
    data = (OBO_HEAD + OBO_TERMS).encode("utf-8").replace(b"drug-induced", b"drug-ind\xfcced", 1)
    obo.write_bytes(data)
    with pytest.raises(DataError) as e:
        _read_do(root)
    at = data.index(b"\xfc")
    assert str(e.value) == f"{obo}, byte {at} (line 6): expected UTF-8 text, found undecodable bytes"


@pytest.mark.parametrize(
    ("line", "match"),
    [
        ('<http://purl.obolibrary.org/obo/HP_1>\t"Stiff wrist"', r"line 3: expected 3 tab-separated fields"),
        (
            '<http://purl.obolibrary.org/obo/HP_1>\t"Stiff wrist\t"Wrist stiffness"',
            r"line 3, column 2 \(\?term_label\): expected a value in double quotes",
        ),
        (
            '<http://purl.obolibrary.org/obo/HP_1>\tStiff wrist\t"Wrist stiffness"',
            r"line 3, column 2 \(\?term_label\): expected a value in double quotes",
        ),
        ('HP_1\t"Stiff wrist"\t"Wrist stiffness"', r"line 3, column 1 \(\?term\): expected an HPO term IRI"),
        ('<http://purl.obolibrary.org/obo/HP_1>\t"  "\t"x"', r"line 3, column 2 .*expected a non-empty text"),
    ],
)
def test_hpo_tsv_bad_rows(tmp_path: Path, line: str, match: str) -> None:
    lines = HPO_TSV.splitlines(keepends=True)
    root = _ontology_root(tmp_path, hpo="".join([lines[0], lines[1], line + "\n", *lines[2:]]))
    with pytest.raises(DataError, match=r"layperson-synonyms\.tsv, " + match):
        _read_hpo(root)


def test_humando_tsv_torn_and_bad_quote(tmp_path: Path) -> None:
    root = _ontology_root(tmp_path)
    f = root / DO_FOLDER / disease_ontology.DO_TSV
    f.write_text(HUMANDO_TSV + '"DOID:9"\t"lupus', encoding="utf-8")
    with pytest.raises(DataError, match=r"HumanDO\.tsv, line 5 \(the last\): expected a final newline"):
        _read_do(root)
    f.write_text(
        HUMANDO_TSV.replace('"neonatal lupus erythematosus"', '"neonatal "lupus""'), encoding="utf-8"
    )
    with pytest.raises(
        DataError, match=r"HumanDO\.tsv, line 3, column 2 \(label\): expected a value in double"
    ):
        _read_do(root)


def _concepts(n: int) -> tuple[list, list]:
    """n synthetic diseases (two synonyms each, a shared parent) and n HPO terms (one lay phrasing each)."""
    do = [
        Concept(f"DOID:{i}", f"disease {i}", [f"synonym {i}", f"other name {i}"], f"defined {i}", ["DOID:0"])
        for i in range(1, n + 1)
    ]
    hp = [Concept(f"HP:{i}", f"phenotype {i}", [f"lay phrase {i}"]) for i in range(1, n + 1)]
    return do, hp


def test_concepts_split_by_concept_id() -> None:
    """No concept on both sides; every name of a held-out concept is a test text, none is in training."""
    do, hp = _concepts(300)
    held = {c.id for c in do + hp if concept_held(c.id)}
    assert 15 <= len(held) <= 75  # about 7% of 600
    sets, skipped = test_sets.build_concepts_test(do + hp)
    assert skipped == 0
    queries = {r["id"]: r["text"] for r in sets[("test", "concepts_queries")]}
    corpus = {r["id"]: r["text"] for r in sets[("test", "concepts_corpus")]}
    assert len(corpus) == 600  # every preferred name, held out or not
    assert {q.split("#")[0] for q in queries} == held
    names = {c.id: c.name for c in do + hp}
    for r in sets[("test", "concepts_qrels")]:
        assert corpus[r["corpus_id"]] == names[r["query_id"].split("#")[0]]
    pairs, triplets = _ontology_rows(do, hp)
    trained = {r["_group"].split(":", 1)[1] for r in pairs + triplets}
    assert trained and not trained & held
    guarded = {leakage.key(t) for t in test_sets.test_texts_by_set(sets)["concepts_corpus"]}
    held_names = {leakage.key(t) for c in do + hp if c.id in held for t in (c.name, *c.synonyms)}
    assert {
        leakage.key(t) for t in queries.values()
    } | guarded == held_names  # distractors are not test texts
    train_texts = {
        leakage.key(r[c]) for r in pairs + triplets for c in ("anchor", "positive", "negative") if c in r
    }
    assert not train_texts & held_names


def test_concepts_names_leave_every_training_source() -> None:
    """A MedQuAD synonym or abbreviation equal to a held-out concept's name is dropped from training."""
    do, hp = _concepts(300)
    held = next(c for c in do if concept_held(c.id))
    kept_concept = next(c for c in do if not concept_held(c.id))
    sets, _ = test_sets.build_concepts_test(do + hp)
    cand = {
        layout.PAIRS: [
            row(layout.PAIRS, "medquad_synonym", "d1", held.synonyms[1], "Some focus"),
            row(layout.PAIRS, "medical_abbreviations", "ab", "AB", held.name),
            row(layout.PAIRS, "medquad_synonym", "d2", kept_concept.name, "distractor names stay"),
        ],
        layout.GRADED_PAIRS: [],
        layout.TRIPLETS: [],
    }
    dropped: Dropped = defaultdict(Counter)
    kept = filters.filter_candidates(cand, sets, 0.5, dropped)
    assert [r["positive"] for r in kept[layout.PAIRS]] == ["distractor names stay"]
    assert dropped["pairs: equals a test text"] == {"medquad_synonym": 1, "medical_abbreviations": 1}
