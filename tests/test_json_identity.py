"""The JSON a user reads stays what it was: ``bench analyze --json``, ``bench results --json`` and
the dashboard's summary on the committed databases, byte for byte, against golden files; the
markdown and brief renderings of those analyses too.

Only what changes by itself is masked: the time of the analysis, the database's path and version.
Regenerate (after a change that is meant to alter the output, listed in its commit) with
``.venv/bin/python tests/test_json_identity.py``.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden"
DATABASES = ("claim", "controls", "mechanisms")
DASHBOARD_DB = "controls"  # the smallest: its summary still holds cells, scaling and verdicts
MASKED = re.compile(r'("(?:generated_at|version|db)":\s?)"[^"]*"')


def mask(text: str) -> str:
    return MASKED.sub(r'\1"*"', text)


def database(name: str) -> Path:
    path = ROOT / "results" / f"{name}.sqlite"
    if not path.exists():
        pytest.skip(f"{path} is not in this checkout")
    return path


def cli(*args: str) -> str:
    from seqbench.cli import main

    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def analysis_json(name: str) -> str:
    return mask(cli("analyze", "--db", str(database(name)), "--json"))


def results_digests(name: str) -> dict:
    """The records are large (megabytes): one digest per run, so a failure names the runs."""
    text = cli("results", "--db", str(database(name)), "--json")
    per_run = {r["run_id"]: hashlib.sha256(json.dumps(r).encode()).hexdigest()[:16]
               for r in json.loads(text)}
    return {"output": hashlib.sha256(text.encode()).hexdigest(), "runs": per_run}


def rendered(name: str) -> str:
    """The markdown tables and the brief lines, from the golden analysis (no recomputation)."""
    from seqbench.analysis.verdict import render_brief, render_markdown

    result = json.loads(read_gz(GOLDEN / f"analyze_{name}.json.gz"))
    return render_markdown(result) + "\n----\n" + render_brief(result)


def dashboard_summary(name: str) -> str:
    from seqbench.dashboard.data import Dashboard, dumps

    return mask(dumps(Dashboard(database(name)).summary()))


def read_gz(path: Path) -> str:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return f.read()


def write_gz(path: Path, text: str) -> None:
    with gzip.GzipFile(path, "wb", mtime=0) as f:  # mtime 0: the same text, the same bytes
        f.write(text.encode("utf-8"))


def first_difference(got: str, want: str) -> str:
    i = next((k for k, (x, y) in enumerate(zip(got, want)) if x != y), min(len(got), len(want)))
    return f"first difference at character {i}: got {got[i - 200:i + 200]!r}, " \
           f"want {want[i - 200:i + 200]!r}"


@pytest.mark.parametrize("name", DATABASES)
def test_analyze_json_is_unchanged(name):
    got, want = analysis_json(name), read_gz(GOLDEN / f"analyze_{name}.json.gz")
    assert got == want, first_difference(got, want)


@pytest.mark.parametrize("name", DATABASES)
def test_markdown_and_brief_are_unchanged(name):
    got, want = rendered(name), read_gz(GOLDEN / f"markdown_{name}.md.gz")
    assert got == want, first_difference(got, want)


@pytest.mark.parametrize("name", DATABASES)
def test_results_json_is_unchanged(name):
    got = results_digests(name)
    want = json.loads((GOLDEN / f"results_{name}.json").read_text())
    changed = sorted(k for k in set(got["runs"]) | set(want["runs"])
                     if got["runs"].get(k) != want["runs"].get(k))
    assert not changed, f"{len(changed)} run records changed, e.g. {changed[:5]}"
    assert got["output"] == want["output"], "the records are the same, their layout is not"


def test_dashboard_summary_is_unchanged():
    got = dashboard_summary(DASHBOARD_DB)
    want = read_gz(GOLDEN / f"dashboard_summary_{DASHBOARD_DB}.json.gz")
    assert got == want, first_difference(got, want)


def regenerate() -> None:
    GOLDEN.mkdir(exist_ok=True)
    for name in DATABASES:
        write_gz(GOLDEN / f"analyze_{name}.json.gz", analysis_json(name))
        write_gz(GOLDEN / f"markdown_{name}.md.gz", rendered(name))
        (GOLDEN / f"results_{name}.json").write_text(
            json.dumps(results_digests(name), indent=0, sort_keys=True) + "\n")
    write_gz(GOLDEN / f"dashboard_summary_{DASHBOARD_DB}.json.gz", dashboard_summary(DASHBOARD_DB))


if __name__ == "__main__":
    sys.exit(regenerate())
