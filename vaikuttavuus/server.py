"""Running the app under gunicorn (``vaikuttavuus serve``)."""

from __future__ import annotations

import re
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger

# A personal link is a credential: access logs show "/r/…" instead of its token.
_PATIENT_TOKEN = re.compile(r"(/r/)[^/?#\s]+")


def redact(text: Any) -> Any:
    return _PATIENT_TOKEN.sub(r"\1…", text) if isinstance(text, str) else text


class RedactingLogger(Logger):  # type: ignore[misc]
    """gunicorn's logger with patient-link tokens removed from request lines and referrers."""

    def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> dict[str, Any]:
        atoms: dict[str, Any] = super().atoms(resp, req, environ, request_time)
        return {key: redact(value) for key, value in atoms.items()}


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from vaikuttavuus.wsgi import app

        return app


def gunicorn_options(*, host: str, port: int, workers: int, threads: int) -> dict[str, Any]:
    return {
        "bind": f"{host}:{port}",
        "workers": workers,
        "threads": threads,
        "worker_class": "gthread" if threads > 1 else "sync",
        "timeout": 120,
        "graceful_timeout": 30,
        "keepalive": 5,
        "accesslog": "-",
        "errorlog": "-",
        "loglevel": "info",
        "forwarded_allow_ips": "127.0.0.1",
        "logger_class": RedactingLogger,
    }


def run_gunicorn(*, host: str, port: int, workers: int, threads: int) -> None:
    _Gunicorn(gunicorn_options(host=host, port=port, workers=workers, threads=threads)).run()
