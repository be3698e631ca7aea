"""Shared fixtures for seqbench's tests.

* The environment: Hugging Face offline, W&B disabled (set before anything imports them).
* ``plugin``: register a plugin object in this process for one test, unregistered afterwards
  (the pattern of Simon Willison's ``llm`` tests).
* ``fresh_registry``: forget every loaded plugin before and after a test that changes the
  ``SEQBENCH_*`` environment variables.
* ``on_path``: ``on_path(folder)`` puts a folder on ``sys.path`` for one test and forgets the
  loaded plugins, so this process finds its entry points as a pip install's.
* ``cli``: run the real ``bench`` command in a subprocess; returns ``Result(rc, stdout, stderr)``.
* ``require_chromium()`` and ``browser``: the browser tests' headless Chromium (Debian's build,
  driven by Playwright), or their module skipped with the reason.
* ``make_dist``: write a fake installed distribution (``*.dist-info`` with entry points, plus its
  modules) into a fresh folder; put that folder on the subprocess's ``PYTHONPATH`` and seqbench
  discovers it exactly as it discovers a pip-installed plugin.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import NamedTuple

import pytest

OFFLINE = {"HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled"}
os.environ.update(OFFLINE)

PLUGIN_VARS = ("SEQBENCH_STRICT_PLUGINS", "SEQBENCH_LOAD_PLUGINS", "SEQBENCH_TRACE_PLUGINS")


# --------------------------------------------------------------------------------------------
# The slowest modules first: with ``--dist loadscope --no-loadscope-reorder`` (tox.ini) xdist hands
# modules out in this order, so no slow module starts last and keeps one worker busy alone.

SLOWEST_FIRST = (
    "test_executors", "test_decide", "test_ray", "test_models", "test_dashboard_browser",
    "test_leases", "test_slurm", "test_cli", "test_bad_input", "test_loggers", "test_hostile",
    "test_gradient_view_browser", "test_rerun", "test_third_party", "test_budget_plan",
    "test_pruned_tuning", "test_pool", "test_protocol", "test_translation", "test_transfer",
    "test_figures",
)


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.stem, len(rank)))  # stable: modules stay whole


# --------------------------------------------------------------------------------------------
# In-process plugins


class Plugins:
    """``plugin(obj, name)`` registers ``obj`` (a class instance or module with hookimpls)."""

    def __init__(self):
        self.names: list[str] = []

    def __call__(self, obj: object, name: str | None = None) -> object:
        from seqbench import registry

        name = name or f"test-plugin-{len(self.names)}"
        registry.register(obj, name)
        self.names.append(name)
        return obj

    def remove_all(self) -> None:
        from seqbench import registry

        while self.names:
            registry.unregister(self.names.pop())


@pytest.fixture(scope="module")
def one_torch_thread():
    """Torch on one thread for a module: the test machine's cores are shared, and tiny models
    gain nothing from more threads (``pytestmark = pytest.mark.usefixtures(...)``)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def plugin():
    plugins = Plugins()
    try:
        yield plugins
    finally:
        plugins.remove_all()


@pytest.fixture
def fresh_registry(monkeypatch):
    """A registry rebuilt from the entry points under this test's environment, then forgotten."""
    from seqbench import registry

    for var in PLUGIN_VARS:
        monkeypatch.delenv(var, raising=False)
    registry.reset()
    try:
        yield registry
    finally:
        registry.reset()


@pytest.fixture
def on_path(monkeypatch, fresh_registry):
    """``on_path(folder)``: ``folder`` on ``sys.path`` until the test ends, the registry rebuilt
    from it at its next use (a local worker is handed this ``sys.path`` too)."""

    def put(folder: Path) -> Path:
        monkeypatch.syspath_prepend(str(folder))
        fresh_registry.reset()
        return folder

    return put


# --------------------------------------------------------------------------------------------
# The real command line


class Result(NamedTuple):
    rc: int
    stdout: str
    stderr: str


def default_sigint() -> None:
    """``preexec_fn`` for subprocesses a test will Ctrl-C: a shell running this suite in the
    background (``cmd &``, as CI may) starts it with SIGINT ignored, a setting children inherit,
    and Python would then never raise KeyboardInterrupt."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def bench_command() -> list[str]:
    """The ``bench`` console script next to this Python, else ``python -m seqbench.cli``."""
    script = Path(sys.executable).with_name("bench")
    return [str(script)] if script.exists() else [sys.executable, "-m", "seqbench.cli"]


CHROMIUM = os.environ.get("SEQBENCH_CHROMIUM", "/usr/bin/chromium")


def require_chromium() -> None:
    """Skip the calling test module, saying why, without Playwright or a Chromium binary
    (``SEQBENCH_CHROMIUM`` names another one than /usr/bin/chromium). Playwright's own browser
    download is not used: it fails offline."""
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium, or set "
                    "SEQBENCH_CHROMIUM)", allow_module_level=True)


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium per test module."""
    from playwright.sync_api import sync_playwright

    require_chromium()
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


def run_bench(*args, env: dict | None = None, pythonpath=(), cwd=None, timeout=300) -> Result:
    """Run ``bench ARGS`` in a subprocess with a clean plugin environment and a wide terminal.

    ``SEQBENCH_*`` variables of the caller are dropped so every test states its own.
    """
    full = {k: v for k, v in os.environ.items() if k not in PLUGIN_VARS}
    full.update(OFFLINE, COLUMNS="250", NO_COLOR="1")
    paths = [str(p) for p in pythonpath] + [p for p in [full.get("PYTHONPATH")] if p]
    if paths:
        full["PYTHONPATH"] = os.pathsep.join(paths)
    full.update(env or {})
    proc = subprocess.run(
        [*bench_command(), *map(str, args)], env=full, cwd=cwd or tempfile.gettempdir(),
        capture_output=True,
        text=True, timeout=timeout,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture(scope="session")
def cli():
    return run_bench


def bench_here(*args, env: dict | None = None) -> Result:
    """``bench ARGS`` in this process (Click's runner) -> ``Result(rc, stdout, stderr)``: for
    commands whose own process is not what a test is about (each ``bench`` process that trains
    imports torch and Lightning again, seconds on a busy core)."""
    from click.testing import CliRunner

    from seqbench.cli import main

    res = CliRunner().invoke(main, [str(a) for a in args],
                             env={"COLUMNS": "250", "NO_COLOR": "1", **(env or {})})
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    return Result(res.exit_code, res.stdout, res.stderr)


# --------------------------------------------------------------------------------------------
# Fake installed distributions


def write_dist(
    root: Path,
    dist: str,
    modules: dict[str, str],
    entry_points: dict[str, str],
    version: str = "0.0.1",
) -> Path:
    """``root/<module>.py`` for each module and ``root/<dist>-<version>.dist-info``."""
    root.mkdir(parents=True, exist_ok=True)
    for name, source in modules.items():
        (root / f"{name}.py").write_text(textwrap.dedent(source))
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(
        "[seqbench]\n" + "".join(f"{k} = {v}\n" for k, v in entry_points.items())
    )
    return root


@pytest.fixture(scope="session")
def make_dist(tmp_path_factory):
    """``make_dist("my-dist", {"my_module": SOURCE}, {"entry-name": "my_module"})`` -> folder."""

    def make(dist, modules, entry_points, version="0.0.1"):
        return write_dist(tmp_path_factory.mktemp("dist"), dist, modules, entry_points, version)

    return make
