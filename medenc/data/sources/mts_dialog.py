"""MTS-Dialog: doctor-patient dialogue snippets and the clinical note section written from each.

Five CSVs (UTF-8, quoted fields spanning lines; header ``ID, section_header, section_text, dialogue``): the
training set (1,201), the validation set (100), two test sets (200 each: MEDIQA-Chat 2023 Task A and
MEDIQA-Sum 2023) and the augmented training set (3,603 = the 1,201 training pairs again, then each one's
dialogue back-translated through French and through Spanish, ``ID`` ``TR=EN-FR-EN <n>``; section unchanged).

Training rows: the training set (``mts_dialog``) and the back-translations (``mts_dialog_augmented``). The
two test sets are held out: the ``mts_dialog`` retrieval test (dialogue snippet -> its note section among
the sections of both test sets; :func:`build_test`); the validation set is kept in the records, not
yielded. Pitfalls handled here: a section text given to several dialogues is generic ("None.",
"Noncontributory."): only its first pair trains (the others would be false in-batch negatives of each
other); the augmented file's copies of the training pairs, and back-translations whose dialogue came back
unchanged, are dropped (counted). A back-translation keeps its original's validation unit, so that the two
never fall on both sides of the train / validation split. Whitespace is collapsed (turns become one line,
as in the back-translations); long dialogues are kept whole (the model truncates them at its maximum
sequence length).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from medenc.core import layout
from medenc.core.errors import DataError
from medenc.data import leakage
from medenc.data.parsing import SkipLog, normalise
from medenc.data.source import Pin, Rows, Sets, Source, SourceInfo, TestYield, query_sets, row
from medenc.data.sources.laymaker import read_csv

TRAIN = "MTS-Dialog-TrainingSet.csv"
VALIDATION = "MTS-Dialog-ValidationSet.csv"
TEST1 = "MTS-Dialog-TestSet-1-MEDIQA-Chat-2023.csv"
TEST2 = "MTS-Dialog-TestSet-2-MEDIQA-Sum-2023.csv"
AUGMENTED = "MTS-Dialog-Augmented-TrainingSet-3-FR-and-ES-3603-Pairs-final.csv"
SPLITS = {"train": TRAIN, "validation": VALIDATION, "test1": TEST1, "test2": TEST2, "augmented": AUGMENTED}
HEADER = ("ID", "section_header", "section_text", "dialogue")
# The 20 normalised section headers (README), upper case as in the files.
HEADERS = frozenset(
    {
        "FAM/SOCHX",
        "GENHX",
        "PASTMEDICALHX",
        "CC",
        "PASTSURGICAL",
        "ALLERGY",
        "ROS",
        "MEDICATIONS",
        "ASSESSMENT",
        "EXAM",
        "DIAGNOSIS",
        "DISPOSITION",
        "PLAN",
        "EDCOURSE",
        "IMMUNIZATIONS",
        "IMAGING",
        "GYNHX",
        "PROCEDURES",
        "OTHER_HISTORY",
        "LABS",
    }
)
BACK_TRANSLATIONS = ("TR=EN-FR-EN ", "TR=EN-ES-EN ")
TEST_SPLITS = ("test1", "test2")
# A test section of fewer words is generic ("None.", "Negative.", "No known drug allergies."): many dialogues
# share it or an equivalent, so it is no retrieval target (left out of the test, counted in the manifest;
# not a test text, so the same phrase in the training file still trains).
MIN_TEST_SECTION_WORDS = 5


@dataclass(frozen=True)
class Encounter:
    """One pair: a dialogue snippet and its note section. ``original``: the training ID it derives from."""

    split: str  # a key of SPLITS
    id: str  # the upstream ID ("17", "TR=EN-FR-EN 17")
    original: str  # the training-set ID a row of the augmented file derives from; else ``id``
    header: str
    section: str
    dialogue: str
    line: int


def read_file(path: Path, split: str) -> list[Encounter]:
    """The pairs of one MTS-Dialog CSV, whitespace collapsed."""
    _, records = read_csv(path, HEADER)
    out = []
    for n, f in records:
        rid, where = f[0].strip(), f"line {n}"
        original = next((rid[len(p) :] for p in BACK_TRANSLATIONS if rid.startswith(p)), rid)
        if not original.isdigit() or (split != "augmented" and original != rid):
            also = " or TR=EN-FR-EN / TR=EN-ES-EN <n>" if split == "augmented" else ""
            expected = f"an ID: a row number{also}"
            raise DataError(path, f"{where}, column 1 (ID)", expected, repr(f[0]))
        if f[1] not in HEADERS:
            expected = "one of the 20 section headers (FAM/SOCHX, GENHX, ...)"
            raise DataError(path, f"{where}, column 2 (section_header)", expected, repr(f[1]))
        section = normalise(f[2], path, f"{where}, column 3 (section_text)")
        dialogue = normalise(f[3], path, f"{where}, column 4 (dialogue)")
        out.append(Encounter(split, rid, original, f[1], section, dialogue, n))
    return out


def read(folder: Path, skips: SkipLog | None = None) -> dict[str, list[Encounter]]:
    """Every split's pairs, by split (train, validation, test1, test2, augmented)."""
    return {split: read_file(folder / rel, split) for split, rel in SPLITS.items()}


def test_pairs(records: dict[str, list[Encounter]]) -> list[Encounter]:
    """The held-out pairs that are retrieval targets: both test sets' pairs whose section is specific (at
    least MIN_TEST_SECTION_WORDS words, and given to no other test dialogue)."""
    pairs = [e for split in TEST_SPLITS for e in records[split]]
    count = Counter(leakage.key(e.section) for e in pairs)
    return [
        e
        for e in pairs
        if count[leakage.key(e.section)] == 1 and len(e.section.split()) >= MIN_TEST_SECTION_WORDS
    ]


def build_test(records: dict[str, list[Encounter]]) -> Sets:
    """The ``mts_dialog`` retrieval set: each test dialogue -> its note section, among the test sections."""
    queries = [(f"{e.split}:{e.id}", e.dialogue, e.section) for e in test_pairs(records)]
    sets, _ = query_sets("mts_dialog", queries, [s for _, _, s in queries], "n")
    return sets


def test_sets(records: dict[str, list[Encounter]]) -> TestYield:
    """The dialogue -> note section retrieval test of MTS-Dialog's two test sets."""
    return TestYield(sets=build_test(records))


def _training_pairs(train: list[Encounter], skips: SkipLog) -> dict[str, Encounter]:
    """The training pairs that train, by ID: the first of those sharing a section text."""
    kept: dict[str, Encounter] = {}
    seen: set[str] = set()
    for e in train:
        key = leakage.key(e.section)
        if key in seen:
            skips.add("mts_dialog: section text repeated (generic, e.g. 'None.')")
            continue
        seen.add(key)
        kept[e.id] = e
    return kept


def training_rows(records: dict[str, list[Encounter]], skips: SkipLog) -> Rows:
    """(dialogue -> note section) pairs of the training set and its back-translations; never the tests."""
    kept = _training_pairs(records["train"], skips)
    pairs = [row(layout.PAIRS, "mts_dialog", e.id, e.dialogue, e.section) for e in kept.values()]
    for e in records["augmented"]:
        base = kept.get(e.original)
        if e.id == e.original:
            skips.add("mts_dialog_augmented: copy of a training-set pair")
        elif base is None:
            skips.add("mts_dialog_augmented: back-translation of a dropped pair (repeated section)")
        elif leakage.key(e.dialogue) == leakage.key(base.dialogue):
            skips.add("mts_dialog_augmented: back-translated dialogue same as the original")
        else:
            r = row(layout.PAIRS, "mts_dialog_augmented", e.id, e.dialogue, e.section)
            r["_group"] = f"mts_dialog:{e.original}"  # validates with its original (same note section)
            pairs.append(r)
    return {layout.PAIRS: pairs}


def manifest_info(records: dict[str, list[Encounter]]) -> dict[str, object]:
    """The manifest's MTS-Dialog counts (pairs per upstream split)."""
    info: dict[str, object] = {f"mts_dialog_{split}_pairs": len(v) for split, v in records.items()}
    info["mts_dialog_test_queries"] = len(test_pairs(records))
    return info


SOURCE = Source(
    info=SourceInfo(
        folder="mts_dialog",
        row_sources=("mts_dialog", "mts_dialog_augmented"),
        name="MTS-Dialog",
        license="CC BY 4.0",
        role="train+validation: pairs (dialogue->note section; training set and its back-translations); "
        "test: dialogue->note section retrieval (test sets 1 and 2)",
        url="https://github.com/abachaa/MTS-Dialog",
        commit="3ff0801933608d6f570468c13125125fb5cabdea",
        attribution="Ben Abacha, Yim, Fan and Lin, 2023, An Empirical Study of Clinical Note Generation from "
        "Doctor-Patient Encounters",
        bibtex="""@inproceedings{mts-dialog,
  title = {An Empirical Study of Clinical Note Generation from Doctor-Patient Encounters},
  author = {Ben Abacha, Asma and Yim, Wen-wai and Fan, Yadan and Lin, Thomas},
  booktitle = {Proceedings of the 17th Conference of the European Chapter of the Association for
               Computational Linguistics},
  month = may,
  year = {2023},
  address = {Dubrovnik, Croatia},
  publisher = {Association for Computational Linguistics},
  url = {https://aclanthology.org/2023.eacl-main.168},
  pages = {2291--2302}
}""",
    ),
    files=tuple(SPLITS.values()),
    # @ 3ff080193360
    pins={
        TRAIN: Pin("65a28681dd59fc159681ea026e44610f2af7bc64a0e7f892d763eb03d9f503dc", 11457),
        VALIDATION: Pin("227206520c4534381c0d7fba6d3f09319a9af5a6d9603a93c0341af1198e3958", 815),
        TEST1: Pin("b4d38dd2c99b2e9860099abcf653f1e0f3e9b69f9fcc45be2a2699b37a4d2f37", 1738),
        TEST2: Pin("226644466ed3af82382b327a3e684aab70aa605b96cfd93b04f584f1826ab1a6", 1978),
        AUGMENTED: Pin("9c77882a691380b8d373ad868160e44fc5a424cac46ef019671e540f6b128b03", 14669),
    },
    read=read,
    test_sets=test_sets,
    training_rows=training_rows,
    manifest_info=manifest_info,
    validation_group="sentences",
)
