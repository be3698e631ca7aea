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
