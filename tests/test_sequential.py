"""The sequential stopping rule of ``bench decide``, checked by simulation (fixed seeds, numpy
vectorised: a few seconds) and on hand-made differences whose answers are known."""

import math

import numpy as np
import pytest
from scipy import stats

from seqbench.analysis.sequential import (
    VERDICTS,
    Sequential,
    decide_best,
    lai_factor,
    replay,
    t_factor,
)

ALPHA = 0.05
SIMS = 4000
N_MAX = 20
SE = math.sqrt(ALPHA * (1 - ALPHA) / SIMS)  # simulation error of a rate near alpha
BETTER = (VERDICTS.index("a"), VERDICTS.index("b"))
RULES = {"planned": dict(n_max=N_MAX), "open-ended": dict(n_max=None)}


def noise(kind, seed, sims=SIMS, n=N_MAX):
    rng = np.random.default_rng(seed)
    if kind == "normal":
        return rng.standard_normal((sims, n))
    return rng.standard_t(3, (sims, n)) / math.sqrt(3.0)  # heavy tails, unit variance


def false_better_rate(codes):
    return float(np.isin(codes, BETTER).mean())


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("kind", ["normal", "t3"])
def test_peeking_after_every_seed_keeps_false_better_rate_within_alpha(rule, kind):
    codes, stops = Sequential(0.0, ALPHA, **RULES[rule]).replay(noise(kind, seed=1))
    rate = false_better_rate(codes)
    assert rate <= ALPHA + 2 * SE, rate
    assert stops.max() <= N_MAX
    if rule == "planned" and kind == "normal":
        # Calibrated, not merely conservative: the design spends (about) all of alpha.
        assert rate >= ALPHA - 3 * SE, rate


def test_plain_t_interval_with_the_same_peeking_exceeds_alpha():
    paths = noise("normal", seed=1)
    naive = [t_factor(n, ALPHA) for n in range(N_MAX + 1)]
    rate = false_better_rate(replay(paths, naive, margin=0.0, n_min=3)[0])
    assert rate > ALPHA + 6 * SE, rate  # measured ~0.23: peeking inflates it ~4.5x
    # ... while each single look alone is an honest 5% test (the inflation is the peeking).
    last = paths[:, :N_MAX]
    t_last = last.mean(1) / (last.std(1, ddof=1) / math.sqrt(N_MAX))
    assert abs(float((np.abs(t_last) > stats.t.ppf(1 - ALPHA / 2, N_MAX - 1)).mean()) - ALPHA) \
        < 3 * SE


@pytest.mark.parametrize("rule", RULES)
def test_one_sd_difference_is_decided_within_n_max(rule):
    codes, stops = Sequential(0.0, ALPHA, **RULES[rule]).replay(noise("normal", seed=2) + 1.0)
    right = codes == VERDICTS.index("a")
    assert right.mean() >= 0.80, right.mean()  # measured 0.95 planned, 0.86 open-ended
    assert (codes == VERDICTS.index("b")).mean() < 0.01
    assert np.median(stops[right]) <= 12  # measured 10 planned, 11 open-ended


def test_equivalence_within_one_sd_is_reached_under_no_difference():
    codes, _ = Sequential(1.0, ALPHA, n_max=N_MAX).replay(noise("normal", seed=3))
    assert (codes == VERDICTS.index("equivalent")).mean() >= 0.80  # measured ~0.87
    assert false_better_rate(codes) <= ALPHA + 2 * SE


def test_equivalence_is_not_declared_when_the_difference_is_the_margin():
    # True difference exactly at the margin: "equivalent" would be a wrong verdict.
    codes, _ = Sequential(1.0, ALPHA, n_max=N_MAX).replay(noise("normal", seed=4) + 1.0)
    assert (codes == VERDICTS.index("equivalent")).mean() <= ALPHA + 2 * SE


def test_decide_agrees_with_replay_and_stays_undecided_before_the_stop():
    rule = Sequential(0.5, ALPHA, n_max=N_MAX)
    paths = noise("normal", seed=5, sims=60) + 0.6
    codes, stops = rule.replay(paths)
    assert (stops > 0).sum() > 30
    for path, code, stop in zip(paths, codes, stops):
        end = stop if stop else N_MAX
        verdicts = [rule.decide(path[:n]).verdict for n in range(1, end + 1)]
        assert set(verdicts[:-1]) <= {"undecided"}
        assert verdicts[-1] == VERDICTS[code]


def test_planned_interval_is_mean_plus_minus_factor_times_sd_and_narrows():
    rule = Sequential(0.1, ALPHA, n_max=N_MAX)
    d = np.array([0.3, -0.1, 0.5, 0.2, 0.1, 0.4, 0.0, 0.25])
    dec = rule.decide(d)
    h = rule.radius_factor(8)
    assert dec.estimate == pytest.approx(d.mean())
    assert dec.sd == pytest.approx(d.std(ddof=1))
    assert (dec.low, dec.high) == pytest.approx((d.mean() - h * dec.sd, d.mean() + h * dec.sd))
    assert dec.n == 8 and dec.valid_at_any_stop and dec.margin == 0.1
    hs = [rule.radius_factor(n) for n in range(3, N_MAX + 1)]
    assert all(a > b for a, b in zip(hs, hs[1:]))
    # Wider than a fixed-n t-interval at every look (it must pay for peeking), and usable:
    # at most ~1.4 SD at 8 seeds (measured 1.37; the fixed-n t-interval: 0.84).
    assert all(h > t_factor(n, ALPHA) for n, h in zip(range(3, N_MAX + 1), hs))
    assert rule.radius_factor(8) < 1.45


def test_lai_factor_inverts_the_t_mixture_bayes_factor():
    rng = np.random.default_rng(6)
    for n in (5, 8, 13):
        x = rng.normal(0.3, 1.0, n)
        S = ((x - x.mean()) ** 2).sum()
        g = 2.0

        def bf(mu):
            y2 = n * (x.mean() - mu) ** 2
            return (1 + n * g) ** -0.5 * ((S + y2) / (S + y2 / (1 + n * g))) ** (n / 2)

        edge = x.mean() + lai_factor(n, ALPHA, g) * x.std(ddof=1)
        assert bf(edge) == pytest.approx(1 / ALPHA, rel=1e-9)
        assert bf(edge - 1e-3) < 1 / ALPHA < bf(edge + 1e-3)
    assert lai_factor(3, ALPHA) == math.inf  # three seeds cannot exclude anything at 5%


def test_few_seeds_give_no_verdict_and_an_unbounded_interval():
    rule = Sequential(0.1)
    for d in ([], [5.0], [5.0, 5.1]):
        dec = rule.decide(d)
        assert dec.verdict == "undecided" and dec.n == len(d)
        assert (dec.low, dec.high) == (-math.inf, math.inf) and dec.valid_at_any_stop
    assert rule.seeds_to_decide_estimate([5.0]) is None
    # A huge, steady effect needs only the first look (n_min = 3).
    assert rule.seeds_to_decide_estimate([5.0, 5.1]) == 1
    assert rule.decide([5.0, 5.1, 4.9]).verdict == "a"


def test_beyond_n_max_the_interval_is_flagged_and_the_verdict_withheld():
    rule = Sequential(0.1, n_max=5)
    d = [1.0, 1.2, 0.9, 1.1, 1.05, 1.0]
    assert rule.decide(d[:5]).verdict == "a"
    late = rule.decide(d)
    assert late.verdict == "undecided" and not late.valid_at_any_stop
    half = t_factor(6, ALPHA) * np.std(d, ddof=1)
    assert (late.low, late.high) == pytest.approx((np.mean(d) - half, np.mean(d) + half))
    assert rule.seeds_to_decide_estimate(d) is None  # the design has ended
    assert Sequential(0.1, n_max=5).seeds_to_decide_estimate([0.0, 1.0, -1.0, 0.5, -0.5]) is None
    assert Sequential(0.1, n_max=None).decide(d).valid_at_any_stop


def test_verdicts_read_off_the_interval():
    rule = Sequential(0.5, n_max=N_MAX)
    assert rule.decide([1.0, 1.1, 0.9, 1.0]).verdict == "a"
    assert rule.decide([-1.0, -1.1, -0.9, -1.0]).verdict == "b"
    assert rule.decide([0.01, -0.01, 0.0, 0.02]).verdict == "equivalent"
    assert rule.decide([0.3, -0.2, 0.5, 0.0]).verdict == "undecided"
    # Inside the margin and above 0: the margin says the difference does not matter.
    assert rule.decide([0.1, 0.11, 0.09, 0.1]).verdict == "equivalent"
    assert Sequential(0.0).decide([0.1, 0.11, 0.09, 0.1]).verdict == "a"
    # No spread at all: a zero-width interval.
    assert Sequential(0.5).decide([0.0, 0.0, 0.0]).verdict == "equivalent"
    assert Sequential(0.0).decide([0.0, 0.0, 0.0]).verdict == "undecided"


def test_seeds_to_decide_estimate_grows_as_the_effect_shrinks_and_tracks_simulation():
    rule = Sequential(0.0, ALPHA, n_max=N_MAX)
    base = np.array([-1.0, 0.0, 1.0, 0.0])  # sd 0.816
    more = [rule.seeds_to_decide_estimate(base * 1.2247 + e) for e in (2.0, 1.5, 1.0)]
    assert more[0] < more[1] < more[2]  # measured 3, 5, 12
    assert rule.seeds_to_decide_estimate(base * 1.2247 + 0.7) is None  # not likely by n_max
    assert rule.seeds_to_decide_estimate(base) is None  # no effect, no margin: never
    assert Sequential(2.0).seeds_to_decide_estimate(base) is not None  # equivalence will come
    # Truth = mean 1, SD 1: the plug-in guess should sit near the seeds by which ~80% of
    # simulated decisions have come.
    codes, stops = rule.replay(noise("normal", seed=7) + 1.0)
    p80 = np.quantile(np.where(stops > 0, stops, N_MAX + 1), 0.8)
    guess = 4 + more[2]
    assert abs(guess - p80) <= 3, (guess, p80)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="finite"):
        Sequential(0.1).decide([0.1, math.nan, 0.2])
    with pytest.raises(ValueError, match="1-D"):
        Sequential(0.1).decide([[0.1, 0.2]])
    for kw in (dict(margin=-1), dict(margin=math.inf), dict(margin=0.1, alpha=0),
               dict(margin=0.1, n_min=1), dict(margin=0.1, n_max=2),
               dict(margin=0.1, n_min=2.5)):
        with pytest.raises(ValueError):
            Sequential(**kw)
    with pytest.raises(ValueError, match="two models"):
        decide_best({"lstm": [1.0]}, 0.1)
    with pytest.raises(ValueError, match="paired"):
        decide_best({"lstm": [1.0, 2.0], "gru": [1.0]}, 0.1)


def test_decide_best_with_three_models():
    scores = {"transformer": [0.70, 0.72, 0.71, 0.70], "lstm": [0.80, 0.81, 0.79, 0.80],
              "gru": [0.80, 0.805, 0.79, 0.801]}
    res = decide_best(scores, margin=0.02)
    assert res.best == "lstm" and res.n == 4
    assert res.alpha_per_pair == pytest.approx(ALPHA / 3)  # all three pairs
    assert res.comparisons["transformer"].verdict == "a"
    assert res.comparisons["transformer"].estimate == pytest.approx(0.0925)
    assert res.comparisons["gru"].verdict == "equivalent"
    assert (res.verdict, res.tied, res.more_seeds) == ("equivalent", ("lstm", "gru"), 0)
    # The Bonferroni share widens each interval beyond the two-model one.
    two = Sequential(0.02).decide(np.subtract(scores["lstm"], scores["transformer"]))
    assert res.comparisons["transformer"].low < two.low
    # Error rates: lowest is best; the verdict names the model.
    errs = {"lstm": [0.10, 0.11, 0.12], "transformer": [0.30, 0.31, 0.29]}
    res = decide_best(errs, margin=0.01, higher_is_better=False)
    assert (res.best, res.verdict, res.tied) == ("lstm", "lstm", ("lstm",))
    assert res.comparisons["transformer"].estimate == pytest.approx(0.19)
    res = decide_best({"a": [0.5, 0.6, 0.4], "b": [0.55, 0.5, 0.5]}, margin=0.01)
    assert res.verdict == "undecided" and res.tied == ()


def test_decide_best_picking_the_best_at_every_look_keeps_errors_within_alpha():
    # Three models with no difference, looked at after every seed: any comparison claiming
    # "best is better than m" is wrong. The best is chosen from the data each time, hence
    # Bonferroni over all pairs (measured 0.045 here; 0.165 with each pair at alpha).
    sims = 400
    rng = np.random.default_rng(8)
    x = rng.standard_normal((sims, 3, N_MAX))
    wrong = 0
    for path in x:
        for n in range(3, N_MAX + 1):
            res = decide_best({"a": path[0, :n], "b": path[1, :n], "c": path[2, :n]}, margin=0.0)
            if any(c.verdict != "undecided" for c in res.comparisons.values()):
                wrong += 1
                break
    se = math.sqrt(ALPHA * (1 - ALPHA) / sims)
    assert wrong / sims <= ALPHA + 2 * se, wrong / sims
