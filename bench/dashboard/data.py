"""What the dashboard page shows, built from the results database opened read-only.

One :class:`Dashboard` per database path. Its :meth:`Dashboard.snapshot` re-reads the database
only when the file changed (:func:`db_version`), so the page can poll a cheap version number. A
snapshot runs ``seqbench.analysis.analyze`` over the runs (the numbers ``bench analyze`` prints)
and keeps ``summary`` (what the first paint needs), ``runs`` (each run's export record) and, per
cell on demand, learning-curve bands (``bands.py``): the overview never carries curve points.

Every payload is plain JSON; :func:`dumps` writes it with ``<``, ``>`` and ``&`` escaped so that
it is safe inside an HTML ``<script>`` element as well as over the API.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import threading
from pathlib import Path
from typing import Any

from ..analysis.cells import clean, size_key, variant_key
from ..analysis.cells import variant_keys as _variants
from ..analysis.glance import stage, tuned
from ..records import REPORTED, Curves, CurvePoint, RunRecord
from ..util import now
from .bands import GRID_POINTS, band, rounded
from .fallback import fallback_analysis, run_analysis
from .reading import check_database, read_database

__all__ = ["GRID_POINTS", "band", "check_database", "fallback_analysis", "read_database",
           "run_analysis", "Dashboard", "Snapshot", "build_snapshot", "dumps", "db_version"]

HOW_TO_START = "bench run --preset quick"
AXES = (("steps", "step"), ("samples", "samples"), ("seconds", "seconds"))
# A cell with more curve points than this is drawn with WebGL traces (app.js holds the same
# number): SVG starts sooner, but slows down past a few tens of thousands of points.
WEBGL_POINTS = 20000
STATUSES = REPORTED


def dumps(obj: Any) -> str:
    """Compact JSON that is also safe inside HTML: ``<``, ``>``, ``&`` (and the JS line separators)
    are written as ``\\uXXXX`` escapes, so no data can close a ``<script>`` element."""
    text = json.dumps(clean(obj), separators=(",", ":"), allow_nan=False, ensure_ascii=False)
    return (
        text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
        .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    )


def db_version(path: Path) -> str:
    """Changes whenever the database (or its write-ahead log) is written; cheap (two stats)."""
    parts = []
    for p in (path, path.with_name(path.name + "-wal")):
        try:
            st = os.stat(p)
        except OSError:
            parts.append("-")
            continue
        parts.append(f"{st.st_mtime_ns}.{st.st_size}")
    return "/".join(parts)


def short_id(*key: Any) -> str:
    return hashlib.sha1(json.dumps(key, default=str).encode()).hexdigest()[:12]


def variant_keys(runs: list[RunRecord]) -> dict[str, str]:
    """run_id -> the task variant's key, as ``seqbench.analysis`` names it; what varies is decided
    by the finished runs, so a running run at a new setting renames no finished run's cell."""
    finished = [r for r in runs if r.status != "running"]
    return {rid: key for rid, (_, key) in _variants(runs, among=finished).items()}


def variant_label(task: str, vkey: Any) -> str:
    if isinstance(vkey, dict):
        vkey = variant_key(vkey)
    if vkey in (None, "", "default"):
        return str(task)
    return f"{task} [{vkey}]"


def size_label(train_size: Any) -> str:
    return "full" if train_size is None else str(train_size)


ROW_FIELDS = ("run_id", "model", "task", "train_size", "seed", "status", "primary_metric",
              "primary_value", "best_val", "param_count", "train_examples", "steps", "samples",
              "train_seconds", "steps_to_95", "seconds_to_95", "started_at", "finished_at")


class Snapshot:
    """Everything the page shows for one version of the database."""

    def __init__(self, path: Path, version: str):
        self.path = path
        self.version = version
        self.summary: dict = {}
        self.runs: list[dict] = []  # full export records
        self.run_index: dict[str, RunRecord] = {}
        self.cells: dict[str, dict] = {}  # cell id -> analysis cell
        self.curves: Curves = {}
        self.confidence = 0.95
        self._cell_cache: dict[str, dict] = {}

    def _seeds(self, m: dict) -> tuple[list[dict], dict[str, list], int]:
        """One model's seeds (their validation points) and, per axis, the series for its band."""
        seeds, total = [], 0
        per_axis: dict[str, list] = {a: [] for a, _ in AXES}
        for rid in m.get("run_ids") or []:
            run = self.run_index.get(rid)
            pts = [p for p in self.curves.get(rid, [])
                   if p.get("val_primary") is not None and math.isfinite(p["val_primary"])]
            total += len(pts)
            y = [p["val_primary"] for p in pts]
            seed = {"run_id": rid, "seed": run.seed if run else None,
                    "status": run.status if run else None, "val": [rounded(v) for v in y]}
            for axis, col in AXES:
                x = [p[col] for p in pts]  # type: ignore[literal-required]
                seed[axis] = [rounded(v) for v in x]
                per_axis[axis].append((x, y))
            seeds.append(seed)
        return seeds, per_axis, total

    def cell_curves(self, cell_id: str) -> dict | None:
        """One cell's learning curves: per model its seeds and a band per axis."""
        if cell_id in self._cell_cache:
            return self._cell_cache[cell_id]
        cell = self.cells.get(cell_id)
        if cell is None:
            return None
        models, total = [], 0
        for m in cell["models"]:
            seeds, per_axis, points = self._seeds(m)
            total += points
            models.append({
                "model": m["model"], "n_seeds": m.get("n_seeds"), "mean": m.get("mean"),
                "ttt": m.get("ttt"), "own95_steps_median": m.get("own95_steps_median"),
                "seeds": seeds,
                "bands": {axis: band(s, self.confidence) for axis, s in per_axis.items()},
            })
        out = {
            "id": cell_id, "task": cell["task"], "variant_key": cell.get("variant_key"),
            "label": cell.get("label"), "train_size": cell.get("train_size"), "n": cell.get("n"),
            "primary_metric": cell.get("primary_metric"),
            "higher_is_better": cell.get("higher_is_better"), "target": cell.get("target"),
            "target_pair": cell.get("target_pair"),
            "target_rule": self.summary.get("analysis", {}).get("target_rule"),
            "validation": cell.get("validation"),
            "confidence": self.confidence, "points": total, "models": models,
        }
        self._cell_cache[cell_id] = out
        return out


def _compact_row(r: RunRecord, vkey: str, cell_id: str | None) -> dict:
    row = {k: getattr(r, k) for k in ROW_FIELDS}
    row["variant_key"] = vkey
    row["cell"] = cell_id
    row["stage"], row["tuned"] = stage(r.trial), tuned(r.trial)
    err = (r.error or "").strip().splitlines()
    row["error"] = err[0][:300] if err else None
    return row


def _slim_cell(cell: dict) -> dict:
    """A cell for the overview: per-seed values and run ids stay on the server (cell endpoint)."""
    out = dict(cell)
    out["models"] = [{k: v for k, v in m.items() if k not in ("values", "seeds", "run_ids")}
                     for m in cell.get("models", [])]
    return out


def _empty_summary(path: Path, version: str) -> dict[str, Any]:
    from ..analysis.tables import EXPORT

    return {
        "status": "ok", "message": None, "how_to_start": HOW_TO_START, "db": str(path),
        "version": version, "generated_at": now(),
        "counts": {s: 0 for s in STATUSES}, "analysis": {"ok": False, "error": None},
        "variants": [], "cells": [], "scaling": [], "verdicts": [], "rows": [],
        "filters": {}, "export_fields": list(EXPORT),
    }


def _read(path: Path, summary: dict[str, Any]) -> tuple[list[RunRecord], Curves] | None:
    """The runs and curves; None, with the summary saying why, when there are none to show."""
    from ..store import StoreError

    if not path.exists():
        summary["status"], summary["message"] = "missing", f"No results database at {path} yet."
        return None
    try:
        runs, curves = read_database(path)
    except StoreError as exc:
        summary["status"], summary["message"] = "error", str(exc)
        return None
    if not runs:
        summary["status"], summary["message"] = "empty", f"{path} holds no runs yet."
        return None
    return runs, curves


def _analysis_header(analysis: dict[str, Any], error: str | None) -> dict[str, Any]:
    return {
        "ok": error is None, "error": error, "confidence": analysis.get("confidence"),
        "target_rule": analysis.get("target_rule"), "n_boot": analysis.get("n_boot"),
        "pairs": analysis.get("pairs"), "generated_at": analysis.get("generated_at"),
        "margins": analysis.get("margins"), "floor_rule": analysis.get("floor_rule"),
    }


def _index_cells(snap: Snapshot, analysis: dict[str, Any], label_of: Any) -> dict[str, str]:
    """Give each cell and task variant a stable id; run_id -> its cell's id."""
    run_cell: dict[str, str] = {}
    variants: dict[str, dict] = {}
    for cell in analysis.get("cells", []):
        vkey = cell.get("variant_key")
        cid = short_id(cell["task"], vkey, cell.get("train_size"))
        vid = short_id(cell["task"], vkey)
        cell["id"], cell["variant_id"] = cid, vid
        cell["label"] = f"{label_of(cell['task'], vkey)} · n={size_label(cell.get('train_size'))}"
        snap.cells[cid] = cell
        for m in cell.get("models", []):
            for rid in m.get("run_ids") or []:
                run_cell[rid] = cid
        v = variants.setdefault(vid, {
            "id": vid, "task": cell["task"], "variant_key": vkey,
            "label": label_of(cell["task"], vkey), "primary_metric": cell.get("primary_metric"),
            "higher_is_better": cell.get("higher_is_better"), "cells": [],
        })
        v["cells"].append({"id": cid, "train_size": cell.get("train_size"), "n": cell.get("n")})
    for v in variants.values():
        v["cells"].sort(key=lambda c: (size_key(c["n"]), size_key(c["train_size"])))
    snap.summary["variants"] = list(variants.values())
    snap.summary["cells"] = [_slim_cell(c) for c in snap.cells.values()]
    return run_cell


def _verdicts(summary: dict[str, Any], analysis: dict[str, Any], label_of: Any) -> None:
    """Scaling and verdicts, labelled; the headline and the pooled forest."""
    from ..analysis.glance import headline, verdict_sentence
    from .forest import safe_payload  # pooled across data sets: one forest per task and regime

    for s in analysis.get("scaling", []):
        s["variant_id"] = short_id(s["task"], s.get("variant_key"))
        s["label"] = label_of(s["task"], s.get("variant_key"))
    summary["scaling"] = analysis.get("scaling", [])
    for v in analysis.get("verdicts", []):
        v["label"] = label_of(v["task"], v.get("variant_key"))
        v["summary"] = verdict_sentence(v, analysis.get("cells", []))
    summary["verdicts"] = analysis.get("verdicts", [])
    summary["headline"] = headline(summary["verdicts"])
    summary["forest"], summary["forest_error"] = safe_payload(analysis)


def _rows(summary: dict[str, Any], runs: list[RunRecord], run_cell: dict[str, str]) -> None:
    """One compact row per run for the runs table, and the values its filters offer."""
    keys = variant_keys(runs)
    summary["rows"] = [_compact_row(r, keys[r.run_id], run_cell.get(r.run_id)) for r in runs]
    summary["filters"] = {
        "task": sorted({r.task for r in runs}),
        "model": sorted({r.model for r in runs}),
        "train_size": sorted({r.train_size for r in runs}, key=size_key),
        "seed": sorted({r.seed for r in runs}),
        "status": [s for s in STATUSES if summary["counts"][s]],
    }


def build_snapshot(path: Path, version: str, *, pairs: Any, confidence: float,
                   n_boot: int) -> Snapshot:
    """Read the database at ``path`` and analyse it: everything the page shows."""
    from ..analysis.glance import short_labels
    from ..analysis.tables import export_record
    from ..analysis.task_labels import label_cells, read_labels

    snap = Snapshot(path, version)
    snap.confidence = confidence
    snap.summary = summary = _empty_summary(path, version)
    read = _read(path, summary)
    if read is None:
        return snap
    runs, curves = read
    snap.curves = curves
    snap.run_index = {r.run_id: r for r in runs}
    snap.runs = [export_record(r) for r in runs]
    summary["counts"] = {s: sum(r.status == s for r in runs) for s in STATUSES}

    analysis, error = run_analysis(runs, curves, pairs, confidence, n_boot)
    analysis = clean(analysis)
    label_cells(analysis, runs, read_labels(path))  # the names the matrices gave
    summary["analysis"] = _analysis_header(analysis, error)
    labels = short_labels((c["task"], c.get("variant") or {}) for c in analysis.get("cells", []))

    def label_of(task: str, vkey: Any) -> str:  # the short label, else the parameters
        return labels.get((task, vkey)) or variant_label(task, vkey)

    run_cell = _index_cells(snap, analysis, label_of)
    _verdicts(summary, analysis, label_of)
    _rows(summary, runs, run_cell)
    return snap


class Dashboard:
    """The database behind the page; thread-safe.

    The database is re-read only when the file changed. While a matrix writes, a new snapshot is
    built in the background and the previous one keeps being served (stale-while-revalidate):
    the analysis of a large database takes seconds and must not stall the page. ``version`` is the
    version of the snapshot being served, so the page refetches once the new one is ready."""

    def __init__(self, db: str | Path, *, pairs="auto", confidence: float = 0.95,
                 n_boot: int = 2000):  # bench analyze's default: the same numbers
        self.path = Path(db)
        self.options = dict(pairs=pairs, confidence=confidence, n_boot=n_boot)
        self._build_lock = threading.Lock()
        self._flag_lock = threading.Lock()
        self._building = False
        self._snap: Snapshot | None = None

    def file_version(self) -> str:
        return db_version(self.path)

    def version(self) -> str:
        return self.snapshot().version

    def snapshot(self, wait: bool = False) -> Snapshot:
        """The current snapshot; with ``wait`` (or when there is none yet) one that is up to date
        with the file, else possibly the previous one while a fresh one builds in the background."""
        snap = self._snap
        if snap is not None and snap.version == self.file_version():
            return snap
        if snap is None or wait:
            return self._rebuild()
        with self._flag_lock:
            if not self._building:
                self._building = True
                threading.Thread(target=self._background, name="dashboard-refresh",
                                 daemon=True).start()
        return snap

    def _background(self) -> None:
        try:
            self._rebuild()
        except Exception:  # pragma: no cover - build_snapshot reports its own errors
            pass
        finally:
            with self._flag_lock:
                self._building = False

    def _rebuild(self) -> Snapshot:
        with self._build_lock:
            version = self.file_version()
            if self._snap is None or self._snap.version != version:
                shown, self._snap = self._snap, build_snapshot(self.path, version, **self.options)
                summary = self._snap.summary
                if summary["status"] == "error" and shown and shown.summary["status"] == "ok":
                    # the page must not go on showing the old runs as if they were current
                    summary["message"] = f"The database became unreadable: {summary['message']}"
            return self._snap

    # -- payloads (plain dicts; None = not found)

    def summary(self) -> dict:
        return self.snapshot().summary

    def runs(self) -> list[dict]:
        return self.snapshot().runs

    def cell(self, cell_id: str) -> dict | None:
        return self.snapshot().cell_curves(cell_id)

    def curve(self, run_id: str) -> dict | None:
        """One run's curve with every validation metric (columns), read from the database."""
        snap = self.snapshot()
        if run_id not in snap.run_index:
            return None
        from ..store import Store

        with Store(self.path, readonly=True) as store:
            return columnar_curve(run_id, store.curve(run_id))

    def gradients(self, cell_id: str | None = None) -> dict | None:
        """The cells with gradient probes, or one cell's gradient flow (``gradflow.py``)."""
        from . import gradflow

        snap = self.snapshot()
        return gradflow.index(snap) if cell_id is None else gradflow.cell(snap, cell_id)

    def gradflow(self, run_id: str) -> dict | None:
        """One run's gradient-flow map and gradient norms (``gradflow.py``)."""
        from . import gradflow

        return gradflow.run(self.snapshot(), run_id)

    def bundle(self) -> dict[str, Any]:
        """Every payload the page can ask for, keyed as the API paths are (for the report)."""
        from ..store import Store

        snap = self.snapshot(wait=True)
        out: dict[str, Any] = {"summary": snap.summary, "runs": snap.runs}
        for cid in snap.cells:
            out[f"cell/{cid}"] = snap.cell_curves(cid)
        if snap.run_index:
            with Store(self.path, readonly=True) as store:
                for rid in snap.run_index:
                    out[f"curve/{rid}"] = columnar_curve(rid, store.curve(rid))
        from . import gradflow

        out.update(gradflow.bundle(snap))
        return out


def columnar_curve(run_id: str, points: list[CurvePoint]) -> dict:
    metrics = sorted({k for p in points for k in (p.get("val") or {})})
    return {
        "run_id": run_id,
        "step": [p["step"] for p in points],
        "samples": [p["samples"] for p in points],
        "seconds": [rounded(p["seconds"]) for p in points],
        "train_loss": [rounded(p.get("train_loss")) for p in points],
        "val_primary": [rounded(p.get("val_primary")) for p in points],
        "val": {m: [rounded((p.get("val") or {}).get(m)) if isinstance((p.get("val") or {}).get(m),
                                                                   (int, float)) else None
                    for p in points] for m in metrics},
    }
