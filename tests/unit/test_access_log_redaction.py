"""The access log never holds a personal-link token, however the request spelled the path
(issue 16, item 5: ``GET /r%2F<token>`` and ``GET /%72/<token>`` were logged in full)."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import quote

import pytest
from gunicorn.config import Config

from tests.support.cli import run_cli
from vaikuttavuus.security import tokens
from vaikuttavuus.server import RedactingLogger, redact_url

TOKEN = "Xq3vT9kLmP0aZ8rW2yN5bC7dF1gH4jK6"  # shaped like tokens.new_token() (fixed: xdist)


@pytest.mark.parametrize(
    "target",
    [
        f"/r/{TOKEN}",
        f"/r%2F{TOKEN}",
        f"/r%2f{TOKEN}/2",
        f"/%72/{TOKEN}",
        f"/%2572%252F{TOKEN}",
        "/r/" + quote(TOKEN, safe=""),
        "/r/" + "".join(f"%{ord(c):02X}" for c in TOKEN),
        f"//r//{TOKEN}/review",
        f"/r/./{TOKEN}",
        f"/x/{TOKEN}",
        f"/{TOKEN}%0A",
    ],
)
def test_no_spelling_of_a_link_leaves_its_token_in_the_log(target: str) -> None:
    assert len(TOKEN) == len(tokens.new_token())
    shown = redact_url(f"GET {target} HTTP/1.1")
    assert TOKEN[:20] not in shown and "\n" not in shown
    assert shown.startswith("GET /") and shown.endswith(" HTTP/1.1")


def test_link_pages_and_other_paths_stay_readable() -> None:
    assert redact_url(f"GET /r/{TOKEN}/3 HTTP/1.1") == "GET /r/…/3 HTTP/1.1"
    assert redact_url(f"POST /r/{TOKEN}/submit HTTP/1.1") == "POST /r/…/submit HTTP/1.1"
    assert redact_url("GET /clinician/bph/P-7K3M9Q HTTP/1.1") == (
        "GET /clinician/bph/P-7K3M9Q HTTP/1.1"
    )
    assert redact_url("GET /static/css/app.css HTTP/1.1") == "GET /static/css/app.css HTTP/1.1"


def test_the_access_log_atoms_are_redacted() -> None:
    logger = RedactingLogger(Config())
    request = SimpleNamespace(
        headers=[], method="GET", path=f"/r/{TOKEN}", query="", uri=f"/%72/{TOKEN}",
        version=(1, 1),
    )  # fmt: skip
    response = SimpleNamespace(status="404 NOT FOUND", response_length=10, sent=10, headers=[])
    environ = {
        "RAW_URI": f"/%72/{TOKEN}",
        "PATH_INFO": f"/r/{TOKEN}",
        "QUERY_STRING": "",
        "REQUEST_METHOD": "GET",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "10.0.0.1",
    }

    atoms = logger.atoms(response, request, environ, timedelta(seconds=0.01))
    assert not [key for key, value in atoms.items() if TOKEN[:20] in str(value)]


def test_serve_refuses_per_process_counters_with_several_workers(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VAIKUTTAVUUS_")}
    env.update(
        VAIKUTTAVUUS_INSTANCE=str(tmp_path),
        SECRET_KEY="k" * 40,
        PSEUDONYM_KEY="p" * 40,
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        RATELIMIT_STORAGE_URI="memory://",
    )
    result = run_cli("serve", "--workers", "2", "--port", "1", env=env)
    assert result.returncode == 2, result.stderr
    assert "RATELIMIT_STORAGE_URI" in result.stderr and "database://" in result.stderr
