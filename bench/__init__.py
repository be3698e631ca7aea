"""seqbench: does an LSTM beat a Transformer on your small data set? Measure it.

``seqbench.open(path)`` reads a results database as pandas DataFrames (see seqbench.library).
"""

from .hookspecs import hookimpl

__version__ = "0.1.0"
__all__ = ["hookimpl", "open", "Study", "Analysis", "__version__"]


def __getattr__(name: str):
    # The library loads on first use, so `import seqbench` and `bench --help` stay fast.
    if name in ("open", "Study", "Analysis"):
        from . import library

        return getattr(library, name)
    raise AttributeError(f"module 'seqbench' has no attribute {name!r}")
