"""seqbench as a library: seqbench.open(path).runs() / .curves() / .analyze(), and README's example."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import seqbench
from seqbench.library import StudyError
from seqbench.store import StoreError
from test_dashboard import make_db, record

README = Path(__file__).resolve().parents[1] / "README.md"


def files_of(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}


@pytest.fixture
def db(tmp_path):
    recs = [record("lstm", size=32, seed=s, value=0.8 + s / 100) for s in range(3)]
    recs += [record("transformer", size=32, seed=s, value=0.3 + s / 100) for s in range(3)]
    recs.append(record("lstm", size=32, seed=10_000, value=0.7,
                       trial={"lr": 0.003, "stage": "tune", "lr_range": [1e-4, 3e-2]}))
    recs.append(record("transformer", size=32, seed=9, status="failed"))
    return make_db(tmp_path / "study.sqlite", recs, running=0)


def test_runs_are_flat_with_hyperparameters_metrics_and_costs(db):
    before = files_of(db.parent)
    runs = seqbench.open(db).runs()
    assert len(runs) == 8
    assert {"hp.hidden_size", "test.recall_accuracy", "test.loss", "train.lr", "task.T",
            "param_count", "train_seconds", "steps", "env.versions.torch",
            "trial.lr_range.0", "trial.lr_range.1"} <= set(runs.columns)
    assert not runs.map(lambda v: isinstance(v, (dict, list, tuple))).any().any()
    assert not runs.map(lambda v: isinstance(v, str) and v[:1] in "[{").any().any()
    tuning = runs[runs.seed == 10_000].iloc[0]
    assert tuning.stage == "tuning" and tuning["trial.lr"] == 0.003
    assert (runs[runs.seed < 10_000].stage == "evaluation").all()
    lstm = runs[(runs.model == "lstm") & (runs.stage == "evaluation")]
    assert sorted(lstm["test.recall_accuracy"]) == pytest.approx([0.8, 0.81, 0.82])
    assert set(runs[runs.status == "failed"].model) == {"transformer"}
    assert str(runs.finished_at.dtype).startswith("datetime64")
    assert files_of(db.parent) == before  # read-only: nothing written, nothing left beside it


def test_runs_filters(db):
    study = seqbench.open(db)
    assert set(study.runs(model="lstm").model) == {"lstm"}
    assert len(study.runs(stage="tuning")) == 1
    assert len(study.runs(status="failed")) == 1
    with pytest.raises(StudyError, match="'tuning' or 'evaluation'"):
        study.runs(stage="tune")


def test_curves_are_long_with_every_validation_metric(db):
    study = seqbench.open(db)
    curves = study.curves(model="transformer", stage="evaluation")
    assert set(curves.model) == {"transformer"}
    assert {"run_id", "step", "seconds", "train_loss", "val_primary", "val.recall_accuracy",
            "val.loss", "seed", "train_size", "stage"} <= set(curves.columns)
    done = curves[curves.status == "done"]
    assert len(done) == 3 * 3  # three seeds, three validation steps each
    assert list(done[done.seed == 0].step) == [10, 20, 30]
    one = study.runs(model="lstm").run_id.iloc[0]
    assert set(study.curves([one]).run_id) == {one}


def test_analyze_is_bench_analyze(db, cli):
    study = seqbench.open(db)
    result = study.analyze(models=["lstm", "transformer"])
    rc, out, err = cli("analyze", "--db", db, "--json", "--models", "lstm,transformer")
    assert rc == 0, err
    printed = json.loads(out)
    ours = dict(result.to_dict())
    for d in (printed, ours):
        d.pop("generated_at")
    assert ours == printed
    frame = result.to_frame()
    assert set(frame.model) == {"lstm", "transformer"}
    lstm = frame[frame.model == "lstm"].iloc[0]
    assert lstm["mean"] == pytest.approx(0.81) and lstm.n_seeds == 3 and lstm.winner
    assert lstm.ci_low < 0.81 < lstm.ci_high
    cmp = result.comparisons()
    assert list(cmp[["a", "b"]].iloc[0]) == ["lstm", "transformer"]
    assert cmp.iloc[0]["diff"] == pytest.approx(0.5)
    assert result.verdicts and "lstm" in result.verdicts[0]
    assert result._repr_markdown_().startswith("# seqbench analysis")


def test_analyze_refuses_unknown_names_and_missing_files(db, tmp_path):
    study = seqbench.open(db)
    with pytest.raises(StudyError, match="no runs of 'gru'"):
        study.analyze(models="lstm,gru")
    with pytest.raises(StudyError, match="no runs of 'translation'"):
        study.analyze(tasks=["translation"])
    with pytest.raises(StoreError, match="no results database"):
        seqbench.open(tmp_path / "missing.sqlite")
    assert not (tmp_path / "missing.sqlite").exists()


def test_import_is_lazy():
    code = "import sys, seqbench; print('pandas' in sys.modules, 'seqbench.store' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def readme_example() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("#### In Python: `seqbench.open`", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_example_runs(db):
    code = readme_example()
    assert '"results/claim.sqlite"' in code
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code.replace('"results/claim.sqlite"', repr(str(db))), "README", "exec"), {})
    printed = out.getvalue()
    assert "lstm" in printed and "transformer" in printed
    assert "0.81" in printed  # the lstm's mean over its three seeds, in the analysis frame
