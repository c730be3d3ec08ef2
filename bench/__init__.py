"""Benchmarks of the hub: ``make bench`` (``python -m bench``).

Each benchmark module exposes ``run(options) -> list[Result]``; ``bench/__main__.py`` runs each in a
process of its own, on a database of its own (see ``bench/database.py``), and prints the figures.
``foundation`` measures the books in process; ``webhooks`` runs the hub's web server and worker
(``bench/servers.py``) and loads them over HTTP.
"""
