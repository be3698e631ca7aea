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
    [task_params.classification]
    label = "TREC-6"        # the variant's name in the tables; never part of a run's identity

    [tuning]                # equal tuning budget (bench/experiment/tuning.py, rounds.py)
    trials = 8              # per model and cell, quasi-random in the model's own search space
    seeds = 1               # tuning seeds: 1 = seed 10000 (N = 10000..), or a list such as
                            # [100, 101]; never an evaluation seed. The best trial on
                            # validation then runs on *every* seed of `seeds` above.
    per = "size"            # select per training size ("size") or per task variant ("task")
    extend = 2              # rounds of edge extension at most (0: off)
    extend_trials = 4       # trials per model in an extension round (default: trials / 2)
    prune = "halving"       # or "off" (default): successive halving within each model's trials,
    eta = 3                 #   keeping the best 1/eta per rung, over `rungs` rungs of
    rungs = 2               #   min_steps x eta^k steps (then no extension rounds)
    min_steps = 100
    last_rung = "steps"     #   or "full": the survivors train in full, the earlier rungs are
                            #   the first min_steps x eta^k steps of that run (not annealed)
    rank = "score"          #   or "loss": the earlier rungs rank by lowest validation loss

A key a model's search space names (``bench plugins --json`` lists them) that the matrix sets in
[training] or [model_params] is pinned for that model. The older form ``lr = [3e-4, 1e-3]``
instead of ``trials`` still works: a fixed learning-rate grid, the same for every model, nothing
else tuned and never extended.
"""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from ..api import PluginError
from ..limits import MAX_SEED, MAX_SEEDS
from ..util import did_you_mean, shown
from .plan import Matrix
from .recipe import TRAINING

MAX_FILE_BYTES = 1_000_000  # a matrix file is a page of settings; this is checked before reading

TOP_KEYS = (
    "models", "tasks", "train_sizes", "seeds", "training", "model_params", "task_params", "tuning",
)


def presets() -> dict[str, Path]:
    """Shipped presets: ``presets/NAME.toml``, or a folder ``presets/NAME/`` holding a study in
    parts (see :func:`matrix_files`)."""
    folder = resources.files("seqbench.experiment") / "presets"
    return {
        p.name.removesuffix(".toml"): Path(str(p)) for p in folder.iterdir()
        if p.name.endswith(".toml") or (p.is_dir() and not p.name.startswith(("_", ".")))
    }


def matrix_files(path: str | Path) -> list[Path]:
    """The matrix files behind ``--matrix``/``--preset``: the file itself, or, for a folder, its
    ``*.toml`` files in name order. A folder is a study in parts: matrices whose crossings
    differ (settings that only some models have, an algorithm only recurrent models run), each
    planned on its own and run one after the other."""
    path = Path(path)
    if not path.is_dir():
        return [path]
    files = sorted(p for p in path.iterdir() if p.suffix == ".toml" and p.is_file())
    if not files:
        raise PluginError(f"matrix folder {path} holds no .toml matrix files")
    return files


def preset_path(name: str) -> Path:
    found = presets()
    if name not in found:
        raise PluginError(f"unknown preset {name!r}{did_you_mean(name, found)}")
    return found[name]


def read(path: str | Path) -> dict[str, Any]:
    """Parse and check a matrix file; returns the raw sections (merged with CLI flags later)."""
    path = Path(path)
    data = _parsed(path)
    if not data:
        raise PluginError(
            f"matrix file {path} sets nothing; give at least one of {', '.join(TOP_KEYS)} "
            "(an empty file would silently plan the whole default matrix)"
        )
    for key in data:
        if key not in TOP_KEYS:
            raise PluginError(
                f"matrix file {path}: unknown key {key!r}{did_you_mean(key, TOP_KEYS)}"
            )
    _check_lists(path, data)
    _check_tables(path, data)
    sizes = data.get("train_sizes", [])
    if isinstance(sizes, dict):
        data["train_sizes"] = {t: [size_value(v) for v in vs] for t, vs in sizes.items()}
    elif "train_sizes" in data:
        data["train_sizes"] = [size_value(v) for v in sizes]
    return data


def _parsed(path: Path) -> dict[str, Any]:
    """The file's TOML; one line naming the file for anything that is not a page of TOML."""
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise PluginError(f"matrix file {path} is larger than {MAX_FILE_BYTES:,} bytes; "
                              "a matrix file is a page of settings")
        return tomllib.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise PluginError(f"matrix file not found: {path}") from None
    except UnicodeDecodeError:
        raise PluginError(f"matrix file {path} is not UTF-8 text (a TOML file is)") from None
    except tomllib.TOMLDecodeError as exc:
        raise PluginError(f"matrix file {path} is not valid TOML: {exc}") from None
    except RecursionError:
        raise PluginError(f"matrix file {path} nests lists or tables too deeply") from None
    except PluginError:
        raise
    except (OSError, ValueError) as exc:  # a folder, no permission, a NUL in the path
        reason = getattr(exc, "strerror", None) or exc
        raise PluginError(f"matrix file {path} cannot be read ({reason})") from None


def _check_lists(path: Path, data: dict[str, Any]) -> None:
    """models, tasks and seeds: lists of names or seeds; train_sizes: a list or one per task."""
    for key in ("models", "tasks", "seeds"):
        if key in data and not isinstance(data[key], list):
            raise PluginError(f"matrix file {path}: {key!r} must be a list")
    for key, want, what in (("models", str, "model names"), ("tasks", str, "task names"),
                            ("seeds", int, "integer seeds")):
        for item in data.get(key, []):
            if not isinstance(item, want) or isinstance(item, bool):
                raise PluginError(
                    f"matrix file {path}: {key!r} must be a list of {what}, not {shown(item)}"
                )
    sizes = data.get("train_sizes", [])
    if not isinstance(sizes, list) and not (
        isinstance(sizes, dict) and all(isinstance(v, list) for v in sizes.values())
    ):
        raise PluginError(
            f"matrix file {path}: 'train_sizes' must be a list, or a table of lists per task"
        )


def _check_tables(path: Path, data: dict[str, Any]) -> None:
    """The sections are tables, and [training] names recipe keys only."""
    for key in ("training", "model_params", "task_params", "tuning"):
        if key in data and not isinstance(data[key], dict):
            raise PluginError(f"matrix file {path}: [{key}] must be a table")
    for key, value in data.get("training", {}).items():
        for k in value if isinstance(value, dict) else [key]:
            if k not in TRAINING:
                raise PluginError(
                    f"matrix file {path}: unknown training key {k!r}{did_you_mean(k, TRAINING)}"
                )


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
    except (TypeError, ValueError, OverflowError):  # OverflowError: inf
        raise PluginError(f"training size {shown(v)} is not a positive integer or 'full'") from None
    if n < 1 or (isinstance(v, float) and not v.is_integer()):
        raise PluginError(f"training size {shown(v)} is not a positive integer or 'full'")
    return n


def parse_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def parse_seeds(text: str) -> list[int]:
    """``0,1,2`` or ``0-4`` (inclusive range) or a mix: ``0-2,7``."""
    seeds: list[int] = []
    for part in parse_list(text):
        lo, sep, hi = part.partition("-")
        try:
            span = range(int(lo), int(hi) + 1) if sep else range(int(part), int(part) + 1)
        except ValueError:
            raise PluginError(
                f"seeds: {shown(part)} is not a non-negative integer or a range like 0-4"
            ) from None
        if not span:
            raise PluginError(f"seeds: {shown(part)} is an empty range; write low-high, e.g. 0-4")
        # Checked on the range before it is expanded: 0-1000000000 is a typo, not a list to build.
        if span[-1] > MAX_SEED:
            raise PluginError(f"seeds: {shown(part)} goes above {MAX_SEED} (numpy's largest seed)")
        if len(seeds) + len(span) > MAX_SEEDS:
            raise PluginError(f"seeds: {shown(text)} gives more than {MAX_SEEDS:,} seeds; "
                              f"a matrix has at most {MAX_SEEDS:,}")
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
        tuning=_merge_tuning(file_data.get("tuning", {}), tuning),
    )


def _merge_tuning(file_table: dict, flags: dict) -> dict:
    """Flags override the file; ``--tune-trials`` replaces a file's ``lr`` grid and
    ``--tune-lr`` a file's ``trials`` (with its extension settings), as they exclude each other."""
    out = dict(file_table)
    if "trials" in flags:
        out.pop("lr", None)
    if "lr" in flags:
        for key in ("trials", "extend", "extend_trials", "prune", "eta", "rungs", "min_steps"):
            out.pop(key, None)
    return {**out, **flags}
