"""Copy one protocol's runs out of a database that also holds another protocol's, into a new
database that holds that protocol alone.

A pruned study trained into a copy of an unpruned one (README "Fair tuning") shares the runs both
protocols plan alike: a survivor's full run is the unpruned protocol's run of that trial (one run
id). This replays the matrix's launch decisions from the stored runs (nothing trains), copies
every run the protocol planned (its curve and gradients too) with the ``trial`` the protocol
gave it, and records the matrix, so ``bench analyze`` and ``benchmarks/pruning_live.py`` read the
new file as that protocol's study. Every planned run must be finished in the source.

    python scripts/protocol_runs.py --matrix results/claim-rerun-pruned \\
        --source mixed.sqlite --into results/claim-rerun-pruned.sqlite
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict, replace
from datetime import datetime, timezone
from pathlib import Path

from seqbench.experiment import labels, matrixfile
from seqbench.experiment.plan import plan as make_plan
from seqbench.registry import registry
from seqbench.store import Store


def planned(matrix_dir: Path, source: Store) -> list[tuple]:
    """(matrix_id, matrix, plan, the specs it ran) per part, decided from ``source`` alone."""
    reg = registry()
    out = []
    for path in matrixfile.matrix_files(str(matrix_dir)):
        matrix = matrixfile.build_matrix(matrixfile.read(path), None, None, None, None, (), (),
                                         {}, {}, list(reg.models), list(reg.tasks))
        the_plan = make_plan(matrix, reg)
        specs = list(the_plan.runs)
        if the_plan.tuning:
            tuner = the_plan.tuner()
            records = {r.run_id: r for r in source.runs()}
            while (extra := tuner.extension(records, source.curve)).runs:
                specs += extra.runs
            specs += tuner.evaluation(records).runs
        out.append((the_plan, matrix, specs))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--matrix", required=True, type=Path, help="a matrix file or folder")
    parser.add_argument("--source", required=True, type=Path)
    parser.add_argument("--into", required=True, type=Path, help="a new database")
    args = parser.parse_args()
    if args.into.exists():
        sys.exit(f"error: {args.into} exists; give a new file")
    with Store(args.source, readonly=True) as source:
        parts = planned(args.matrix, source)
        stored = {r.run_id: r for r in source.runs()}
        wanted = [(p, m, s) for p, m, specs in parts for s in specs]
        missing = [s.run_id for _, _, s in wanted if stored.get(s.run_id) is None
                   or stored[s.run_id].status == "running"]
        if missing:
            sys.exit(f"error: {len(missing)} planned runs are not finished in {args.source} "
                     f"(first: {missing[0]}); finish the study first")
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        tmp = args.into.with_name(args.into.name + ".partial")
        tmp.unlink(missing_ok=True)
        with Store(tmp) as into:
            for the_plan, matrix, _ in parts:
                into.add_matrix(the_plan.matrix_id, asdict(matrix), now)
                labels.save(into, the_plan.matrix_id, the_plan.labels, now)
            for _, _, spec in wanted:
                run = stored[spec.run_id]
                gradients = source.gradients([spec.run_id]).get(spec.run_id)
                into.save(replace(run, trial=spec.trial, matrix_id=spec.matrix_id,
                                  curve=source.curve(spec.run_id), gradients=gradients))
        tmp.rename(args.into)
    print(f"{len({s.run_id for _, _, s in wanted})} runs of {len(parts)} parts -> {args.into}")


if __name__ == "__main__":
    main()
