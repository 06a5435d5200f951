"""WordNet 3.0 nouns: the medical synsets (diseases, symptoms, drugs, procedures, human body parts).

``data.noun`` (wndb(5) format) is parsed line by line: a synset's offset, lexicographer file, words, pointers
and gloss. The medical part is every synset below one of :data:`ROOTS` (chosen by offset, so that a word's
other senses never count) by hypernym pointers ("@", instance "@i"). Three checks leave out what sits below
a medical root but is not human medicine: the lexicographer files of animals, plants and food
(:data:`NOT_MEDICAL`: animal anatomy below body part, the cocktails filed below "drug of abuse"), the
subtrees of :data:`NOT_MEDICAL_SUBTREES` (tobacco), and a body part whose gloss and words name only animals
("the tail of a cetacean", "in insects and some crustaceans").
Non-medical senses of a word ("attic", "bean" as a building part or a seed) are other synsets, never reached.
Each synset gives synonym <-> synonym pairs and (gloss -> name) pairs.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from medenc.core import layout
from medenc.core.errors import DataError
from medenc.data.parsing import SkipLog, stream_lines
from medenc.data.source import Pin, Rows, Source, SourceInfo, row

DATA_NOUN = "data.noun"
LICENSE = "LICENSE"

# Root synset offset -> its family. Chosen by offset: "symptom" and "sign" have non-medical senses too.
ROOTS: dict[str, str] = {
    "14051917": "disease",  # pathological_state: ill health, illness, disease, infection, injury ...
    "14052403": "disease",  # disorder: "a physical condition in which there is a disturbance of normal ..."
    "14380140": "disease",  # mental_illness: "any disease of the mind"
    "14299637": "symptom",  # symptom: "(medicine) any sensation or change in bodily function ..."
    "14301785": "symptom",  # sign: "(medicine) any objective evidence of the presence of a disorder ..."
    "03247620": "drug",  # drug: medicine, medication, drug of abuse ...
    "01024392": "procedure",  # medical_procedure: "a procedure employed by medical or dental practitioners"
    "00657604": "procedure",  # medical_care: "professional treatment for illness or injury" (therapies)
    "05220461": "body part",  # body_part: "any part of an organism such as an organ or extremity"
}
# Lexicographer files below those roots that are not human medicine: animal and plant anatomy (below body
# part), and the drinks noun.food files below "drug of abuse". Other files below a root are medical (warts
# in noun.attribute, blood pressure in noun.phenomenon, pustules in noun.state).
NOT_MEDICAL = {"05": "noun.animal", "13": "noun.food", "20": "noun.plant"}
# Subtrees below a root that are not medicine, by offset: tobacco (cigars, cigarettes) is a "drug of abuse".
NOT_MEDICAL_SUBTREES = {"04442831": "tobacco"}
# A body part whose gloss names only taxa without humans is animal anatomy ("the median ridge on the
# breastbone of birds", "the nictitating membrane of a horse"). "animal", "vertebrate" and "mammal" include
# humans ("the jaw in vertebrates", "milk-secreting organ of female mammals"): they do not exclude.
_ANIMAL = re.compile(
    r"\b(?:birds?|fish(?:es)?|insects?|invertebrates?|reptiles?|amphibians?|arthropods?|arachnids?|"
    r"crustaceans?|mollusks?|ruminants?|quadrupeds?|cetaceans?|horses?|cattle|fowl'?s?|coelenterates?|"
    r"marsupials?|zoology)\b",
    re.IGNORECASE,
)
# A disease or symptom "of" or "in" animals only is veterinary ("a disease of cattle", "diarrhea in
# livestock"); one carried by or named after animals is not ("transmitted by a tick", "fear of insects").
_VETERINARY = re.compile(
    r"(?<!fear )\b(?:of|in|affecting)\s+"
    r"(?:(?:the|a|young|domestic|herbivorous|cloven-footed|hoofed|freshwater)\s+)*"
    r"(?:cattle|sheep|horses?|horse's|swine|pigs?|dogs?|birds?|poultry|fowl|livestock|animals?|fish|chickens)\b",
    re.IGNORECASE,
)
_HUMAN = re.compile(r"\b(?:humans?|man|people|persons?|children|women|men|mammals?|vertebrates?)\b", re.I)


@dataclass(frozen=True)
class Synset:
    """One medical noun synset: its offset (the id), family (a root of :data:`ROOTS`), words and gloss."""

    offset: str
    family: str
    words: tuple[str, ...]  # underscores as spaces, in WordNet's order (the first is the name)
    gloss: str  # the definition, without the quoted examples


@dataclass(frozen=True)
class _Entry:
    lex: str
    words: tuple[str, ...]
    hypernyms: tuple[str, ...]
    gloss: str


def _parse_line(line: str, path: Path, n: int) -> tuple[str, _Entry]:
    """One synset line of data.noun; a line that does not follow wndb(5) is a DataError naming it."""
    head, bar, gloss = line.partition(" | ")
    f = head.split()
    expected = "a synset line: offset, lex_filenum, n, w_cnt, words, p_cnt, pointers, | gloss (wndb(5))"
    try:
        offset, lex, wc = f[0], f[1], int(f[3], 16)
        words = tuple(f[4 + 2 * i].replace("_", " ") for i in range(wc))
        at = 4 + 2 * wc
        pc = int(f[at])
        ptrs = [f[at + 1 + 4 * k : at + 5 + 4 * k] for k in range(pc)]
        ok = bar and len(offset) == 8 and offset.isdigit() and f[2] == "n" and all(len(p) == 4 for p in ptrs)
    except (IndexError, ValueError):
        ok = False
    if not ok:
        raise DataError(path, f"line {n}", expected, repr(line[:120]))
    hypernyms = tuple(p[1] for p in ptrs if p[0] in ("@", "@i") and p[2] == "n")
    definition = gloss.split('; "')[0].strip().strip(";").strip()
    return offset, _Entry(lex, words, hypernyms, definition)


def read_entries(path: Path) -> dict[str, _Entry]:
    """Every synset of data.noun by offset (the licence header's lines start with two spaces: skipped)."""
    out: dict[str, _Entry] = {}
    for n, line in stream_lines(path):
        if not line.startswith("  "):
            offset, entry = _parse_line(line, path, n)
            out[offset] = entry
    missing = [o for o in ROOTS if o not in out]
    if missing:
        raise DataError(
            path,
            None,
            f"the root synsets {', '.join(ROOTS)} (WordNet 3.0 offsets)",
            f"no synset at {', '.join(missing)}",
        )
    return out


def _excluded(entry: _Entry, family: str) -> str | None:
    """Why a synset below a medical root is left out (a SkipLog reason), or None to keep it."""
    if entry.lex in NOT_MEDICAL:
        return f"not human medicine ({NOT_MEDICAL[entry.lex]})"
    text = " ".join((entry.gloss, *entry.words))  # "elbow, elbow joint, human elbow": the words count too
    animal = (_ANIMAL if family == "body part" else _VETERINARY).search(text)
    if animal and not _HUMAN.search(text):
        kind = "anatomy" if family == "body part" else "medicine"
        return f"animal {kind} (the gloss names only animals)"
    return None


def medical_synsets(entries: dict[str, _Entry], skips: SkipLog) -> list[Synset]:
    """The synsets below :data:`ROOTS` by hypernym pointers, in offset order; left-out ones counted.

    A left-out synset's hyponyms are still walked: each is judged on its own lexicographer file and gloss.
    """
    children: dict[str, list[str]] = defaultdict(list)
    for offset, e in entries.items():
        for h in e.hypernyms:
            children[h].append(offset)
    family: dict[str, str] = {o: f"-{why}" for o, why in NOT_MEDICAL_SUBTREES.items()}
    for root, fam in [*NOT_MEDICAL_SUBTREES.items(), *ROOTS.items()]:
        stack = [*children[root]] if root in NOT_MEDICAL_SUBTREES else [root]
        while stack:
            o = stack.pop()
            if o not in family:  # the first root reaching a synset names its family
                family[o] = fam if root in ROOTS else f"-{fam}"
                stack += children[o]
    out = []
    for offset in sorted(family):
        name, e = family[offset], entries[offset]
        reason = f"not medicine ({name[1:]})" if name.startswith("-") else _excluded(e, name)
        if reason is not None:
            skips.add(f"wordnet: synset left out ({reason})")
            continue
        out.append(Synset(offset, name, e.words, e.gloss))
    return out


def read(folder: Path, skips: SkipLog | None = None) -> list[Synset]:
    """The medical synsets of data.noun."""
    return medical_synsets(read_entries(folder / DATA_NOUN), skips if skips is not None else SkipLog())


def training_rows(synsets: list[Synset], skips: SkipLog) -> Rows:
    """(synonym, synonym) pairs (each unordered pair once, in WordNet's word order) and (gloss -> name)."""
    pairs = []
    for s in synsets:
        for i, a in enumerate(s.words):
            pairs += [row(layout.PAIRS, "wordnet_synonym", s.offset, a, b) for b in s.words[i + 1 :]]
        pairs.append(row(layout.PAIRS, "wordnet_gloss", s.offset, s.gloss, s.words[0]))
    return {layout.PAIRS: pairs}


def concept_names(synsets: list[Synset]) -> list[tuple[str, tuple[str, ...]]]:
    """Each synset's words, for the cross-source concept groups."""
    return [(s.offset, s.words) for s in synsets]


def manifest_info(synsets: list[Synset]) -> dict[str, object]:
    """The manifest's WordNet counts."""
    return {
        "wordnet_medical_synsets": len(synsets),
        "wordnet_synsets_with_synonyms": sum(len(s.words) > 1 for s in synsets),
    }


SOURCE = Source(
    info=SourceInfo(
        folder="wordnet",
        row_sources=("wordnet_synonym", "wordnet_gloss"),
        name="WordNet 3.0 (medical nouns)",
        license="WordNet 3.0 license (use, copy, modify and distribute with the copyright notice kept)",
        role="train+validation: pairs (synonym<->synonym, gloss->name) of the medical noun synsets",
        url="https://wordnet.princeton.edu/ (Debian package wordnet-base 1:3.0-37)",
        commit="",  # a Debian package, not a git commit
        # The licence asks for its notice on all copies (wordnet/LICENSE holds it in full).
        attribution="WordNet 3.0, Princeton University. WordNet 3.0 Copyright 2006 by Princeton University. "
        'All rights reserved. THIS SOFTWARE AND DATABASE IS PROVIDED "AS IS" AND PRINCETON UNIVERSITY '
        "MAKES NO REPRESENTATIONS OR WARRANTIES, EXPRESS OR IMPLIED. The name of Princeton University or "
        "Princeton may not be used in advertising or publicity pertaining to distribution of the software "
        "and/or database (full notice: wordnet/LICENSE)",
        bibtex="""@book{fellbaum1998wordnet,
  title = {{WordNet}: An Electronic Lexical Database},
  editor = {Fellbaum, Christiane},
  publisher = {MIT Press},
  address = {Cambridge, MA},
  year = {1998}
}""",
    ),
    files=(DATA_NOUN, LICENSE),
    # @ wordnet-base 1:3.0-37
    pins={
        DATA_NOUN: Pin("fea17d2f9656611334eac790e5d69e47645fa180c4aa481fb4cd9b3520754ca2", 82144),
        LICENSE: Pin("f461bac9a5a1810c4fe1e3cec0a980f79406e3a8c1c147f3874979fb00e2cc0e", None),
    },
    read=read,
    training_rows=training_rows,
    manifest_info=manifest_info,
    validation_group="names",
    concept_names=concept_names,
)
