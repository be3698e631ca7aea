"""``bench figures``: PNG files drawn from a real results database through the real CLI (in this
process: each ``bench`` process would import matplotlib again)."""

from __future__ import annotations

import hashlib

import pytest

from conftest import bench_here
from test_dashboard import make_db, record

pytest.importorskip("matplotlib", reason="the figures extra: pip install 'seqbench[figures]'")

PNG = b"\x89PNG\r\n\x1a\n"


def scaling_records() -> list[dict]:
    """The LSTM ahead at 32 examples, the Transformer at 64 and 128: three sizes, 3 seeds."""
    recs = []
    for size, (a, b) in {32: (0.8, 0.3), 64: (0.5, 0.7), 128: (0.6, 0.9)}.items():
        for seed in range(3):
            recs.append(record("lstm", size=size, seed=seed, value=a + seed / 100))
            recs.append(record("transformer", size=size, seed=seed, value=b + seed / 100))
    return recs


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_figures_are_drawn_per_task_and_redrawn_identically(tmp_path):
    db = make_db(tmp_path / "r.sqlite", scaling_records(), running=0)
    out = tmp_path / "figs"
    res = bench_here("figures", "--db", db, "--out", out, "--n-boot", 200)
    assert res.rc == 0, res.stderr
    names = sorted(p.name for p in out.iterdir())
    assert names == ["curves-copy.png", "scaling-copy.png"]  # one task, no parameter varied
    for p in out.iterdir():
        assert p.read_bytes()[:8] == PNG and p.stat().st_size > 10_000
        assert f"wrote {p}" in res.stdout
    before = {p.name: digest(p) for p in out.iterdir()}
    again = bench_here("figures", "--db", db, "--out", out, "--n-boot", 200)  # replaces them
    assert again.rc == 0, again.stderr
    assert {p.name: digest(p) for p in out.iterdir()} == before  # the same database, the same bytes
    only = bench_here("figures", "--db", db, "--out", tmp_path / "one", "--models", "lstm")
    assert only.rc == 0 and digest(tmp_path / "one" / names[1]) != before[names[1]]


@pytest.mark.parametrize("setup, args, message", [
    ("none", [], "no results database at"),
    ("db", ["--models", "gru"], "--models: no runs of gru"),
    ("db+file", [], "is a file"),
    ("db+text", [], "which is not a PNG; refusing to overwrite it"),
])
def test_bad_input_is_one_line_and_nothing_is_lost(tmp_path, setup, args, message):
    db, out = tmp_path / "r.sqlite", tmp_path / "figs"
    if setup != "none":
        make_db(db, scaling_records(), running=0)
    if setup == "db+file":
        out.write_text("mine")
    kept = None
    if setup == "db+text":
        out.mkdir()
        ok = bench_here("figures", "--db", db, "--out", tmp_path / "probe", "--n-boot", 200)
        kept = out / sorted(p.name for p in (tmp_path / "probe").iterdir())[0]
        kept.write_text("my notes")
    res = bench_here("figures", "--db", db, "--out", out, "--n-boot", 200, *args)
    assert res.rc == 2 and res.stderr.startswith("error:") and res.stderr.count("\n") == 1
    assert message in res.stderr, res.stderr
    if setup == "db+file":
        assert out.read_text() == "mine"
    if kept is not None:
        assert ok.rc == 0 and kept.read_text() == "my notes" and list(out.iterdir()) == [kept]
        forced = bench_here("figures", "--db", db, "--out", out, "--n-boot", 200, "--force")
        assert forced.rc == 0 and kept.read_bytes()[:8] == PNG


def test_variants_get_short_distinct_file_names():
    from seqbench.dashboard.figures import short_name

    taken: set[str] = set()
    names = []
    for vkey in ("data=../shared/data/trec/train_5500.label,encoding=latin-1",
                 "data=digits,encoding=utf-8", "data=digits,encoding=latin-1", "default"):
        names.append(short_name("classification", vkey, taken))
        taken.add(names[-1])
    assert names == ["classification-train-5500", "classification-digits",
                     "classification-digits-latin-1", "classification"]
