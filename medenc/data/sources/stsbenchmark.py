"""STS Benchmark: general-domain graded pairs (train + dev for training, test as a control)."""

from __future__ import annotations

from pathlib import Path

from medenc.core import layout
from medenc.core.errors import DataError
from medenc.data import leakage
from medenc.data.parsing import SkipLog, normalise, read_utf8, torn_last_line
from medenc.data.source import Pin, Rows, ScoredPair, Source, SourceInfo, TestYield, row, scored_rows

SPLITS = ("train", "dev", "test")


def read_file(path: Path) -> list[ScoredPair]:
    """Parse one ``sts-*.csv``: tab separated, score 0-5 in column 5, sentences in 6 and 7 (1-based).

    Split on tabs only: the sentences contain quotes that a quote-aware CSV reader would merge across rows.
    Some rows carry two extra trailing source columns, which are ignored.
    """
    raw = read_utf8(path)
    lines = raw.split("\n")  # not splitlines(): it would also split on \x0b, \u2028 etc. inside sentences
    if lines and lines[-1] == "":
        lines.pop()
    elif lines:  # every upstream sts-*.csv ends with a newline: a last line without one was cut off
        fields = len(lines[-1].split("\t"))
        raise torn_last_line(path, raw, fields, "a final newline, as every upstream sts-*.csv has")
    out: list[ScoredPair] = []
    for n, line in enumerate(lines, start=1):
        cols = line.rstrip("\r").split("\t")
        where = f"line {n}"
        if len(cols) < 7:
            raise DataError(
                path,
                where,
                "at least 7 tab-separated fields (genre, file, year, id, score, sentence1, sentence2)",
                f"{len(cols)} field(s)",
            )
        try:
            score = float(cols[4])
        except ValueError as e:
            raise DataError(path, f"{where}, column 5", "a numeric score 0-5", repr(cols[4])) from e
        if not 0.0 <= score <= 5.0:
            raise DataError(path, f"{where}, column 5", "a score in [0, 5]", repr(cols[4]))
        s1 = normalise(cols[5], path, f"{where}, column 6 (sentence1)")
        s2 = normalise(cols[6], path, f"{where}, column 7 (sentence2)")
        out.append(ScoredPair(f"stsb:{path.stem}:{n}", s1, s2, score / 5.0))
    return out


def read(folder: Path, skips: SkipLog | None = None) -> dict[str, list[ScoredPair]]:
    """STS Benchmark train/dev/test, keyed ``train``, ``dev``, ``test``."""
    return {s: read_file(folder / f"sts-{s}.csv") for s in SPLITS}


def test_sets(stsb: dict[str, list[ScoredPair]]) -> TestYield:
    """The test split as the ``stsb`` test set (the general-domain control)."""
    return TestYield(sets={("test", "stsb"): scored_rows(stsb["test"])})


def training_rows(stsb: dict[str, list[ScoredPair]], skips: SkipLog) -> Rows:
    """STS-B train and dev as graded pairs (the test split is the stsb test set)."""
    rows = []
    for split in ("train", "dev"):
        for p in stsb[split]:
            grp = f"{leakage.key(p.sentence1)}\t{leakage.key(p.sentence2)}"
            rows.append(row(layout.GRADED_PAIRS, "stsb", grp, p.sentence1, p.sentence2, p.score))
    return {layout.GRADED_PAIRS: rows}


SOURCE = Source(
    info=SourceInfo(
        folder="stsbenchmark",
        row_sources=("stsb",),
        name="STS Benchmark",
        license="CC BY-SA 4.0 (scores); sentence texts per LICENSE.txt",
        role="train+validation: graded_pairs (train+dev); test: stsb (general-domain control)",
        url="https://github.com/zhangzhenhu/Semantic-Texual-Similarity-Toolkits",
        commit="c55a72f51bd15a8bd75114247c06984b432050f9",
        attribution="Cer et al., 2017, SemEval-2017 Task 1: Semantic Textual Similarity",
        hub_dataset="sentence-transformers/stsb",
        bibtex="""@inproceedings{cer2017semeval,
  title = {{SemEval}-2017 Task 1: Semantic Textual Similarity Multilingual and Crosslingual Focused
    Evaluation},
  author = {Cer, Daniel and Diab, Mona and Agirre, Eneko and Lopez-Gazpio, I{\\~n}igo and Specia, Lucia},
  booktitle = {Proceedings of the 11th International Workshop on Semantic Evaluation (SemEval-2017)},
  pages = {1--14},
  year = {2017}
}""",
    ),
    files=("sts-train.csv", "sts-dev.csv", "sts-test.csv"),
    # @ c55a72f51bd1
    pins={
        "sts-train.csv": Pin("0f71910b59aa1ad973c5897f0791f3b0965a92b8f82b1a95f3eea9f4162fda82", 5749),
        "sts-dev.csv": Pin("5d7e944d8b02734b07bfdb5df67db3420c64bed153fcaa1ba47ad03480cf4234", 1500),
        "sts-test.csv": Pin("affe45928a66ee5a708531233c95b7dacbbdc57f974f002a3d32ea0180cf816a", 1379),
    },
    read=read,
    test_sets=test_sets,
    training_rows=training_rows,
    keep_identical_sides=True,
)
