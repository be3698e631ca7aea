"""Write ``scan_simple_test.bits``: the published SCAN *simple* split as a 2.6 KB bitmask.

The simple split of Lake & Baroni (2018) is a random 80/20 partition of the 20,910 commands, so
it cannot be derived from the grammar. This script reads the published files and stores one bit
per command of :func:`seqbench_tasks.scan.commands` (the generated commands, sorted), most
significant bit first: 1 = the command is in ``tasks_test_simple.txt``, 0 = it is in
``tasks_train_simple.txt``. It checks that every published pair equals the generated one.

Run once (the output is shipped with the package; the package never reads the reference files)::

    python tasks/data/make_scan_split.py [/path/to/SCAN/simple_split_dir [output_file]]

The output defaults to ``scan_simple_test.bits`` next to this script. The directory defaults to
``/work/shared/data/scan``; it must hold ``tasks_train_simple.txt`` and ``tasks_test_simple.txt``
(lines ``IN: <command> OUT: <actions>``, as in the SCAN repository).
"""

from __future__ import annotations

import sys
from pathlib import Path

from seqbench_tasks import scan


def read_pairs(path: Path) -> list[tuple[str, str]]:
    out = []
    for line in path.read_text().splitlines():
        if line.strip():
            command, actions = line.split(" OUT: ")
            out.append((command.removeprefix("IN: ").strip(), actions.strip()))
    return out


def main(argv: list[str]) -> int:
    src = Path(argv[1] if len(argv) > 1 else "/work/shared/data/scan")
    train = read_pairs(src / "tasks_train_simple.txt")
    test = read_pairs(src / "tasks_test_simple.txt")
    generated = dict(scan.pairs())
    seen = set()
    for command, actions in train + test:
        if generated.get(command) != actions:
            raise SystemExit(f"published pair differs from the grammar: {command!r}")
        if command in seen:
            raise SystemExit(f"command listed twice: {command!r}")
        seen.add(command)
    if seen != set(generated):
        raise SystemExit(f"published split covers {len(seen)} of {len(generated)} commands")
    in_test = {c for c, _ in test}
    bits = [c in in_test for c in scan.commands()]
    out = Path(argv[2]) if len(argv) > 2 else Path(__file__).with_name(scan.SIMPLE_MASK)
    out.write_bytes(scan.pack_mask(bits))
    print(f"wrote {out} ({len(train)} train / {len(test)} test commands)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
