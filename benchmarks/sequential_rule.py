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
    print(f"\n({time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    main()
