"""What the user asked ``bench decide`` for: the budget, the data, the models, as one matrix."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ..api import PluginError

# A decision needs a few minutes at least: tuning trials, then rounds of paired seeds.
MIN_BUDGET_S = 30.0
MAX_BUDGET_S = 7 * 24 * 3600.0
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_budget(text: str) -> float:
    """'20m', '1h30m', '90s', '2h' or a plain number of minutes -> seconds."""
    raw = str(text).strip().lower().replace(" ", "")
    if re.fullmatch(r"\d+(\.\d+)?", raw):
        seconds = float(raw) * 60
    else:
        parts = re.findall(r"(\d+(?:\.\d+)?)([smhd])", raw)
        if not parts or "".join(n + u for n, u in parts) != raw:
            raise PluginError(f"--budget {text!r}: give a duration such as 20m, 1h, 1h30m or 90s")
        seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    if not seconds >= MIN_BUDGET_S:
        raise PluginError(f"--budget {text!r} is too small for even one round: give at least "
                          f"{MIN_BUDGET_S / 60:g} minute(s) (tuning and one paired round)")
    if seconds > MAX_BUDGET_S:
        raise PluginError(f"--budget {text!r}: at most {MAX_BUDGET_S / 86400:g} days")
    return seconds


def fmt_duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


TABULAR = (".csv", ".tsv", ".json", ".jsonl", ".parquet")


def task_for_data(path: str, given: dict[str, str], tasks: dict) -> tuple[str, str]:
    """Which task reads this data file (and why, in words), from its format and columns.

    A table with a text and a label column is classification; one with source and target
    columns, a folder of parallel text or a ``.de``/``.en``-style file pair is translation;
    TREC-style ``LABEL text`` lines (``.label``) are classification.
    """
    p = Path(path)
    if not p.exists():
        raise PluginError(f"--data {path}: no such file or folder")
    if p.is_dir():
        return _need("translation", tasks, f"{path} is a folder: parallel text for translation")
    if not p.is_file():  # a named pipe would block the first read forever; a device never ends
        raise PluginError(f"--data {path}: not a regular file; give a data file or a folder")
    suffix = "".join(s for s in p.suffixes if s != ".gz")
    if suffix in (".label", ".txt") and "classification" in tasks:
        return "classification", f"{p.name}: one 'LABEL text' line per example -> classification"
    if suffix not in TABULAR:
        raise PluginError(
            f"--data {path}: cannot tell which task reads a {suffix or 'suffix-less'} file; "
            f"give a table ({', '.join(TABULAR)}), TREC-style .label lines, or --task")
    columns = _columns(p, suffix)
    text, label = given.get("text_column", "text"), given.get("label_column", "label")
    src, tgt = given.get("source_column", "source"), given.get("target_column", "target")
    if text in columns and label in columns:
        return _need("classification", tasks,
                     f"{p.name} has columns {text!r} and {label!r} -> classification")
    if src in columns and tgt in columns:
        return _need("translation", tasks,
                     f"{p.name} has columns {src!r} and {tgt!r} -> translation")
    raise PluginError(
        f"--data {path}: its columns ({', '.join(columns) or 'none'}) have neither a text and a "
        f"label column ({text!r}, {label!r}) nor a source and a target column ({src!r}, {tgt!r}); "
        "name them with -t text_column=... -t label_column=... (or source_column/target_column)")


def _need(task: str, tasks: dict, why: str) -> tuple[str, str]:
    if task not in tasks:
        raise PluginError(f"the data looks like {task}, but no task {task!r} is installed")
    return task, why


def _columns(path: Path, suffix: str) -> list[str]:
    """The column names, read from the head of the file only."""
    import csv
    import json

    try:
        if suffix in (".csv", ".tsv"):
            # utf-8-sig: spreadsheet programs' "CSV UTF-8" starts with a byte-order mark
            with path.open(newline="", encoding="utf-8-sig") as f:
                return next(csv.reader(f, delimiter="\t" if suffix == ".tsv" else ","), [])
        if suffix == ".jsonl":
            with path.open(encoding="utf-8-sig") as f:
                first = f.readline()
            if not first.strip():
                return []
            row = json.loads(first)
            if not isinstance(row, dict):
                raise PluginError(f"--data {path}: line 1 is not a JSON object (each line of a "
                                  '.jsonl file is one example: {"text": ..., "label": ...})')
            return list(row)
        if suffix == ".json":
            data = json.loads(path.read_text(encoding="utf-8-sig"))
            rows = data if isinstance(data, list) else next(
                (v for v in data.values() if isinstance(v, list)), []) if isinstance(data, dict) else []
            return list(rows[0]) if rows and isinstance(rows[0], dict) else (
                list(data) if isinstance(data, dict) else [])
        import pyarrow.parquet as pq

        return list(pq.read_schema(path).names)
    except PluginError:
        raise
    except RecursionError:
        raise PluginError(f"--data {path}: its JSON is nested too deeply to read") from None
    except csv.Error as exc:  # e.g. a header field longer than the csv module's limit
        raise PluginError(f"--data {path}: not a readable CSV header ({exc})") from None
    except (OSError, UnicodeDecodeError, ValueError, StopIteration) as exc:
        raise PluginError(f"--data {path}: could not read its columns ({type(exc).__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else ''})") from None


@dataclass
class Request:
    """A decision, as plain data: the same request always plans the same runs (so it resumes)."""

    task: str
    models: list[str]
    budget_s: float
    task_params: dict = field(default_factory=dict)
    model_params: dict = field(default_factory=dict)
    training: dict = field(default_factory=dict)
    train_size: int | None = None  # None: the task's whole training split
    margin: float | None = None  # None: the metric's default
    alpha: float = 0.05
    max_seeds: int = 20
    trials: int = 8  # tuning trials planned per model (fewer when the tuning share runs out)
    tune_share: float = 0.4  # of the budget, for the sanity check and tuning
    outlook: bool = False

    def matrix(self):
        from ..experiment.plan import Matrix

        return Matrix(
            models=list(self.models), tasks=[self.task], train_sizes=[self.train_size],
            seeds=list(range(self.max_seeds)), model_params=dict(self.model_params),
            task_params={self.task: dict(self.task_params)}, training=dict(self.training),
            tuning={"trials": self.trials, "seeds": 1, "extend": 0},
        )
