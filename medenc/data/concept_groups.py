"""Step 1b of the build: group the names of every source into concepts, and hold out by concept.

The same concept is named by several sources: "hypertension" is a Disease Ontology disease, an ICD-10-CM
title and a WordNet synset. Holding out by one source's id alone would let another source train the held-out
names. So every source that names concepts (:attr:`medenc.data.source.Source.concept_names`) lists its
concepts (an id and its names); concepts sharing a normalised name (:func:`medenc.data.leakage.key`) are
joined into one group (union-find, transitively), and the hold-out is decided per group:

- a group with concepts of a source that holds out by id (the Disease Ontology and the HPO, whose
  ``concepts`` test must stay comparable with earlier releases) is held out when every such concept in it is
  held out by :func:`medenc.data.source.concept_held`; a held-out concept whose group is not held (it shares
  a name with a concept that trains) leaves the test, and is counted (``moved``);
- any other group is held out by hash of its smallest member, at :data:`NAMES_TEST_FRACTION`.

Every name of a held group leaves training, under every source (:func:`drop_held`), and the held concepts
of each source feed its held-out sets (:attr:`medenc.data.source.Source.held_sets`).

A name shared by more than :data:`MAX_SHARED` concepts of one source is not used to join ("Other specified
urinary incontinence" is three ICD codes; WordNet's "cold" is a disease and a sensation): such a name says
little about identity and would chain unrelated concepts into one giant group. It still leaves training when
any of its concepts is held.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from medenc.data import leakage
from medenc.data.read import Parsed
from medenc.data.source import TEXT_FIELDS, Dropped, Rows, Source, bucket, concept_held

# Fraction of the groups without an ontology concept held out for the name tests (icd10, drugs,
# near_misses): the same share as the concepts test, about 500 ICD codes and 300 drugs.
NAMES_TEST_FRACTION = 0.07
MAX_SHARED = 3

Node = tuple[str, str]  # (source folder, the source's own concept id)


@dataclass
class Grouping:
    """Concept groups across sources and their hold-out decision."""

    group: dict[Node, Node] = field(default_factory=dict)  # node -> its group's root
    held_roots: set[Node] = field(default_factory=set)
    held_keys: frozenset[str] = frozenset()  # every name (key) of a held group
    moved: int = 0  # ontology concepts held by id whose group trains: they leave the concepts test
    held_ontology_ids: frozenset[str] = frozenset()  # the concepts test's held concepts (DOID / HP ids)
    sizes: Counter = field(default_factory=Counter)  # group size -> groups

    def held(self, folder: str, concept_id: str) -> bool:
        """Whether ``folder``'s concept ``concept_id`` is held out (with every name of its group)."""
        return self.group.get((folder, concept_id)) in self.held_roots

    def info(self) -> dict[str, object]:
        """The manifest's grouping counts."""
        return {
            "concept_groups": sum(self.sizes.values()),
            "concept_groups_multi_source_or_id": sum(n for s, n in self.sizes.items() if s > 1),
            "concept_groups_largest": max(self.sizes, default=0),
            "concept_groups_held": len(self.held_roots),
            "concept_names_held": len(self.held_keys),
            "concepts_moved_out_of_test_by_grouping": self.moved,
        }


def _find(parent: dict[Node, Node], n: Node) -> Node:
    while parent[n] != n:
        parent[n] = parent[parent[n]]
        n = parent[n]
    return n


def group_concepts(registry: tuple[Source, ...], parsed: Parsed) -> Grouping:
    """Join the concepts of every source by shared names and decide each group's hold-out."""
    names: dict[Node, set[str]] = {}
    by_id = {s.folder for s in registry if s.hold_by_id}
    for s in registry:
        if s.concept_names is None:
            continue
        for cid, texts in s.concept_names(parsed[s.folder]):
            names.setdefault((s.folder, cid), set()).update(leakage.key(t) for t in texts if t)
    parent = {n: n for n in names}
    users: dict[str, list[Node]] = defaultdict(list)
    for n, keys in names.items():
        for k in keys:
            users[k].append(n)
    for nodes in users.values():
        per_source = Counter(folder for folder, _ in nodes)
        if max(per_source.values()) > MAX_SHARED:
            continue
        root = _find(parent, nodes[0])
        for other in nodes[1:]:
            parent[_find(parent, other)] = root
    members: dict[Node, list[Node]] = defaultdict(list)
    for n in names:
        members[_find(parent, n)].append(n)
    out = Grouping(group={n: _find(parent, n) for n in names})
    for root, nodes in members.items():
        out.sizes[len(nodes)] += 1
        onto = [cid for folder, cid in nodes if folder in by_id]
        if onto:
            held = all(concept_held(cid) for cid in onto)
            out.moved += 0 if held else sum(concept_held(cid) for cid in onto)
        else:
            held = bucket(f"names-test:{min(nodes)}") < NAMES_TEST_FRACTION
        if held:
            out.held_roots.add(root)
    out.held_ontology_ids = frozenset(
        cid for folder, cid in names if folder in by_id and out.group[(folder, cid)] in out.held_roots
    )
    out.held_keys = frozenset(k for n in names if out.group[n] in out.held_roots for k in names[n])
    return out


def drop_held(cand: Rows, grouping: Grouping, dropped: Dropped) -> Rows:
    """Training rows without any name of a held-out concept group (counted by source)."""
    out: Rows = {}
    for fmt, rows in cand.items():
        cols = TEXT_FIELDS[fmt]
        kept = []
        for r in rows:
            if any(leakage.key(str(r[c])) in grouping.held_keys for c in cols):
                dropped[f"{fmt}: a name of a held-out concept (any source)"][r["source"]] += 1
            else:
                kept.append(r)
        out[fmt] = kept
    return out
