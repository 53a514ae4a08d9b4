"""The lint findings of revision files: read from their source, cached by checksum
(in this process, and on disk for long plans such as a first deploy)."""

from __future__ import annotations

from collections.abc import Sequence

from migplan.core import lint
from migplan.core.graph import RevisionGraph
from migplan.core.lint import Analysis
from migplan.project import cache
from migplan.project import revision_files

_known: dict[str, Analysis] = {}
"""Analyses by file checksum: the same file always gives the same findings."""


def analyses(graph: RevisionGraph, revisions: Sequence[str]) -> dict[str, Analysis]:
    """Return the lint findings of several revisions of `graph`."""
    checksums = {rev: graph.checksum(rev) for rev in revisions}
    missing = [rev for rev in revisions if checksums[rev] not in _known]
    if len(missing) > 16:
        # a long plan: worth the cache of earlier runs
        where = str(graph.root)
        stored = cache.load("lint", where) or {}
        fresh = dict(stored)
        for rev in missing:
            key = checksums[rev]
            try:
                _known[key] = Analysis.from_list(stored[key])  # type: ignore[arg-type]
            except (KeyError, TypeError, ValueError):
                _known[key] = _analyze(graph, rev)
                fresh[key] = _known[key].to_list()
        if len(fresh) != len(stored):
            # keep the newest entries: a cache, not an archive
            cache.store("lint", where, dict(list(fresh.items())[-20000:]))
    for rev in missing:
        if checksums[rev] not in _known:
            _known[checksums[rev]] = _analyze(graph, rev)
    return {rev: _known[checksums[rev]] for rev in revisions}


def _analyze(graph: RevisionGraph, revision: str) -> Analysis:
    return lint.analyze(revision_files.source(graph.get(revision)))
