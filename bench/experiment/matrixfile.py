"""Reading a matrix from a TOML file or a shipped preset, and from command-line strings.

A matrix file::

    models = ["lstm", "transformer"]
    tasks = ["copy", "classification"]
    train_sizes = [64, 512, "full"]   # or per task: [train_sizes] copy = [...], ...
    seeds = [0, 1, 2, 3, 4]

    [training]              # the same recipe for every model; a list is swept
    max_steps = 500
    [training.translation]  # a task's own budget (still the same for all its models)
    max_steps = 1000

    [model_params]          # keys for every model that declares them ...
    dropout = 0.1
    [model_params.lstm]     # ... or for one model
    hidden_size = 96

    [task_params.copy]
    T = [10, 50, 100]       # a list sweeps the task parameter

    [tuning]                # equal tuning budget: every model gets these trials
    lr = [3e-4, 1e-3, 3e-3] # each on the first `seeds` seeds; the best on validation
    seeds = 1               # then runs on the remaining seeds
    per = "size"            # select per training size ("size") or per task variant ("task")
"""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from ..api import PluginError, did_you_mean
from .plan import TRAINING, Matrix

TOP_KEYS = (
    "models", "tasks", "train_sizes", "seeds", "training", "model_params", "task_params", "tuning",
)


def presets() -> dict[str, Path]:
    folder = resources.files("seqbench.experiment") / "presets"
    return {p.name.removesuffix(".toml"): Path(str(p)) for p in folder.iterdir() if p.name.endswith(".toml")}


def preset_path(name: str) -> Path:
    found = presets()
    if name not in found:
        raise PluginError(f"unknown preset {name!r}{did_you_mean(name, found)}")
    return found[name]


def read(path: str | Path) -> dict[str, Any]:
    """Parse and check a matrix file; returns the raw sections (merged with CLI flags later)."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise PluginError(f"matrix file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise PluginError(f"matrix file {path} is not valid TOML: {exc}") from None
    for key in data:
        if key not in TOP_KEYS:
            raise PluginError(
                f"matrix file {path}: unknown key {key!r}{did_you_mean(key, TOP_KEYS)}"
            )
    for key in ("models", "tasks", "seeds"):
        if key in data and not isinstance(data[key], list):
            raise PluginError(f"matrix file {path}: {key!r} must be a list")
    sizes = data.get("train_sizes", [])
    if not isinstance(sizes, list) and not (
        isinstance(sizes, dict) and all(isinstance(v, list) for v in sizes.values())
    ):
        raise PluginError(
            f"matrix file {path}: 'train_sizes' must be a list, or a table of lists per task"
        )
    for key in ("training", "model_params", "task_params", "tuning"):
        if key in data and not isinstance(data[key], dict):
            raise PluginError(f"matrix file {path}: [{key}] must be a table")
    for key, value in data.get("training", {}).items():
        for k in value if isinstance(value, dict) else [key]:
            if k not in TRAINING:
                raise PluginError(
                    f"matrix file {path}: unknown training key {k!r}{did_you_mean(k, TRAINING)}"
                )
    if isinstance(sizes, dict):
        data["train_sizes"] = {t: [size_value(v) for v in vs] for t, vs in sizes.items()}
    elif "train_sizes" in data:
        data["train_sizes"] = [size_value(v) for v in sizes]
    return data


def scoped_params(table: dict) -> dict[str, dict]:
    """``[model_params]``: plain keys apply to all ("*"), sub-tables to one plugin."""
    out: dict[str, dict] = {"*": {}}
    for key, value in table.items():
        if isinstance(value, dict):
            out.setdefault(key, {}).update(value)
        else:
            out["*"][key] = value
    return out


def size_value(v: Any) -> int | None:
    if v in ("full", "all", None):
        return None
    if isinstance(v, bool):
        raise PluginError(f"training size {v!r} is not a positive integer or 'full'")
    try:
        n = int(v)
    except (TypeError, ValueError):
        raise PluginError(f"training size {v!r} is not a positive integer or 'full'") from None
    if n < 1 or (isinstance(v, float) and not v.is_integer()):
        raise PluginError(f"training size {v!r} is not a positive integer or 'full'")
    return n


def parse_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def parse_seeds(text: str) -> list[int]:
    """``0,1,2`` or ``0-4`` (inclusive range) or a mix: ``0-2,7``."""
    seeds: list[int] = []
    for part in parse_list(text):
        lo, sep, hi = part.partition("-")
        try:
            span = range(int(lo), int(hi) + 1) if sep else [int(part)]
        except ValueError:
            raise PluginError(
                f"seeds: {part!r} is not a non-negative integer or a range like 0-4"
            ) from None
        if not span:
            raise PluginError(f"seeds: {part!r} is an empty range; write low-high, e.g. 0-4")
        seeds.extend(span)
    return seeds


def parse_assignments(pairs: tuple[str, ...], what: str) -> dict[str, dict]:
    """``("hidden_size=64", "copy.T=50")`` -> ``{"*": {"hidden_size": "64"}, "copy": {"T": "50"}}``."""
    out: dict[str, dict] = {"*": {}}
    for pair in pairs:
        key, eq, value = pair.partition("=")
        if not eq or not key.strip():
            raise PluginError(f"{what} {pair!r}: write NAME=VALUE or PLUGIN.NAME=VALUE")
        owner, dot, name = key.strip().rpartition(".")
        out.setdefault(owner if dot else "*", {})[name] = value.strip()
    return out


def merge_scoped(base: dict, override: dict) -> dict:
    out = {k: dict(v) for k, v in base.items()}
    for owner, values in override.items():
        out.setdefault(owner, {}).update(values)
    return out


def build_matrix(
    file_data: dict,
    models: str | None,
    tasks: str | None,
    train_sizes: str | None,
    seeds: str | None,
    model_params: tuple[str, ...],
    task_params: tuple[str, ...],
    training: dict,
    tuning: dict,
    all_models: list[str],
    all_tasks: list[str],
) -> Matrix:
    """Command-line flags override the file; the file overrides the defaults."""
    return Matrix(
        models=parse_list(models) if models is not None else file_data.get("models", all_models),
        tasks=parse_list(tasks) if tasks is not None else file_data.get("tasks", all_tasks),
        train_sizes=(
            [size_value(v) for v in parse_list(train_sizes)]
            if train_sizes
            else file_data.get("train_sizes", [None])
        ),
        seeds=parse_seeds(seeds) if seeds else file_data.get("seeds", [0]),
        model_params=merge_scoped(
            scoped_params(file_data.get("model_params", {})),
            parse_assignments(model_params, "--model-param"),
        ),
        task_params=merge_scoped(
            scoped_params(file_data.get("task_params", {})),
            parse_assignments(task_params, "--task-param"),
        ),
        # A command-line flag overrides the file's value for every task.
        training={
            **{
                k: ({kk: vv for kk, vv in v.items() if kk not in training} if isinstance(v, dict) else v)
                for k, v in file_data.get("training", {}).items()
            },
            **training,
        },
        tuning={**file_data.get("tuning", {}), **tuning},
    )
