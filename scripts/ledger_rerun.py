"""C1–C3 under the neutral protocol beside the first study's: the ledger's section and README's
``rerun`` block, from the re-run's database as far as it has got.

A comparison (a pair on a task variant) is analysed once every evaluation run its parts plan is
stored, with the analysis the first study's verdicts come from (``ledger.Study``); until then its
state is counted from the database. The plan is the matrix the re-run is launched with.
"""

from __future__ import annotations

import functools
import statistics
import tomllib
from dataclasses import dataclass
from pathlib import Path

import ledger
from ledger import NAMES, VARIANTS, Cell, Claims, Study, count, expect, listing, minutes, when
from seqbench.records import FINISHED, RunRecord

RERUN_DB = "results/claim-rerun.sqlite"
PLAN = "results/claim-rerun"
CLASSIFICATION_DEFAULT_DATA = "digits"  # the classification task's data when a part names none


def variant_of(r: RunRecord) -> str | None:
    data = str(r.task_params.get("data", ""))
    return next((v for v, (key, _) in VARIANTS.items() if key in data), None)


def evaluation(r: RunRecord) -> bool:
    from seqbench.experiment.tuning import is_tune

    return not is_tune(r)


@dataclass(frozen=True)
class Part:
    """One matrix file of the re-run: the runs it plans."""

    number: int
    variant: str
    models: tuple[str, ...]
    sizes: tuple[int | None, ...]  # None: the full training set
    seeds: tuple[int, ...]
    trials: int  # tuning trials per model and size before extension rounds, every tuning seed

    def holds(self, r: RunRecord) -> bool:
        return r.model in self.models and variant_of(r) == self.variant

    @property
    def what(self) -> str:
        claims = "C3" if "gru" in self.models else "C1, C2"
        return (f"{VARIANTS[self.variant][1]}, " + " vs ".join(NAMES[m] for m in self.models)
                + f" ({claims})")

    @property
    def evaluations(self) -> int:
        return len(self.models) * len(self.sizes) * len(self.seeds)


def plan(folder: Path) -> list[Part]:
    out = []
    for file in sorted(folder.glob("*.toml")):
        spec = tomllib.loads(file.read_text(encoding="utf-8"))
        data = spec.get("task_params", {}).get("classification", {}).get(
            "data", CLASSIFICATION_DEFAULT_DATA)
        variant = next(v for v, (key, _) in VARIANTS.items() if key in data)
        tuning = spec.get("tuning", {})
        out.append(Part(int(file.stem.split("-")[0]), variant, tuple(spec["models"]),
                        tuple(None if s == "full" else s for s in spec["train_sizes"]),
                        tuple(spec["seeds"]), tuning.get("trials", 0) * tuning.get("seeds", 1)))
    return out


@dataclass(frozen=True)
class Pair:
    """A claim's pair: the favoured model first (differences are its minus the other's)."""

    claims: str
    models: tuple[str, str]
    first_study: str  # the Claims attribute holding the first study's analysis

    @property
    def title(self) -> str:
        return f"{NAMES[self.models[0]]} vs {NAMES[self.models[1]]}"


PAIRS = (Pair("C1, C2", ("lstm", "transformer"), "lstm_transformer"),
         Pair("C3", ("gru", "lstm"), "gru_lstm"))


@dataclass(frozen=True)
class Effort:
    runs: int
    run_s: float  # each finished run's finish minus start, summed
    train_s: float  # the runs' train_seconds, summed


def effort(runs: list[RunRecord]) -> Effort:
    done = [r for r in runs if r.status in FINISHED and r.started_at and r.finished_at]
    return Effort(len(done), sum(when(r.finished_at) - when(r.started_at) for r in done),
                  sum(r.train_seconds or 0 for r in done))


class Rerun:
    """The re-run's database read once, against the first study's analyses."""

    def __init__(self, root: Path, first: Claims, db: str = RERUN_DB):
        self.db = db
        self.first = first
        self.plan = plan(root / PLAN)
        self.claims = Claims(root / db)
        self.studies: dict[Pair, Study] = {}

    def runs(self, part: Part) -> list[RunRecord]:
        return [r for r in self.claims.runs if part.holds(r)]

    def parts(self, pair: Pair, variant: str) -> list[Part]:
        return [p for p in self.plan if p.variant == variant and set(p.models) & set(pair.models)]

    def complete(self, pair: Pair, variant: str) -> bool:
        """Every evaluation run the plan has for both models of the pair is finished."""
        for part in self.parts(pair, variant):
            done = {(r.model, r.train_size, r.seed) for r in self.runs(part)
                    if evaluation(r) and r.status in FINISHED}
            wanted = {(m, n, s) for m in set(part.models) & set(pair.models)
                      for n in part.sizes for s in part.seeds}
            if not wanted <= done:
                return False
        return bool(self.parts(pair, variant))

    def study(self, pair: Pair) -> Study:
        """The pair analysed over the variants it is complete on, nothing else."""
        if pair not in self.studies:
            variants = {v for v in VARIANTS if self.complete(pair, v)}
            runs = [r for r in self.claims.runs if variant_of(r) in variants]
            self.studies[pair] = Study(runs, self.claims.curves, "classification", pair.models)
        return self.studies[pair]

    def side_by_side(self, pair: Pair, variant: str) -> SideBySide:
        first: Study = getattr(self.first, pair.first_study)
        return SideBySide(pair, variant, first, self.study(pair))


# ---------------------------------------------------------------------------- one comparison


def said(key: str, names: dict, verb: str) -> str:
    return f"{names[key]} {verb}" if key in names else key.replace("_", " ")


def lead(c: Cell, pair: Pair) -> tuple[float | None, float | None]:
    """Median steps to three quarters of the way to the target, favoured and other model."""
    return (ledger.ladder_steps(c, pair.models[0], 0.75),
            ledger.ladder_steps(c, pair.models[1], 0.75))


def lead_text(c: Cell, pair: Pair) -> str:
    a, b = lead(c, pair)
    if not (a and b):
        return "—"
    return f"{count(a)} vs {count(b)} ({b / a:.1f}×)"


def speed_text(c: Cell) -> str:
    s = c.cmp["speed"] or {}
    p = s.get("p_holm")
    text = said(ledger.speed_key(c), NAMES, "sooner")
    if s.get("outcome") == "inconclusive" and p is not None and p < 0.05:
        text += f": {ledger.named(s['reason'])}"  # significant, yet not a verdict: say why
    return text + ("" if p is None else f" (Holm p = {ledger.pval(p)})")


@dataclass(frozen=True)
class SideBySide:
    """A pair on one variant, first study and re-run, size by size."""

    pair: Pair
    variant: str
    first: Study
    rerun: Study

    @functools.cached_property
    def rows(self) -> list[tuple[Cell, Cell]]:
        old, new = self.first.cells(self.variant), self.rerun.cells(self.variant)
        expect([c.n for c in old] == [c.n for c in new],
               f"re-run {self.variant}: sizes {[c.n for c in new]}, first study "
               f"{[c.n for c in old]}: the side-by-side table needs the same sizes")
        return list(zip(old, new))

    def accuracy_table(self) -> str:
        a, b = self.pair.models
        sc = self.first.scale(self.variant)
        diff = f"{NAMES[a]} − {NAMES[b]}, points [95% CI]"
        lines = [f"| n | first study: {diff} | outcome | re-run: {diff} | outcome |",
                 "|---|---|---|---|---|"]
        for old, new in self.rows:
            lines.append(f"| {old.size} | {ledger.interval(self.first, old, sc, first=a)} | "
                         f"{said(ledger.outcome_key(old), NAMES, 'better')} | "
                         f"{ledger.interval(self.rerun, new, sc, first=a)} | "
                         f"{said(ledger.outcome_key(new), NAMES, 'better')} |")
        return "\n".join(lines)

    def speed_table(self) -> str:
        a, b = (NAMES[m] for m in self.pair.models)
        steps = f"steps to ¾ of the way to the target, {a} vs {b} ({b} ÷ {a})"
        lines = [f"| n | first study: {steps} | re-run | time to the target, first study | "
                 "re-run |", "|---|---|---|---|---|"]
        for old, new in self.rows:
            lines.append(f"| {old.size} | {lead_text(old, self.pair)} | "
                         f"{lead_text(new, self.pair)} | {speed_text(old)} | {speed_text(new)} |")
        return "\n".join(lines)

    def words(self, study: Study) -> tuple[str, str]:
        """(accuracy claim, speed claim) over this variant's sizes."""
        a, b = self.pair.models
        cells = study.cells(self.variant)
        accuracy = (ledger.c3_word([ledger.tally(cells)]) if a == "gru" else
                    ledger.claim_word([ledger.tally(cells)], a, b))
        return accuracy, ledger.claim_word([ledger.speed_tally(cells)], a, b)

    def changes(self, key, verb: str) -> str:
        moved = [f"{old.size} ({said(key(old), NAMES, verb)} → {said(key(new), NAMES, verb)})"
                 for old, new in self.rows if key(old) != key(new)]
        if not moved:
            return "the same at every size"
        return (f"changed at n = {listing(moved)}" + ("" if len(moved) == len(self.rows) else
                                                      f"; the same at the other "
                                                      f"{len(self.rows) - len(moved)}"))

    def lead_change(self) -> str:
        """How the favoured model's early lead (the ladder ratio) moved, size by size."""
        a, b = (NAMES[m] for m in self.pair.models)
        ratios = []
        for old, new in self.rows:
            (oa, ob), (na, nb) = lead(old, self.pair), lead(new, self.pair)
            if oa and ob and na and nb:  # compared as printed: one decimal
                ratios.append((round(ob / oa, 1), round(nb / na, 1)))
        if not ratios:
            return ("the early lead cannot be compared: at no size did both models' median runs "
                    "get three quarters of the way to the target in both studies")
        lower, higher = (sum(n < o for o, n in ratios), sum(n > o for o, n in ratios))
        where = (f" at {len(ratios)} of {len(self.rows)} sizes (the others: a median run never "
                 "got there)" if len(ratios) < len(self.rows) else "")
        how = ("the same at each" if not lower and not higher else
               "lower at each" if lower == len(ratios) else
               "higher at each" if higher == len(ratios) else
               f"lower at {lower}, higher at {higher} of {len(ratios)} sizes")
        mo, mn = (statistics.median(o for o, _ in ratios), statistics.median(n for _, n in ratios))
        fmt = lambda v: f"{v:.1f}"  # noqa: E731
        text = (f"{b}'s median steps to three quarters of the way to the target ÷ the {a}'s"
                f"{where}: {ledger.span([o for o, _ in ratios], fmt)}× → "
                f"{ledger.span([n for _, n in ratios], fmt)}× (median {mo:.1f}× → {mn:.1f}×), "
                f"{how}")
        if mo <= 1:  # no early lead to shrink
            return text
        if mn <= 1:
            return text + f": the {a}'s early lead is gone"
        if mn < mo:  # the lead is the excess over 1×
            return text + (f": the {a}'s early lead (the median ratio's excess over 1×) "
                           f"shrinks by {1 - (mn - 1) / (mo - 1):.0%}")
        return text + f": the {a}'s early lead does not shrink"

    def summary(self) -> str:
        """The claim words, first study → re-run, and what moved."""
        (acc0, spd0), (acc1, spd1) = self.words(self.first), self.words(self.rerun)
        accuracy, speed = ("C3", "C3's \"trains faster\"") if self.pair.models[0] == "gru" else (
            "C1", "C2")
        arrow = lambda x, y: f"*{x}* → *{y}*" + (" (unchanged)" if x == y else "")  # noqa: E731
        return (f"{accuracy} {arrow(acc0, acc1)}; {speed} (to the final target) "
                f"{arrow(spd0, spd1)}. Accuracy outcome "
                f"{self.changes(ledger.outcome_key, 'better')}; time to the target "
                f"{self.changes(ledger.speed_key, 'sooner')}; {self.lead_change()}.")


# ---------------------------------------------------------------------------- the documents


def part_state(rerun: Rerun, part: Part) -> str:
    """What a part has stored: tuning trials, runs in progress, evaluation runs per model."""
    rs = rerun.runs(part)
    if not rs:
        return "not started"
    finished = [r for r in rs if r.status in FINISHED]
    tuning = [r for r in finished if not evaluation(r)]
    evals = [r for r in finished if evaluation(r)]
    running = len(rs) - len(finished)
    per_model = ", ".join(f"{NAMES[m]} {sum(r.model == m for r in tuning)}"
                          for m in part.models)
    text = f"{count(len(tuning))} tuning trials done ({per_model})"
    if running:  # claimed by a launch that had not finished them
        text += f"; {running} unfinished"
    if not evals:
        return text + "; no evaluation run yet"
    planned = len(part.sizes) * len(part.seeds)
    done = []
    for m in part.models:
        mine = [r for r in evals if r.model == m]
        sizes = [count(n) if n else "full" for n in part.sizes
                 if {r.seed for r in mine if r.train_size == n} >= set(part.seeds)]
        at = ("every size" if len(sizes) == len(part.sizes) else
              f"complete at n = {listing(sizes)}" if sizes else "")
        done.append(f"{NAMES[m]} {len(mine)} of {planned}" + (f" ({at})" if at else ""))
    return text + "; evaluation runs: " + ", ".join(done)


def comparisons(rerun: Rerun):
    for pair in PAIRS:
        for variant in ("digits", "trec"):
            if rerun.parts(pair, variant):
                yield pair, variant


def waiting(rerun: Rerun, pair: Pair, variant: str) -> str:
    return ". ".join(f"Part {p.number}: {part_state(rerun, p)}" for p in rerun.parts(pair, variant))


def section(rerun: Rerun) -> str:
    """The ledger's section: per comparison, the side-by-side tables or the state."""
    out = [f"""## C1–C3 under the neutral protocol

The claim study's parts 1–4 re-run under the neutral training protocol (equal warm-up,
warmup-stable-decay annealed before scoring, the GRU's update-gate bias at 1, 12 trials per
model and size on 2 tuning seeds; README "The finding" says why): `bench run --matrix {PLAN}
--db {rerun.db} --workers 2`, {count(len(rerun.claims.runs))} runs stored so far. Each
comparison is analysed, once all its evaluation runs are in, exactly as the first study's
(`bench analyze --db {rerun.db} --tasks classification --models lstm,transformer`, or
`lstm,gru`), and set beside it: differences and 95% intervals over the 6 paired seeds, the
outcome after Holm over the sizes, the median steps each model's runs take to three quarters of
the way to the cell's target, and the log-rank time-to-target outcome."""]
    for pair, variant in comparisons(rerun):
        title = f"### {pair.claims} on {VARIANTS[variant][1]} ({pair.title})"
        if not rerun.complete(pair, variant):
            out.append(f"{title}\n\nNot analysed yet. {waiting(rerun, pair, variant)}.")
            continue
        s = rerun.side_by_side(pair, variant)
        out.append(f"{title}\n\n{s.summary()}\n\n{s.accuracy_table()}\n\n{s.speed_table()}")
    return "\n\n" + "\n\n".join(out)


def readme_block(rerun: Rerun) -> str:
    """README's state of the re-run: per part, what is stored and what it cost; the verdicts
    that are in."""
    rows, first_runs = [], 0
    tuning = sum(p.trials * len(p.models) * len(p.sizes) for p in rerun.plan)
    evaluations = sum(p.evaluations for p in rerun.plan)
    for p in rerun.plan:
        new = effort(rerun.runs(p))
        old = effort([r for r in rerun.first.runs if p.holds(r)])
        first_runs += old.runs
        cost = (f"{minutes(new.run_s)} ({minutes(new.train_s)} training)" if new.runs else "—")
        rows.append(f"| {p.number} | {p.what} | {part_state(rerun, p)} | {cost} | "
                    f"{count(old.runs)} runs, {minutes(old.run_s)} ({minutes(old.train_s)}) |")
    ready = [(pair, v) for pair, v in comparisons(rerun) if rerun.complete(pair, v)]
    verdicts = [f"- **{pair.claims} on {VARIANTS[v][1]}**: "
                + rerun.side_by_side(pair, v).summary() for pair, v in ready]
    every = len(list(comparisons(rerun)))
    where = ("side by side with the first study's, size by size, in "
             "[`results/claims.md`](results/claims.md) (\"C1–C3 under the neutral protocol\")")
    if len(ready) == every:
        state, stand = "Complete", f"Every comparison is in, {where}"
    else:
        state = "In progress"
        stand = ("The verdicts above stay those of the first protocol until every comparison is "
                 + (f"in; {len(ready)} of {every} {'is' if len(ready) == 1 else 'are'}, {where}"
                    if ready else
                    f"in; none is yet. Each will go {where}"))
    return ledger.paragraphs(f"""{state}. Planned: {count(tuning + evaluations)} runs before
extension rounds ({count(tuning)} tuning trials + {count(evaluations)} evaluation runs; the first
study's parts 1–4: {count(first_runs)} runs); {count(len(rerun.claims.runs))} are
stored in the committed `{rerun.db}`. Run-minutes: each run's finish minus its start, summed
(two runs at a time); training: the runs' `train_seconds`, summed.

| part | what | stored | run-minutes (training) | first study's part: runs, run-minutes (training) |
|---|---|---|---|---|
{chr(10).join(rows)}

{stand}{":" if verdicts else "."}""") + (
        "\n" + ledger.wrap("\n".join(verdicts)) + "\n" if verdicts else "")
