"""Nothing a user types destroys data or prints a traceback (issue 11).

A table of malformed inputs across every command and every matrix-file field. Each case runs
the real ``bench`` command group in this process (Click's CliRunner; a handful run as real
subprocesses) inside a folder holding a results database and files a user cares about, and
asserts: exit status 2, exactly one line on stderr and it starts with ``error:``, no
traceback, and nothing written or changed (every file in the folder byte-identical, no
database created).

Then a Hypothesis fuzz of the matrix-file parser: any file, any structure, gives a matrix or a
one-line PluginError, never another exception.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import resource
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import OFFLINE, bench_command

BIG = str(2**64)  # overflows SQLite's INTEGER and numpy's seed
HUGE = str(10**30)


# --------------------------------------------------------------------------------------------
# The folder every case runs in


def _record(model: str, seed: int, size: int, value: float) -> dict:
    cfg = {"model": model, "model_params": {"hidden_size": 8}, "task": "copy",
           "task_params": {"T": 5}, "train_size": size, "seed": seed,
           "training": {"lr": 0.001, "max_steps": 30}}
    run_id = hashlib.sha1(json.dumps(cfg, sort_keys=True).encode()).hexdigest()[:16]
    curve = [{"step": s, "samples": 8 * s, "seconds": s / 10, "train_loss": 1 / s,
              "val_primary": value * s / 30, "val": {"recall_accuracy": value * s / 30}}
             for s in (10, 20, 30)]
    return {
        "run_id": run_id, "matrix_id": "m", "model": model, "task": "copy", "kind": "aligned",
        "train_size": size, "seed": seed, "status": "done", "error": None, "config": cfg,
        "trial": {}, "model_params": cfg["model_params"], "primary_metric": "recall_accuracy",
        "higher_is_better": True, "best_val": value, "test": {"recall_accuracy": value},
        "param_count": 1000, "train_examples": size, "steps": 30, "samples": 240,
        "train_seconds": 3.0, "extras": {}, "environment": {}, "curve": curve,
        "started_at": "2026-01-01T00:00:00+00:00", "finished_at": "2026-01-01T00:00:03+00:00",
    }


def make_results(path: Path, n_seeds: int = 3) -> Path:
    from seqbench.store import Store

    with Store(path) as store:
        for seed in range(n_seeds):
            for size in (32, 64):
                store.save(_record("lstm", seed, size, 0.8 + seed / 100))
                store.save(_record("transformer", seed, size, 0.4 + seed / 100))
    return path


def corrupt_pages(path: Path, keep_pages: int = 3) -> None:
    """Garbage over every page after the first ``keep_pages`` (the header and schema intact)."""
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.seek(4096 * keep_pages)
        f.write(bytes((i * 37 + 11) % 251 for i in range(size - 4096 * keep_pages)))


def toml_value(v) -> str:
    """A TOML literal for any of str, int, float, bool, list, dict (inline tables)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return toml_string(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{toml_string(k)} = {toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(v)


def toml_string(text: str) -> str:
    """A TOML basic string: JSON's escapes for control characters are TOML's (non-ASCII stays
    as is: TOML's \\u escapes may not name a surrogate), and DEL is escaped too."""
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def toml_doc(data: dict) -> str:
    return "".join(f"{toml_string(k)} = {toml_value(v)}\n" for k, v in data.items())


MODEL = 'models = ["lstm"]\ntasks = ["copy"]\n'  # a valid head for files testing one field
MATRICES = {
    # the file as a whole
    "random_bytes": bytes(range(256)) * 4,
    "empty": "",
    "only_comments": "# nothing here\n\n   \n",
    "not_toml": "models = [lstm\n",
    "unknown_key": MODEL + "modles = [1]\n",
    "deep_nesting": "x = " + "[" * 5000 + "]" * 5000 + "\n",
    "too_large": "# " + "x" * 1_100_000 + "\n",
    "nul_byte": "models = [\"lstm\"]\x00\n",
    # models / tasks
    "models_not_list": 'models = "lstm"\n',
    "models_ints": "models = [1, 2]\n",
    "models_empty": "models = []\n",
    "models_unknown": 'models = ["nope"]\n',
    "models_repeat": 'models = ["lstm", "lstm"]\ntasks = ["copy"]\n',
    "models_table": "[models]\nlstm = 1\n",
    "tasks_bool": "tasks = [true]\n",
    "tasks_unknown": 'tasks = ["nope"]\n',
    "tasks_repeat": 'models = ["lstm"]\ntasks = ["copy", "copy"]\n',
    # seeds
    "seeds_string": MODEL + 'seeds = "0-4"\n',
    "seeds_negative": MODEL + "seeds = [-1]\n",
    "seeds_float": MODEL + "seeds = [1.5]\n",
    "seeds_int64": MODEL + "seeds = [9223372036854775807]\n",
    "seeds_above_numpy": MODEL + "seeds = [4294967296]\n",
    "seeds_repeat": MODEL + "seeds = [0, 0]\n",
    "seeds_empty": MODEL + "seeds = []\n",
    "seeds_too_many": MODEL + "seeds = [" + ", ".join(map(str, range(1500))) + "]\n",
    "seeds_bool": MODEL + "seeds = [true]\n",
    # train_sizes
    "sizes_string": MODEL + 'train_sizes = "full"\n',
    "sizes_zero": MODEL + "train_sizes = [0]\n",
    "sizes_inf": MODEL + "train_sizes = [inf]\n",
    "sizes_nan": MODEL + "train_sizes = [nan]\n",
    "sizes_fraction": MODEL + "train_sizes = [1.5]\n",
    "sizes_bool": MODEL + "train_sizes = [true]\n",
    "sizes_nested": MODEL + "train_sizes = [[64]]\n",
    "sizes_huge": MODEL + "train_sizes = [1e12]\n",
    "sizes_repeat": MODEL + 'train_sizes = [64, 64]\n',
    "sizes_full_twice": MODEL + 'train_sizes = ["full", "all"]\n',
    "sizes_table_scalar": MODEL + "[train_sizes]\ncopy = 5\n",
    "sizes_table_unknown_task": MODEL + "[train_sizes]\nnope = [64]\n",
    # [training]
    "training_scalar": MODEL + "training = 5\n",
    "training_unknown": MODEL + "[training]\nnope = 1\n",
    "training_lr_nan": MODEL + "[training]\nlr = nan\n",
    "training_lr_inf": MODEL + "[training]\nlr = inf\n",
    "training_lr_zero": MODEL + "[training]\nlr = 0.0\n",
    "training_lr_huge": MODEL + "[training]\nlr = 1.7976931348623157e308\n",
    "training_lr_text": MODEL + '[training]\nlr = "fast"\n',
    "training_steps_huge": MODEL + "[training]\nmax_steps = 1e30\n",
    "training_steps_bool": MODEL + "[training]\nmax_steps = true\n",
    "training_batch_empty_sweep": MODEL + "[training]\nbatch_size = []\n",
    "training_batch_huge": MODEL + "[training]\nbatch_size = 1000000000\n",
    "training_schedule": MODEL + '[training]\nschedule = "nope"\n',
    "training_warmup": MODEL + "[training]\nwarmup = 0.9\n",
    "training_budget_huge": MODEL + "[training]\nparam_budget = 1000000000000\n",
    "training_unknown_task": MODEL + "[training.nope]\nmax_steps = 5\n",
    "training_sweep_explodes": MODEL + "[training]\nmax_steps = [" + ", ".join(
        map(str, range(1, 301))) + "]\nval_every = [" + ", ".join(map(str, range(1, 301))) + "]\n",
    # [model_params]
    "model_params_scalar": MODEL + "model_params = 5\n",
    "model_params_unknown": MODEL + "[model_params]\nnope = 1\n",
    "model_params_unknown_model": MODEL + "[model_params.nope]\nx = 1\n",
    "model_params_text": MODEL + '[model_params.lstm]\nhidden_size = "big"\n',
    "model_params_table": MODEL + "[model_params.lstm]\nhidden_size = {a = 1}\n",
    "model_params_dropout_one": MODEL + "[model_params.lstm]\ndropout = 1.0\n",
    "model_params_empty_sweep": MODEL + "[model_params.lstm]\nhidden_size = []\n",
    "model_params_nested": MODEL + "[model_params.lstm]\nhidden_size = [[64]]\n",
    "model_params_huge": MODEL + "[model_params.lstm]\nhidden_size = 9223372036854775807\n",
    "model_params_big_float": MODEL + "[model_params.lstm]\ndropout = 1e400\n",
    # [task_params]
    "task_params_scalar": MODEL + 'task_params = "x"\n',
    "task_params_T": MODEL + "[task_params.copy]\nT = 100001\n",
    "task_params_pool": MODEL + "[task_params.copy]\npool_size = 1000000000\n",
    "task_params_framing": MODEL + "[task_params.copy]\nframing = 3\n",
    "task_params_unknown_task": MODEL + "[task_params.nope]\nx = 1\n",
    "task_params_sweep_explodes": MODEL + "[task_params.copy]\nT = [" + ", ".join(
        map(str, range(1, 1001))) + "]\nn_symbols = [" + ", ".join(
        map(str, range(1, 1001))) + "]\n",
    # [tuning]
    "tuning_scalar": MODEL + "tuning = 5\n",
    "tuning_lr_scalar": MODEL + "[tuning]\nlr = 0.001\n",
    "tuning_lr_zero": MODEL + "[tuning]\nlr = [0.0, 0.001]\n",
    "tuning_lr_bool": MODEL + "[tuning]\nlr = [true, false]\n",
    "tuning_lr_huge": MODEL + "[tuning]\nlr = [1e308, 1.0]\n",
    "tuning_lr_text": MODEL + '[tuning]\nlr = ["a", "b"]\n',
    "tuning_seeds_zero": MODEL + "[tuning]\nseeds = 0\n",
    "tuning_seeds_huge": MODEL + "[tuning]\nseeds = 1000000000\n",
    "tuning_seeds_negative": MODEL + "[tuning]\nseeds = [-1]\n",
    "tuning_per": MODEL + '[tuning]\nper = "nope"\n',
    "tuning_unknown": MODEL + "[tuning]\nnope = 1\n",
    "tuning_trials_huge": MODEL + "[tuning]\ntrials = 1000000\n",
    "tuning_and_training_lr": MODEL + "[training]\nlr = 0.001\n[tuning]\nlr = [0.001, 0.01]\n",
    "tuning_prune_nope": MODEL + '[tuning]\ntrials = 12\nprune = "asha"\n',
    "tuning_eta_one": MODEL + '[tuning]\ntrials = 12\nprune = "halving"\neta = 1\n',
    "tuning_halving_one_left": MODEL + '[tuning]\ntrials = 9\nprune = "halving"\nrungs = 3\n',
    "tuning_rungs_past_max_steps": MODEL + '[training]\nmax_steps = 100\n[tuning]\n'
                                   'trials = 12\nprune = "halving"\n',
    "tuning_eta_unpruned": MODEL + "[tuning]\ntrials = 12\neta = 3\n",
}

DATA_FILES = {
    "empty.csv": b"",
    "wrong_columns.csv": b"a,b\n1,2\n3,4\n",
    "latin1.csv": b"text,label\n\xff\xfe caf\xe9,1\nhi,0\n",
    "table.xyz": b"text,label\nhi,0\n",
    "pairs_empty.csv": b"",
    # hostile files for `bench decide --data`: one line each, never a traceback or a hang
    "deep.json": b"[" * 200_000 + b"]" * 200_000,
    "deep.jsonl": b"[" * 200_000 + b"]" * 200_000 + b"\n",
    "five.jsonl": b"5\n",
    "null.jsonl": b"null\n",
    "big_header.csv": b"x" * (129 * 1024) + b",label\nhi,0\n",
}


def rerunnable_record() -> dict:
    """A stored run whose configuration hashes to its run_id, as `bench rerun` requires."""
    from seqbench.experiment.plan import RunSpec

    rec = _record("lstm", 0, 32, 0.8)
    cfg = rec["config"]
    spec = RunSpec(model="lstm", task="copy", kind="aligned", train_size=32, seed=0,
                   model_params=cfg["model_params"], task_params=cfg["task_params"],
                   training=cfg["training"], matrix_id="m", trial={})
    return {**rec, "run_id": spec.run_id, "config": spec.config()}


WRONG_TYPES = {
    "seed-text": "UPDATE runs SET seed = 'abc' WHERE rowid = 2",
    "size-text": "UPDATE runs SET train_size = 'big' WHERE rowid = 3",
    "config-not-json": "UPDATE runs SET config = '{not json' WHERE rowid = 4",
}


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    """The folder every case runs in: a results database and files a user cares about."""
    root = tmp_path_factory.mktemp("bad-input")
    make_results(root / "results.sqlite")
    corrupt = make_results(root / "corrupt.sqlite", n_seeds=40)
    corrupt_pages(corrupt)
    (root / "notadb.sqlite").write_text("my notes, not a database\n" * 100)
    other = sqlite3.connect(root / "other.sqlite")
    other.execute("CREATE TABLE people (name TEXT)")
    other.commit()
    other.close()
    (root / "notes.md").write_text("# my notes\nnot an analysis\n")
    (root / "theirs.html").write_text("<!doctype html><title>my page</title>\n")
    (root / "somefile").write_text("a file, not a folder\n")
    (root / "folder").mkdir()
    (root / "matrices").mkdir()
    for name, content in MATRICES.items():
        target = root / "matrices" / f"{name}.toml"
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content, encoding="utf-8")
    (root / "data").mkdir()
    for name, content in DATA_FILES.items():
        (root / "data" / name).write_bytes(content)
    os.mkfifo(root / "data" / "fifo.csv")  # a named pipe: reading it would wait forever
    # the results database by other names: a symbolic link and a hard link
    (root / "symlink.sqlite").symlink_to("results.sqlite")
    os.link(root / "results.sqlite", root / "hardlink.sqlite")
    # databases whose values have the wrong type (edited by hand, or by another program)
    for name, sql in WRONG_TYPES.items():
        make_results(root / f"{name}.sqlite")
        con = sqlite3.connect(root / f"{name}.sqlite")
        con.execute(sql)
        con.commit()
        con.close()
    # a run `bench rerun` can retrain, and its database by another name
    from seqbench.store import Store

    with Store(root / "rerun.sqlite") as store:
        store.save(rerunnable_record())
    os.link(root / "rerun.sqlite", root / "rerun-hardlink.sqlite")
    (root / "rerun-symlink.sqlite").symlink_to("rerun.sqlite")
    # a results database named as another's write-ahead log, which SQLite would delete
    make_results(root / "wal.sqlite")
    make_results(root / "elsewhere.sqlite").rename(root / "wal.sqlite-wal")
    return root


def snapshot(root: Path) -> dict:
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        out[rel] = ("dir" if p.is_dir() else "fifo" if p.is_fifo()
                    else hashlib.sha256(p.read_bytes()).hexdigest())
    return out


# --------------------------------------------------------------------------------------------
# The battery

DRY = ["--dry-run"]
ONE = ["--models", "lstm", "--tasks", "copy"]
# Cases that pass the plan and reach the checks made only before a real launch: if one ever
# slipped through, it would train one sequential step (and fail the test by writing a database).
LAUNCH = [*ONE, "--executor", "sequential", "--max-steps", "1", "--val-every", "1",
          "--db", "new.sqlite"]

CASES = {
    # ---- bench run: flags
    "run/unknown-model": ["run", "--models", "nope", *DRY],
    "run/unknown-task": ["run", "--tasks", "nope", *DRY],
    "run/no-models": ["run", "--models", ",", *DRY],
    "run/seed-range-of-a-billion": ["run", *ONE, "--seeds", "0-1000000000", *DRY],
    "run/seed-2**64": ["run", *ONE, "--seeds", BIG, *DRY],
    "run/seed-2**32": ["run", *ONE, "--seeds", str(2**32), *DRY],
    "run/seed-numpy-limit": ["run", *ONE, "--seeds", "1099511627776", *DRY],
    "run/seed-negative": ["run", *ONE, "--seeds", "-1", *DRY],
    "run/seed-empty-range": ["run", *ONE, "--seeds", "5-3", *DRY],
    "run/seed-text": ["run", *ONE, "--seeds", "a", *DRY],
    "run/seed-repeat": ["run", *ONE, "--seeds", "1,1", *DRY],
    "run/seed-double-range": ["run", *ONE, "--seeds", "1-2-3", *DRY],
    "run/size-zero": ["run", *ONE, "--train-sizes", "0", *DRY],
    "run/size-negative": ["run", *ONE, "--train-sizes", "-5", *DRY],
    "run/size-text": ["run", *ONE, "--train-sizes", "abc", *DRY],
    "run/size-fraction": ["run", *ONE, "--train-sizes", "1.5", *DRY],
    "run/size-huge": ["run", *ONE, "--train-sizes", "100000000000", *DRY],
    "run/size-repeat": ["run", *ONE, "--train-sizes", "64,64", *DRY],
    "run/size-full-twice": ["run", *ONE, "--train-sizes", "full,all", *DRY],
    "run/model-repeat": ["run", "--models", "lstm,lstm", "--tasks", "copy", *DRY],
    "run/task-repeat": ["run", "--models", "lstm", "--tasks", "copy,copy", *DRY],
    "run/dropout-1.5": ["run", *ONE, "-m", "dropout=1.5", *DRY],
    "run/dropout-1": ["run", *ONE, "-m", "dropout=1", *DRY],
    "run/dropout-negative": ["run", *ONE, "-m", "dropout=-0.1", *DRY],
    "run/dropout-nan": ["run", *ONE, "-m", "dropout=nan", *DRY],
    "run/hidden-a-billion": ["run", *ONE, "-m", "hidden_size=1000000000", *DRY],
    "run/hidden-zero": ["run", *ONE, "-m", "hidden_size=0", *DRY],
    "run/hidden-text": ["run", *ONE, "-m", "hidden_size=abc", *DRY],
    "run/hidden-fraction": ["run", *ONE, "-m", "hidden_size=1.5", *DRY],
    "run/hidden-5000-digits": ["run", *ONE, "-m", "hidden_size=" + "9" * 5000, *DRY],
    "run/model-param-unknown": ["run", *ONE, "-m", "nope=1", *DRY],
    "run/model-param-unknown-scoped": ["run", *ONE, "-m", "lstm.nope=1", *DRY],
    "run/model-param-other-model": ["run", *ONE, "-m", "gru.hidden_size=8", *DRY],
    "run/model-param-no-name": ["run", *ONE, "-m", "=5", *DRY],
    "run/model-param-no-value": ["run", *ONE, "-m", "hidden_size", *DRY],
    "run/heads-huge": ["run", "--models", "transformer", "--tasks", "copy", "-m",
                       "n_heads=100000", *DRY],
    "run/copy-T-over-max": ["run", *ONE, "-t", "copy.T=100000", *DRY],
    "run/copy-T-zero": ["run", *ONE, "-t", "copy.T=0", *DRY],
    "run/copy-pool-a-billion": ["run", *ONE, "-t", "copy.pool_size=1000000000", *DRY],
    "run/copy-framing": ["run", *ONE, "-t", "copy.framing=nope", *DRY],
    "run/copy-alphabet": ["run", *ONE, "-t", "copy.alphabet=1", *DRY],
    "run/copy-tokens": ["run", *LAUNCH, "-t", "copy.T=10000"],
    "run/max-steps-zero": ["run", *ONE, "--max-steps", "0", *DRY],
    "run/max-steps-10**30": ["run", *ONE, "--max-steps", HUGE, *DRY],
    "run/batch-zero": ["run", *ONE, "--batch-size", "0", *DRY],
    "run/batch-a-billion": ["run", *ONE, "--batch-size", "1000000000", *DRY],
    "run/lr-zero": ["run", *ONE, "--lr", "0", *DRY],
    "run/lr-negative": ["run", *ONE, "--lr", "-1", *DRY],
    "run/lr-1e308": ["run", *ONE, "--lr", "1e308", *DRY],
    "run/lr-nan": ["run", *ONE, "--lr", "nan", *DRY],
    "run/lr-inf": ["run", *ONE, "--lr", "inf", *DRY],
    "run/lr-text": ["run", *ONE, "--lr", "fast", *DRY],
    "run/val-every-zero": ["run", *ONE, "--val-every", "0", *DRY],
    "run/patience-negative": ["run", *ONE, "--patience", "-1", *DRY],
    "run/grad-clip-nan": ["run", *ONE, "--grad-clip", "nan", *DRY],
    "run/grad-clip-negative": ["run", *ONE, "--grad-clip", "-1", *DRY],
    "run/budget-10**30": ["run", *ONE, "--param-budget", HUGE, *DRY],
    "run/budget-negative": ["run", *ONE, "--param-budget", "-1", *DRY],
    "run/budget-unreachable": ["run", *LAUNCH, "--param-budget", "1"],
    "run/model-too-large": ["run", *LAUNCH, "-m", "hidden_size=16384", "-m", "num_layers=64"],
    "run/size-larger-than-data": ["run", *LAUNCH, "--train-sizes", "100000"],
    "run/tune-lr-zero": ["run", *ONE, "--tune-lr", "0,1e-3", *DRY],
    "run/tune-lr-text": ["run", *ONE, "--tune-lr", "abc,def", *DRY],
    "run/tune-lr-single": ["run", *ONE, "--tune-lr", "1e-3", *DRY],
    "run/tune-lr-huge": ["run", *ONE, "--tune-lr", "1e308,1e-3", *DRY],
    "run/tune-seeds-zero": ["run", *ONE, "--tune-seeds", "0", *DRY],
    "run/tune-seeds-a-billion": ["run", *ONE, "--tune-seeds", "1000000000", *DRY],
    "run/tune-trials-one": ["run", *ONE, "--tune-trials", "1", *DRY],
    "run/tune-trials-a-billion": ["run", *ONE, "--tune-trials", "1000000000", *DRY],
    "run/tune-prune-nope": ["run", *ONE, "--tune-trials", "12", "--tune-prune", "nope", *DRY],
    "run/tune-eta-one": ["run", *ONE, "--tune-trials", "12", "--tune-prune", "halving",
                         "--tune-eta", "1", *DRY],
    "run/tune-min-steps-zero": ["run", *ONE, "--tune-trials", "12", "--tune-prune", "halving",
                                "--tune-min-steps", "0", *DRY],
    "run/tune-rungs-past-max-steps": ["run", *ONE, "--tune-trials", "12", "--tune-prune",
                                      "halving", "--max-steps", "100", *DRY],
    "run/workers-negative": ["run", *ONE, "--workers", "-1", *DRY],
    "run/workers-a-billion": ["run", *ONE, "--workers", "1000000000", *DRY],
    "run/workers-more-than-the-machine": ["run", *ONE, "--max-steps", "1", "--db", "new.sqlite",
                                          "--workers", "99999"],
    "run/executor-unknown": ["run", *ONE, "--executor", "nope", *DRY],
    "run/matrix-missing": ["run", "--matrix", "missing.toml", *DRY],
    "run/matrix-folder": ["run", "--matrix", "folder", *DRY],
    "run/matrix-and-preset": ["run", "--matrix", "matrices/empty.toml", "--preset", "quick", *DRY],
    "run/preset-unknown": ["run", "--preset", "nope", *DRY],
    "run/db-in-proc": ["run", *LAUNCH[:-1], "/proc/x.sqlite"],
    "run/db-under-sys": ["run", *LAUNCH[:-1], "/sys/nope/x.sqlite"],
    "run/db-under-a-file": ["run", *LAUNCH[:-1], "somefile/x.sqlite"],
    "run/db-not-sqlite": ["run", *LAUNCH[:-1], "notadb.sqlite"],
    "run/db-someone-elses": ["run", *LAUNCH[:-1], "other.sqlite"],
    "run/db-damaged": ["run", *LAUNCH[:-1], "corrupt.sqlite"],
    "run/db-folder": ["run", *LAUNCH[:-1], "folder"],
    "run/unknown-option": ["run", "--bogus"],
    "run/option-without-value": ["run", "--models"],
    # ---- bench results
    "results/seed-2**64": ["results", "--db", "results.sqlite", "--seed", BIG],
    "results/seed-negative": ["results", "--db", "results.sqlite", "--seed", "-1"],
    "results/size-zero": ["results", "--db", "results.sqlite", "--train-size", "0"],
    "results/size-2**64": ["results", "--db", "results.sqlite", "--train-size", BIG],
    "results/json-and-csv": ["results", "--db", "results.sqlite", "--json", "--csv"],
    "results/status": ["results", "--db", "results.sqlite", "--status", "nope"],
    "results/db-missing": ["results", "--db", "missing.sqlite"],
    "results/db-not-sqlite": ["results", "--db", "notadb.sqlite"],
    "results/db-damaged": ["results", "--db", "corrupt.sqlite"],
    "results/db-someone-elses": ["results", "--db", "other.sqlite"],
    "results/db-folder": ["results", "--db", "folder"],
    "results/db-in-proc": ["results", "--db", "/proc/x.sqlite"],
    "results/db-under-a-file": ["results", "--db", "somefile/x.sqlite"],
    # ---- bench analyze
    "analyze/out-is-the-db": ["analyze", "--db", "results.sqlite", "--out", "results.sqlite"],
    "analyze/out-is-the-db-via-path": ["analyze", "--db", "results.sqlite", "--out",
                                       "folder/../results.sqlite"],
    "analyze/out-is-the-db-log": ["analyze", "--db", "results.sqlite", "--out",
                                  "results.sqlite-wal"],
    "analyze/out-someone-elses-file": ["analyze", "--db", "results.sqlite", "--out", "notes.md"],
    "analyze/out-another-sqlite": ["analyze", "--db", "results.sqlite", "--out", "other.sqlite"],
    "analyze/out-in-proc": ["analyze", "--db", "results.sqlite", "--out", "/proc/x.md"],
    "analyze/out-under-a-file": ["analyze", "--db", "results.sqlite", "--out", "somefile/x.md"],
    "analyze/out-folder": ["analyze", "--db", "results.sqlite", "--out", "folder"],
    "analyze/confidence-nan": ["analyze", "--db", "results.sqlite", "--confidence", "nan"],
    "analyze/confidence-1.5": ["analyze", "--db", "results.sqlite", "--confidence", "1.5"],
    "analyze/confidence-inf": ["analyze", "--db", "results.sqlite", "--confidence", "inf"],
    "analyze/bootstrap-10**12": ["analyze", "--db", "results.sqlite", "--bootstrap",
                                 "1000000000000"],
    "analyze/bootstrap-10": ["analyze", "--db", "results.sqlite", "--bootstrap", "10"],
    "analyze/seed-negative": ["analyze", "--db", "results.sqlite", "--seed", "-1"],
    "analyze/seed-2**64": ["analyze", "--db", "results.sqlite", "--seed", BIG],
    "analyze/json-and-markdown": ["analyze", "--db", "results.sqlite", "--json", "--markdown"],
    "analyze/pairs-self": ["analyze", "--db", "results.sqlite", "--pairs", "lstm:lstm"],
    "analyze/pairs-unknown": ["analyze", "--db", "results.sqlite", "--pairs", "nope:other"],
    "analyze/pairs-garbage": ["analyze", "--db", "results.sqlite", "--pairs", "a:b:c"],
    "analyze/tasks-unknown": ["analyze", "--db", "results.sqlite", "--tasks", "nope"],
    "analyze/tasks-empty": ["analyze", "--db", "results.sqlite", "--tasks", ","],
    "analyze/margin-negative": ["analyze", "--db", "results.sqlite", "--margin", "-1"],
    "analyze/margin-nan": ["analyze", "--db", "results.sqlite", "--margin", "nan"],
    "analyze/db-damaged": ["analyze", "--db", "corrupt.sqlite"],
    "analyze/db-not-sqlite": ["analyze", "--db", "notadb.sqlite"],
    "analyze/db-missing": ["analyze", "--db", "missing.sqlite"],
    # ---- bench report
    "report/out-is-the-db": ["report", "--db", "results.sqlite", "--out", "results.sqlite"],
    "report/out-is-the-db-forced": ["report", "--db", "results.sqlite", "--out",
                                    "results.sqlite", "--force"],
    "report/out-someone-elses-file": ["report", "--db", "results.sqlite", "--out", "notes.md"],
    "report/out-someone-elses-page": ["report", "--db", "results.sqlite", "--out",
                                      "theirs.html"],
    "report/out-another-sqlite": ["report", "--db", "results.sqlite", "--out", "other.sqlite"],
    "report/out-in-proc": ["report", "--db", "results.sqlite", "--out", "/proc/x.html"],
    "report/out-under-a-file": ["report", "--db", "results.sqlite", "--out", "somefile/x.html"],
    "report/out-folder": ["report", "--db", "results.sqlite", "--out", "folder"],
    "report/n-boot-10**12": ["report", "--db", "results.sqlite", "--out", "r.html", "--n-boot",
                             "1000000000000"],
    "report/n-boot-1": ["report", "--db", "results.sqlite", "--out", "r.html", "--n-boot", "1"],
    "report/db-missing": ["report", "--db", "missing.sqlite", "--out", "r.html"],
    "report/db-not-sqlite": ["report", "--db", "notadb.sqlite", "--out", "r.html"],
    "report/db-damaged": ["report", "--db", "corrupt.sqlite", "--out", "r.html"],
    "report/pairs-self": ["report", "--db", "results.sqlite", "--out", "r.html", "--pairs",
                          "a:a"],
    # ---- bench dashboard (every case fails before the server starts)
    "dashboard/db-damaged": ["dashboard", "--db", "corrupt.sqlite"],
    "dashboard/db-not-sqlite": ["dashboard", "--db", "notadb.sqlite"],
    "dashboard/db-someone-elses": ["dashboard", "--db", "other.sqlite"],
    "dashboard/port-70000": ["dashboard", "--db", "results.sqlite", "--port", "70000"],
    "dashboard/port-negative": ["dashboard", "--db", "results.sqlite", "--port", "-1"],
    "dashboard/n-boot-10**12": ["dashboard", "--db", "results.sqlite", "--n-boot",
                                "1000000000000"],
    "dashboard/pairs-garbage": ["dashboard", "--db", "results.sqlite", "--pairs", "x"],
    "dashboard/host-unresolvable": ["dashboard", "--db", "results.sqlite", "--host",
                                    "999.1.1.1"],
    # ---- bench data
    "data/unknown-task": ["data", "nope"],
    "data/seed-negative": ["data", "copy", "--seed", "-1"],
    "data/seed-2**64": ["data", "copy", "--seed", BIG],
    "data/size-zero": ["data", "copy", "--train-size", "0"],
    "data/size-10**12": ["data", "copy", "--train-size", "1000000000000"],
    "data/size-larger-than-data": ["data", "copy", "--train-size", "20000"],
    "data/split": ["data", "copy", "--split", "nope"],
    "data/limit-negative": ["data", "copy", "--limit", "-1"],
    "data/copy-T-over-max": ["data", "copy", "-t", "T=100000"],
    "data/copy-tokens": ["data", "copy", "-t", "T=10000"],
    "data/copy-pool-a-billion": ["data", "copy", "-t", "pool_size=1000000000"],
    "data/param-unknown": ["data", "copy", "-t", "nope=1"],
    "data/param-other-task": ["data", "copy", "-t", "translation.split=x"],
    "data/csv-empty": ["data", "classification", "-t", "data=data/empty.csv"],
    "data/csv-wrong-columns": ["data", "classification", "-t", "data=data/wrong_columns.csv"],
    "data/csv-not-utf8": ["data", "classification", "-t", "data=data/latin1.csv"],
    "data/csv-missing": ["data", "classification", "-t", "data=data/missing.csv"],
    "data/file-type": ["data", "classification", "-t", "data=data/table.xyz"],
    "data/val-size-zero": ["data", "classification", "-t", "val_size=0"],
    "data/translation-csv-empty": ["data", "translation", "-t", "data=data/pairs_empty.csv"],
    "data/translation-csv-not-utf8": ["data", "translation", "-t", "data=data/latin1.csv"],
    "analyze/models-unknown": ["analyze", "--db", "results.sqlite", "--models", "lstm,nope"],
    "analyze/models-empty": ["analyze", "--db", "results.sqlite", "--models", ","],
    # ---- bench decide (every case fails before a database or a run exists)
    "decide/budget-10s": ["decide", "--task", "classification", "--budget", "10s", "--db", "d.sqlite"],
    "decide/budget-words": ["decide", "--task", "classification", "--budget", "soon", "--db",
                            "d.sqlite"],
    "decide/budget-9999h": ["decide", "--task", "classification", "--budget", "9999h", "--db",
                            "d.sqlite"],
    "decide/one-model": ["decide", "--task", "classification", "--models", "lstm", "--db",
                         "d.sqlite"],
    "decide/same-model-twice": ["decide", "--task", "classification", "--models", "lstm,lstm",
                                "--db", "d.sqlite"],
    "decide/unknown-model": ["decide", "--task", "classification", "--models", "lstm,nope",
                             "--db", "d.sqlite"],
    "decide/unknown-task": ["decide", "--task", "nope", "--db", "d.sqlite"],
    "decide/task-and-data": ["decide", "--task", "classification", "--data", "data/empty.csv",
                             "--db", "d.sqlite"],
    "decide/neither": ["decide", "--db", "d.sqlite"],
    "decide/data-missing": ["decide", "--data", "data/missing.csv", "--db", "d.sqlite"],
    "decide/data-empty": ["decide", "--data", "data/empty.csv", "--db", "d.sqlite"],
    "decide/data-wrong-columns": ["decide", "--data", "data/wrong_columns.csv", "--db", "d.sqlite"],
    "decide/data-type": ["decide", "--data", "data/table.xyz", "--db", "d.sqlite"],
    "decide/margin-nan": ["decide", "--task", "classification", "--margin", "nan", "--db",
                          "d.sqlite"],
    "decide/margin-negative": ["decide", "--task", "classification", "--margin", "-1", "--db",
                               "d.sqlite"],
    "decide/tune-share-2": ["decide", "--task", "classification", "--tune-share", "2", "--db",
                            "d.sqlite"],
    "decide/size-larger-than-data": ["decide", "--task", "classification", "--train-size",
                                     "999999", "--db", "d.sqlite"],
    "decide/param-unknown": ["decide", "--task", "classification", "-t", "nope=1", "--db",
                             "d.sqlite"],
    "decide/db-damaged": ["decide", "--task", "classification", "--db", "corrupt.sqlite"],
    "decide/db-not-sqlite": ["decide", "--task", "classification", "--db", "notadb.sqlite"],
    "decide/db-in-proc": ["decide", "--task", "classification", "--db", "/proc/x.sqlite"],
    # ---- bench rerun
    "rerun/unknown-id": ["rerun", "0123456789abcdef", "--db", "results.sqlite"],
    "rerun/db-missing": ["rerun", "0123456789abcdef", "--db", "missing.sqlite"],
    "rerun/db-damaged": ["rerun", "0123456789abcdef", "--db", "corrupt.sqlite"],
    "rerun/db-not-sqlite": ["rerun", "0123456789abcdef", "--db", "notadb.sqlite"],
    "rerun/tolerance-2": ["rerun", "0123456789abcdef", "--db", "results.sqlite", "--tolerance",
                          "2"],
    # ---- bench figures
    "figures/db-missing": ["figures", "--db", "missing.sqlite", "--out", "figs"],
    "figures/db-damaged": ["figures", "--db", "corrupt.sqlite", "--out", "figs"],
    "figures/db-not-sqlite": ["figures", "--db", "notadb.sqlite", "--out", "figs"],
    "figures/db-someone-elses": ["figures", "--db", "other.sqlite", "--out", "figs"],
    "figures/out-a-file": ["figures", "--db", "results.sqlite", "--out", "somefile"],
    "figures/unknown-model": ["figures", "--db", "results.sqlite", "--out", "figs", "--models",
                              "nope"],
    "figures/n-boot-1": ["figures", "--db", "results.sqlite", "--out", "figs", "--n-boot", "1"],
    # ---- bench plugins, and the group itself
    "plugins/unknown-option": ["plugins", "--bogus"],
    "plugins/extra-argument": ["plugins", "extra"],
    "plugins/flag-with-value": ["plugins", "--json=yes"],
    "bench/unknown-command": ["frobnicate"],
}
# ---- hostile files and names (issue 21)
# `decide --report` refuses every file `--out` refuses, before any run (a decision that slipped
# through would train for its budget and then overwrite the file)
DECIDE_FAST = ["decide", "--task", "classification", "--budget", "30s", "--max-steps", "1",
               "--trials", "2", "--max-seeds", "4", "--db", "results.sqlite", "--report"]
for _name, _target in {
    "the-db": "results.sqlite", "the-db-via-path": "folder/../results.sqlite",
    "the-db-log": "results.sqlite-wal", "the-db-symlink": "symlink.sqlite",
    "the-db-hard-link": "hardlink.sqlite", "another-sqlite": "other.sqlite",
    "someone-elses-file": "notes.md", "someone-elses-page": "theirs.html",
    "in-proc": "/proc/x.html", "under-a-file": "somefile/x.html", "folder": "folder",
    "a-fifo": "data/fifo.csv",
}.items():
    CASES[f"decide/report-{_name}"] = [*DECIDE_FAST, _target]
for _name in ("deep.json", "deep.jsonl", "five.jsonl", "null.jsonl", "big_header.csv",
              "fifo.csv"):
    CASES[f"decide/data-{_name}"] = ["decide", "--data", f"data/{_name}", "--db", "d.sqlite"]
# a database name SQLite would take for another database's side file, or whose side file is
# in fact a database
for _suffix in ("-wal", "-shm", "-journal"):
    CASES[f"run/db-named{_suffix}"] = ["run", *LAUNCH[:-1], f"new.sqlite{_suffix}"]
    CASES[f"results/db-named{_suffix}"] = ["results", "--db", f"results.sqlite{_suffix}"]
CASES["run/db-whose-wal-is-a-database"] = ["run", *LAUNCH[:-1], "wal.sqlite"]
CASES["results/db-whose-wal-is-a-database"] = ["results", "--db", "wal.sqlite"]
CASES["analyze/db-named-wal"] = ["analyze", "--db", "wal.sqlite-wal"]
CASES["report/db-named-wal"] = ["report", "--db", "wal.sqlite-wal", "--out", "r.html"]
# values of the wrong type: one line naming the run and the column
for _name in WRONG_TYPES:
    for _command in (["results"], ["results", "--csv"], ["analyze"], ["report", "--out", "r.html"],
                     ["figures", "--out", "figs"]):
        _key = f"{_command[0]}/{_name}" + ("-csv" if "--csv" in _command else "")
        CASES[_key] = [*_command, "--db", f"{_name}.sqlite"]
# merge: a source given twice, or --into a source, by a hard link
CASES["merge/source-twice-by-hard-link"] = ["merge", "rerun.sqlite", "rerun-hardlink.sqlite",
                                            "--into", "merged.sqlite"]
CASES["merge/into-a-source-by-hard-link"] = ["merge", "rerun.sqlite", "results.sqlite",
                                             "--into", "rerun-hardlink.sqlite", "--force"]
# rerun's scratch database by another name of the source database (the run would be retrained
# into the database rerun promises only to read)
for _name in ("rerun-symlink.sqlite", "rerun-hardlink.sqlite", "rerun.sqlite-wal"):
    CASES[f"rerun/scratch-{_name}"] = ["rerun", "RERUN_ID", "--db", "rerun.sqlite", "--scratch",
                                       _name]
# ---- every matrix-file field
for _name in MATRICES:
    CASES[f"matrix/{_name}"] = ["run", "--matrix", f"matrices/{_name}.toml", *DRY]


def test_the_battery_is_large_and_covers_every_command_and_field():
    assert len(CASES) >= 100
    commands = {args[0] for args in CASES.values()}
    assert {"run", "results", "analyze", "data", "dashboard", "report", "plugins", "decide",
            "rerun", "figures"} <= commands
    text = "\n".join(MATRICES[k] if isinstance(MATRICES[k], str) else "" for k in MATRICES)
    for field in ("models", "tasks", "seeds", "train_sizes", "training", "model_params",
                  "task_params", "tuning"):
        assert field in text, field


@pytest.mark.parametrize("args", CASES.values(), ids=CASES.keys())
def test_bad_input_is_one_line_exit_2_and_nothing_written(home, monkeypatch, args):
    from seqbench.cli import main

    monkeypatch.chdir(home)
    before = snapshot(home)
    if "RERUN_ID" in args:  # known once the fixture has written the run
        args = [rerunnable_record()["run_id"] if a == "RERUN_ID" else a for a in args]
    result = CliRunner().invoke(main, args, catch_exceptions=True)
    stray = result.exception if not isinstance(result.exception, SystemExit) else None
    assert stray is None, f"{type(stray).__name__}: {stray}"
    lines = result.stderr.splitlines()
    assert result.exit_code == 2, (result.exit_code, result.stderr[-500:], result.stdout[-500:])
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert "Traceback" not in result.stderr + result.stdout
    assert snapshot(home) == before


# --------------------------------------------------------------------------------------------
# A few through the real command line


def bench(*args, cwd, env=None, limit_memory: int | None = None, timeout=120):
    full = {**os.environ, **OFFLINE, "COLUMNS": "200", **(env or {})}

    def limits():
        if limit_memory:
            resource.setrlimit(resource.RLIMIT_AS, (limit_memory, limit_memory))

    return subprocess.run([*bench_command(), *args], cwd=cwd, env=full, capture_output=True,
                          text=True, timeout=timeout, preexec_fn=limits)


def test_report_over_the_database_is_refused_and_the_database_is_untouched(home):
    before = snapshot(home)
    for command in (["report", "--db", "results.sqlite", "--out", "results.sqlite"],
                    ["analyze", "--db", "results.sqlite", "--out", "./results.sqlite", "--force"]):
        proc = bench(*command, cwd=home)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: --out")
        assert proc.stdout == ""
    assert snapshot(home) == before


def test_a_seed_range_of_a_billion_is_refused_within_a_small_memory_limit(home):
    before = snapshot(home)
    proc = bench("run", "--seeds", "0-1000000000", "--dry-run", cwd=home,
                 limit_memory=3 * 2**30)
    assert proc.returncode == 2 and proc.stderr.startswith("error: seeds:"), proc.stderr[-300:]
    assert proc.stderr.count("\n") == 1
    assert snapshot(home) == before


CHILD = """
import json, sys
from click.testing import CliRunner
from seqbench.cli import main
out = []
for args in json.loads(sys.argv[1]):
    r = CliRunner().invoke(main, args)
    out.append([r.exit_code, r.stderr, repr(r.exception)])
print(json.dumps(out))
"""


def test_bad_data_files_print_no_progress_bars_and_cache_nothing_at_home(home, tmp_path):
    """One line (no `datasets` progress bars, no log lines) and no cache outside seqbench's own
    folders: a fresh home stays empty, for bad files and good ones. (A child process, so that
    `datasets` reads its cache settings from this home when it is imported.)"""
    fake_home = tmp_path / "home"
    fake_home.mkdir()
    (tmp_path / "ok.csv").write_text("text,label\n" + "".join(
        f"example {i},{'ab'[i % 2]}\n" for i in range(20)))
    cases = [["data", "classification", "-t", f"data=data/{name}"]
             for name in ("empty.csv", "wrong_columns.csv", "latin1.csv")]
    cases.append(["data", "classification", "-t", f"data={tmp_path / 'ok.csv'}", "--limit", "2"])
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HF_HOME", "HF_DATASETS_CACHE", "XDG_CACHE_HOME"))}
    env.update(OFFLINE, HOME=str(fake_home))
    before = snapshot(home)
    proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps(cases)], cwd=home, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads(proc.stdout.splitlines()[-1])
    for (code, err, exc), args in zip(results[:-1], cases):
        assert code == 2, (args, err, exc)
        assert err.count("\n") == 1 and err.startswith("error: "), (args, err)
    assert results[-1][0] == 0 and results[-1][1] == "", results[-1]
    assert proc.stderr == ""  # nothing from datasets outside the commands either
    assert list(fake_home.rglob("*")) == []
    assert snapshot(home) == before


def test_duplicate_models_are_an_error_as_duplicate_seeds_are(home, monkeypatch):
    from seqbench.cli import main

    monkeypatch.chdir(home)
    for args, word in ((["--models", "lstm,lstm"], "models"), (["--seeds", "0,0"], "seeds"),
                       (["--train-sizes", "64,64"], "training sizes")):
        result = CliRunner().invoke(main, ["run", "--tasks", "copy", *args, "--dry-run"])
        assert result.exit_code == 2 and result.stderr.startswith(f"error: {word} repeat")


def test_an_earlier_output_of_the_same_command_is_replaced(home, tmp_path, monkeypatch):
    """--out refuses other people's files, not its own: an earlier analysis or report is simply
    written over, and --force lets a user replace any other file on purpose."""
    from seqbench.cli import main

    monkeypatch.chdir(tmp_path)
    db = str(home / "results.sqlite")
    runner = CliRunner()
    for out in ("a.md", "a.json"):
        for _ in range(2):
            result = runner.invoke(main, ["analyze", "--db", db, "--out", out])
            assert result.exit_code == 0, result.stderr
    assert Path("a.md").read_text().startswith("# seqbench analysis")
    assert runner.invoke(main, ["analyze", "--db", db, "--json", "--out", "a.md"]).exit_code == 0
    Path("mine.md").write_text("mine")
    assert runner.invoke(main, ["analyze", "--db", db, "--out", "mine.md"]).exit_code == 2
    assert Path("mine.md").read_text() == "mine"
    forced = runner.invoke(main, ["analyze", "--db", db, "--out", "mine.md", "--force"])
    assert forced.exit_code == 0
    for _ in range(2):
        result = runner.invoke(main, ["report", "--db", db, "--out", "r.html"])
        assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "a.md", "mine.md", "r.html"]


def test_readers_leave_no_log_files_beside_the_database(home, tmp_path, monkeypatch):
    from seqbench.cli import main

    db = make_results(tmp_path / "r.sqlite")
    before = snapshot(tmp_path)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    for args in (["results", "--db", str(db), "--json"], ["analyze", "--db", str(db), "--json"]):
        assert runner.invoke(main, args).exit_code == 0
    assert snapshot(tmp_path) == before


# --------------------------------------------------------------------------------------------
# Fuzz: the matrix-file parser and the planner give a matrix or a one-line PluginError

FIELDS = ("models", "tasks", "train_sizes", "seeds", "training", "model_params", "task_params",
          "tuning")
NAMES = ("lstm", "gru", "rnn", "transformer", "seq2seq-attention", "copy", "classification",
         "translation", "full", "all", "T", "lr", "max_steps", "hidden_size", "dropout", "seeds",
         "per", "trials", "n_heads", "d_model", "framing", "pool_size", "nope")
scalars = st.one_of(
    st.integers(min_value=-2**63, max_value=2**63 - 1),
    st.integers(min_value=-3, max_value=300),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, 1e-3, 0.5, 1.0, 1e308]),
    st.booleans(),
    st.sampled_from(NAMES),
    st.text(max_size=8),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(NAMES) | st.text(max_size=5), inner, max_size=4),
    max_leaves=12,
)
MODELS = ("lstm", "gru", "rnn", "transformer", "seq2seq-attention")
TASKS = ("copy", "classification", "translation")
PARAM_KEYS = ("hidden_size", "embed_size", "num_layers", "dropout", "d_model", "n_heads",
              "ff_mult", "T", "n_symbols", "alphabet", "framing", "pool_size", "val_size", "nope")
TRAINING_KEYS = ("max_steps", "batch_size", "lr", "weight_decay", "schedule", "warmup",
                 "grad_clip", "val_every", "patience", "val_limit", "param_budget", "nope")
TUNING_KEYS = ("lr", "seeds", "per", "trials", "extend", "extend_trials", "prune", "eta",
               "rungs", "min_steps", "last_rung", "rank", "nope")
small = st.one_of(st.integers(-2, 300), st.sampled_from([0.0, 1e-3, 0.1, 0.5, 1.0, 2.0, 1e308]),
                  st.sampled_from(["full", "aligned", "seq2seq", "size", "task", "cosine", "loss",
                                   ""]),
                  scalars)
setting = small | st.lists(small, max_size=3)
# Documents shaped like matrix files, each field perturbed: the parser and the planner see
# mostly plausible files with one thing wrong, not only files rejected at their first key.


def mostly(good, bad):
    """``good`` three times in four: files with one thing wrong, not everything wrong."""
    return st.integers(0, 3).flatmap(lambda i: bad if i == 3 else good)


fields = {
    "models": mostly(st.lists(st.sampled_from(MODELS), min_size=1, max_size=3, unique=True),
                     values),
    "tasks": mostly(st.lists(st.sampled_from(TASKS), min_size=1, max_size=2, unique=True),
                    values),
    "seeds": mostly(st.lists(st.integers(0, 6), min_size=1, max_size=4, unique=True),
                    st.lists(st.integers(-2, 6) | scalars, max_size=4) | values),
    "train_sizes": mostly(
        st.lists(st.integers(1, 200) | st.just("full"), min_size=1, max_size=3, unique=True),
        st.lists(st.integers(-1, 200) | st.sampled_from(["full", "all"]), max_size=3)
        | st.dictionaries(st.sampled_from(TASKS), st.lists(small, max_size=3), max_size=2)
        | values),
    "training": mostly(st.dictionaries(st.sampled_from(TRAINING_KEYS), small, max_size=3),
                       st.dictionaries(st.sampled_from(TRAINING_KEYS) | st.sampled_from(TASKS),
                                       setting | st.dictionaries(st.sampled_from(TRAINING_KEYS),
                                                                 setting, max_size=2),
                                       max_size=4) | values),
    "model_params": mostly(st.dictionaries(st.sampled_from(PARAM_KEYS), small, max_size=2),
                           st.dictionaries(st.sampled_from(PARAM_KEYS) | st.sampled_from(MODELS),
                                           setting | st.dictionaries(st.sampled_from(PARAM_KEYS),
                                                                     setting, max_size=3),
                                           max_size=3) | values),
    "task_params": mostly(st.dictionaries(st.sampled_from(TASKS), st.dictionaries(
                              st.sampled_from(PARAM_KEYS), small, max_size=2), max_size=2),
                          st.dictionaries(st.sampled_from(PARAM_KEYS) | st.sampled_from(TASKS),
                                          setting | st.dictionaries(st.sampled_from(PARAM_KEYS),
                                                                    setting, max_size=3),
                                          max_size=3) | values),
    "tuning": mostly(st.dictionaries(st.sampled_from(TUNING_KEYS), small, max_size=3),
                     st.dictionaries(st.sampled_from(TUNING_KEYS), setting, max_size=4) | values),
}
documents = st.one_of(
    st.fixed_dictionaries({}, optional=fields),
    st.fixed_dictionaries({"models": fields["models"], "tasks": fields["tasks"]},
                          optional={k: v for k, v in fields.items()
                                    if k not in ("models", "tasks")}),
    st.dictionaries(st.sampled_from(FIELDS) | st.sampled_from(NAMES), values, max_size=6),
)


@pytest.fixture(scope="module")
def reg():
    from seqbench.registry import registry

    return registry()


def _parse_and_plan(path: Path, reg) -> None:
    from seqbench.api import PluginError
    from seqbench.experiment import matrixfile
    from seqbench.experiment.plan import plan

    try:
        data = matrixfile.read(path)
        matrix = matrixfile.build_matrix(data, None, None, None, None, (), (), {}, {},
                                         list(reg.models), list(reg.tasks))
        plan(matrix, reg)
    except PluginError as exc:
        assert "\n" not in str(exc) and str(exc)


FUZZ = settings(max_examples=300, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@FUZZ
@given(doc=documents)
def test_fuzz_structured_matrix_files(tmp_path, reg, doc):
    path = tmp_path / "m.toml"
    path.write_text(toml_doc(doc), encoding="utf-8")
    _parse_and_plan(path, reg)


@FUZZ
@given(raw=st.one_of(st.binary(max_size=300), st.text(max_size=300).map(str.encode),
                     st.lists(st.sampled_from(
                         [b"models", b"tasks", b"seeds", b"[training]", b"[tuning]", b"=", b"[",
                          b"]", b"\"lstm\"", b"1", b"-1", b"nan", b"inf", b",", b"\n", b"{", b"}",
                          b"1e999", b"[model_params.lstm]", b"hidden_size", b"lr", b"0.5"]),
                         max_size=40).map(b" ".join)))
def test_fuzz_raw_bytes(tmp_path, reg, raw):
    path = tmp_path / "m.toml"
    path.write_bytes(raw)
    _parse_and_plan(path, reg)


# --------------------------------------------------------------------------------------------
# The dashboard keeps answering: bounded threads, timed-out and dropped half requests


def _get(host, port, path="/api/version", timeout=10.0):
    import http.client

    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Host": f"127.0.0.1:{port}"})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


@pytest.fixture
def served(tmp_path):
    import threading

    from seqbench.dashboard.server import make_server

    server = make_server(make_results(tmp_path / "r.sqlite"))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_half_sent_requests_do_not_stall_the_page_nor_pile_up_threads(served):
    import socket
    import threading
    import time

    from seqbench.dashboard.server import MAX_CONNECTIONS

    host, port = served.server_address[:2]
    assert _get(host, port)[0] == 200
    computed = []
    real = served.dashboard.summary
    served.dashboard.summary = lambda: computed.append(1) or real()
    baseline = threading.active_count()
    half = b"GET /api/summary HTTP/1.1\r\nHost: 127.0.0.1\r\n"  # no blank line: never complete
    held = []
    try:
        for _ in range(3 * MAX_CONNECTIONS):  # held open, as a stuck browser tab would
            s = socket.create_connection((host, port))
            s.sendall(half)
            held.append(s)
        t0 = time.monotonic()
        status, _ = _get(host, port)
        assert status == 200 and time.monotonic() - t0 < 3
        assert threading.active_count() - baseline <= MAX_CONNECTIONS + 1
        for _ in range(200):  # half a request, then gone: dropped unanswered, nothing computed
            s = socket.create_connection((host, port))
            s.sendall(half)
            s.close()
        t0 = time.monotonic()
        assert _get(host, port)[0] == 200 and time.monotonic() - t0 < 3
        assert computed == []
        assert _get(host, port, "/api/summary")[0] == 200 and computed == [1]
    finally:
        for s in held:
            s.close()


def test_an_idle_or_half_sent_connection_is_closed_after_the_timeout(served, monkeypatch):
    import socket
    import time

    from seqbench.dashboard import server as server_module

    monkeypatch.setattr(server_module.Handler, "timeout", 0.5)
    host, port = served.server_address[:2]
    s = socket.create_connection((host, port))
    s.settimeout(10)
    s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1")
    t0 = time.monotonic()
    assert s.recv(1024) == b""  # the server hung up
    assert time.monotonic() - t0 < 5
    s.close()
