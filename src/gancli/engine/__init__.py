"""The training engine: one loop with pluggable architectures and losses.

Imports neither Typer nor Rich; progress goes through a
:class:`~gancli.engine.trainer.Reporter`.
"""
