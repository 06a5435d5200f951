"""The catalog of raw sources: display name, licence, role, upstream and citation, by source folder.

Derived from the registry (:mod:`medenc.data.sources`): each source module declares its own entry. The data
manifest (:mod:`medenc.data.write`) copies ``license`` and ``role`` from here; the model card reads the
manifest and falls back to this catalog for whatever the manifest lacks (e.g. no ``make data`` on the
machine).
"""

from __future__ import annotations

from medenc.data.source import Source, SourceInfo
from medenc.data.sources import REGISTRY

__all__ = ["CATALOG", "SourceInfo", "catalog_of"]


def catalog_of(registry: tuple[Source, ...]) -> dict[str, SourceInfo]:
    """The catalog entries of ``registry``, keyed by folder, in registry order."""
    return {s.folder: s.info for s in registry}


# Keyed by folder, in the order the manifest lists the sources (its bytes, hence its hash, depend on it).
CATALOG: dict[str, SourceInfo] = catalog_of(REGISTRY)
