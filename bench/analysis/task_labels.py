"""The labels a matrix gave its task variants, put on the analysis's cells (``variant["label"]``),
where the overview, the summary and the pooled tables read them."""

from __future__ import annotations

from typing import Any, Sequence

from ..experiment.labels import KEY, StoredLabels
from ..records import RunRecord
from .cells import COUNTED, variant_keys


def label_cells(analysis: dict[str, Any], runs: Sequence[RunRecord],
                labels: StoredLabels) -> None:
    """Give each cell of ``analysis`` its runs' label (in place); a cell whose runs carry several
    (one data set at two model sizes, analysed together) shows them all."""
    if not labels:
        return
    counted = [r for r in runs if r.status in COUNTED]  # the runs the cells were made of
    keys = variant_keys(counted)
    by_cell: dict[tuple[str, str, Any], dict[str, None]] = {}
    for run in counted:
        label = labels.of(run)
        if label:
            cell = (run.task, keys[run.run_id][1], run.train_size)
            by_cell.setdefault(cell, {})[label] = None
    for cell in analysis.get("cells", []):
        found = by_cell.get((cell["task"], cell.get("variant_key"), cell.get("train_size")))
        if found:
            cell["variant"] = {**(cell.get("variant") or {}), KEY: " / ".join(found)}


def read_labels(path: Any) -> StoredLabels:
    """The labels stored in the database at ``path``; none when they cannot be read (a label only
    names a variant, and the analysis stands without it)."""
    from ..experiment.labels import stored
    from ..store import Store, StoreError

    try:
        with Store(path, readonly=True) as store:
            return stored(store)
    except (StoreError, OSError, ValueError):
        return StoredLabels()
