"""The benchmark runner behind ``scripts/bench`` (issue 8, targets in ``../shared/performance.md``).

``python -m bench [--quick] [--backend sqlite|postgresql|both] [--only SCENARIO[,…]]`` runs the
scenarios of :mod:`bench.scenarios`, prints a table and writes ``bench/results.json``.

Layout:

* :mod:`bench.cli` — arguments, the order of the scenarios, the printed table;
* :mod:`bench.workspace` — the run's temporary instance folder, the SQLite and PostgreSQL
  backends, the synthetic data sets (built once per size and copied), and the child processes
  that do the measured work;
* :mod:`bench.tasks` — the entry point of those child processes (one app context each, so a
  measurement's peak memory is its own);
* :mod:`bench.load` and :mod:`bench.servers` — the loopback HTTP load generator and the
  gunicorn processes it drives (the app and the bare Flask baseline of :mod:`bench.hello`);
* :mod:`bench.results` — machine description, goals and ``results.json``;
* :mod:`bench.scenarios` — one module per scenario.
"""
