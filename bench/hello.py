"""The bare Flask baseline: a "hello" app served by gunicorn with exactly the options of
``vaikuttavuus serve`` (:func:`vaikuttavuus.server.gunicorn_options`: worker class, threads,
keep-alive, access log, logger).

``python -m bench.hello --port P --workers W --threads T``

* ``GET /hello`` answers a short text page;
* ``POST /hello`` reads the form and answers ``302`` to ``/hello/done`` (the shape of the
  patient submit, without the work);
* ``GET /healthz`` answers ``ok`` (readiness check).
"""

from __future__ import annotations

import argparse
from typing import Any

from flask import Flask, redirect, request


def create_hello_app() -> Flask:
    """The smallest Flask app with the routes the benchmark compares against."""
    app = Flask("hello")

    @app.get("/hello")
    def hello() -> str:
        return "hello"

    @app.post("/hello")
    def hello_post() -> Any:
        return redirect(f"/hello/done?n={len(request.form)}")

    @app.get("/healthz")
    def healthz() -> str:
        return "ok"

    return app


def main(argv: list[str] | None = None) -> None:
    from vaikuttavuus.server import GunicornApplication, gunicorn_options

    parser = argparse.ArgumentParser(description="Serve the bare Flask baseline with gunicorn.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args(argv)
    options = gunicorn_options(
        host=args.host, port=args.port, workers=args.workers, threads=args.threads
    )
    GunicornApplication(options, create_hello_app).run()


if __name__ == "__main__":
    main()
