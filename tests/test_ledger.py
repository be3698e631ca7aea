"""The claims ledger and README's finding are generated (``scripts/ledger.py``): the committed
text is what the committed databases give, and the words fit the numbers."""

from __future__ import annotations

import dataclasses
import difflib
import importlib.util
import re
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load():
    spec = importlib.util.spec_from_file_location("ledger", ROOT / "scripts" / "ledger.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["ledger"] = module
    spec.loader.exec_module(module)
    return module


ledger = _load()


@pytest.fixture(scope="module")
def facts():
    return ledger.Facts(ROOT)  # every analysis computed once for the module


@pytest.fixture(scope="module")
def generated(facts):
    return ledger.generate(ROOT, facts=facts)


def test_the_committed_ledger_and_readme_are_what_the_databases_give(generated):
    stale = {p: (old, new) for p, (old, new) in generated.items() if old != new}
    diff = "".join("".join(difflib.unified_diff(old.splitlines(True), new.splitlines(True), p, p,
                                                n=0))[:2000] for p, (old, new) in stale.items())
    assert not stale, f"run `python scripts/ledger.py` and commit:\n{diff}"


def test_the_numbers_the_review_found_wrong_come_out_right(generated):
    claims = generated["results/claims.md"][1]
    readme = " ".join(generated["README.md"][1].split())  # as read, whatever the wrapping
    # per-step costs from evaluation runs only: digits, full TREC-6, Multi30k
    assert "(218 vs 358 MFLOPs per step)" in claims and "(10.9 vs 60.5 ms)" in claims
    assert "296 vs 181 MFLOPs" in claims and "15.5 vs 15.2 ms" in claims
    assert "(2,061 vs 2,004 M)" in claims and "(94.3 vs 85.8 ms" in claims
    assert "**3.2× the seconds**" in claims and "3.4×" not in readme
    # TREC-6 intervals, never "a tie"
    assert "−0.9 [−4.5, +2.7]" in claims and "+1.2 [−3.5, +5.9]" in claims
    rows = [line for line in claims.splitlines() if line.startswith("| C")]
    assert len(rows) == 8 and not any(re.search(r"\btie\b", row) for row in rows)
    # C6 bias 0 and bias 1 apart; C4 clipping at T = 50
    assert "T = 10 0.122–0.125 with forget bias 0, 0.136–0.137 with bias 1" in claims
    assert "unclipped recall 0.023 ± 0.063 and CE +0.349 ± 0.219" in claims
    # the parameter counts per size, not against another size's
    assert "n = 320 22,474 vs 19,834 (+13%)" in claims
    # README's step-0 ratios from the committed mechanisms study
    assert "IRNN (ReLU, W_hh = I) **0.45**" in readme and "**2.9e−11**" in readme
    assert "mechanisms-demo.sqlite" not in readme


def test_check_fails_on_a_hand_edit_and_writing_repairs_it(facts, tmp_path, capsys):
    for path in [p for p, _ in ledger.OUTPUTS]:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / path, tmp_path / path)
    claims = tmp_path / "results/claims.md"
    claims.write_text(claims.read_text().replace("0.472", "0.999", 1))
    before = {p: (tmp_path / p).read_bytes() for p, _ in ledger.OUTPUTS}
    assert ledger.main(["--check"], root=tmp_path, facts=facts) == 1
    assert "results/claims.md differs" in capsys.readouterr().err
    assert {p: (tmp_path / p).read_bytes() for p, _ in ledger.OUTPUTS} == before  # read only
    assert ledger.main([], root=tmp_path, facts=facts) == 0
    assert ledger.main(["--check"], root=tmp_path, facts=facts) == 0
    assert claims.read_text() == (ROOT / "results/claims.md").read_text()


def test_a_readme_without_its_markers_is_an_error_not_a_silent_skip(facts):
    with pytest.raises(ledger.WordingError, match="ledger:finding"):
        ledger.render_readme(facts, "# no markers here\n")


def test_a_sentence_that_no_longer_fits_its_numbers_stops_the_generator(facts):
    m = facts.mechanisms
    irnn = m.get(100, "rnn", grad_clip=0, **ledger.IRNN)
    broken = ledger.Mechanisms.__new__(ledger.Mechanisms)
    broken.rows = [dataclasses.replace(r, ratio_first=1e-12) if r is irnn else r for r in m.rows]
    with pytest.raises(ledger.WordingError, match="C4"):
        ledger.c4(broken)


def test_inconclusive_is_said_as_such_and_a_mixed_claim_is_not_called_holding(facts):
    st = facts.claims.lstm_transformer
    trec = st.cells("trec")
    if all(c.cmp["outcome"] == "inconclusive" for c in trec):
        assert ledger.summary(trec, ledger.NAMES, "one point").startswith(
            "inconclusive at every size")
    assert ledger.claim_word([{"lstm": ["80"], "transformer": ["320"]}], "lstm",
                             "transformer") == "fails as a rule"
    assert ledger.claim_word([{"inconclusive": ["80", "160"]}], "lstm", "transformer") == \
        "inconclusive"
    assert ledger.claim_word([{"lstm": ["80"], "inconclusive": ["160"]}], "lstm",
                             "transformer") == "holds at some sizes, never reversed"


# ---------------------------------------------------------------------------- the re-run

sys.path.insert(0, str(ROOT / "scripts"))
import ledger_rerun  # noqa: E402  (scripts/ is not a package)


def _rerun(tmp_path, facts, delete: str = ""):
    """A stand-in re-run: the first study's database under the re-run's name, less the runs
    ``delete`` selects (SQL over ``runs``), with the re-run's plan."""
    import sqlite3

    shutil.copytree(ROOT / ledger_rerun.PLAN, tmp_path / ledger_rerun.PLAN)
    db = tmp_path / ledger_rerun.RERUN_DB
    shutil.copy(ROOT / ledger.CLAIM_DB, db)
    if delete:
        with sqlite3.connect(db) as conn:
            conn.execute(f"DELETE FROM runs WHERE {delete}")
    return ledger_rerun.Rerun(tmp_path, facts.claims)


EVALUATION = "json_extract(trial, '$.stage') IS NOT 'tune'"


def test_the_rerun_before_its_evaluation_runs_says_what_is_stored(tmp_path, facts):
    rerun = _rerun(tmp_path, facts, delete=EVALUATION)
    section = " ".join(ledger_rerun.section(rerun).split())
    assert "### C1, C2 on Digits (LSTM vs Transformer) Not analysed yet. Part 1: 60 tuning " \
           "trials done (LSTM 30, Transformer 30); no evaluation run yet." in section
    assert "|---|" not in section  # no table without evaluation runs
    block = " ".join(ledger_rerun.readme_block(rerun).split())
    assert block.startswith("In progress. Planned: 900 runs before extension rounds (720 tuning "
                            "trials + 180 evaluation runs; the first study's parts 1–4: 368 "
                            f"runs); {len(rerun.claims.runs)} are stored")
    assert "none is yet" in block
    assert "| 3 | Digits, GRU (C3) | 30 tuning trials done (GRU 30);" in block


def test_the_rerun_part_way_through_counts_each_models_evaluation_runs(tmp_path, facts):
    rerun = _rerun(tmp_path, facts, delete=f"{EVALUATION} AND model = 'transformer' AND "
                                           "(train_size IS NULL OR train_size >= 320)")
    text = " ".join(ledger_rerun.section(rerun).split())
    assert ("Part 1: 60 tuning trials done (LSTM 30, Transformer 30); evaluation runs: LSTM 30 of "
            "30 (every size), Transformer 12 of 30 (complete at n = 80 and 160).") in text
    # C3 does not need the Transformer: its digits comparison is analysed
    assert "### C3 on Digits (GRU vs LSTM) C3 *fails where the LSTM is ahead*" in text


def test_the_side_by_side_table_has_the_numbers_analyze_gives(tmp_path, facts):
    from seqbench.analysis.analyze import analyze
    from seqbench.store import Store

    # part 1 alone: the analysis of one variant keys its cells "default"
    rerun = _rerun(tmp_path, facts, delete="model = 'gru' OR task != 'classification' OR "
                                           "config LIKE '%train_5500%'")
    with Store(tmp_path / ledger_rerun.RERUN_DB, readonly=True) as store:
        result = analyze(store.runs(), store.curves())
    table = rerun.side_by_side(ledger_rerun.PAIRS[0], "digits").accuracy_table()
    speed = rerun.side_by_side(ledger_rerun.PAIRS[0], "digits").speed_table()
    pts = lambda v: f"{100 * v:+.1f}".replace("-", "−").replace("+0.0", "0.0")  # noqa: E731
    for cell in result["cells"]:
        x = next(c for c in cell["comparisons"] if {c["a"], c["b"]} == {"lstm", "transformer"})
        sign = 1 if x["a"] == "lstm" else -1  # the table says LSTM minus Transformer
        lo, hi = sorted(sign * v for v in x["ci"])
        said = f"{pts(sign * x['diff'])} [{pts(lo)}, {pts(hi)}]"
        row = next(r for r in table.splitlines() if r.startswith(f"| {cell['n']:,}"))
        assert row.count(said) == 2, (said, row)  # the first study and the stand-in re-run
        steps = {m["model"]: next(s["median_steps"] for s in m["ladder"] if s["level"] == 0.75)
                 for m in cell["models"]}
        lead = f"{steps['lstm']:,.0f} vs {steps['transformer']:,.0f}"
        assert next(r for r in speed.splitlines() if r.startswith(f"| {cell['n']:,}")).count(
            lead) == 2
    summary = rerun.side_by_side(ledger_rerun.PAIRS[0], "digits").summary()
    assert "Accuracy outcome the same at every size" in summary and "(unchanged)" in summary
    block = " ".join(ledger_rerun.readme_block(rerun).split())
    assert "1 of 4 is, side by side" in block and f"- **C1, C2 on Digits**: {summary}" in block
    section = " ".join(ledger_rerun.section(rerun).split())
    assert "### C3 on Digits (GRU vs LSTM) Not analysed yet. Part 1: 60 tuning trials done " \
           "(LSTM 30, Transformer 30); evaluation runs: LSTM 30 of 30 (every size), Transformer " \
           "30 of 30 (every size). Part 3: not started." in section


def test_a_rerun_with_other_sizes_than_the_first_study_stops_the_generator(tmp_path, facts):
    rerun = _rerun(tmp_path, facts, delete="train_size = 640")
    rerun.plan = [dataclasses.replace(p, sizes=tuple(n for n in p.sizes if n != 640))
                  for p in rerun.plan]
    with pytest.raises(ledger.WordingError, match="same sizes"):
        rerun.side_by_side(ledger_rerun.PAIRS[0], "digits").rows
