"""The zero-shot yardstick (issue 39): NFCorpus dev read from its real files, its graded retrieval set, a
build in which its queries yield to training (the training rows keep their bytes), the leakage guard over
it, and the zero-shot / in-domain flag of every evaluation set checked against the registry."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from fakes import RAW, copy_source, needs_raw, rows_by_source

from medenc.core.errors import DataError, LeakageError
from medenc.core.eval_sets import EVAL_SETS, IN_DOMAIN, ZERO_SHOT, groups
from medenc.data import leakage, pins, prepare, test_sets
from medenc.data.source import Pin, Source, SourceInfo, row
from medenc.data.sources import REGISTRY, nfcorpus_dev

NF = nfcorpus_dev.SOURCE
pytestmark = needs_raw((NF,), "raw nfcorpus_dev")


@pytest.fixture(scope="module")
def data() -> nfcorpus_dev.Nfcorpus:
    return nfcorpus_dev.read(RAW / NF.folder)


# --- the real files -----------------------------------------------------------------------------------------
def test_the_dev_split_reads_as_its_source_txt_describes_it(data) -> None:
    assert (len(data.docs), len(data.queries), len(data.qrels)) == (3193, 325, 14589)
    assert Counter(j.grade for j in data.qrels) == {1: 3204, 2: 10864, 3: 521}
    assert data.queries["PLAIN-101"] == "how to treat multiple sclerosis with diet"
    assert data.docs["MED-118"].startswith("alkylphenols human milk relations dietary habits")
    # The pins are those of the files as they are, and the set is registered as test only.
    assert pins.pins_of((NF,)).differences(pins.hash_raw_files(RAW, (NF,))) == {}
    assert NF in REGISTRY and NF.info.role.startswith("test only") and NF.training_rows is None


def test_the_set_holds_each_abstract_once_with_the_highest_grade_of_its_twins(data) -> None:
    sets = nfcorpus_dev.build_test(data)
    queries, corpus, qrels = (sets[("test", f"nfcorpus_dev_{k}")] for k in ("queries", "corpus", "qrels"))
    assert (len(queries), len(corpus), len(qrels)) == (325, 3156, 14535)  # 37 twin texts merged
    assert len({leakage.key(r["text"]) for r in corpus}) == len(corpus)
    grade = {(r["query_id"], r["corpus_id"]): r["relevance"] for r in qrels}
    # MED-2100 and MED-4641 are one text; PLAIN-3140 judges them 2 and 3: one row, grade 3, the first id.
    assert grade[("PLAIN-3140", "MED-2100")] == 3 and not any(c == "MED-4641" for _, c in grade)
    assert set(grade.values()) == {1, 2, 3}


@pytest.mark.parametrize(
    ("file", "old", "new", "where", "expected"),
    [
        (nfcorpus_dev.QRELS, "MED-2421\t3", "MED-2421\t4", "line 1", "LEVEL (1, 2 or 3)"),
        (nfcorpus_dev.QRELS, "MED-2421\t3", "MED-9999999\t3", "line 1", "a document of"),
        (nfcorpus_dev.DOCS, "MED-118\t", "MED-118 ", "line 1", "two tab-separated fields"),
        (nfcorpus_dev.QUERIES, "PLAIN-1007\tddt", "PLAIN-1\tddt", "line 2", "each id once"),
    ],
)
def test_a_malformed_file_names_itself_the_line_and_what_was_expected(
    tmp_path, file, old, new, where, expected
) -> None:
    folder = copy_source(NF, tmp_path)
    path = folder / file
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(DataError) as e:
        nfcorpus_dev.read(folder)
    assert e.value.path == str(path) and e.value.where == where and expected in e.value.expected


# --- in a build: the queries yield, the training rows stay -------------------------------------------------
def _toy_source() -> Source:
    """A training source whose pairs hold an NFCorpus query ("liver cancer") and an abstract's very text."""

    def read(folder: Path, skips: object) -> list[tuple[str, str]]:
        lines = (folder / "pairs.tsv").read_text(encoding="utf-8").splitlines()
        return [tuple(line.split("\t")) for line in lines]  # type: ignore[misc]

    def training_rows(pairs: list[tuple[str, str]], skips: object) -> dict[str, list[dict]]:
        return {"pairs": [row("pairs", "toy", str(i), a, p) for i, (a, p) in enumerate(pairs)]}

    info = SourceInfo("toy", "Toy", "CC0", "train+validation: pairs", "", "", "", row_sources=("toy",))
    return Source(info, ("pairs.tsv",), {"pairs.tsv": Pin("0" * 64)}, read, training_rows=training_rows)


def test_in_a_build_texts_equal_to_training_text_leave_the_set_and_the_training_rows_stay(
    tmp_path, data, monkeypatch
) -> None:
    root = tmp_path / "raw"
    copy_source(NF, root)
    equal_doc = data.docs["MED-118"]
    (root / "toy").mkdir()
    pairs = [("Liver cancer", "hepatocellular carcinoma"), ("alkylphenols in milk", equal_doc)]
    (root / "toy" / "pairs.tsv").write_text("".join(f"{a}\t{p}\n" for a, p in pairs), encoding="utf-8")
    (root / "toy" / "SOURCE.txt").write_text("source: nowhere\n", encoding="utf-8")
    registry = pins.repin(root, (NF, _toy_source()))
    target = tmp_path / "prepared"
    _, manifest = prepare.prepare(target, registry=registry, root=root)

    assert rows_by_source(manifest) == {"toy": 2}  # nothing dropped for NFCorpus's sake
    liver = [q for q, t in data.queries.items() if leakage.key(t) == "liver cancer"]
    assert liver and manifest["sets"]["test"]["nfcorpus_dev_queries"]["rows"] == 325 - len(liver)
    assert manifest["sets"]["test"]["nfcorpus_dev_corpus"]["rows"] == 3156 - 1  # MED-118 left too
    assert manifest["dropped"]["test: nfcorpus_dev queries equal to a training text"] == {"nfcorpus_dev": 1}
    assert manifest["sources"]["nfcorpus_dev"]["url"] == NF.info.url  # SOURCE.txt in prose: the catalog's

    # The loader hands the grades to the evaluation.
    import medenc.data

    monkeypatch.setenv("PREPARED_DIR", str(target))
    rs = medenc.data.load_retrieval("nfcorpus_dev")
    assert liver[0] not in rs.queries and "MED-118" not in rs.corpus
    assert rs.grades["PLAIN-3140"]["MED-2100"] == 3 and set(rs.grades) == set(rs.relevant)


def test_the_leakage_guard_counts_its_queries_and_abstracts_as_test_texts(data) -> None:
    """No NFCorpus text is a distractor: a training text equal to a query, or holding an abstract, fails."""
    by_set = test_sets.test_texts_by_set(nfcorpus_dev.build_test(data))
    assert len(by_set["nfcorpus_dev_queries"]) == 325 and len(by_set["nfcorpus_dev_corpus"]) == 3156
    for text in ("How to treat multiple sclerosis with diet", f"see: {data.docs['MED-118']}"):
        with pytest.raises(LeakageError):
            leakage.check_leakage(by_set, [("toy", text)])


# --- the zero-shot / in-domain flag ------------------------------------------------------------------------
def test_a_set_is_zero_shot_exactly_when_its_source_trains_nothing() -> None:
    sources = {s.folder: s for s in REGISTRY}
    for name, spec in EVAL_SETS.items():
        trains = sources[spec.source].training_rows is not None
        assert spec.zero_shot is not trains, f"{name}: zero_shot={spec.zero_shot}, source trains: {trains}"
    assert [n for n, s in EVAL_SETS.items() if s.zero_shot] == ["biosses", "pubmedqa", "k_qa", "nfcorpus_dev"]
    assert EVAL_SETS["nfcorpus_dev"].targets[0].metric == "ndcg@10"  # its headline, graded


def test_groups_put_zero_shot_sets_first_and_keep_the_table_order_within_each() -> None:
    assert groups(["stsb", "biosses", "medquad", "nfcorpus_dev", "unknown"]) == [
        (ZERO_SHOT, ["biosses", "nfcorpus_dev"]),
        (IN_DOMAIN, ["stsb", "medquad", "unknown"]),
    ]
    assert groups(["stsb"]) == [(IN_DOMAIN, ["stsb"])]
