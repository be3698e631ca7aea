"""The results database's tables, its version and the migrations up to it."""

from __future__ import annotations

from ..records import COLUMNS

DEFAULT_DB = "results/bench.sqlite"  # every command's --db default
SCHEMA_VERSION = 3
SQLITE_MAGIC = b"SQLite format 3\x00"  # the first 16 bytes of every SQLite database file
SIDE_FILES = ("-wal", "-shm", "-journal")  # SQLite's own files beside a database
JSON_COLUMNS = ("config", "trial", "model_params", "test", "extras", "environment")

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS matrices (
    matrix_id TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    request TEXT NOT NULL               -- JSON: the matrix as the user asked for it
);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,            -- hash of the canonical configuration
    matrix_id TEXT,
    model TEXT NOT NULL,
    task TEXT NOT NULL,
    kind TEXT NOT NULL,
    train_size INTEGER,                 -- NULL: the task's full training split
    seed INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed', 'diverged')),
    error TEXT,
    config TEXT NOT NULL,               -- JSON: model/task params, training recipe, size, seed
    trial TEXT NOT NULL DEFAULT '{}',   -- JSON: what a tuning sweep varied
    model_params TEXT,                  -- JSON: hyperparameters as built (after budget fitting)
    primary_metric TEXT,
    higher_is_better INTEGER,
    best_val REAL,                      -- best validation primary metric
    test TEXT,                          -- JSON: test metrics from the best checkpoint
    param_count INTEGER,
    step_flops INTEGER,                 -- FLOPs of one training step (forward + backward)
    train_examples INTEGER,
    steps INTEGER,                      -- optimizer steps taken
    samples INTEGER,                    -- training examples seen
    train_seconds REAL,                 -- training time, validation excluded
    steps_to_95 INTEGER,                -- until val primary first reached 95% of its own best
    samples_to_95 INTEGER,
    seconds_to_95 REAL,
    extras TEXT,                        -- JSON: task extras (e.g. the copy task's baseline)
    environment TEXT,                   -- JSON: versions, device, git commit, host
    started_at TEXT,
    finished_at TEXT,
    lease_owner TEXT,                   -- the launch training a 'running' run (see lease_owner())
    lease_expires REAL                  -- unix time; past it, another launch may take the run over
);
CREATE INDEX IF NOT EXISTS runs_cell ON runs (task, train_size, model);
CREATE TABLE IF NOT EXISTS curves (
    run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    step INTEGER NOT NULL,
    samples INTEGER NOT NULL,
    seconds REAL NOT NULL,
    train_loss REAL,
    val_primary REAL,
    val TEXT,                           -- JSON: every validation metric
    PRIMARY KEY (run_id, step)
) WITHOUT ROWID;
-- Gradient probes (--probe-gradients), apart from `runs` so that reading runs never drags the
-- arrays along; a file from before them has no table and no probes (Store.gradients).
CREATE TABLE IF NOT EXISTS gradients (
    run_id TEXT PRIMARY KEY REFERENCES runs (run_id) ON DELETE CASCADE,
    data TEXT NOT NULL                  -- JSON: {"probes": [...], "grad_norm": {...}, ...}
);
"""

# Schema version -> statements that bring a database from the version before it up to it.
MIGRATIONS = {
    2: [  # leases, so that concurrent launches never train a run twice
        "ALTER TABLE runs ADD COLUMN lease_owner TEXT",
        "ALTER TABLE runs ADD COLUMN lease_expires REAL",
    ],
    3: [  # the cost of a step, so that "converges faster" can be paid for in FLOPs
        "ALTER TABLE runs ADD COLUMN step_flops INTEGER",
    ],
}

assert all(f"\n    {c} " in SCHEMA for c in COLUMNS), "records.COLUMNS and the runs table differ"
