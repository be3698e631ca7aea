"""Write results/atlas.md from the atlas database (``seqbench.analysis.atlas``).

    python scripts/atlas_report.py --db results/atlas.sqlite --out results/atlas.md
    python scripts/atlas_report.py --check   # exit 1 when the committed file differs
"""

import sys

from seqbench.analysis.atlas import main

if __name__ == "__main__":
    sys.exit(main())
