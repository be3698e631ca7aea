"""``python -m seqbench.cli``: the same as the ``bench`` script."""

from . import main

main()
