"""The dashboard's gradient-flow payloads, read on demand from the ``gradients`` table.

``gradients``: the cells with probed runs; ``gradients/<cell>``: per configuration, the step-0
profile (log10 mean ‖∂L/∂x_t‖, geometric mean over seeds with their range), the ratio
first/last position and the seeds' mean map over position x step; ``gradflow/<run>``: one run's
map and its pre-clip gradient norms. Built once per database version, outside the snapshot
(probes are megabytes); every probed run of a cell counts, whatever trial the verdict selected.
See docs/methods.md#gradient-flow.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from ..analysis.gradients import configurations, flow, profile_at, ratio
from ..records import RunRecord

_LOCK = threading.Lock()


def _cache(snap) -> dict:
    with _LOCK:
        return snap.__dict__.setdefault("_gradient_payloads", {})


def _probed_ids(path: Path) -> set[str]:
    from ..store import Store

    with Store(path, readonly=True) as store:
        has = store.conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='gradients'").fetchone()
        if not has:
            return set()
        return {r[0] for r in store.conn.execute("SELECT run_id FROM gradients")}


def _cell_runs(snap, cell: dict) -> list[RunRecord]:
    """Every stored run of the cell's task variant and training size (not only the selected
    trial's), finished or not."""
    rows = snap.summary.get("rows", [])
    ids = [r["run_id"] for r in rows
           if r["task"] == cell["task"] and r.get("variant_key") == cell.get("variant_key")
           and r.get("train_size") == cell.get("train_size")]
    return [snap.run_index[i] for i in ids if i in snap.run_index]


def index(snap) -> dict:
    cache = _cache(snap)
    if "index" not in cache:
        probed = _probed_ids(snap.path) if snap.run_index else set()
        cells = []
        for cid, cell in snap.cells.items():
            n = sum(1 for r in _cell_runs(snap, cell) if r.run_id in probed)
            if n:
                cells.append({"id": cid, "label": cell.get("label"), "runs": n})
        cache["index"] = {"cells": cells, "runs": sorted(probed & set(snap.run_index))}
    return cache["index"]


def _memo(snap, key: str, build):
    """The payload ``key`` of this snapshot, built once (``build()``; None, for an unknown id,
    is not kept)."""
    cache = _cache(snap)
    if key not in cache:
        payload = build()
        if payload is None:
            return None
        cache[key] = payload
    return cache[key]


def _gradients(snap, run_ids) -> dict:
    from ..store import Store

    with Store(snap.path, readonly=True) as store:
        return store.gradients(run_ids)


def cell(snap, cell_id: str) -> dict | None:
    def build():
        c = snap.cells.get(cell_id)
        if c is None:
            return None
        runs = [r for r in _cell_runs(snap, c) if r.status in ("done", "diverged")]
        gradients = _gradients(snap, [r.run_id for r in runs])
        return {"id": cell_id, "label": c.get("label"), "task": c["task"],
                "configs": configurations(runs, gradients)}

    return _memo(snap, "cell/" + cell_id, build)


def run(snap, run_id: str) -> dict | None:
    def build():
        r = snap.run_index.get(run_id)
        if r is None:
            return None
        g = _gradients(snap, [run_id]).get(run_id)
        out: dict[str, Any] = {"run_id": run_id, "probed": g is not None,
                               "grad_clip": dict(r.training).get("grad_clip")}
        if g is not None:
            out.update(
                note=g.get("note"), flow=flow(g),
                step0_ratio=ratio(profile_at(g, 0)), grad_norm=g.get("grad_norm"),
                clip_fraction=g.get("clip_fraction"),
            )
        return out

    return _memo(snap, "run/" + run_id, build)


def bundle(snap) -> dict[str, Any]:
    """The payloads a static report embeds: the index, each probed cell, each probed run."""
    idx = index(snap)
    out: dict[str, Any] = {"gradients": idx}
    for c in idx["cells"]:
        out["gradients/" + c["id"]] = cell(snap, c["id"])
    for rid in idx["runs"]:
        out["gradflow/" + rid] = run(snap, rid)
    return out
