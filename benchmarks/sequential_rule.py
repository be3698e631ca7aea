"""The stopping rule of ``bench decide`` by simulation: what peeking after every seed costs.

Each simulated decision draws paired differences d_i = score_a - score_b one seed at a time and
looks after every seed from 3 to n_max, stopping at the first verdict. Units: the SD of the
paired difference (sigma_d). Rules: the planned design (group-sequential, Pocock-type spending
over n_max seeds; the default), the open-ended t-mixture confidence sequence (n_max=None, run to
the same n_max here), and a plain fixed-n t-interval read after every seed (what not to do).

Figures: false "better" rate under no difference (normal, heavy-tailed t3, and skewed noise:
exponential minus normal, so d is skewed as when two models' seed noise differs in shape);
decisions within n_max at a true difference of 1 sigma_d, and of 1/sqrt(2) sigma_d (one SD of
one model's seed noise when the two models' noises are independent: pairing on the seed usually
correlates them, which makes sigma_d smaller); median seeds to a decision; equivalence reached
under no difference with a margin of 1 sigma_d; the interval's half-width at 6, 8, 10, 20 seeds
in units of the sample SD.

    python benchmarks/sequential_rule.py [--sims 20000] [--n-max 20] [--alpha 0.05]
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from seqbench.analysis.sequential import VERDICTS, Sequential, replay, t_factor

A, B, EQ = (VERDICTS.index(v) for v in ("a", "b", "equivalent"))


def noise(kind: str, sims: int, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "normal":
        return rng.standard_normal((sims, n))
    if kind == "t3":
        return rng.standard_t(3, (sims, n)) / math.sqrt(3.0)
    if kind == "skewed":  # (Exp(1) - 1) - N(0, 1), scaled to unit SD: skewness ~0.7
        return (rng.exponential(1.0, (sims, n)) - 1.0 - rng.standard_normal((sims, n))) \
            / math.sqrt(2.0)
    raise ValueError(kind)


def rules(alpha: float, n_max: int):
    """name -> function(paths, margin) -> (codes, stops), all looking at seeds 3..n_max."""
    naive = [t_factor(n, alpha) for n in range(n_max + 1)]
    return {
        f"planned (n_max={n_max})": lambda x, m: Sequential(m, alpha, n_max=n_max).replay(x),
        "open-ended (t-mixture CS)": lambda x, m: Sequential(m, alpha, n_max=None).replay(x),
        "plain t-interval, peeking": lambda x, m: replay(x, naive, m, n_min=3),
    }


def half_widths(name: str, alpha: float, n_max: int, ns) -> list[float]:
    if name.startswith("plain"):
        return [t_factor(n, alpha) for n in ns]
    rule = Sequential(0.0, alpha, n_max=n_max if name.startswith("planned") else None)
    return [rule.radius_factor(n) for n in ns]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sims", type=int, default=20_000)
    ap.add_argument("--n-max", type=int, default=20)
    ap.add_argument("--alpha", type=float, default=0.05)
    args = ap.parse_args()
    sims, n_max, alpha = args.sims, args.n_max, args.alpha
    start = time.perf_counter()
    se = math.sqrt(alpha * (1 - alpha) / sims)
    paths = {k: noise(k, sims, n_max, seed) for seed, k in enumerate(("normal", "t3", "skewed"))}
    shift = noise("normal", sims, n_max, seed=10)
    ns = (6, 8, 10, 20)
    print(f"{sims} simulated decisions per figure, looks after every seed 3..{n_max}, "
          f"alpha {alpha} (simulation SE of a rate near alpha: {se:.4f}); units: SD of the "
          f"paired difference")
    for name, rule in rules(alpha, n_max).items():
        print(f"\n{name}")
        for kind, x in paths.items():
            codes, _ = rule(x, 0.0)
            print(f"  false 'better', no difference, {kind:6s}: "
                  f"{np.isin(codes, (A, B)).mean():.4f} "
                  f"(a {np.mean(codes == A):.4f}, b {np.mean(codes == B):.4f})")
        for delta, label in ((1.0, "1 SD"), (1 / math.sqrt(2), "0.71 SD")):
            codes, stops = rule(shift + delta, 0.0)
            right = codes == A
            print(f"  true difference {label:7s}: decided 'better' within {n_max} seeds "
                  f"{right.mean():.3f}, median seeds when decided "
                  f"{np.median(stops[right]):.0f}, median overall "
                  f"{np.median(np.where(right, stops, n_max + 1)):.0f}"
                  + (f" ({n_max + 1} = not by {n_max})" if right.mean() < 0.5 else ""))
        codes, stops = rule(paths["normal"], 1.0)
        eq = codes == EQ
        print(f"  no difference, margin 1 SD: 'equivalent' within {n_max} seeds {eq.mean():.3f} "
              f"(median seeds {np.median(stops[eq]):.0f}), a wrong 'better' "
              f"{np.isin(codes, (A, B)).mean():.4f}")
        widths = half_widths(name, alpha, n_max, ns)
        print("  half-width / sample SD at n = "
              + ", ".join(f"{n}: {w:.2f}" for n, w in zip(ns, widths)))
    heavy_tails(sims, n_max, alpha)
    print(f"\n({time.perf_counter() - start:.1f} s)")


def contaminated(sims: int, n: int, seed: int) -> np.ndarray:
    """Mean-zero differences with 10% outliers: N(1, 1) on 90% of seeds, N(-9, 1) on 10% (a rare
    seed on which one model does far worse, as a run that half-diverges)."""
    rng = np.random.default_rng(seed)
    out = rng.random((sims, n)) < 0.1
    return rng.standard_normal((sims, n)) + np.where(out, -9.0, 1.0)


def lognormal(sims: int, n: int, seed: int) -> np.ndarray:
    """Mean-zero lognormal-skewed differences: exp(N(0, 1)) - e^0.5 (skewness 6.2)."""
    return np.exp(np.random.default_rng(seed).standard_normal((sims, n))) - math.exp(0.5)


def diverging(sims: int, n: int, seed: int):
    """Accuracy points, B - A: B is 7 points better (seed noise 5) on the seeds it trains, and
    diverges on 10% of them, where it scores chance (10% against A's 80%). Returns the
    differences with a diverged seed scored at chance, and the mask of diverged seeds."""
    rng = np.random.default_rng(seed)
    bad = rng.random((sims, n)) < 0.1
    d = 7.0 + 5.0 * rng.standard_normal((sims, n))
    return np.where(bad, 10.0 - 80.0 + 5.0 * rng.standard_normal((sims, n)), d), bad


def dropped(d: np.ndarray, bad: np.ndarray):
    """The paired differences ``bench decide`` sees when a diverged seed is its own outcome: the
    other seeds moved to the front (NaN after them), and per path the round of every kept seed."""
    order = np.argsort(bad, axis=1, kind="stable")
    kept = np.take_along_axis(d, order, axis=1)
    kept[np.take_along_axis(bad, order, axis=1)] = np.nan
    rounds = np.take_along_axis(np.broadcast_to(np.arange(1, d.shape[1] + 1), d.shape), order, 1)
    return kept, rounds


def heavy_tails(sims: int, n_max: int, alpha: float) -> None:
    """The planned rule's false "better" rate when its normality assumption fails."""
    rule = Sequential(0.0, alpha, n_max=n_max)
    print(f"\nheavy tails (planned rule, n_max={n_max}; the rule tests the mean difference)")
    for name, x in (("10% outliers, mean zero", contaminated(sims, n_max, 20)),
                    ("lognormal-skewed, mean zero", lognormal(sims, n_max, 21))):
        codes, _ = rule.replay(x)
        print(f"  false 'better', {name:28s}: {np.isin(codes, (A, B)).mean():.4f} "
              f"(a {np.mean(codes == A):.4f}, b {np.mean(codes == B):.4f})")
    d, bad = diverging(sims, n_max, 22)
    codes, _ = rule.replay(d)
    print(f"  B 7 points better when it trains, diverging on 10% of seeds (mean difference "
          f"{d.mean():+.2f} points):")
    print(f"    a diverged seed scored at chance: 'B better' {np.mean(codes == A):.4f}, "
          f"'A better' {np.mean(codes == B):.4f}")
    kept, rounds = dropped(d, bad)
    codes, stops = rule.replay(kept)
    better = codes == A
    at = np.take_along_axis(rounds, np.maximum(stops - 1, 0)[:, None], 1)[:, 0]
    seen = (bad & (np.arange(1, n_max + 1) <= at[:, None])).any(axis=1)
    print(f"    a diverged seed its own outcome (bench decide): 'B better' {better.mean():.4f}, "
          f"of which with B's divergence reported {np.mean(seen[better]):.4f}; B diverged "
          f"within {n_max} seeds in {bad.any(axis=1).mean():.4f} of decisions")
    # what freezing the design prevents: undecided at n_max, resumed with twice the maximum
    x = noise("normal", sims, 2 * n_max, seed=23)
    codes, _ = rule.replay(x)
    longer = Sequential(0.0, alpha, n_max=2 * n_max).factors(2 * n_max)
    later, _ = replay(x, [math.inf] * (n_max + 1) + longer[n_max + 1:], 0.0, n_max + 1)
    wrong = np.isin(codes, (A, B)) | ((codes == 0) & np.isin(later, (A, B)))
    print(f"  resumed past the design (undecided at {n_max}, continued with --max-seeds "
          f"{2 * n_max}), normal, no difference: false 'better' {wrong.mean():.4f}")


if __name__ == "__main__":
    main()
