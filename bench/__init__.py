"""Benchmarks of the hub: ``make bench`` (``python -m bench``).

Each benchmark module exposes ``run(options) -> list[Result]``; ``bench/__main__.py`` runs them on a
database of their own (see ``bench/database.py``) and prints the figures.
"""
