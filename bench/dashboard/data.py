"""What the dashboard page shows, built from the results database opened read-only.

One :class:`Dashboard` per database path. Its :meth:`Dashboard.snapshot` re-reads the database
only when the file changed (:func:`db_version`: size and mtime of the file and its WAL), so the
page can poll a cheap version number and refetch when a matrix stores new runs. A snapshot reads
runs and curves in one read transaction, runs ``seqbench.analysis.analyze`` over them (the very
numbers ``bench analyze`` prints; the learning-curve bands use the analysis' own t-interval,
``analysis.stats.mean_ci``: this module has no statistics of its own) and keeps

* ``summary``: counts, the overview cells (winner, margin, significance), data scaling,
  verdicts, one compact row per run for the runs table: what the page needs for its first paint;
* ``runs``: each run's full export record (``report_table.export_record``), for the run detail
  and the CSV/JSON export;
* per cell, on demand: learning curves as a mean +- CI band per model on a common x grid (steps,
  samples, seconds), the seeds' own points beneath, the target and each model's median
  time-to-target. The page asks for one cell at a time: the overview never carries curve points.

Every payload is plain JSON; :func:`dumps` writes it with ``<``, ``>`` and ``&`` escaped so that
it is safe inside an HTML ``<script>`` element as well as over the API.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any

from ..util import now, one_line
from ..analysis.cells import clean, variant_key
from ..analysis.glance import stage, tuned
from ..analysis.cells import variant_keys as _variants

HOW_TO_START = "bench run --preset quick"
AXES = (("steps", "step"), ("samples", "samples"), ("seconds", "seconds"))
GRID_POINTS = 200  # at most this many x values per band
# A cell with more curve points than this is drawn with WebGL traces (app.js holds the same
# number): SVG starts sooner, but slows down past a few tens of thousands of points.
WEBGL_POINTS = 20000
STATUSES = ("done", "failed", "diverged", "running")


# ------------------------------------------------------------------------------------- helpers


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


def variant_keys(runs: list[dict]) -> dict[str, str]:
    """run_id -> the task variant's key, as ``seqbench.analysis`` names it (``T=50`` or
    ``default``); what varies is decided by the finished runs, the ones the analysis counts, so
    a running run at a new setting gets its key without renaming the finished runs' cells."""
    finished = [r for r in runs if r["status"] != "running"]
    return {rid: key for rid, (_, key) in _variants(runs, among=finished).items()}


def variant_label(task: str, vkey: Any) -> str:
    if isinstance(vkey, dict):
        vkey = variant_key(vkey)
    if vkey in (None, "", "default"):
        return str(task)
    return f"{task} [{vkey}]"


def size_label(train_size: Any) -> str:
    return "full" if train_size is None else str(train_size)


def _size_sort(v: Any) -> float:
    return math.inf if v is None else float(v)


def _r(x: Any, digits: int = 6) -> Any:
    """Round to ``digits`` significant digits (the page needs no more; payloads stay small)."""
    if x is None:
        return None
    x = float(x)
    if not math.isfinite(x):
        return None
    return float(f"{x:.{digits}g}")


def band(series: list[tuple[list[float], list[float]]], confidence: float) -> dict | None:
    """Mean and t-interval over seeds on a common x grid (``analysis.stats.mean_ci``).

    The grid starts where every seed has its first point (seconds differ a little between seeds)
    and ends at the longest seed; a seed that stopped earlier (early stopping, divergence) keeps its
    last value from there on, so the mean never jumps where a seed drops out. Each seed is
    interpolated linearly between its own points. The CI needs at least two seeds."""
    import numpy as np

    from ..analysis.stats import mean_ci

    series = [(np.asarray(x, float), np.asarray(y, float)) for x, y in series if len(x)]
    if not series:
        return None
    start = max(float(x.min()) for x, _ in series)
    xs = np.unique(np.concatenate([x for x, _ in series]))
    xs = xs[xs >= start]
    if len(xs) > GRID_POINTS:
        xs = np.linspace(xs[0], xs[-1], GRID_POINTS)
    Y = np.empty((len(series), len(xs)))
    for i, (x, y) in enumerate(series):
        order = np.argsort(x, kind="stable")
        Y[i] = np.interp(xs, x[order], y[order])
    k = len(series)
    mean = Y.mean(axis=0)
    ci = mean_ci(Y.T, confidence)  # the analysis' own t-interval, at every x
    lo, hi = ([_r(v) for v in ci[0]], [_r(v) for v in ci[1]]) if ci is not None else (None, None)
    return {"x": [_r(v) for v in xs], "mean": [_r(v) for v in mean], "lo": lo, "hi": hi, "k": k}


# ------------------------------------------------------------------------------------- reading


def read_database(path: Path) -> tuple[list[dict], dict[str, list[dict]]]:
    """All runs (decoded) and all curves, in one read transaction so that they agree.

    Raises ``StoreError`` (one line) when the file is missing or not a results database."""
    from ..store import Store, StoreError

    try:
        store = Store(path, readonly=True)
    except sqlite3.Error as exc:
        raise StoreError(f"{path} cannot be opened read-only ({exc})") from None
    try:
        conn = store.conn
        conn.execute("BEGIN")
        try:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if "runs" not in tables:
                return [], {}
            runs = store.runs()
            curves = store.curves() if "curves" in tables else {}
        finally:
            conn.rollback()
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path} is not a readable results database ({exc})") from None
    finally:
        store.close()
    return runs, curves


def check_database(path: Path) -> None:
    """Raise ``StoreError`` with one line if ``path`` cannot be read as a results database."""
    from ..store import Store, StoreError

    try:
        with Store(path, readonly=True) as store:
            tables = {r[0] for r in store.conn.execute(
                "SELECT name FROM sqlite_master WHERE type='table'")}
            if "runs" in tables:
                store.conn.execute("SELECT run_id, status FROM runs LIMIT 1").fetchall()
    except sqlite3.Error as exc:
        raise StoreError(f"{path} is not a readable results database ({exc})") from None


# ------------------------------------------------------------------------------------- analysis


def run_analysis(runs, curves, pairs, confidence, n_boot) -> tuple[dict, str | None]:
    """``seqbench.analysis.analyze`` (the numbers ``bench analyze`` prints), or, if it fails, the
    shared cells with their means only (and why)."""
    try:
        from ..analysis.analyze import analyze
    except ImportError as exc:
        return fallback_analysis(runs, confidence), f"analysis unavailable ({exc})"
    try:
        result = analyze(runs, curves, pairs=pairs, confidence=confidence, n_boot=n_boot, seed=0)
        return result, None
    except Exception as exc:  # a bug there must not take the page down
        return fallback_analysis(runs, confidence), (
            f"analysis failed ({one_line(exc)}); "
            "showing plain means without intervals or tests"
        )


def fallback_analysis(runs: list[dict], confidence: float) -> dict:
    """The analysis' shape from the shared cell pass (``analysis.cells.group``: the same cells,
    selected trials and seeds) with nothing that needs statistics: means, the best mean, no
    intervals, no tests (never 'significant'), no time-to-target, no crossovers, no verdicts."""
    from ..analysis.cells import group

    cells = []
    for cell in group(runs):
        models = []
        for m in cell.models.values():
            params = [r["param_count"] for r in m.done if r.get("param_count") is not None]
            models.append({
                "model": m.name, "n_seeds": len(m.values), "mean": m.mean, "ci": None,
                "values": m.values, "param_count": params[0] if params else None,
                "ttt": {"median_steps": None, "steps_ci": None, "median_seconds": None,
                        "seconds_ci": None, "median_samples": None, "samples_ci": None,
                        "reached": None, "of": len(m.done) + len(m.diverged),
                        "censored_median": False},
                "own95_steps_median": None, "auc": None,
                "run_ids": [r["run_id"] for r in m.done + m.diverged],
            })
        higher = cell.higher_is_better
        ranked = sorted((m for m in models if m["mean"] is not None),
                        key=lambda m: (-m["mean"] if higher else m["mean"], m["model"]))
        winner = {"model": ranked[0]["model"] if ranked else None, "significant": False,
                  "margin": abs(ranked[0]["mean"] - ranked[1]["mean"]) if len(ranked) > 1 else None}
        cells.append({
            "task": cell.task, "variant_key": cell.variant_key, "train_size": cell.train_size,
            "n": cell.n, "primary_metric": cell.primary_metric, "higher_is_better": higher,
            "target": None, "models": models, "comparisons": [], "winner": winner,
        })
    scaling: dict[tuple, dict] = {}
    for c in cells:
        if c["n"] is None:
            continue
        s = scaling.setdefault((c["task"], c["variant_key"]), {
            "task": c["task"], "variant_key": c["variant_key"], "primary_metric": c["primary_metric"],
            "higher_is_better": c["higher_is_better"], "models": {}, "crossovers": [],
        })
        for m in c["models"]:
            if m["mean"] is None:
                continue
            row = s["models"].setdefault(m["model"], {"n": [], "mean": [], "ci_lo": [], "ci_hi": [],
                                                      "fit": None})
            row["n"].append(c["n"])
            row["mean"].append(m["mean"])
            row["ci_lo"].append(None)
            row["ci_hi"].append(None)
    return {
        "generated_at": now(), "confidence": confidence, "target_rule": None,
        "counts": {s: sum(r["status"] == s for r in runs) for s in STATUSES},
        "cells": cells, "scaling": list(scaling.values()), "verdicts": [],
    }


# ------------------------------------------------------------------------------------- snapshot

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
        self.run_index: dict[str, dict] = {}  # run_id -> decoded run
        self.cells: dict[str, dict] = {}  # cell id -> analysis cell
        self.curves: dict[str, list[dict]] = {}
        self.confidence = 0.95
        self._cell_cache: dict[str, dict] = {}

    # -- per cell, on demand

    def cell_curves(self, cell_id: str) -> dict | None:
        if cell_id in self._cell_cache:
            return self._cell_cache[cell_id]
        cell = self.cells.get(cell_id)
        if cell is None:
            return None
        models, total = [], 0
        for m in cell["models"]:
            seeds = []
            per_axis: dict[str, list] = {a: [] for a, _ in AXES}
            for rid in m.get("run_ids") or []:
                run = self.run_index.get(rid, {})
                pts = [p for p in self.curves.get(rid, [])
                       if p.get("val_primary") is not None and math.isfinite(p["val_primary"])]
                total += len(pts)
                y = [p["val_primary"] for p in pts]
                seed = {"run_id": rid, "seed": run.get("seed"), "status": run.get("status"),
                        "val": [_r(v) for v in y]}
                for axis, col in AXES:
                    x = [p[col] for p in pts]
                    seed[axis] = [_r(v) for v in x]
                    per_axis[axis].append((x, y))
                seeds.append(seed)
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


def _compact_row(r: dict, vkey: str, cell_id: str | None) -> dict:
    row = {k: r.get(k) for k in ROW_FIELDS}
    row["variant_key"] = vkey
    row["cell"] = cell_id
    row["stage"], row["tuned"] = stage(r.get("trial")), tuned(r.get("trial"))
    err = (r.get("error") or "").strip().splitlines()
    row["error"] = err[0][:300] if err else None
    return row


def _slim_cell(cell: dict) -> dict:
    """A cell for the overview: per-seed values and run ids stay on the server (cell endpoint)."""
    out = dict(cell)
    out["models"] = [{k: v for k, v in m.items() if k not in ("values", "seeds", "run_ids")}
                     for m in cell.get("models", [])]
    return out


def build_snapshot(path: Path, version: str, *, pairs, confidence: float, n_boot: int) -> Snapshot:
    from ..analysis.glance import headline, short_labels, verdict_sentence
    from ..analysis.tables import EXPORT, export_record
    from ..store import StoreError

    snap = Snapshot(path, version)
    snap.confidence = confidence
    summary: dict[str, Any] = {
        "status": "ok", "message": None, "how_to_start": HOW_TO_START, "db": str(path),
        "version": version, "generated_at": now(),
        "counts": {s: 0 for s in STATUSES}, "analysis": {"ok": False, "error": None},
        "variants": [], "cells": [], "scaling": [], "verdicts": [], "rows": [],
        "filters": {}, "export_fields": list(EXPORT),
    }
    snap.summary = summary
    if not path.exists():
        summary["status"] = "missing"
        summary["message"] = f"No results database at {path} yet."
        return snap
    try:
        runs, curves = read_database(path)
    except StoreError as exc:
        summary["status"] = "error"
        summary["message"] = str(exc)
        return snap
    if not runs:
        summary["status"] = "empty"
        summary["message"] = f"{path} holds no runs yet."
        return snap

    snap.curves = curves
    snap.run_index = {r["run_id"]: r for r in runs}
    snap.runs = [export_record(r) for r in runs]
    summary["counts"] = {s: sum(r["status"] == s for r in runs) for s in STATUSES}

    analysis, error = run_analysis(runs, curves, pairs, confidence, n_boot)
    analysis = clean(analysis)
    summary["analysis"] = {
        "ok": error is None, "error": error, "confidence": analysis.get("confidence"),
        "target_rule": analysis.get("target_rule"), "n_boot": analysis.get("n_boot"),
        "pairs": analysis.get("pairs"), "generated_at": analysis.get("generated_at"),
        "margins": analysis.get("margins"), "floor_rule": analysis.get("floor_rule"),
    }

    # cells and variants (task x task parameters that vary), each with a stable id
    labels = short_labels((c["task"], c.get("variant") or {}) for c in analysis.get("cells", []))

    def label_of(task, vkey):  # the short label, else the parameters
        return labels.get((task, vkey)) or variant_label(task, vkey)

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
        v["cells"].sort(key=lambda c: (_size_sort(c["n"]), _size_sort(c["train_size"])))
    summary["variants"] = list(variants.values())
    summary["cells"] = [_slim_cell(c) for c in snap.cells.values()]
    for s in analysis.get("scaling", []):
        s["variant_id"] = short_id(s["task"], s.get("variant_key"))
        s["label"] = label_of(s["task"], s.get("variant_key"))
    summary["scaling"] = analysis.get("scaling", [])
    for v in analysis.get("verdicts", []):
        v["label"] = label_of(v["task"], v.get("variant_key"))
        v["summary"] = verdict_sentence(v, analysis.get("cells", []))
    summary["verdicts"] = analysis.get("verdicts", [])
    summary["headline"] = headline(summary["verdicts"])
    from .forest import safe_payload  # pooled across data sets: one forest per task and regime

    summary["forest"], summary["forest_error"] = safe_payload(analysis)

    keys = variant_keys(runs)
    summary["rows"] = [_compact_row(r, keys[r["run_id"]], run_cell.get(r["run_id"])) for r in runs]
    summary["filters"] = {
        "task": sorted({r["task"] for r in runs}),
        "model": sorted({r["model"] for r in runs}),
        "train_size": sorted({r["train_size"] for r in runs}, key=_size_sort),
        "seed": sorted({r["seed"] for r in runs}),
        "status": [s for s in STATUSES if summary["counts"][s]],
    }
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


def columnar_curve(run_id: str, points: list[dict]) -> dict:
    metrics = sorted({k for p in points for k in (p.get("val") or {})})
    return {
        "run_id": run_id,
        "step": [p["step"] for p in points],
        "samples": [p["samples"] for p in points],
        "seconds": [_r(p["seconds"]) for p in points],
        "train_loss": [_r(p.get("train_loss")) for p in points],
        "val_primary": [_r(p.get("val_primary")) for p in points],
        "val": {m: [_r((p.get("val") or {}).get(m)) if isinstance((p.get("val") or {}).get(m),
                                                                   (int, float)) else None
                    for p in points] for m in metrics},
    }
