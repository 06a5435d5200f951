"""Step 6 of the build: write every set, the manifest and the leakage report, atomically.

The manifest records the rows per split/set/source, every drop, each source's licence and role (from its
module, :mod:`medenc.data.sources`) and upstream (from its SOURCE.txt), the raw files' sha256 and the leakage
summary. Its bytes are its identity (:func:`medenc.data.manifest_hash`, recorded by every run);
``checksums.json`` beside it (:mod:`medenc.data.checksums`) ties every other file's contents to it.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from medenc.core import layout
from medenc.core.errors import DataError
from medenc.data.checksums import write_checksums
from medenc.data.parsing import read_source_txt
from medenc.data.source import TEXT_FIELDS, Dropped, Sets, Source

# The build's decisions, recorded in the manifest.
NOTES = [
    "splits by sha256 of stable ids; no random shuffles",
    "MedQuAD test/validation held out by whole document (id = subset folder/file stem)",
    "MedQuAD synonym pairs: one direction, anchor=synonym, positive=focus",
    "MedQuAD QAPairs with an empty <Answer> (subsets 10-12, five GARD docs) are not pairs",
    "RQE false pairs become triplets (chq, first true faq of the same chq by pid that differs from the chq, "
    "false faq); skipped if none",
    "abbreviation rows grouped by abbreviation for the validation split",
    "terms test: abbreviations held out by hash of the normalised abbreviation (all meanings together), "
    "plus the synonyms of the held-out MedQuAD documents; queries are abbreviations and synonyms, the corpus "
    "their meanings and focuses",
    "concepts test: DO diseases and HPO terms held out by hash of their id (every name of a concept "
    "together); queries are their EXACT synonyms and lay phrasings, the corpus every DO and HPO preferred "
    "name; only the held-out concepts' names are test texts for the leakage checks (the rest: distractors)",
    "concept groups: the concepts of every name source (DO, HPO, ICD-10-CM, WordNet, FDA UNII) joined by "
    "shared normalised names (a name of more than 3 concepts of one source joins none); a group with DO/HPO "
    "concepts is held out when all of them are held out by id (else they leave the concepts test), any "
    "other group by hash of its smallest member (7%); every name of a held-out group leaves training",
    "icd10 test: held-out codes' other names -> title, among the titles of every code with other names; "
    "drugs test: held-out drugs' brands -> generic, among every generic name; near_misses: (other name, "
    "title, first excludes1 condition or the most alike sibling title) of held-out codes, the near miss "
    "no test text",
    "ontology training rows: do_synonym (EXACT synonym -> name), do_definition (name -> definition), "
    "hpo_lay (lay phrasing -> label), do_sibling triplets (synonym, name, the name of a sibling sharing a "
    "parent, chosen by hash)",
    "twins triplets (medenc/data/twins.py): a training pair's side with one meaning-bearing word flipped "
    "(hyper-/hypo- where the other word occurs in training, type 1/2, acute/chronic, left/right, "
    "benign/malignant, ...) as the negative, the other side as the anchor; from the training split only, "
    "texts of at most 30 words; a twin row with a text equal to a test text or sharing a word 8-gram with "
    "one is dropped",
    "pairs with identical sides dropped; exact duplicate rows removed within each set",
    "training rows with a field equal to a test text (lowercased, whitespace collapsed) are dropped",
    "training rows with a field that alone contains > threshold of a test text's word 8-grams are dropped",
    "MedQuAD test documents are chosen by hash of their normalised focus (fallback: document id), so "
    "that the same topic in two subsets (e.g. GARD and GHR) is held out together",
    "MedQuAD test QAs whose text is > threshold covered by all training texts together (templated answers) "
    "are removed from the test; for other test sets, training rows sharing an 8-gram with such a text "
    "are dropped",
]

_FEATURES = {
    "sentence1": "string",
    "sentence2": "string",
    "score": "float64",
    "label": "int64",
    "anchor": "string",
    "positive": "string",
    "negative": "string",
    "source": "string",
    "id": "string",
    "text": "string",
    "query_id": "string",
    "corpus_id": "string",
    "relevance": "int64",  # a graded qrel's level (nfcorpus_dev: 1-3); the other qrels are binary
}


@dataclass
class Prepared:
    """Everything the build makes in memory before writing: sets by (split, name), plus manifest parts."""

    sets: Sets = field(default_factory=dict)
    raw_files: dict[str, str] = field(default_factory=dict)
    upstream_accepted: dict[str, str | None] = field(default_factory=dict)  # pin key -> found sha256
    dropped: Dropped = field(default_factory=lambda: defaultdict(Counter))
    info: dict[str, object] = field(default_factory=dict)
    leakage_report: dict = field(default_factory=dict)


def _features(columns: list[str]) -> object:
    """The datasets Features for these columns (explicit, so that empty sets keep their types)."""
    from datasets import Features, Value

    return Features({c: Value(_FEATURES[c]) for c in columns})


def _counts(prep: Prepared) -> dict:
    counts: dict[str, dict] = {}
    for (split, name), rows in sorted(prep.sets.items()):
        by_source = Counter(r["source"] for r in rows if "source" in r)
        entry: dict[str, object] = {"rows": len(rows)}
        if by_source:
            entry["by_source"] = dict(sorted(by_source.items()))
        counts.setdefault(split, {})[name] = entry
    return counts


def make_manifest(prep: Prepared, root: Path, registry: tuple[Source, ...]) -> dict:
    """The manifest: counts per split/set/source, drops, raw file hashes, provenance, leakage summary."""
    srcs = {}
    for source in registry:
        st = read_source_txt(root, source)
        # url and commit come from SOURCE.txt (what is on disk), not from the catalog (what is expected); a
        # SOURCE.txt written as prose (no `source:` line: nfcorpus_dev, cochrane_pls, covid_qa) names them
        # in its text, which the catalog entry copies.
        if "source" not in st:
            st = {**st, "source": source.info.url, "commit": source.info.commit}
        srcs[source.folder] = {
            "license": source.info.license,
            "license_upstream_note": st.get("license", ""),
            "role": source.info.role,
            "url": st.get("source", ""),
            "commit": st.get("commit", ""),
        }
    rep = prep.leakage_report
    manifest = {
        "format": 1,
        "sets": _counts(prep),
        "dropped": {k: dict(sorted(v.items())) for k, v in sorted(prep.dropped.items())},
        "info": prep.info,
        "notes": NOTES,
        "leakage": {k: rep.get(k) for k in ("threshold", "ngram", "offenders", "max_containment", "passed")},
        "sources": srcs,
        "raw_files_sha256": dict(sorted(prep.raw_files.items())),
    }
    # Only when some file differs from its pin: the manifest of the pinned data keeps its bytes (its hash
    # identifies the data every run was trained and evaluated on).
    if prep.upstream_accepted:
        manifest["upstream_accepted"] = dict(sorted(prep.upstream_accepted.items()))
    return manifest


def write(
    prep: Prepared, root: Path, target: Path, registry: tuple[Source, ...], failed: bool = False
) -> Path:
    """Write all sets, the manifest and the leakage report into a temp folder, then rename it into place.

    With ``failed`` the folder goes to ``<target>.failed`` instead and ``target`` is left untouched.
    """
    import datasets
    from datasets import Dataset

    datasets.disable_progress_bars()  # one bar per set would drown the counts table
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(target)
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        for (split, name), rows in prep.sets.items():
            cols = [c for c in (rows[0] if rows else _empty_columns(name)) if not c.startswith("_")]
            data = {c: [r[c] for r in rows] for c in cols}
            Dataset.from_dict(data, features=_features(cols)).save_to_disk(str(tmp / split / name))
        _write_json(tmp / layout.MANIFEST, make_manifest(prep, root, registry))
        _write_json(tmp / layout.LEAKAGE_REPORT, prep.leakage_report)
        write_checksums(tmp)  # last: it lists every file written above
        final = target.parent / f"{target.name}.failed" if failed else target
        old = target.parent / f".{target.name}.old-{os.getpid()}"
        if final.exists():
            final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)
        return final
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (signal 0 checks without sending anything)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def remove_stale(target: Path) -> list[Path]:
    """Remove the ``.<target>.tmp-PID`` / ``.old-PID`` siblings a killed ``make data`` left behind.

    Only those whose PID is no longer alive: a ``make data`` running at the same time keeps its own.
    """
    removed = []
    for kind in ("tmp", "old"):
        for p in target.parent.glob(f".{target.name}.{kind}-*"):
            pid = p.name.rsplit("-", 1)[1]
            if pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
                shutil.rmtree(p, ignore_errors=True)
                removed.append(p)
    return removed


def _write_json(path: Path, data: object) -> None:
    """JSON as the data layer has always written it (indent 1, UTF-8 as is, no final newline).

    Not medenc.core.io.write_json (indent 2, ASCII escapes, final newline, atomic rename): the manifest's
    bytes are its identity (medenc.data.manifest_hash, recorded by every run), so its format must not change;
    atomicity comes from renaming the whole folder into place.
    """
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False), encoding="utf-8")


def _empty_columns(name: str) -> tuple[str, ...]:
    if name in TEXT_FIELDS:
        return (*layout.COLUMNS[name], "source")
    raise DataError(name, None, "a non-empty set", "no rows")


def format_table(manifest: dict) -> str:
    """A readable table of rows per split/set/source, the drops and the leakage summary."""
    # The set column fits the longest set name ("clinical_to_lay_queries").
    lines = [f"{'split':<11}{'set':<25}{'source':<24}{'rows':>8}", "-" * 68]
    for split in ("train", "validation", "test"):
        for name, entry in manifest["sets"].get(split, {}).items():
            lines.append(f"{split:<11}{name:<25}{'(all)':<24}{entry['rows']:>8}")
            for src, n in entry.get("by_source", {}).items():
                if len(entry["by_source"]) > 1:
                    lines.append(f"{'':<11}{'':<25}{src:<24}{n:>8}")
    lines.append("")
    lines.append("dropped:")
    for reason, by_src in manifest["dropped"].items():
        for src, n in by_src.items():
            lines.append(f"  {reason}: {src}: {n}")
    lk = manifest["leakage"]
    lines.append("")
    lines.append(
        f"leakage guard: {'PASSED' if lk['passed'] else 'FAILED'} (threshold {lk['threshold']}, "
        f"word {lk['ngram']}-grams, {lk['offenders']} offender(s))"
    )
    for name, v in sorted(lk["max_containment"].items()):
        lines.append(f"  max containment {name:<25}{v:.3f}")
    return "\n".join(lines)
