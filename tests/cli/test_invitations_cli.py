"""`vaikuttavuus invitations send | letters | status`."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from flask import Flask
from sqlalchemy import select

from vaikuttavuus.cli.core import invitations_group
from vaikuttavuus.extensions import db
from vaikuttavuus.models import AuditEvent, OutboxMessage
from vaikuttavuus.paths import PROJECT_ROOT

EMAIL = "potilas@example.org"
PHONE = "+358401234567"
ADDRESS = "Testikatu 1\n15100 Lahti"


@pytest.fixture
def instance(app: Flask, tmp_path: Path) -> Path:
    """Demo channels write under the instance folder: point it at a temporary one."""
    folder = tmp_path / "instance"
    folder.mkdir()
    app.instance_path = str(folder)
    app.config["MAIL_SERVER"] = None
    return folder


def invoke(runner: Any, *args: str) -> Result:
    return runner.invoke(invitations_group, list(args), catch_exceptions=False)  # type: ignore[no-any-return]


def statuses() -> Counter[tuple[str, str]]:
    db.session.expire_all()
    return Counter((m.channel, m.status) for m in db.session.scalars(select(OutboxMessage)))


def test_send_sends_through_the_demo_channels_and_is_idempotent(
    runner: Any, instance: Path, enrol_patient: Any
) -> None:
    enrol_patient(index_offset_days=10, email=EMAIL)
    enrol_patient(index_offset_days=10, phone=PHONE)
    enrol_patient(index_offset_days=10, postal_address=ADDRESS)
    first = invoke(runner, "send")
    assert first.exit_code == 0, first.output
    assert "3 first messages" in first.output
    assert "email   sent       1" in first.output
    assert "sms     sent       1" in first.output
    assert "waiting: letter 1" in first.output
    (eml,) = (instance / "mail").glob("*.eml")
    assert f"To: {EMAIL}" in eml.read_text()
    assert PHONE in (instance / "sms-outbox.log").read_text()

    second = invoke(runner, "send")
    assert second.exit_code == 0
    assert "0 first messages" in second.output
    assert "nothing to send" in second.output
    assert len(list((instance / "mail").glob("*.eml"))) == 1
    assert statuses() == {("email", "sent"): 1, ("sms", "sent"): 1, ("letter", "pending"): 1}


def test_dry_run_changes_nothing(runner: Any, instance: Path, enrol_patient: Any) -> None:
    enrol_patient(index_offset_days=10, email=EMAIL)
    result = invoke(runner, "send", "--dry-run")
    assert result.exit_code == 0
    assert "dry run" in result.output
    assert "would wait: email 1" in result.output
    assert statuses() == Counter()
    assert not (instance / "mail").exists()


def test_send_on_another_day(runner: Any, instance: Path, enrol_patient: Any) -> None:
    enrol_patient(index_offset_days=10, email=EMAIL)  # baseline closes in ten days
    later = (date.today() + timedelta(days=11)).isoformat()
    result = invoke(runner, "send", "--today", later)
    assert result.exit_code == 0
    assert f"invitations on {later}: 0 created, 0 opened, 1 expired" in result.output
    assert "nothing to send" in result.output
    assert statuses() == Counter()


def test_letters_writes_the_batch_and_marks_it_sent(
    runner: Any, instance: Path, enrol_patient: Any, tmp_path: Path
) -> None:
    enrolment = enrol_patient(index_offset_days=10, postal_address=ADDRESS)
    assert invoke(runner, "send").exit_code == 0
    out = tmp_path / "kirjeet" / "batch.pdf"
    result = invoke(runner, "letters", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "Wrote 1 letters" in result.output
    assert out.read_bytes().startswith(b"%PDF")
    assert oct(out.stat().st_mode)[-3:] == "600"
    assert statuses() == {("letter", "sent"): 1}
    (event,) = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "export_letters"))
    assert event.actor == "cli"
    assert event.details["person_ids"] == [enrolment.person_id]

    assert (
        "No letters waiting." in invoke(runner, "letters", "--out", str(tmp_path / "b.pdf")).output
    )
    enrol_patient(index_offset_days=10, postal_address=ADDRESS)
    invoke(runner, "send")
    refused = invoke(runner, "letters", "--out", str(out))
    assert refused.exit_code == 1
    assert statuses()[("letter", "pending")] == 1
    assert invoke(runner, "letters", "--out", str(out), "--force").exit_code == 0
    assert invoke(runner, "letters", "--out", str(out), "--pilot", "nope").exit_code == 1


def test_status_lists_invitations_and_messages(
    runner: Any, instance: Path, enrol_patient: Any
) -> None:
    enrol_patient(index_offset_days=10, email=EMAIL)
    invoke(runner, "send")
    result = invoke(runner, "status", "--pilot", "bph")
    assert result.exit_code == 0
    assert "bph            baseline   open 1" in result.output
    assert "m3         scheduled 1" in result.output
    assert "email   sent       1" in result.output
    assert "older-adults" not in result.output


def test_overlapping_processes_send_each_message_once(
    app: Flask, database_url: str, enrol_patient: Any, tmp_path: Path
) -> None:
    people = 16
    for i in range(people):
        if i % 2:
            enrol_patient(index_offset_days=10, email=f"p{i}@example.org")
        else:
            enrol_patient(index_offset_days=10, phone=f"+35840{i:07d}")
    db.session.remove()
    folder = tmp_path / "instance"
    env = {k: v for k, v in os.environ.items() if not k.startswith("VAIKUTTAVUUS_")}
    env.pop("DATABASE_URL", None)
    env.update(
        VAIKUTTAVUUS_INSTANCE=str(folder),
        DATABASE_URL=database_url,
        SECRET_KEY=str(app.config["SECRET_KEY"]),
        PSEUDONYM_KEY=str(app.config["PSEUDONYM_KEY"]),
        PUBLIC_BASE_URL="http://localhost",
        SMS_SENDER="tests.support.recording:SlowLoggingSmsSender",
    )
    command = [sys.executable, "-m", "vaikuttavuus.cli", "invitations", "send"]
    runs = [
        subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [run.communicate(timeout=300) for run in runs]
    for run, (out, err) in zip(runs, outputs, strict=True):
        assert run.returncode == 0, out + err
    emails = list((folder / "mail").glob("*.eml"))
    sms = (folder / "sms-outbox.log").read_text().splitlines()
    assert len(emails) == people // 2
    phones = Counter(line.split("\t")[1] for line in sms)
    assert len(phones) == people // 2
    assert set(phones.values()) == {1}
    assert statuses() == {("email", "sent"): people // 2, ("sms", "sent"): people // 2}
