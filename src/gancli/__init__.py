"""gancli: train, sample, evaluate and export GANs from the command line.

Importing the package is cheap: torch is only imported by the modules that
need it (``gancli.engine``, ``gancli.models.*``, ``gancli.checkpoint``...).
"""

from gancli._version import __version__

__all__ = ["__version__", "load_generator"]


def load_generator(path, device="cpu", ema=True):
    """Rebuild a generator from a checkpoint file or a run directory (EMA weights
    when present unless ``ema=False``). See :func:`gancli.checkpoint.load_generator`.
    """
    from gancli.checkpoint import load_generator as _load

    return _load(path, device=device, ema=ema)
