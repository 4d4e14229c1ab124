"""The outbox: what is queued when, channel choice, exactly-once sending, letters, no secrets."""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from tests.support.recording import LINK, Recorder, count_statements
from vaikuttavuus.extensions import db
from vaikuttavuus.models import AccessToken, Base, Invitation, OutboxMessage, TimePoint
from vaikuttavuus.security.tokens import token_hash
from vaikuttavuus.services import messaging, schedule
from vaikuttavuus.services.messaging import DeliveryDeferredError, Senders
from vaikuttavuus.services.patient_flow import opt_out

EMAIL = "potilas@example.org"
PHONE = "+358401234567"
ADDRESS = "Testikatu 1 A 2\n15100 Lahti"


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def run_at(moment: datetime, recorder: Recorder) -> messaging.RunReport:
    return messaging.run(db.session, messaging.make_clock(now=moment), recorder.senders())


def baseline(enrolment: Any) -> Invitation:
    invitation = db.session.scalar(
        select(Invitation)
        .join(TimePoint, Invitation.time_point_id == TimePoint.id)
        .where(Invitation.enrolment_id == enrolment.id, TimePoint.code == "baseline")
    )
    assert invitation is not None
    return invitation


def messages(invitation: Invitation | None = None) -> list[OutboxMessage]:
    db.session.expire_all()
    statement = select(OutboxMessage).order_by(OutboxMessage.id)
    if invitation is not None:
        statement = statement.where(OutboxMessage.invitation_id == invitation.id)
    return list(db.session.scalars(statement))


def pdf_text(pdf: bytes, tmp_path: Path) -> tuple[int, str]:
    """Page count and text of a PDF, through poppler-utils."""
    assert shutil.which("pdftotext"), "install poppler-utils (scripts/test does)"
    path = tmp_path / "letters.pdf"
    path.write_bytes(pdf)
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True)
    pages = int(re.search(r"^Pages:\s+(\d+)", info.stdout, re.MULTILINE).group(1))  # type: ignore[union-attr]
    extracted = subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True
    )
    return pages, extracted.stdout


# -- channel choice ----------------------------------------------------------------------------


def test_channel_for_prefers_email_then_sms_then_letter() -> None:
    assert messaging.channel_for("a@example.org", PHONE) == "email"
    assert messaging.channel_for("  ", PHONE) == "sms"
    assert messaging.channel_for(None, None) == "letter"
    assert messaging.available_channels(None, PHONE, ADDRESS) == ["sms", "letter"]


def test_first_messages_go_through_each_persons_channel(
    enrol_patient: Any, recorder: Recorder
) -> None:
    people = {
        "email": enrol_patient(index_offset_days=10, email=EMAIL, phone=PHONE),
        "sms": enrol_patient(index_offset_days=10, phone=PHONE),
        "letter": enrol_patient(index_offset_days=10, postal_address=ADDRESS),
        "nothing": enrol_patient(index_offset_days=10),
    }
    run_at(now(), recorder)
    for expected, enrolment in people.items():
        (message,) = messages(baseline(enrolment))
        assert message.purpose == "initial"
        assert message.dedupe_key == f"inv:{baseline(enrolment).id}:initial"
        assert message.channel == ("letter" if expected == "nothing" else expected)
    assert sorted(d.channel for d in recorder.deliveries) == ["email", "sms"]
    assert recorder.to(EMAIL)[0].channel == "email"


def test_only_open_invitations_get_messages(enrol_patient: Any, recorder: Recorder) -> None:
    future = enrol_patient(index_offset_days=200, email=EMAIL)  # baseline opens in 140 days
    report = run_at(now(), recorder)
    assert report.enqueued.initial == 0
    assert messages(baseline(future)) == []
    later = now() + timedelta(days=141)
    report = run_at(later, recorder)
    assert report.enqueued.initial == 1
    assert len(recorder.deliveries) == 1


# -- reminders ---------------------------------------------------------------------------------


def test_reminders_exactly_on_days_7_and_14_after_the_first_send(
    enrol_patient: Any, recorder: Recorder
) -> None:
    enrolment = enrol_patient(index_offset_days=40, email=EMAIL)  # open for 40 more days
    start = now()
    run_at(start, recorder)
    assert len(recorder.deliveries) == 1
    schedule_of_runs = [
        (start + timedelta(hours=1), 0),
        (start + timedelta(days=7) - timedelta(minutes=1), 0),
        (start + timedelta(days=7), 1),
        (start + timedelta(days=7, hours=3), 0),
        (start + timedelta(days=14) - timedelta(minutes=1), 0),
        (start + timedelta(days=14), 1),
        (start + timedelta(days=15), 0),
        (start + timedelta(days=30), 0),
    ]
    for moment, expected in schedule_of_runs:
        before = len(recorder.deliveries)
        run_at(moment, recorder)
        assert len(recorder.deliveries) - before == expected, moment
    invitation = baseline(enrolment)
    sent = messages(invitation)
    assert [m.purpose for m in sent] == ["initial", "reminder", "reminder"]
    assert [m.dedupe_key.split(":", 2)[2] for m in sent] == ["initial", "reminder:1", "reminder:2"]
    assert all(m.status == "sent" for m in sent)
    db.session.refresh(invitation)
    assert invitation.reminders_sent == 2
    assert invitation.first_sent_at == start
    assert invitation.channel == "email"
    tokens = {token for d in recorder.deliveries for token in d.tokens}
    assert len(tokens) == 3  # every message carries its own fresh link


def test_after_a_pause_only_the_latest_due_reminder_goes(
    enrol_patient: Any, recorder: Recorder
) -> None:
    enrolment = enrol_patient(index_offset_days=40, phone=PHONE)
    start = now()
    run_at(start, recorder)
    run_at(start + timedelta(days=15), recorder)  # the sender did not run on days 7-14
    keys = [m.dedupe_key for m in messages(baseline(enrolment))]
    assert [key.split(":", 2)[2] for key in keys] == ["initial", "reminder:2"]
    assert len(recorder.deliveries) == 2


@pytest.mark.parametrize(
    "reason", ["completed", "opted_out", "withdrawn", "erased", "cancelled", "window_closed"]
)
def test_nothing_is_sent_after_a_stop(reason: str, enrol_patient: Any, recorder: Recorder) -> None:
    enrolment = enrol_patient(index_offset_days=5 if reason == "window_closed" else 40, email=EMAIL)
    start = now()
    run_at(start, recorder)
    assert len(recorder.deliveries) == 1
    # A reminder is queued but not yet sent when the stop happens.
    messaging.enqueue(db.session, messaging.make_clock(now=start + timedelta(days=7)))
    db.session.commit()
    invitation = baseline(enrolment)
    if reason == "completed":
        invitation.status, invitation.completed_at = "completed", datetime.now(UTC)
    elif reason == "opted_out":
        opt_out(db.session, invitation)
    elif reason == "withdrawn":
        enrolment.status, enrolment.withdrawn_at = "withdrawn", datetime.now(UTC)
    elif reason == "erased":
        enrolment.person.erased_at = datetime.now(UTC)
    elif reason == "cancelled":
        schedule.cancel_invitation(db.session, invitation, datetime.now(UTC))
    db.session.commit()

    for days in (7, 8, 14, 21, 30):
        run_at(start + timedelta(days=days), recorder)
    assert len(recorder.deliveries) == 1
    reminders = [m for m in messages(invitation) if m.purpose == "reminder"]
    assert all(m.status == "cancelled" for m in reminders)
    if reason != "window_closed":
        assert reminders, "the queued reminder should exist (and be cancelled)"


# -- exactly once ------------------------------------------------------------------------------


def test_overlapping_runs_send_every_message_exactly_once(app: Flask, enrol_patient: Any) -> None:
    people = [
        enrol_patient(index_offset_days=20, email=f"p{i}@example.org")
        if i % 2
        else enrol_patient(index_offset_days=20, phone=f"+35840{i:07d}")
        for i in range(24)
    ]
    recorder = Recorder(delay=0.005)
    clock = messaging.make_clock(now=now())
    runs = 3
    barrier = threading.Barrier(runs)
    reports: list[messaging.RunReport] = []
    errors: list[BaseException] = []

    def one_run() -> None:
        try:
            with app.app_context():
                barrier.wait(timeout=30)
                reports.append(messaging.run(db.session, clock, recorder.senders()))
                db.session.remove()
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=one_run) for _ in range(runs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert len(reports) == runs
    recipients = Counter(d.recipient for d in recorder.deliveries)
    assert len(recipients) == len(people)
    assert set(recipients.values()) == {1}
    assert sum(r.enqueued.initial for r in reports) == len(people)
    assert sum(r.sent.count("sent") for r in reports if r.sent) == len(people)
    assert Counter(m.status for m in messages()) == {"sent": len(people)}
    # And again, overlapping, later the same day: nothing more.
    threads = [threading.Thread(target=one_run) for _ in range(runs)]
    barrier.reset()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert len(recorder.deliveries) == len(people)


class Crash(BaseException):
    """The process dies in the middle of handing a message over."""


def test_a_crash_after_the_claim_leaves_the_message_failed_never_resent(
    enrol_patient: Any, recorder: Recorder
) -> None:
    enrolment = enrol_patient(index_offset_days=20, phone=PHONE)
    start = now()

    class Crashing:
        def send(self, phone: str, text: str) -> None:
            raise Crash

    crashing = Senders(email=recorder.senders().email, sms=Crashing())
    with pytest.raises(Crash):
        messaging.run(db.session, messaging.make_clock(now=start), crashing)
    db.session.rollback()
    (message,) = messages(baseline(enrolment))
    assert message.status == "sending"
    assert message.claim_token

    run_at(start + timedelta(minutes=5), recorder)  # within the lease: left alone
    (message,) = messages(baseline(enrolment))
    assert message.status == "sending"
    run_at(start + timedelta(minutes=16), recorder)  # lease over: failed, not re-sent
    (message,) = messages(baseline(enrolment))
    assert message.status == "failed"
    assert "lease" in (message.last_error or "")
    for days in (1, 7, 14):
        run_at(start + timedelta(days=days), recorder)
    assert recorder.deliveries == []
    assert [m.status for m in messages(baseline(enrolment))] == ["failed"]

    # A pilot lead can resend.
    messaging.resend(db.session, baseline(enrolment), messaging.make_clock(now=start))
    db.session.commit()
    run_at(start + timedelta(days=14, minutes=1), recorder)
    assert len(recorder.to(PHONE)) == 1


def test_an_unreachable_mail_server_defers_and_later_gives_up(
    app: Flask, enrol_patient: Any, recorder: Recorder
) -> None:
    app.config["MESSAGE_MAX_ATTEMPTS"] = 2
    enrolment = enrol_patient(index_offset_days=20, email=EMAIL)
    other = enrol_patient(index_offset_days=20, email="toinen@example.org")

    class Down:
        calls = 0

        def send(self, message: EmailMessage) -> None:
            Down.calls += 1
            raise DeliveryDeferredError("connection refused")

        def close(self) -> None:
            return None

    down = Senders(email=Down(), sms=recorder.senders().sms)
    start = now()
    report = messaging.run(db.session, messaging.make_clock(now=start), down)
    assert report.sent is not None
    assert report.sent.outcomes[("email", "deferred")] == 2
    assert Down.calls == 1  # the server is down: the second message waits for the next run
    first = messages(baseline(enrolment))[0]
    assert first.status == "pending"
    assert first.attempts == 1
    assert first.not_before > start
    assert all(
        t.revoked_at is not None
        for t in db.session.scalars(
            select(AccessToken).where(AccessToken.invitation_id == first.invitation_id)
        )
    )
    messaging.run(db.session, messaging.make_clock(now=start + timedelta(minutes=1)), down)
    assert Down.calls == 2  # only the other one was due
    messaging.run(db.session, messaging.make_clock(now=start + timedelta(minutes=11)), down)
    assert Down.calls == 4
    assert [messages(baseline(e))[0].status for e in (enrolment, other)] == ["failed", "failed"]
    run_at(start + timedelta(minutes=30), recorder)
    assert recorder.deliveries == []


# -- no secrets at rest ------------------------------------------------------------------------


def test_no_token_or_link_is_stored_anywhere(
    app: Flask, enrol_patient: Any, recorder: Recorder, tmp_path: Path
) -> None:
    enrol_patient(index_offset_days=20, email=EMAIL)
    enrol_patient(index_offset_days=20, phone=PHONE)
    enrol_patient(index_offset_days=20, postal_address=ADDRESS)
    start = now()
    run_at(start, recorder)
    batch = messaging.produce_letter_batch(db.session, messaging.make_clock(now=start))
    assert batch is not None
    _pages, letter_text = pdf_text(batch.pdf, tmp_path)
    tokens = {t for d in recorder.deliveries for t in d.tokens} | set(LINK.findall(letter_text))
    assert len(tokens) == 3
    base = str(app.config["PUBLIC_BASE_URL"])
    found_hashes = 0
    for table in Base.metadata.sorted_tables:
        for row in db.session.execute(table.select()):
            for value in row:
                value_text = str(value)
                for token in tokens:
                    assert token not in value_text, f"token stored in {table.name}"
                if table.name == "outbox_messages":
                    assert "/r/" not in value_text and base not in value_text
                if table.name == "access_tokens":
                    found_hashes += value_text in {token_hash(t) for t in tokens}
    assert found_hashes == 3  # what is stored is the hash


# -- links work --------------------------------------------------------------------------------


def test_the_link_in_a_sent_message_works(
    enrol_patient: Any, recorder: Recorder, client: Any
) -> None:
    enrol_patient(index_offset_days=20, email=EMAIL)
    enrol_patient(index_offset_days=20, phone=PHONE)
    run_at(now(), recorder)
    for delivery in recorder.deliveries:
        (token,) = delivery.tokens
        page = client.get(f"/r/{token}")
        assert page.status_code == 200, delivery.channel
        assert "Eturauhas" in page.get_data(as_text=True)
    email = recorder.to(EMAIL)[0]
    opt_out_link = re.search(r"(/r/[A-Za-z0-9_-]+/opt-out)", email.text)
    assert opt_out_link
    assert client.get(opt_out_link.group(1)).status_code == 200


def test_message_texts_follow_the_persons_language(enrol_patient: Any, recorder: Recorder) -> None:
    enrol_patient(index_offset_days=20, email="sv@example.org", preferred_language="sv")
    enrol_patient(index_offset_days=20, phone=PHONE, preferred_language="en")
    run_at(now(), recorder)
    swedish = recorder.to("sv@example.org")[0]
    assert "Åtgärder vid godartad prostataförstoring" in swedish.subject
    english = recorder.to(PHONE)[0]
    assert "Päijät-Häme wellbeing services county" in english.text


# -- letters -----------------------------------------------------------------------------------


def test_letter_batch_has_one_page_per_person_with_the_link(
    enrol_patient: Any, recorder: Recorder, client: Any, tmp_path: Path
) -> None:
    letters = [
        enrol_patient(index_offset_days=20, postal_address=ADDRESS, preferred_language=lang)
        for lang in ("fi", "sv", "en")
    ]
    no_address = enrol_patient(index_offset_days=20)
    start = now()
    run_at(start, recorder)
    assert recorder.deliveries == []
    clock = messaging.make_clock(now=start)
    assert messaging.pending_letters(db.session, clock) == 4
    batch = messaging.produce_letter_batch(db.session, clock)
    assert batch is not None
    assert batch.letters == 3
    assert batch.failed == 1
    pages, content = pdf_text(batch.pdf, tmp_path)
    assert pages == 3
    assert "Åtgärder vid godartad prostataförstoring" in content
    assert "Procedures for benign prostatic hyperplasia" in content
    assert "15100 Lahti" in content
    tokens = LINK.findall(content)
    assert len(set(tokens)) == 3
    for token in tokens:
        assert client.get(f"/r/{token}").status_code == 200
    for enrolment in letters:
        (message,) = messages(baseline(enrolment))
        assert message.status == "sent"
        assert message.letter_batch == batch.batch_id
        assert message.sent_at == start
    (failed,) = messages(baseline(no_address))
    assert failed.status == "failed"
    assert failed.letter_batch is None
    assert messaging.produce_letter_batch(db.session, clock) is None


def qr_on_page(pdf: Path, page: int, link: str, tmp_path: Path) -> float:
    """How well the largest square figure on ``page`` of ``pdf`` matches the QR code of
    ``link``: the share of the code's modules (at any error-correction level) that the
    rendered page shows in the same colour (1.0 = the page carries exactly that code).

    The page is rendered at 150 dpi (poppler-utils); the QR code is found as the largest
    square blob of dark pixels (a code's modules touch once each is grown by a few pixels), its
    finder patterns bound it, and each module is read at its centre. The code of another link
    of the same length matches in its fixed patterns (finder and timing patterns, format) and by
    chance elsewhere: about three quarters of the modules.
    """
    import numpy as np
    import qrcode
    from PIL import Image
    from scipy import ndimage

    prefix = tmp_path / f"page{page}"
    pages = ["-f", str(page), "-l", str(page)]
    subprocess.run(
        ["pdftoppm", "-r", "150", "-gray", "-png", *pages, str(pdf), str(prefix)], check=True
    )
    (image,) = tmp_path.glob(f"page{page}-*.png")
    dark = np.asarray(Image.open(image).convert("L")) < 128
    labels, _count = ndimage.label(ndimage.binary_dilation(dark, iterations=4))
    squares = []
    for number, (rows, cols) in enumerate(ndimage.find_objects(labels), start=1):
        height, width = rows.stop - rows.start, cols.stop - cols.start
        if abs(height - width) <= 0.1 * width:
            squares.append((height * width, number))
    if not squares:
        return 0.0
    ys, xs = np.nonzero(dark & (labels == max(squares)[1]))
    top, bottom, left, right = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    best = 0.0
    for level in (
        qrcode.constants.ERROR_CORRECT_L,
        qrcode.constants.ERROR_CORRECT_M,
        qrcode.constants.ERROR_CORRECT_Q,
        qrcode.constants.ERROR_CORRECT_H,
    ):
        code = qrcode.QRCode(error_correction=level, border=0)
        code.add_data(link)
        code.make(fit=True)
        expected = np.array(code.get_matrix(), dtype=bool)
        size = len(expected)
        centres = (np.arange(size) + 0.5) / size
        rows = (top + centres * (bottom - top)).astype(int)
        cols = (left + centres * (right - left)).astype(int)
        best = max(best, float((dark[np.ix_(rows, cols)] == expected).mean()))
    return best


def test_each_letter_carries_a_qr_code_of_its_own_link(
    enrol_patient: Any, recorder: Recorder, tmp_path: Path
) -> None:
    for language in ("fi", "sv"):
        enrol_patient(index_offset_days=20, postal_address=ADDRESS, preferred_language=language)
    start = now()
    run_at(start, recorder)
    batch = messaging.produce_letter_batch(db.session, messaging.make_clock(now=start))
    assert batch is not None and batch.letters == 2
    assert shutil.which("pdftoppm"), "install poppler-utils (scripts/test does)"
    pdf = tmp_path / "letters.pdf"
    pdf.write_bytes(batch.pdf)
    links = []
    for page in (1, 2):
        text = subprocess.run(  # -layout: a link ending in "-" is not joined to the next line
            ["pdftotext", "-layout", "-f", str(page), "-l", str(page), str(pdf), "-"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        (link,) = {match.group(0) for match in LINK.finditer(text)}
        links.append(link)
        assert qr_on_page(pdf, page, link, tmp_path) == 1.0, f"page {page}"
    # each page's code is that page's link, not the other letter's
    assert links[0] != links[1]
    other = tmp_path / "other"
    other.mkdir()
    assert qr_on_page(pdf, 1, links[1], other) < 0.9


def test_letters_count_as_sent_only_once_the_pdf_exists(
    enrol_patient: Any, recorder: Recorder
) -> None:
    enrolment = enrol_patient(index_offset_days=20, postal_address=ADDRESS)
    start = now()
    run_at(start, recorder)
    clock = messaging.make_clock(now=start)

    def disk_full(_pdf: bytes) -> None:
        raise OSError("No space left on device")

    with pytest.raises(OSError):
        messaging.produce_letter_batch(db.session, clock, deliver=disk_full)
    (message,) = messages(baseline(enrolment))
    assert message.status == "pending"
    assert message.letter_batch is None
    assert message.claim_token is None
    assert all(
        t.revoked_at is not None
        for t in db.session.scalars(
            select(AccessToken).where(AccessToken.invitation_id == message.invitation_id)
        )
    )
    written: list[bytes] = []
    batch = messaging.produce_letter_batch(db.session, clock, deliver=written.append)
    assert batch is not None and written == [batch.pdf]
    (message,) = messages(baseline(enrolment))
    assert message.status == "sent"
    assert message.letter_batch == batch.batch_id


# -- resend and dry run ------------------------------------------------------------------------


def test_resend_queues_a_new_message_with_a_new_link(
    enrol_patient: Any, recorder: Recorder
) -> None:
    enrolment = enrol_patient(index_offset_days=20, email=EMAIL, postal_address=ADDRESS)
    start = now()
    run_at(start, recorder)
    invitation = baseline(enrolment)
    clock = messaging.make_clock(now=start + timedelta(hours=1))
    first = messaging.resend(db.session, invitation, clock)
    letter = messaging.resend(db.session, invitation, clock, channel="letter")
    db.session.commit()
    assert first.dedupe_key.startswith(f"inv:{invitation.id}:resend:")
    assert first.dedupe_key != letter.dedupe_key
    run_at(start + timedelta(hours=1), recorder)
    assert len(recorder.to(EMAIL)) == 2
    assert recorder.to(EMAIL)[0].tokens != recorder.to(EMAIL)[1].tokens
    assert messaging.pending_letters(db.session, clock) == 1  # the explicit channel is kept
    with pytest.raises(schedule.InvitationActionError):
        messaging.resend(db.session, invitation, clock, channel="sms")


def test_resend_of_an_expired_invitation_needs_an_extension_first(
    enrol_patient: Any, recorder: Recorder
) -> None:
    enrolment = enrol_patient(index_offset_days=-3, email=EMAIL)
    run_at(now(), recorder)
    invitation = baseline(enrolment)
    db.session.refresh(invitation)
    assert invitation.status == "expired"
    with pytest.raises(schedule.InvitationActionError) as refused:
        messaging.resend(db.session, invitation, messaging.make_clock())
    assert refused.value.code == "expired"
    schedule.extend_invitation(db.session, invitation, 7, messaging.make_clock().today)
    messaging.resend(db.session, invitation, messaging.make_clock())
    db.session.commit()
    run_at(now() + timedelta(minutes=1), recorder)
    assert len(recorder.to(EMAIL)) == 2  # the first invitation (re-opened) and the resend


def test_a_dry_run_changes_nothing(enrol_patient: Any, recorder: Recorder) -> None:
    enrolment = enrol_patient(index_offset_days=100, email=EMAIL)
    later = now() + timedelta(days=45)  # baseline has opened by then
    report = messaging.run(
        db.session, messaging.make_clock(now=later), recorder.senders(), dry_run=True
    )
    assert report.dry_run
    assert report.refresh.opened == 1
    assert report.enqueued.initial == 1
    assert report.due == {"email": 1}
    assert messages() == []
    assert baseline(enrolment).status == "scheduled"
    assert recorder.deliveries == []


# -- channels ----------------------------------------------------------------------------------


def test_file_email_backend_and_logging_sms_sender(app: Flask, tmp_path: Path) -> None:
    app.instance_path = str(tmp_path)
    app.config["MAIL_SERVER"] = None
    senders = messaging.configured_senders()
    assert isinstance(senders.email, messaging.FileEmailBackend)
    assert isinstance(senders.sms, messaging.LoggingSmsSender)
    text = messaging.MessageText(subject="Aihe", body="Hei\n", sms="Tekstiviesti")
    senders.email.send(messaging.build_email(EMAIL, text, "fi", datetime.now(UTC)))
    senders.sms.send(PHONE, "Tekstiviesti")
    (eml,) = (tmp_path / "mail").glob("*.eml")
    assert "To: potilas@example.org" in eml.read_text()
    assert oct(eml.stat().st_mode)[-3:] == "600"
    assert f"{PHONE}\tTekstiviesti" in (tmp_path / "sms-outbox.log").read_text()


def test_smtp_backend_uses_starttls_login_and_one_connection(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []

    class FakeSMTP:
        def __init__(self, host: str, port: int, timeout: float) -> None:
            calls.append(f"connect {host}:{port}")

        def ehlo(self) -> None:
            calls.append("ehlo")

        def starttls(self, context: Any) -> None:
            calls.append("starttls")

        def login(self, user: str, password: str) -> None:
            calls.append(f"login {user}")

        def noop(self) -> tuple[int, bytes]:
            return (250, b"ok")

        def send_message(self, message: EmailMessage) -> dict[str, Any]:
            calls.append(f"send {message['To']}")
            return {}

        def quit(self) -> None:
            calls.append("quit")

    monkeypatch.setattr(messaging.smtplib, "SMTP", FakeSMTP)
    app.config.update(
        MAIL_SERVER="smtp.example.org", MAIL_PORT=587, MAIL_USERNAME="u", MAIL_PASSWORD="p"
    )
    senders = messaging.configured_senders()
    assert isinstance(senders.email, messaging.SmtpEmailBackend)
    text = messaging.MessageText(subject="s", body="b", sms="x")
    for recipient in ("a@example.org", "b@example.org"):
        senders.email.send(messaging.build_email(recipient, text, "fi", datetime.now(UTC)))
    senders.close()
    assert calls == [
        "connect smtp.example.org:587",
        "ehlo",
        "starttls",
        "ehlo",
        "login u",
        "send a@example.org",
        "send b@example.org",
        "quit",
    ]

    def refuse(*_args: Any, **_kwargs: Any) -> None:
        raise ConnectionRefusedError("refused")

    monkeypatch.setattr(messaging.smtplib, "SMTP", refuse)
    with pytest.raises(DeliveryDeferredError):
        messaging.configured_senders().email.send(
            messaging.build_email("a@example.org", text, "fi", datetime.now(UTC))
        )


def test_sms_sender_is_pluggable(app: Flask) -> None:
    app.config["SMS_SENDER"] = "tests.support.recording:Recorder"
    with pytest.raises(TypeError):
        messaging.configured_senders()  # Recorder has no send(phone, text)
    app.config["SMS_SENDER"] = "no-colon"
    with pytest.raises(ValueError, match=r"package\.module:Class"):
        messaging.configured_senders()


def test_statement_count_of_enqueue_does_not_grow_with_people(
    enrol_patient: Any, recorder: Recorder
) -> None:
    for _ in range(3):
        enrol_patient(index_offset_days=20, email=EMAIL)
    clock = messaging.make_clock(now=now())
    with count_statements() as few:
        messaging.enqueue(db.session, clock)
    db.session.rollback()
    for _ in range(15):
        enrol_patient(index_offset_days=20, email=EMAIL)
    with count_statements() as many:
        result = messaging.enqueue(db.session, clock)
    db.session.rollback()
    assert result.initial == 18
    assert len(many) == len(few)
