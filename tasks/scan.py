"""SCAN (Lake & Baroni, ICML 2018), generated from its grammar and interpretation rules.

Pure Python and cached, so a benchmark matrix generates SCAN once per process. The grammar and
the splits: see docs/methods.md#scan.
"""

from __future__ import annotations

import functools
from importlib import resources

PRIMITIVES = ("walk", "look", "run", "jump")
DIRECTIONS = ("left", "right")
ACTION = {p: "I_" + p.upper() for p in PRIMITIVES}
TURN = {d: "I_TURN_" + d.upper() for d in DIRECTIONS}

SPLITS = ("simple", "length")
LENGTH_LIMIT = 22  # length split: train has <= 22 actions, test >= 24 (no sequence has 23)
SIMPLE_MASK = "scan_simple_test.bits"  # bit i set: sorted command i is in the simple test split
N_COMMANDS = 20910


def _verb_phrases() -> list[tuple[str, list[str]]]:
    """Every V of the grammar with its action sequence."""
    out = [(u, [ACTION[u]]) for u in PRIMITIVES]  # V -> U
    for d in DIRECTIONS:
        t = TURN[d]
        out.append((f"turn {d}", [t]))  # D -> turn left
        for u in PRIMITIVES:
            out.append((f"{u} {d}", [t, ACTION[u]]))  # D -> U left
        out.append((f"turn opposite {d}", [t, t]))
        for u in PRIMITIVES:
            out.append((f"{u} opposite {d}", [t, t, ACTION[u]]))
        out.append((f"turn around {d}", [t] * 4))
        for u in PRIMITIVES:
            out.append((f"{u} around {d}", [t, ACTION[u]] * 4))
    return out


def _sentences() -> list[tuple[str, list[str]]]:
    """Every S: V, V twice, V thrice."""
    out = []
    for cmd, act in _verb_phrases():
        out.append((cmd, act))
        out.append((f"{cmd} twice", act * 2))
        out.append((f"{cmd} thrice", act * 3))
    return out


def generate_pairs() -> list[tuple[str, str]]:
    """All (command, actions) pairs of SCAN in grammar order (uncached; see :func:`pairs`)."""
    sents = _sentences()
    out = [(c, " ".join(a)) for c, a in sents]
    for c1, a1 in sents:
        for c2, a2 in sents:
            out.append((f"{c1} and {c2}", " ".join(a1 + a2)))
            out.append((f"{c1} after {c2}", " ".join(a2 + a1)))
    return out


@functools.lru_cache(maxsize=None)
def pairs() -> tuple[tuple[str, str], ...]:
    """All 20,910 pairs, sorted by command: the canonical order the split bitmask refers to."""
    return tuple(sorted(generate_pairs()))


def commands() -> list[str]:
    return [c for c, _ in pairs()]


def _read_mask(name: str) -> list[bool]:
    data = resources.files("seqbench_tasks").joinpath("data", name).read_bytes()
    bits = [bool(byte >> (7 - k) & 1) for byte in data for k in range(8)]
    return bits[:N_COMMANDS]


def pack_mask(bits: list[bool]) -> bytes:
    """Bits (most significant first) to bytes; the inverse of the reader above."""
    out = bytearray((len(bits) + 7) // 8)
    for i, b in enumerate(bits):
        if b:
            out[i // 8] |= 0x80 >> (i % 8)
    return bytes(out)


@functools.lru_cache(maxsize=None)
def split(name: str) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
    """``(train, test)`` pairs of a published split, each in canonical (sorted) order."""
    all_pairs = pairs()
    if name == "simple":
        in_test = _read_mask(SIMPLE_MASK)
        if len(in_test) != len(all_pairs):
            raise RuntimeError(f"{SIMPLE_MASK} is corrupt: {len(in_test)} bits")
    elif name == "length":
        in_test = [len(a.split()) > LENGTH_LIMIT for _, a in all_pairs]
    else:
        from seqbench.api import PluginError

        raise PluginError(f"unknown SCAN split {name!r} (available: {', '.join(SPLITS)})")
    train = tuple(p for p, t in zip(all_pairs, in_test) if not t)
    test = tuple(p for p, t in zip(all_pairs, in_test) if t)
    return train, test
