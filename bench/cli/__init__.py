"""The ``bench`` command line: one module per command, all sharing ``common``.

Imports stay lazy: ``bench --help`` and ``bench plugins`` never import torch or Lightning.
"""

from __future__ import annotations

import sys

import click

from .analyze import analyze
from .dashboard import dashboard, report
from .data import data
from .decide import decide
from .export import export
from .figures import figures
from .merge import merge
from .plugins import plugins
from .rerun import rerun
from .results import results
from .run import run

class BenchGroup(click.Group):
    """Every usage error (a bad option value too) is one line, exit 2."""

    def main(self, *args, **kwargs):
        kwargs["standalone_mode"] = False
        try:
            rv = super().main(*args, **kwargs)
        except click.exceptions.Abort:
            click.echo("aborted", err=True)
            sys.exit(130)
        except click.ClickException as exc:
            hint = " (see --help)" if isinstance(exc, click.UsageError) else ""
            click.echo(f"error: {exc.format_message()}{hint}", err=True)
            sys.exit(exc.exit_code)
        sys.exit(rv if isinstance(rv, int) else 0)


@click.group(cls=BenchGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="seqbench")
def main():
    """seqbench: on my small data set, should I use an LSTM or a Transformer?

    Register plugins, launch a benchmark matrix, browse the results.
    """


for command in (plugins, run, results, data, analyze, dashboard, report, figures, rerun, decide,
                export, merge):
    main.add_command(command)

if __name__ == "__main__":  # pragma: no cover
    main()
