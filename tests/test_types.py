"""The data's path is typed: ``mypy --strict`` over the run record, the store and the analysis,
as configured in pyproject.toml (``[tool.mypy]``), passes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MYPY = shutil.which("mypy", path=str(Path(sys.executable).parent)) or shutil.which("mypy")

pytestmark = pytest.mark.skipif(MYPY is None, reason="mypy is not installed")


def mypy(*args: str) -> subprocess.CompletedProcess:
    cache = os.environ.get("MYPY_CACHE_DIR", str(ROOT / ".mypy_cache"))
    return subprocess.run([MYPY, "--config-file", str(ROOT / "pyproject.toml"),
                           "--cache-dir", cache, *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)


def test_the_analysis_type_checks():
    proc = mypy()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "no issues found" in proc.stdout


def test_the_checked_files_are_the_data_path():
    import tomllib

    files = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]["files"]
    assert {"bench/analysis", "bench/records.py", "bench/store", "bench/api"} <= set(files)


def test_a_run_read_by_a_column_that_is_not_there_fails(tmp_path):
    """A typo in a run's field, or a wrong type for it, is caught before anything runs."""
    bad = tmp_path / "typo.py"
    bad.write_text("from bench.records import RunRecord\n\n\n"
                   "def f(r: RunRecord) -> int:\n    return r.param_cont\n\n\n"
                   "def g(r: RunRecord) -> str:\n    return r.seed\n")
    proc = mypy(str(bad))
    assert proc.returncode == 1
    assert 'has no attribute "param_cont"' in proc.stdout
    assert "Incompatible return value" in proc.stdout


def test_the_checker_is_strict(tmp_path):
    """An untyped function in the analysis would fail: the check is not a formality."""
    bad = tmp_path / "untyped.py"
    bad.write_text("def f(x):\n    return x\n")
    proc = mypy(str(bad))
    assert proc.returncode == 1 and "no-untyped-def" in proc.stdout


CONFORM = '''
from bench.api import Executor
from bench.experiment.executor_ray import RayExecutor
from bench.experiment.executor_slurm import SlurmExecutor
from bench.experiment.executors import LocalExecutor, SequentialExecutor


def built_in(a: SequentialExecutor, b: LocalExecutor, c: RayExecutor, d: SlurmExecutor
             ) -> list[Executor]:
    return [a, b, c, d]


class NoCallbacks:
    def run(self, specs: list[dict[str, object]]) -> None: ...


def without_callbacks(x: NoCallbacks) -> Executor:
    return x
'''


def test_every_executor_conforms_to_the_protocol(tmp_path):
    """The built-in, Ray and SLURM executors are api.Executors to mypy; a run() without the
    callbacks is not (the one error reported)."""
    snippet = tmp_path / "conform.py"
    snippet.write_text(CONFORM)
    proc = mypy(str(snippet))
    errors = [line for line in proc.stdout.splitlines() if ": error:" in line]
    assert len(errors) == 1 and 'got "NoCallbacks", expected "Executor"' in errors[0], proc.stdout
