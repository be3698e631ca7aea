"""bench run --logger: MLflow, TensorBoard and CSV through Lightning's loggers, read back by their
own readers; a plugin's logger through register_loggers; a failing logger never stops a run.

One tiny run (two validations) with every logger at once, the failing ones among them, serves
every test: each reader must see the run's configuration, its validation and training curves."""

from __future__ import annotations

import json
import sqlite3

import pytest

TINY = ["--models", "lstm", "--tasks", "copy", "-t", "copy.T=3", "-t", "copy.val_size=20",
        "-t", "copy.test_size=20", "-m", "hidden_size=8", "--train-sizes", "16",
        "--max-steps", "10", "--val-every", "5", "--patience", "0", "--seeds", "0",
        "--workers", "1"]


def stored(db):
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    run = dict(conn.execute("SELECT * FROM runs").fetchone())
    curve = [{**dict(r), "val": json.loads(r["val"])}
             for r in conn.execute("SELECT * FROM curves ORDER BY step")]
    conn.close()
    return run, curve


@pytest.fixture(scope="module")
def logged(tmp_path_factory, make_dist, cli):
    dist = make_dist("seqbench-recorder", {"seqbench_recorder": PLUGIN},
                     {"recorder": "seqbench_recorder"})
    root = tmp_path_factory.mktemp("loggers")
    db = root / "r.sqlite"
    rc, out, err = cli("run", *TINY, "--db", db, "--logger",
                       "mlflow,tensorboard,csv,recorder,breaks-later,breaks-at-once",
                       env={"MLFLOW_TRACKING_URI": ""}, pythonpath=[dist])
    assert rc == 0, err[-3000:]
    # the built-in loggers never warn; the two that break do, once each
    warned = [line for line in err.splitlines() if "warning" in line]
    assert len(warned) == 2 and all("breaks-" in line for line in warned), err[-3000:]
    return root, db, out, err


def train_curve(curve) -> list[float]:
    """The stored training loss at each validation: what every logger must see as train/loss."""
    assert len(curve) > 1 and all(p["train_loss"] is not None for p in curve)
    return [p["train_loss"] for p in curve]


def test_mlflow_run_is_readable_by_search_runs(logged, monkeypatch):
    mlflow = pytest.importorskip("mlflow")
    root, db, out, _ = logged
    run, curve = stored(db)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    mlflow.set_tracking_uri((root / "mlruns").as_uri())
    found = mlflow.search_runs(experiment_names=["seqbench"])
    assert len(found) == 1
    row = found.iloc[0]
    config = json.loads(run["config"])
    assert row["params.run_id"] == run["run_id"] and row["params.model"] == "lstm"
    assert row["params.task_params/T"] == "3"
    assert float(row["params.training/lr"]) == config["training"]["lr"]
    assert row["tags.stage"] == "evaluation" and row["tags.seed"] == "0"
    test = json.loads(run["test"])
    assert row["metrics.test/recall_accuracy"] == pytest.approx(test["recall_accuracy"])
    client = mlflow.tracking.MlflowClient()
    history = client.get_metric_history(row.run_id, "val/recall_accuracy")
    assert [m.value for m in history] == pytest.approx([p["val_primary"] for p in curve])
    loss = client.get_metric_history(row.run_id, "train/loss")
    assert [m.value for m in loss] == pytest.approx(train_curve(curve))
    assert [m.step for m in loss] == [p["step"] for p in curve]
    lr = client.get_metric_history(row.run_id, "train/lr")
    assert [m.value for m in lr] == pytest.approx([p["val"]["lr"] for p in curve])
    assert row["metrics.train/loss"] == pytest.approx(curve[-1]["train_loss"])
    assert "mlflow ui --backend-store-uri" in out


def test_tensorboard_events_are_readable_by_tensorboard(logged):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    root, db, _, _ = logged
    run, curve = stored(db)
    (folder,) = (root / "tensorboard" / "seqbench").iterdir()
    assert run["run_id"][:8] in folder.name
    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    acc.Reload()
    values = [e.value for e in acc.Scalars("val/recall_accuracy")]
    assert values == pytest.approx([p["val_primary"] for p in curve])
    loss = acc.Scalars("train/loss")
    assert [e.value for e in loss] == pytest.approx(train_curve(curve))
    assert [e.step for e in loss] == [p["step"] for p in curve]
    assert [e.value for e in acc.Scalars("train/lr")] == pytest.approx(
        [p["val"]["lr"] for p in curve])
    test = json.loads(run["test"])
    assert acc.Scalars("test/recall_accuracy")[-1].value == pytest.approx(test["recall_accuracy"])
    hparams = {}
    for content in acc.PluginTagToContent("hparams").values():
        data = plugin_data_pb2.HParamsPluginData.FromString(content)
        if data.HasField("session_start_info"):
            hparams.update({k: v for k, v in data.session_start_info.hparams.items()})
    assert hparams["run_id"].string_value == run["run_id"]
    assert hparams["task_params/T"].number_value == 3


def test_csv_logger_writes_the_curve(logged):
    import csv

    root, db, _, _ = logged
    _, curve = stored(db)
    (metrics,) = (root / "csv" / "seqbench").glob("*/metrics.csv")
    lines = metrics.read_text().splitlines()
    assert "val/recall_accuracy" in lines[0]
    assert len([line for line in lines[1:] if line.split(",")[0]]) >= len(curve)
    rows = list(csv.DictReader(lines))
    loss = [float(r["train/loss"]) for r in rows if r.get("train/loss")]
    assert loss == pytest.approx(train_curve(curve))


def test_no_checkpoint_lands_in_the_results_folder(logged):
    root, *_ = logged
    assert not list(root.rglob("*.ckpt"))  # a run's checkpoints live and die in a temp folder


PLUGIN = '''
import json
from pathlib import Path
from pytorch_lightning.loggers import Logger
from seqbench import hookimpl

class Recorder(Logger):
    def __init__(self, path, fail_after=None):
        super().__init__()
        self.path, self.fail_after, self.calls = Path(path), fail_after, 0
    name = "recorder"
    version = "0"
    @property
    def experiment(self):
        return self
    def log_hyperparams(self, params, *args, **kwargs):
        self.path.with_suffix(".config.json").write_text(json.dumps(params, default=str))
    def log_metrics(self, metrics, step=None):
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise OSError("disk full")
        with self.path.open("a") as f:
            f.write(json.dumps({"step": step, **metrics}) + "\\n")

@hookimpl
def register_loggers(register):
    register("recorder", lambda run: Recorder(Path(run.save_dir) / "log.jsonl"), "test")
    register("breaks-later", lambda run: Recorder(Path(run.save_dir) / "log.jsonl", 1), "test")
    register("breaks-at-once", lambda run: 1 / 0, "test")
'''


def test_a_plugin_logger_and_failing_loggers_never_stop_a_run(logged):
    root, db, _, err = logged
    run, curve = stored(db)
    assert run["status"] == "done"
    assert "warning: breaks-at-once logging disabled for this run: division by zero" in err
    assert "warning: breaks-later logging stopped for this run: disk full" in err
    records = [json.loads(x) for x in (root / "recorder" / "log.jsonl").read_text().splitlines()]
    vals = [x["val/recall_accuracy"] for x in records if "val/recall_accuracy" in x]
    assert vals == pytest.approx([p["val_primary"] for p in curve])
    loss = [x["train/loss"] for x in records if "train/loss" in x]
    assert loss == pytest.approx(train_curve(curve))  # a plugin's logger gets it too
    config = json.loads((root / "recorder" / "log.config.json").read_text())
    assert config["run_id"] == run["run_id"]


def test_unknown_logger_is_one_line(cli, tmp_path):
    rc, out, err = cli("run", *TINY, "--db", tmp_path / "x.sqlite", "--logger", "mlflow,neptune")
    assert rc == 2 and err.count("\n") == 1
    assert "unknown logger 'neptune'" in err and "mlflow" in err and "tensorboard" in err
    assert not (tmp_path / "x.sqlite").exists()
