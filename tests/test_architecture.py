"""The layout is a contract: imports run down the data's path and never in a circle.

The layers and the independence of the command modules are declared in pyproject.toml
(``[tool.importlinter]``) and checked with import-linter's ``lint-imports``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"
LINT = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which(
    "lint-imports")

pytestmark = pytest.mark.skipif(LINT is None, reason="import-linter is not installed")


def lint(pythonpath: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run([LINT, "--config", str(PYPROJECT), "--no-cache"], capture_output=True,
                          text=True, env=env, cwd=pythonpath or ROOT, timeout=120)


def test_the_contracts_hold():
    proc = lint()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 kept, 0 broken" in proc.stdout


def copy_of_the_package(tmp_path: Path) -> Path:
    """bench/ copied as an importable ``seqbench`` that shadows the installed one."""
    shutil.copytree(ROOT / "bench", tmp_path / "seqbench",
                    ignore=shutil.ignore_patterns("__pycache__", "static", "presets"))
    return tmp_path


@pytest.mark.parametrize("module, line, named", [
    # the experiment reaching up into the analysis
    ("experiment/launch.py", "from ..analysis import tables", "seqbench.experiment.launch -> "
     "seqbench.analysis.tables"),
    # the store reaching up into the command line
    ("store/database.py", "from ..cli import common",
     "seqbench.store.database -> seqbench.cli.common"),
    # one command module importing another
    ("cli/results.py", "from . import run", "seqbench.cli.results -> seqbench.cli.run"),
])
def test_an_import_against_the_contract_fails_and_is_named(tmp_path, module, line, named):
    pkg = copy_of_the_package(tmp_path)
    path = pkg / "seqbench" / module
    text = path.read_text()
    head, sep, rest = text.partition("from __future__ import annotations\n")
    path.write_text(head + sep + line + "  # noqa\n" + rest)
    proc = lint(pkg)
    assert proc.returncode != 0
    assert named in proc.stdout, proc.stdout


def test_a_new_top_level_module_must_be_placed_in_a_layer(tmp_path):
    pkg = copy_of_the_package(tmp_path)
    (pkg / "seqbench" / "stray.py").write_text('"""Belongs to no layer."""\n')
    proc = lint(pkg)
    assert proc.returncode != 0 and "seqbench.stray" in proc.stdout


def test_every_command_module_is_in_the_independence_contract():
    contracts = tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]["contracts"]
    listed = set(next(c for c in contracts if c["type"] == "independence")["modules"])
    found = {f"seqbench.cli.{p.stem}" for p in (ROOT / "bench" / "cli").glob("*.py")
             if p.stem not in {"__init__", "__main__", "common", "preflight"}}
    assert found == listed


def test_no_import_circle():
    grimp = pytest.importorskip("grimp")
    graph = grimp.build_graph("seqbench")
    circles = []
    for importer in sorted(graph.modules):
        for imported in graph.find_modules_directly_imported_by(importer):
            back = graph.find_shortest_chain(importer=imported, imported=importer)
            if back:
                circles.append(" -> ".join((importer, *back)))
    assert circles == []
