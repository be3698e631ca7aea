"""Raw (source, target) string pairs of the translation task: SCAN, SCAN-format directories,
parallel text, tables and hub data sets, with fixed-seed held-out sets where the data has none."""

from __future__ import annotations

import functools
import gzip
from pathlib import Path

from seqbench.api import PluginError
from seqbench.util import one_line

VAL_SEED = 20180613  # fixed: held-out sets must not move with the run's seed
TEST_SEED = 20160807
HOLDOUT_CAP = 0.1  # a carved validation/test set takes at most this share of the data
VAL_NAMES = ("val", "valid", "validation", "dev")
TABLE_EXTS = ("csv", "tsv", "json", "jsonl", "parquet")


@functools.lru_cache(maxsize=8)
def raw_pairs(source: tuple):
    """``(scan_like, train, val, test, info)`` as tuples of (source, target) strings."""
    data, _, val_size, test_size, *_ = source
    scan_like, train, val, test, info = _read(source)
    train = list(train)
    for name, pairs in (("training", train), ("validation", val), ("test", test)):
        if pairs is not None and not pairs:
            raise PluginError(f"data {data!r}: the {name} split has no usable pairs")
    total = len(train)  # the 10% caps refer to the training data as given
    if test is None:
        train, test = _carve(train, min(test_size, int(total * HOLDOUT_CAP)), TEST_SEED, "test")
        info["test_carved_from_train"] = True
    if val is None:
        train, val = _carve(train, min(val_size, int(total * HOLDOUT_CAP)), VAL_SEED, "validation")
        info["val_carved_from_train"] = True
    return scan_like, tuple(train), tuple(val), tuple(test), tuple(info.items())


def _read(source: tuple):
    """The splits the data itself has (None where it has none), picked by the data's layout."""
    data, split, _, _, src_lang, tgt_lang, src_col, tgt_col, test_name, config, _ = source
    if data == "scan":
        from . import scan

        if split not in scan.SPLITS:
            raise PluginError(
                f"unknown SCAN split {split!r} (available: {', '.join(scan.SPLITS)})"
            )
        train, test = scan.split(split)
        return True, train, None, test, {"data": "scan", "split": split}
    path = Path(data).expanduser()
    is_table_name = path.suffix.lower().lstrip(".") in TABLE_EXTS
    if not path.exists() and (data.startswith(("/", ".", "~")) or is_table_name):
        raise PluginError(f"data path not found: {data}")
    if path.is_dir() and list(path.glob("tasks_train_*.txt")):
        return True, *_scan_dir(path, split), {"data": str(path), "split": split}
    if path.is_dir() and _find(path, "train", (src_lang,)):
        info = {"data": str(path), "source_lang": src_lang, "target_lang": tgt_lang}
        return False, *_parallel_dir(path, src_lang, tgt_lang, test_name), info
    if path.is_dir():
        splits = _table_dir(path, src_lang, tgt_lang, src_col, tgt_col, test_name)
        return False, *splits, {"data": str(path)}
    if path.is_file():
        table = _load_table(str(path), config)
        train = _pairs(table, src_lang, tgt_lang, src_col, tgt_col)
        return False, train, None, None, {"data": str(path)}
    splits = _hub(data, config, src_lang, tgt_lang, src_col, tgt_col, test_name)
    return False, *splits, {"data": data}


def _carve(pairs: list, k: int, seed: int, what: str) -> tuple[list, list]:
    from seqbench.datautil import split_off

    if k < 1:
        raise PluginError(
            f"only {len(pairs)} training pairs: too few to hold out a {what} set; "
            f"provide a {what} split"
        )
    kept, held = split_off(len(pairs), k, seed)
    return [pairs[i] for i in kept], [pairs[i] for i in held]


# --------------------------------------------------------------------------------------------
# SCAN-format directories


def _read_scan_file(path: Path) -> list[tuple[str, str]]:
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        if not line.startswith("IN: ") or " OUT: " not in line:
            raise PluginError(f"{path}:{n}: expected 'IN: <command> OUT: <actions>'")
        command, actions = line[4:].split(" OUT: ", 1)
        out.append((command.strip(), actions.strip()))
    return out


def _scan_dir(path: Path, split: str):
    train_file = path / f"tasks_train_{split}.txt"
    if not train_file.exists():
        names = sorted(f.name[len("tasks_train_") : -4] for f in path.glob("tasks_train_*.txt"))
        raise PluginError(f"unknown SCAN split {split!r} in {path} (available: {', '.join(names)})")
    train = _read_scan_file(train_file)
    test_file = path / f"tasks_test_{split}.txt"
    if test_file.exists():
        test = _read_scan_file(test_file)
    elif (path / "tasks.txt").exists():
        seen = {c for c, _ in train}
        test = [p for p in _read_scan_file(path / "tasks.txt") if p[0] not in seen]
    else:
        raise PluginError(f"{path}: no tasks_test_{split}.txt (nor tasks.txt to derive it)")
    return train, None, test


# --------------------------------------------------------------------------------------------
# Parallel text directories


def _find(path: Path, stem: str, langs: tuple[str, ...]) -> Path | None:
    for lang in langs:
        for name in (f"{stem}.{lang}", f"{stem}.{lang}.gz"):
            if (path / name).is_file():
                return path / name
    return None


def _read_lines(path: Path) -> list[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8", newline="") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise PluginError(f"{path}: cannot read: {exc}") from None
    lines = text.split("\n")  # not splitlines(): it also splits on \x85 and \u2028
    if lines and lines[-1] == "":
        lines.pop()
    return [line.rstrip("\r") for line in lines]


def _aligned(path: Path, stem: str, src: str, tgt: str) -> list[tuple[str, str]]:
    s_file, t_file = _find(path, stem, (src,)), _find(path, stem, (tgt,))
    if s_file is None or t_file is None:
        missing = src if s_file is None else tgt
        raise PluginError(f"{path}: no {stem}.{missing} (or {stem}.{missing}.gz) file")
    s_lines, t_lines = _read_lines(s_file), _read_lines(t_file)
    if len(s_lines) != len(t_lines):
        raise PluginError(
            f"{s_file.name} has {len(s_lines)} lines but {t_file.name} has {len(t_lines)}"
        )
    return _clean(zip(s_lines, t_lines))


def _text_stems(path: Path, lang: str) -> set[str]:
    """Parallel text stems in ``path``: ``test_2016_flickr.de.gz`` -> ``test_2016_flickr``."""
    out = set()
    for f in path.iterdir():
        name = f.name[:-3] if f.name.endswith(".gz") else f.name
        if name.endswith(f".{lang}"):
            out.add(name[: -len(lang) - 1])
    return out


def _table_files(path: Path) -> dict[str, Path]:
    """Table files in ``path`` by stem: ``test.jsonl`` -> ``{"test": path/test.jsonl}``."""
    found = sorted(f for f in path.iterdir() if f.suffix.lstrip(".").lower() in TABLE_EXTS)
    out: dict[str, Path] = {}
    for f in found:
        out.setdefault(f.stem, f)
    return out


def _pick_test(stems: set[str], test_name: str, where: str) -> str | None:
    tests = sorted(s for s in stems if s.startswith("test"))
    if test_name:
        if test_name not in stems:
            raise PluginError(
                f"test split {test_name!r} not found in {where} (available: "
                f"{', '.join(tests) or 'none'})"
            )
        return test_name
    if not tests:
        return None
    return "test" if "test" in tests else tests[0]


def _parallel_dir(path: Path, src: str, tgt: str, test_name: str):
    stems = _text_stems(path, src)
    train = _aligned(path, "train", src, tgt)
    val_stem = next((v for v in VAL_NAMES if v in stems), None)
    val = _aligned(path, val_stem, src, tgt) if val_stem else None
    test_stem = _pick_test(stems, test_name, str(path))
    test = _aligned(path, test_stem, src, tgt) if test_stem else None
    return train, val, test


# --------------------------------------------------------------------------------------------
# Tables (local files and the hub)


def _load_table(source: str, config: str):
    from seqbench.datautil import load_table

    kwargs = {"name": config} if config else {}
    try:
        return load_table(source, **kwargs)
    except PluginError:
        raise
    except Exception as exc:  # a malformed file: datasets' errors are long
        raise PluginError(f"could not read {source}: {one_line(exc, typed=False)}") from None


def _table_dir(path: Path, src_lang, tgt_lang, src_col, tgt_col, test_name):
    files = _table_files(path)
    stems = set(files)
    if "train" not in stems:
        raise PluginError(
            f"{path}: no train.<lang> parallel text for source_lang {src_lang!r}, no "
            f"tasks_train_*.txt and no train.{{{','.join(TABLE_EXTS)}}} table"
        )

    def table(stem):
        return _pairs(_load_table(str(files[stem]), ""), src_lang, tgt_lang, src_col, tgt_col)

    val_stem = next((v for v in VAL_NAMES if v in stems), None)
    test_stem = _pick_test(stems, test_name, str(path))
    return (
        table("train"),
        table(val_stem) if val_stem else None,
        table(test_stem) if test_stem else None,
    )


def _hub(data, config, src_lang, tgt_lang, src_col, tgt_col, test_name):
    tables = _load_table(data, config)
    if not hasattr(tables, "keys"):  # a single split came back
        tables = {"train": tables}
    names = sorted(tables.keys())
    if "train" not in tables:
        raise PluginError(f"data set {data!r} has no 'train' split (splits: {', '.join(names)})")
    val_name = next((v for v in VAL_NAMES if v in tables), None)
    test_name = _pick_test(set(names), test_name, f"data set {data!r}")

    def pairs(name):
        return _pairs(tables[name], src_lang, tgt_lang, src_col, tgt_col) if name else None

    return pairs("train"), pairs(val_name), pairs(test_name)


def _pairs(table, src_lang, tgt_lang, src_col, tgt_col) -> list[tuple[str, str]]:
    from seqbench.datautil import column

    cols = table.column_names
    if src_col not in cols and tgt_col not in cols and "translation" in cols:
        rows = table["translation"]
        first = rows[0] if len(rows) else {}
        for lang in (src_lang, tgt_lang):
            if not isinstance(first, dict) or lang not in first:
                keys = ", ".join(sorted(first)) if isinstance(first, dict) else "none"
                raise PluginError(
                    f"'translation' column has no language {lang!r} (languages: {keys})"
                )
        return _clean((r.get(src_lang), r.get(tgt_lang)) for r in rows)
    sources = column(table, src_col, "source")
    targets = column(table, tgt_col, "target")
    return _clean(zip(sources, targets))


def _clean(pairs) -> list[tuple[str, str]]:
    """Pairs as stripped strings, dropping those with an empty (or missing) side."""
    out = []
    for s, t in pairs:
        s = "" if s is None else str(s).strip()
        t = "" if t is None else str(t).strip()
        if s and t:
            out.append((s, t))
    return out
