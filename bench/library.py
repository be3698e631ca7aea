"""seqbench as a library: a results database as pandas DataFrames, and its analysis.

    import seqbench
    study = seqbench.open("results/claim.sqlite")   # read-only: never writes, leaves no files
    runs = study.runs()                              # one row per run, one flat column per value
    curves = study.curves(model="lstm")              # one row per run and validation step
    result = study.analyze(models=["lstm", "transformer"])   # what `bench analyze` computes
    result.to_frame()                                # one row per cell and model

pandas is imported when a frame is built, never by ``import seqbench``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from .records import RunRecord
from .store import Store

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

# The run's own columns, in the frame's order; JSON columns are spread out under these prefixes.
RUN_COLUMNS = (
    "run_id", "matrix_id", "task", "kind", "model", "stage", "train_size", "train_examples",
    "seed", "status", "error", "primary_metric", "higher_is_better", "best_val", "primary_value",
    "param_count", "step_flops", "steps", "samples", "train_seconds", "steps_to_95",
    "samples_to_95", "seconds_to_95", "started_at", "finished_at",
)
PREFIXES = {  # frame prefix -> where in the stored run it comes from
    "test": ("test",),
    "hp": ("model_params",),
    "trial": ("trial",),
    "task": ("config", "task_params"),
    "train": ("config", "training"),
    "extras": ("extras",),
    "env": ("environment",),
}
CURVE_COLUMNS = ("run_id", "step", "samples", "seconds", "train_loss", "val_primary")
CURVE_KEYS = ("task", "model", "stage", "train_size", "seed", "status")  # joined from the run


class StudyError(ValueError):
    """A request the study cannot answer (a model or task it has no runs of); one line."""


def stage_of(run: RunRecord) -> str:
    """'tuning' for a run on a tuning seed (it only selects a trial), else 'evaluation'."""
    from .analysis.glance import stage

    return stage(run.trial)


def flatten(value: Any, prefix: str, out: dict[str, Any]) -> dict[str, Any]:
    """Nested dicts and lists as flat ``prefix.key.0`` entries, scalars only."""
    if isinstance(value, dict):
        for k, v in value.items():
            flatten(v, f"{prefix}.{k}", out)
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            flatten(v, f"{prefix}.{i}", out)
    else:
        out[prefix] = value
    return out


def flat_run(run: RunRecord) -> dict[str, Any]:
    """One stored run as a flat dict of scalars."""
    row = {c: getattr(run, c) for c in RUN_COLUMNS if c != "stage"}
    row["stage"] = stage_of(run)
    for prefix, (column, *inner) in PREFIXES.items():
        value: Any = getattr(run, column)
        for key in inner:
            value = (value or {}).get(key)
        if value is not None:
            flatten(value, prefix, row)
    return row


def _names(value: str | Iterable[str] | None) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        from .experiment.matrixfile import parse_list

        return parse_list(value)
    return list(value)


def narrow(runs: list[RunRecord], field: str, wanted: str | Iterable[str] | None,
           where: str) -> list[RunRecord]:
    """The runs whose ``field`` (model, task...) is one of ``wanted``; StudyError for a name
    without runs."""
    names = _names(wanted)
    if names is None:
        return runs
    known = {getattr(r, field) for r in runs}
    missing = [n for n in names if n not in known]
    if not names or missing:
        raise StudyError(f"no runs of {', '.join(map(repr, missing)) or f'any {field}'} in "
                         f"{where}; {field}s: {', '.join(sorted(map(str, known)))}")
    return [r for r in runs if getattr(r, field) in names]


@dataclass(frozen=True)
class Analysis:
    """What ``bench analyze --json`` prints, as a dict (``data``) with tabular views."""

    data: dict

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def to_dict(self) -> dict:
        return self.data

    @property
    def verdicts(self) -> list[str]:
        return [v["text"] for v in self.data.get("verdicts", [])]

    def to_frame(self) -> "pd.DataFrame":
        """One row per cell (task, variant, training size) and model: its mean test score with
        the t-interval, seeds, tuning trials and selected hyperparameters, and the cell's winner."""
        import pandas as pd

        rows = []
        for cell in self.data.get("cells", []):
            winner = (cell.get("winner") or {}).get("model")
            for m in cell.get("models", []):
                ci = m.get("ci") or [None, None]
                row = {
                    "task": cell["task"], "variant": cell["variant_key"],
                    "train_size": cell.get("train_size"), "n": cell.get("n"),
                    "metric": cell.get("primary_metric"), "model": m["model"],
                    "mean": m.get("mean"), "ci_low": ci[0], "ci_high": ci[1],
                    "n_seeds": m.get("n_seeds"), "n_diverged": m.get("n_diverged"),
                    "n_failed": m.get("n_failed"), "trials": m.get("trials"),
                    "param_count": m.get("param_count"), "winner": m["model"] == winner,
                }
                flatten(m.get("selected_trial") or {}, "selected", row)
                rows.append(row)
        return pd.DataFrame(rows)

    def comparisons(self) -> "pd.DataFrame":
        """One row per compared pair and cell: the difference (positive: ``a`` better), its
        interval, the Holm-adjusted p-value and the outcome."""
        import pandas as pd

        rows = []
        for cell in self.data.get("cells", []):
            for c in cell.get("comparisons", []):
                ci = c.get("ci") or [None, None]
                rows.append({
                    "task": cell["task"], "variant": cell["variant_key"], "n": cell.get("n"),
                    "metric": cell.get("primary_metric"), "a": c["a"], "b": c["b"],
                    "diff": c.get("diff"), "ci_low": ci[0], "ci_high": ci[1],
                    "p_value": c.get("p_value"), "p_adj": c.get("p_adj"),
                    "outcome": c.get("winner") or c.get("reason"), "reason": c.get("reason"),
                    "test": c.get("test"), "paired": c.get("paired"),
                })
        return pd.DataFrame(rows)

    def _repr_markdown_(self) -> str:  # a notebook shows the analysis as `bench analyze --markdown`
        from .analysis.verdict import render_markdown

        return render_markdown(self.data)


class Study:
    """A results database opened read-only; every call reads the file afresh (a launch may still
    be adding runs)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        with Store(self.path, readonly=True):  # a missing or foreign file fails here, one line
            pass

    def __repr__(self) -> str:
        return f"seqbench.Study({str(self.path)!r})"

    def records(self, **where: Any) -> list[RunRecord]:
        """The stored runs (``Store.runs``), filtered by model/task/status/train_size/seed."""
        with Store(self.path, readonly=True) as store:
            return store.runs(**where)

    def runs(self, *, model: str | None = None, task: str | None = None,
             status: str | None = None, stage: str | None = None) -> "pd.DataFrame":
        """One row per run; hyperparameters as built under ``hp.``, what tuning varied under
        ``trial.``, test metrics under ``test.``, task parameters under ``task.``, the training
        recipe under ``train.``, task extras under ``extras.``, the environment under ``env.``;
        costs (``param_count``, ``step_flops``, ``steps``, ``train_seconds``...) as they are."""
        import pandas as pd

        rows = [flat_run(r) for r in self.records(model=model, task=task, status=status)]
        if stage is not None:
            rows = [r for r in rows if r["stage"] == _stage_name(stage)]
        frame = pd.DataFrame(rows, columns=_columns(rows))
        for col in ("started_at", "finished_at"):
            frame[col] = pd.to_datetime(frame[col], utc=True, errors="coerce")
        return frame

    def curves(self, run_ids: Iterable[str] | None = None, *, model: str | None = None,
               task: str | None = None, stage: str | None = None) -> "pd.DataFrame":
        """One row per run and validation step: steps, samples and seconds so far, the training
        loss, the primary validation metric and every validation metric under ``val.``, with the
        run's task, model, stage, training size and seed."""
        import json
        import pandas as pd

        runs = {r.run_id: r for r in self.records(model=model, task=task)}
        if run_ids is not None:
            wanted = set(run_ids)
            runs = {k: v for k, v in runs.items() if k in wanted}
        if stage is not None:
            runs = {k: v for k, v in runs.items() if stage_of(v) == _stage_name(stage)}
        rows = []
        with Store(self.path, readonly=True) as store:
            query = ("SELECT run_id, step, samples, seconds, train_loss, val_primary, val "
                     "FROM curves ORDER BY run_id, step")
            for point in store.conn.execute(query):
                run = runs.get(point[0])
                if run is None:
                    continue
                row = dict(zip(CURVE_COLUMNS, point[:6]))
                row.update({k: getattr(run, k) for k in CURVE_KEYS if k != "stage"})
                row["stage"] = stage_of(run)
                flatten(json.loads(point[6] or "{}"), "val", row)
                rows.append(row)
        head = list(CURVE_COLUMNS[:1]) + list(CURVE_KEYS) + list(CURVE_COLUMNS[1:])
        return pd.DataFrame(rows, columns=_columns(rows, head))

    def analyze(self, *, models: str | Sequence[str] | None = None,
                tasks: str | Sequence[str] | None = None,
                pairs: str | Sequence[tuple[str, str]] = "auto", confidence: float = 0.95,
                n_boot: int = 2000, seed: int = 0, margins: dict | None = None,
                holm: str = "sizes") -> Analysis:
        """The analysis ``bench analyze`` prints (same options, same defaults, same numbers)."""
        from .analysis.analyze import analyze as run_analysis

        if not 0.5 < confidence < 1 or not math.isfinite(confidence):
            raise StudyError(f"confidence {confidence!r}: give a number between 0.5 and 1")
        with Store(self.path, readonly=True) as store:
            runs = store.runs()
            curves = store.curves()
        if not runs:
            raise StudyError(f"{self.path} holds no runs yet; start a matrix with `bench run`")
        where = str(self.path)
        for field, wanted in (("task", tasks), ("model", models)):
            if wanted is not None:
                runs = narrow(runs, field, wanted, where)
                where = f"the {','.join(_names(wanted) or [])} runs of {self.path}"
        return Analysis(run_analysis(runs, curves, pairs=pairs, confidence=confidence,
                                     n_boot=n_boot, seed=seed, margins=margins, holm=holm))


EXPORT_FORMATS = (".parquet", ".csv")
EXPORT_MARK = b"seqbench-export"  # Parquet key-value metadata of an export (its schema)


def export_paths(out: str | Path) -> tuple[Path, Path]:
    """``study.parquet`` -> (``study.parquet``, ``study.curves.parquet``); CSV likewise."""
    out = Path(out)
    if out.suffix.lower() not in EXPORT_FORMATS:
        raise StudyError(f"{out}: give a file name ending in .parquet or .csv")
    return out, out.with_name(f"{out.stem}.curves{out.suffix}")


def _tabular(frame: "pd.DataFrame") -> "pd.DataFrame":
    """Columns of mixed kinds (a parameter that is a number in one task and text in another)
    as text, so that Parquet gets one type per column."""
    frame = frame.copy()
    for col in frame.columns[frame.dtypes == object]:
        kinds = {type(v) for v in frame[col].dropna()}
        if len(kinds) > 1:
            frame[col] = frame[col].map(lambda v: v if v is None or v != v else str(v))
    return frame


def export(db: str | Path, out: str | Path) -> tuple[Path, Path]:
    """Write the runs (``Study.runs``) to ``out`` and the curves (``Study.curves``) beside it,
    as Parquet or CSV by ``out``'s suffix; each file appears complete or not at all."""
    import os

    runs_path, curves_path = export_paths(out)
    study = Study(db)
    frames = {runs_path: _tabular(study.runs()), curves_path: _tabular(study.curves())}
    for path, frame in frames.items():
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.suffix.lower() == ".csv":
                frame.to_csv(tmp, index=False)
            else:
                import pyarrow as pa
                import pyarrow.parquet as pq

                table = pa.Table.from_pandas(frame, preserve_index=False)
                table = table.replace_schema_metadata(
                    {**(table.schema.metadata or {}), EXPORT_MARK: str(db).encode()})
                pq.write_table(table, tmp)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    return runs_path, curves_path


def is_export(path: Path) -> bool:
    """An earlier export: a Parquet file with seqbench's mark, or a CSV of runs or curves."""
    try:
        with path.open("rb") as f:
            head = f.read(64)
        if head[:4] == b"PAR1":
            import pyarrow.parquet as pq

            return EXPORT_MARK in (pq.read_schema(path).metadata or {})
        return head.startswith(b"run_id,")
    except Exception:  # unreadable or not Parquet after all: not ours
        return False


def _stage_name(value: str) -> str:
    if value not in ("tuning", "evaluation"):
        raise StudyError(f"stage {value!r}: give 'tuning' or 'evaluation'")
    return value


def _columns(rows: list[dict], head: Sequence[str] = RUN_COLUMNS) -> list[str]:
    """The fixed columns first, then each prefix's columns in first-seen order."""
    seen = dict.fromkeys(head)
    for row in rows:
        seen.update(dict.fromkeys(row))
    return list(seen)


def open(path: str | Path) -> Study:  # noqa: A001 - the library's front door: seqbench.open
    """Open a results database read-only; :class:`seqbench.store.StoreError` (one line) when it
    is missing or not a seqbench database."""
    return Study(path)
