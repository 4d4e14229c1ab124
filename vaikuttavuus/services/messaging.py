"""Outgoing messages: the outbox, its channels (e-mail, SMS, printed letters) and the sender.

How a message travels:

1. :func:`enqueue` adds an outbox row when an invitation's window opens (``inv:<id>:initial``)
   and a reminder per the pilot's ``reminders.after_days``, counted from the first send
   (``inv:<id>:reminder:<k>``), only while the invitation is open and unanswered. The unique
   ``dedupe_key`` makes enqueueing idempotent. Pending rows whose invitation was answered,
   cancelled, opted out, withdrawn or closed become ``cancelled``.
2. :func:`send_pending` claims each due e-mail/SMS row with one conditional UPDATE
   (``status='pending'`` → ``'sending'`` with a random claim token) and commits the claim
   before anything is sent, so two overlapping runs never send the same row. Only then it
   issues a fresh personal-link token (:func:`patient_flow.issue_token`), renders the text in
   the person's language, sends, and marks the row ``sent``. The outbox never holds a token
   or a link: the database has only the token's hash.
3. A row left in ``sending`` longer than the lease (a crash mid-send) becomes ``failed`` and is
   never sent again automatically (sending twice is worse than not at all; a pilot lead can
   resend). A connection or login failure before anything was handed over puts the row back
   to ``pending`` for a later run.
4. :func:`produce_letter_batch` claims the pending letters the same way, renders one A4 page
   per person (address, text in the person's language, link as text and QR code) and marks
   them ``sent`` with their ``letter_batch`` only once the PDF exists.

The send functions manage their own transactions (a claim must be committed before sending):
call them from the CLI or a job, never inside a web request with other uncommitted work.
"""

from __future__ import annotations

import base64
import contextlib
import importlib
import logging
import secrets
import smtplib
import ssl
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from flask import current_app
from flask_babel import force_locale, format_date
from flask_babel import gettext as _
from sqlalchemy import (
    JSON,
    String,
    and_,
    case,
    cast,
    exists,
    func,
    literal,
    not_,
    select,
    update,
)

from vaikuttavuus import change_log
from vaikuttavuus.bulk import analyze_after_bulk
from vaikuttavuus.county_time import county_zone
from vaikuttavuus.database import AnySession, affected_rows, insert_for
from vaikuttavuus.models import (
    AccessToken,
    Enrolment,
    Invitation,
    OutboxMessage,
    Person,
    Pilot,
    TimePoint,
)
from vaikuttavuus.models.base import UTCDateTime
from vaikuttavuus.security.tokens import token_hash
from vaikuttavuus.services.definitions import pilot_spec
from vaikuttavuus.services.patient_flow import unit_contact
from vaikuttavuus.services.schedule import (
    InvitationActionError,
    RefreshResult,
    refresh,
    sendable_problem,
)

log = logging.getLogger(__name__)

CHANNELS = ("email", "sms", "letter")
IMMEDIATE_CHANNELS = ("email", "sms")
PURPOSES = ("initial", "reminder", "resend")
OUTBOX_STATUSES = ("pending", "sending", "sent", "failed", "cancelled")

DEFAULT_LEASE_MINUTES = 15  # a message "sending" for longer than this crashed mid-send
DEFAULT_RETRY_MINUTES = 10  # wait after the mail server could not be reached
DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_LETTER_BATCH_SIZE = 200
ERROR_LIMIT = 500

OUTBOX = OutboxMessage.__table__
INVITATIONS = Invitation.__table__


class DeliveryDeferredError(RuntimeError):
    """Nothing was handed over (no connection, login refused): safe to try again later."""


class DeliveryFailedError(RuntimeError):
    """The channel refused the message (e.g. an invalid recipient)."""


# -- time ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Clock:
    """The moment a run works at: ``now`` in UTC and ``today`` as the local calendar day."""

    now: datetime
    today: date


def make_clock(
    today: date | None = None, now: datetime | None = None, timezone: str | None = None
) -> Clock:
    """A clock for a run. ``today`` alone keeps the current time of day on that date (so the
    CLI's ``--today`` behaves like running on that day); ``now`` alone derives ``today``."""
    zone = ZoneInfo(timezone) if timezone else county_zone()
    if now is None:
        current = datetime.now(zone)
        if today is not None:
            current = datetime.combine(today, current.timetz())
        now = current.astimezone(UTC)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if today is None:
        today = now.astimezone(zone).date()
    return Clock(now=now.astimezone(UTC), today=today)


def _config(key: str, default: Any) -> Any:
    try:
        value = current_app.config.get(key)
    except RuntimeError:  # no app context
        return default
    return default if value is None else value


def claim_lease() -> timedelta:
    return timedelta(minutes=int(_config("MESSAGE_CLAIM_LEASE_MINUTES", DEFAULT_LEASE_MINUTES)))


def retry_delay() -> timedelta:
    return timedelta(minutes=int(_config("MESSAGE_RETRY_MINUTES", DEFAULT_RETRY_MINUTES)))


def max_attempts() -> int:
    return int(_config("MESSAGE_MAX_ATTEMPTS", DEFAULT_MAX_ATTEMPTS))


def _ts(value: datetime) -> Any:
    """A timestamp literal stored the way every model timestamp is (naive UTC)."""
    return literal(value, UTCDateTime())


# -- channel choice -----------------------------------------------------------------------------


def channel_for(email: str | None, phone: str | None) -> str:
    """E-mail if the person has an address, else SMS if a phone number, else a printed letter."""
    if email and email.strip():
        return "email"
    if phone and phone.strip():
        return "sms"
    return "letter"


def available_channels(
    email: str | None, phone: str | None, postal_address: str | None
) -> list[str]:
    """The channels a message to this person could go through (for an explicit resend)."""
    found = []
    if email and email.strip():
        found.append("email")
    if phone and phone.strip():
        found.append("sms")
    if postal_address and postal_address.strip():
        found.append("letter")
    return found


def _channel_sql() -> Any:
    return case(
        (and_(Person.email.is_not(None), func.trim(Person.email) != ""), "email"),
        (and_(Person.phone.is_not(None), func.trim(Person.phone) != ""), "sms"),
        else_="letter",
    )


def _sendable_sql(today: date) -> Any:
    """SQL twin of :func:`schedule.sendable_problem` being None (over invitations ⋈ enrolments
    ⋈ people)."""
    return and_(
        Invitation.status == "open",
        Invitation.completed_at.is_(None),
        Invitation.opens_on <= today,
        Invitation.closes_on >= today,
        Enrolment.status == "active",
        Person.opted_out_at.is_(None),
        Person.erased_at.is_(None),
    )


def _invitation_people() -> Any:
    return (
        select(Invitation.id)
        .join(Enrolment, Invitation.enrolment_id == Enrolment.id)
        .join(Person, Enrolment.person_id == Person.id)
    )


def dedupe_key(invitation_id: int, purpose: str, number: int | None = None) -> str:
    if purpose == "reminder":
        return f"inv:{invitation_id}:reminder:{number}"
    if purpose == "resend":
        return f"inv:{invitation_id}:resend:{secrets.token_hex(8)}"
    return f"inv:{invitation_id}:{purpose}"


# -- enqueueing ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class EnqueueResult:
    initial: int = 0
    reminders: int = 0
    cancelled: int = 0


def enqueue(session: AnySession, clock: Clock) -> EnqueueResult:
    """Add the due first messages and reminders; cancel pending rows that may no longer go.

    Bulk INSERT … SELECT … ON CONFLICT (dedupe_key) DO NOTHING per message kind; idempotent.
    Flushes; the caller commits.
    """
    cancelled = cancel_unsendable(session, clock)
    initial = _enqueue(session, clock, purpose="initial", extra=None, number=None)
    analyze_after_bulk(session, "outbox_messages", initial)
    reminders = 0
    for pilot in session.scalars(select(Pilot).order_by(Pilot.id)):
        days = pilot_spec(pilot).reminders.after_days
        for number, after in enumerate(days, start=1):
            due = clock.now - timedelta(days=after)
            # After a pause (the sender did not run for days) only the latest due reminder is
            # sent, never two at once.
            following = days[number] if number < len(days) else None
            condition = and_(
                Enrolment.pilot_id == pilot.id,
                Invitation.first_sent_at.is_not(None),
                Invitation.first_sent_at <= due,
            )
            if following is not None:
                condition = and_(
                    condition, Invitation.first_sent_at > clock.now - timedelta(days=following)
                )
            added = _enqueue(session, clock, purpose="reminder", extra=condition, number=number)
            analyze_after_bulk(session, "outbox_messages", added)
            reminders += added
    session.flush()
    return EnqueueResult(initial=initial, reminders=reminders, cancelled=cancelled)


def _enqueue(
    session: AnySession, clock: Clock, *, purpose: str, extra: Any, number: int | None
) -> int:
    suffix = f":reminder:{number}" if purpose == "reminder" else f":{purpose}"
    key = literal("inv:", String) + cast(Invitation.id, String) + literal(suffix, String)
    already = exists().where(OutboxMessage.dedupe_key == key)
    conditions = [_sendable_sql(clock.today), ~already]
    if extra is not None:
        conditions.append(extra)
    source = (
        select(
            Invitation.id,
            _channel_sql(),
            literal(purpose, String),
            key,
            Person.preferred_language,
            literal({}, JSON()),
            literal("pending", String),
            _ts(clock.now),
            _ts(clock.now),
            literal(0),
        )
        .select_from(Invitation)
        .join(Enrolment, Invitation.enrolment_id == Enrolment.id)
        .join(Person, Enrolment.person_id == Person.id)
        .where(*conditions)
    )
    statement = (
        insert_for(session, OUTBOX)
        .from_select(
            [
                "invitation_id",
                "channel",
                "purpose",
                "dedupe_key",
                "language",
                "payload",
                "status",
                "not_before",
                "created_at",
                "attempts",
            ],
            source,
        )
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        # the number of rows inserted (SQLAlchemy keeps it for UPDATE/DELETE only by default)
        .execution_options(preserve_rowcount=True)
    )
    return affected_rows(session.execute(statement))


def cancel_unsendable(session: AnySession, clock: Clock) -> int:
    """Pending messages whose invitation was answered, cancelled, opted out, withdrawn, erased
    or whose window closed become ``cancelled``."""
    pending = select(OUTBOX.c.invitation_id).where(OUTBOX.c.status == "pending")
    stopped = _invitation_people().where(
        Invitation.id.in_(pending), not_(_sendable_sql(clock.today))
    )
    result = session.execute(
        update(OUTBOX)
        .where(OUTBOX.c.status == "pending", OUTBOX.c.invitation_id.in_(stopped))
        .values(status="cancelled", last_error="invitation no longer open")
    )
    return affected_rows(result)


def expire_stale_claims(session: AnySession, clock: Clock) -> int:
    """Rows left in ``sending`` beyond the lease (a crash mid-send) become ``failed``.

    They are never sent again automatically: whether the first attempt reached the person is
    unknown, and a duplicate is worse than a gap a pilot lead can fill with a resend.
    """
    result = session.execute(
        update(OUTBOX)
        .where(OUTBOX.c.status == "sending", OUTBOX.c.claimed_at < clock.now - claim_lease())
        .values(
            status="failed",
            last_error="interrupted while sending (claim lease expired); not re-sent automatically",
        )
    )
    return affected_rows(result)



def resend(
    session: AnySession, invitation: Invitation, clock: Clock, channel: str | None = None
) -> OutboxMessage:
    """Queue a new message (new dedupe key, a new link at send time) for an open invitation.

    ``channel`` None picks the person's usual channel; an explicit channel is kept at send time.
    Expired invitations must be extended first.
    """
    problem = sendable_problem(invitation, clock.today)
    if problem is not None:
        raise InvitationActionError(problem, f"nothing can be sent ({problem})")
    person = invitation.enrolment.person
    if channel is not None and channel not in available_channels(
        person.email, person.phone, person.postal_address
    ):
        raise InvitationActionError("channel", f"the person has no {channel} contact")
    message = OutboxMessage(
        invitation_id=invitation.id,
        channel=channel or channel_for(person.email, person.phone),
        purpose="resend",
        dedupe_key=dedupe_key(invitation.id, "resend"),
        language=person.preferred_language,
        payload={"fixed_channel": channel is not None},
        status="pending",
        not_before=clock.now,
        created_at=clock.now,
        attempts=0,
    )
    session.add(message)
    session.flush()
    return message


# -- message texts ------------------------------------------------------------------------------


@dataclass(frozen=True)
class MessageFacts:
    """Plain values a message is written from (no ORM objects, so composing is pure)."""

    purpose: str
    language: str
    pilot_name: str
    time_point: str
    closes_on: date
    link: str
    opt_out_link: str
    contact: ContactFacts | None = None


@dataclass(frozen=True)
class ContactFacts:
    """Whom to call (the unit's contact in the pilot definition), in the message's language."""

    name: str
    phone: str
    hours: str


def call_us(contact: ContactFacts | None) -> str:
    """The sentence that tells how to reach a person (in the current locale)."""
    if contact is None:
        return _(
            "If you cannot answer online, contact the unit that sent you the questionnaire: "
            "staff can fill in the questionnaire with you, for example over the phone."
        )
    return _(
        "Questions, or cannot answer online? Call %(name)s, %(phone)s (%(hours)s): staff can "
        "fill in the questionnaire with you over the phone.",
        name=contact.name,
        phone=contact.phone,
        hours=contact.hours,
    )


@dataclass(frozen=True)
class MessageText:
    subject: str
    body: str
    sms: str


def organisation() -> str:
    return _("Päijät-Häme wellbeing services county")


def compose(facts: MessageFacts) -> MessageText:
    """The e-mail subject and body and the SMS text, in the person's language."""
    with force_locale(facts.language):
        deadline = format_date(facts.closes_on, format="d.M.yyyy")
        org = organisation()
        reminder = facts.purpose == "reminder"
        if reminder:
            subject = _(
                "Reminder: please answer a questionnaire – %(pilot)s", pilot=facts.pilot_name
            )
            sms = _(
                "%(organisation)s: a reminder to answer the questionnaire by %(date)s: %(link)s",
                organisation=org,
                date=deadline,
                link=facts.link,
            )
        else:
            subject = _("Please answer a questionnaire – %(pilot)s", pilot=facts.pilot_name)
            sms = _(
                "%(organisation)s: please answer the questionnaire by %(date)s: %(link)s",
                organisation=org,
                date=deadline,
                link=facts.link,
            )
        paragraphs = [
            _("Hello,"),
            _(
                "We ask you to answer a short questionnaire (%(time_point)s). Your answers help "
                "us to know how well the services work and to improve them.",
                time_point=facts.time_point,
            ),
        ]
        if reminder:
            paragraphs.append(
                _(
                    "We have not yet received your answers. If you have just answered, thank "
                    "you – you can ignore this message."
                )
            )
        paragraphs += [
            _("Answer through your personal link:") + "\n" + facts.link,
            _(
                "You can answer until %(date)s. You can stop and continue later with the same "
                "link. The link is personal: please do not share it.",
                date=deadline,
            ),
            _("Taking part is voluntary and does not affect the care or services you receive."),
            call_us(facts.contact),
            _("If you do not want to receive questionnaires, tell us here:")
            + "\n"
            + facts.opt_out_link,
            _("Best regards,") + "\n" + org,
            _("This message was sent automatically. Please do not reply to it."),
        ]
        return MessageText(subject=subject, body="\n\n".join(paragraphs) + "\n", sms=sms)


def letter_context(
    *,
    facts: MessageFacts,
    name: str,
    postal_address: str,
    today: date,
) -> dict[str, Any]:
    """One printed letter as plain values, its texts already in the person's language."""
    with force_locale(facts.language):
        deadline = format_date(facts.closes_on, format="d.M.yyyy")
        reminder = facts.purpose == "reminder"
        return {
            "language": facts.language,
            "organisation": organisation(),
            "date": format_date(today, format="d.M.yyyy"),
            "name": name,
            "address_lines": [line.strip() for line in postal_address.splitlines() if line.strip()],
            "heading": _("Reminder: please answer a questionnaire")
            if reminder
            else _("Please answer a questionnaire"),
            "pilot": facts.pilot_name,
            "paragraphs": [
                _(
                    "We ask you to answer a short questionnaire (%(time_point)s). Your answers "
                    "help us to know how well the services work and to improve them.",
                    time_point=facts.time_point,
                ),
                *(
                    [
                        _(
                            "We have not yet received your answers. If you have just answered, "
                            "thank you – you can ignore this letter."
                        )
                    ]
                    if reminder
                    else []
                ),
                _("You can answer until %(date)s.", date=deadline),
            ],
            "link_label": _("Your personal link"),
            "link": facts.link,
            "qr_alt": _("QR code of your personal link"),
            "qr": qr_data_uri(facts.link),
            "how_to": _(
                "Point the camera of your phone at the code, or type the address into the "
                "address bar of a web browser. The link is personal: please do not share it."
            ),
            "help": call_us(facts.contact),
            "contact": facts.contact,
            "voluntary": _(
                "Taking part is voluntary and does not affect the care or services you receive. "
                "If you do not want to receive questionnaires, you can say so through the link."
            ),
        }


def qr_data_uri(text: str) -> str:
    """A QR code of ``text`` as an SVG ``data:`` URI (the PDF fetcher allows only these)."""
    import qrcode
    import qrcode.image.svg

    image = qrcode.make(
        text,
        image_factory=qrcode.image.svg.SvgPathImage,
        box_size=10,
        border=2,
        error_correction=qrcode.constants.ERROR_CORRECT_M,
    )
    svg = image.to_string(encoding="unicode")
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def personal_link(token: str) -> str:
    from vaikuttavuus.cli.core import patient_url

    return patient_url(token)


def _facts(invitation: Invitation, purpose: str, language: str, token: str) -> MessageFacts:
    link = personal_link(token)
    contact = unit_contact(invitation.enrolment)
    return MessageFacts(
        purpose=purpose,
        language=language,
        pilot_name=invitation.enrolment.pilot.label(language),
        time_point=invitation.time_point.label(language),
        closes_on=invitation.closes_on,
        link=link,
        opt_out_link=f"{link}/opt-out",
        contact=None
        if contact is None
        else ContactFacts(
            name=contact.name.get(language),
            phone=contact.phone,
            hours=contact.hours.get(language),
        ),
    )


def _language(person: Person) -> str:
    languages = tuple(_config("LANGUAGES", ("fi", "sv", "en")))
    return person.preferred_language if person.preferred_language in languages else "fi"


# -- channels -----------------------------------------------------------------------------------


class EmailBackend(Protocol):
    def send(self, message: EmailMessage) -> None: ...

    def close(self) -> None: ...


class SmsSender(Protocol):
    def send(self, phone: str, text: str) -> None: ...


class SmtpEmailBackend:
    """E-mail through an SMTP server (STARTTLS when ``use_tls``); one connection per run."""

    def __init__(
        self,
        host: str,
        port: int = 587,
        username: str | None = None,
        password: str | None = None,
        use_tls: bool = True,
        timeout: float = 30.0,
    ) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.username, self.password, self.use_tls = username, password, use_tls
        self._connection: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        try:
            connection = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            connection.ehlo()
            if self.use_tls:
                connection.starttls(context=ssl.create_default_context())
                connection.ehlo()
            if self.username:
                connection.login(self.username, self.password or "")
        except (OSError, smtplib.SMTPException) as error:
            raise DeliveryDeferredError(
                f"SMTP {self.host}:{self.port} unavailable: {error}"
            ) from error
        return connection

    def _alive(self) -> bool:
        if self._connection is None:
            return False
        try:
            return self._connection.noop()[0] == 250
        except (OSError, smtplib.SMTPException):
            return False

    def send(self, message: EmailMessage) -> None:
        if not self._alive():
            self.close()
            self._connection = self._connect()
        assert self._connection is not None
        try:
            self._connection.send_message(message)
        except (smtplib.SMTPSenderRefused, smtplib.SMTPHeloError) as error:
            raise DeliveryDeferredError(f"SMTP refused the sender: {error}") from error
        except (smtplib.SMTPRecipientsRefused, smtplib.SMTPDataError) as error:
            raise DeliveryFailedError(f"SMTP refused the message: {error}") from error

    def close(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                self._connection.quit()
            self._connection = None


class FileEmailBackend:
    """Writes each e-mail as an ``.eml`` file (demonstrations and tests without SMTP)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def send(self, message: EmailMessage) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        path = self.directory / f"{stamp}-{secrets.token_hex(4)}.eml"
        path.write_bytes(message.as_bytes())
        path.chmod(0o600)

    def close(self) -> None:
        return None


class LoggingSmsSender:
    """For demonstrations: writes each SMS to the application log and to
    ``instance/sms-outbox.log`` instead of sending it. Not for real patients."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or Path(current_app.instance_path) / "sms-outbox.log"

    def send(self, phone: str, text: str) -> None:
        current_app.logger.info("SMS (not sent, logging sender) to %s: %s", phone, text)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(f"{stamp}\t{phone}\t{text}\n")


def load_sms_sender(spec: str) -> SmsSender:
    """Instantiate ``module:Class`` (no arguments; read settings from ``current_app.config``)."""
    module_name, _sep, class_name = spec.partition(":")
    if not module_name or not class_name:
        raise ValueError(f"SMS_SENDER must look like 'package.module:Class', not {spec!r}")
    sender = getattr(importlib.import_module(module_name), class_name)()
    if not callable(getattr(sender, "send", None)):
        raise TypeError(f"{spec} has no send(phone, text) method")
    return sender


@dataclass
class Senders:
    email: EmailBackend
    sms: SmsSender

    def close(self) -> None:
        self.email.close()


def configured_senders() -> Senders:
    """The senders the configuration names: SMTP when ``MAIL_SERVER`` is set, otherwise
    ``.eml`` files under ``instance/mail/``; SMS through ``SMS_SENDER``."""
    config = current_app.config
    email: EmailBackend
    if config.get("MAIL_SERVER"):
        email = SmtpEmailBackend(
            host=str(config["MAIL_SERVER"]),
            port=int(config.get("MAIL_PORT") or 587),
            username=config.get("MAIL_USERNAME"),
            password=config.get("MAIL_PASSWORD"),
            use_tls=bool(config.get("MAIL_USE_TLS", True)),
            timeout=float(config.get("MAIL_TIMEOUT") or 30),
        )
    else:
        email = FileEmailBackend(Path(current_app.instance_path) / "mail")
    sms_spec = str(config.get("SMS_SENDER") or "vaikuttavuus.services.messaging:LoggingSmsSender")
    if config.get("PRODUCTION") and (
        not config.get("MAIL_SERVER") or sms_spec.endswith(":LoggingSmsSender")
    ):
        current_app.logger.warning(
            "PRODUCTION with a demonstration message channel (e-mail to files or the logging "
            "SMS sender): messages are not delivered and links are written to disk"
        )
    return Senders(email=email, sms=load_sms_sender(sms_spec))


def build_email(recipient: str, text: MessageText, language: str, now: datetime) -> EmailMessage:
    sender = str(_config("MAIL_SENDER", "vaikuttavuus@example.invalid"))
    message = EmailMessage()
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = text.subject
    message["Date"] = format_datetime(now)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or "localhost")
    message["Content-Language"] = language
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(text.body)
    return message


# -- sending e-mail and SMS ---------------------------------------------------------------------


@dataclass
class SendResult:
    """Outcomes of one run per (channel, outcome): sent, failed, cancelled, deferred, …"""

    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)
    expired_claims: int = 0
    skipped: int = 0  # claimed by an overlapping run

    def add(self, channel: str, outcome: str) -> None:
        self.outcomes[(channel, outcome)] += 1

    def count(self, outcome: str) -> int:
        return sum(n for (_channel, kind), n in self.outcomes.items() if kind == outcome)


def send_pending(
    session: AnySession,
    clock: Clock,
    senders: Senders | None = None,
    *,
    limit: int | None = None,
) -> SendResult:
    """Send the due e-mail and SMS messages, each exactly once even when runs overlap.

    Commits after every claim and every outcome (see the module docstring).
    """
    result = SendResult()
    result.expired_claims = expire_stale_claims(session, clock)
    session.commit()
    statement = (
        select(OUTBOX.c.id, OUTBOX.c.channel)
        .where(
            OUTBOX.c.status == "pending",
            OUTBOX.c.channel.in_(IMMEDIATE_CHANNELS),
            OUTBOX.c.not_before <= clock.now,
        )
        .order_by(OUTBOX.c.id)
    )
    if limit is not None:
        statement = statement.limit(limit)
    due = session.execute(statement).all()
    session.commit()
    if not due:
        return result
    own_senders = senders is None
    senders = senders or configured_senders()
    unavailable: set[str] = set()
    try:
        for message_id, channel in due:
            if channel in unavailable:
                result.add(channel, "deferred")
                continue
            claim = claim_message(session, message_id, clock)
            if claim is None:
                result.skipped += 1
                continue
            channel_used, outcome = _deliver(session, message_id, claim, clock, senders)
            result.add(channel_used, outcome)
            if outcome == "deferred":
                unavailable.add(channel_used)
    finally:
        if own_senders:
            senders.close()
    return result


def claim_message(session: AnySession, message_id: int, clock: Clock) -> str | None:
    """Take one pending row for this run (committed); None when another run has it."""
    claim = secrets.token_hex(16)
    outcome = session.execute(
        update(OUTBOX)
        .where(OUTBOX.c.id == message_id, OUTBOX.c.status == "pending")
        .values(
            status="sending",
            claim_token=claim,
            claimed_at=_ts(clock.now),
            attempts=OUTBOX.c.attempts + 1,
        )
    )
    session.commit()
    return claim if affected_rows(outcome) == 1 else None


def _finish(session: AnySession, message_id: int, claim: str, **values: Any) -> None:
    """Move a row this run claimed to its outcome (and commit)."""
    session.execute(
        update(OUTBOX)
        .where(
            OUTBOX.c.id == message_id,
            OUTBOX.c.claim_token == claim,
            OUTBOX.c.status == "sending",
        )
        .values(**values)
    )
    session.commit()


def _release(session: AnySession, message_id: int, claim: str, **values: Any) -> None:
    _finish(
        session, message_id, claim, status="pending", claim_token=None, claimed_at=None, **values
    )


def _deliver(
    session: AnySession, message_id: int, claim: str, clock: Clock, senders: Senders
) -> tuple[str, str]:
    message = session.get(OutboxMessage, message_id)
    assert message is not None
    channel = message.channel
    invitation = message.invitation
    if invitation is None:
        _finish(session, message_id, claim, status="failed", last_error="no invitation")
        return channel, "failed"
    problem = sendable_problem(invitation, clock.today)
    if problem is not None:
        _finish(session, message_id, claim, status="cancelled", last_error=f"not sent: {problem}")
        return channel, "cancelled"
    person = invitation.enrolment.person
    fixed = bool((message.payload or {}).get("fixed_channel"))
    if not fixed:
        current = channel_for(person.email, person.phone)
        if current == "letter":
            # The contact details changed since the row was queued: it waits for a letter batch.
            _release(session, message_id, claim, channel="letter")
            return "letter", "rerouted"
        channel = current
    recipient = person.email if channel == "email" else person.phone
    if not recipient:
        _finish(session, message_id, claim, status="failed", last_error=f"no {channel} contact")
        return channel, "failed"
    recipient = recipient.strip()
    language = _language(person)
    purpose = message.purpose
    invitation_id = invitation.id

    from vaikuttavuus.services.patient_flow import issue_token

    token = issue_token(session, invitation)
    facts = _facts(invitation, purpose, language, token)
    session.commit()  # the link works before it can reach anyone
    text = compose(facts)
    try:
        if channel == "email":
            senders.email.send(build_email(recipient, text, language, clock.now))
        else:
            senders.sms.send(recipient, text.sms)
    except DeliveryDeferredError as error:
        _revoke(session, [token], clock.now)
        give_up = (message_attempts(session, message_id) or 0) >= max_attempts()
        values: dict[str, Any] = {"last_error": _clean(error, token)}
        if give_up:
            _finish(session, message_id, claim, status="failed", **values)
            return channel, "failed"
        _release(session, message_id, claim, not_before=_ts(clock.now + retry_delay()), **values)
        return channel, "deferred"
    except Exception as error:
        log.warning("message %s (%s) failed: %s", message_id, channel, _clean(error, token))
        _finish(session, message_id, claim, status="failed", last_error=_clean(error, token))
        return channel, "failed"
    _finish(
        session,
        message_id,
        claim,
        status="sent",
        sent_at=_ts(clock.now),
        channel=channel,
        recipient=recipient[:300],
        language=language,
        last_error=None,
    )
    _mark_invitations_sent(session, [(invitation_id, purpose)], channel, clock.now)
    session.commit()
    return channel, "sent"


def message_attempts(session: AnySession, message_id: int) -> int | None:
    return session.scalar(select(OUTBOX.c.attempts).where(OUTBOX.c.id == message_id))


def _clean(error: BaseException, *secrets_: str) -> str:
    """An error text safe to store: never the token (a provider may echo the message)."""
    text = f"{type(error).__name__}: {error}"
    for secret in secrets_:
        if secret:
            text = text.replace(secret, "[token]")
    return text[:ERROR_LIMIT]


def _revoke(session: AnySession, tokens: Iterable[str], now: datetime) -> None:
    hashes = [token_hash(t) for t in tokens]
    if hashes:
        session.execute(
            update(AccessToken.__table__)
            .where(AccessToken.__table__.c.token_hash.in_(hashes))
            .values(revoked_at=_ts(now))
        )
    session.commit()


def _mark_invitations_sent(
    session: AnySession, sent: list[tuple[int, str]], channel: str, now: datetime
) -> None:
    """First/last send times, reminder count and channel of the invitations just sent to
    (delivery details no analysis reads)."""
    with change_log.analysis_neutral_scope(session):
        _mark_sent(session, sent, channel, now)


def _mark_sent(
    session: AnySession, sent: list[tuple[int, str]], channel: str, now: datetime
) -> None:
    for reminder in (True, False):
        ids = [inv for inv, purpose in sent if (purpose == "reminder") == reminder]
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            session.execute(
                update(INVITATIONS)
                .where(INVITATIONS.c.id.in_(chunk))
                .values(
                    first_sent_at=func.coalesce(INVITATIONS.c.first_sent_at, _ts(now)),
                    last_sent_at=_ts(now),
                    reminders_sent=INVITATIONS.c.reminders_sent + (1 if reminder else 0),
                    channel=channel,
                )
            )


# -- printed letters ----------------------------------------------------------------------------


@dataclass(frozen=True)
class LetterBatch:
    batch_id: str
    pdf: bytes
    letters: int
    failed: int
    cancelled: int
    person_ids: tuple[int, ...]


def pending_letters(session: AnySession, clock: Clock, pilot_code: str | None = None) -> int:
    statement = (
        select(func.count())
        .select_from(OUTBOX)
        .where(
            OUTBOX.c.status == "pending",
            OUTBOX.c.channel == "letter",
            OUTBOX.c.not_before <= clock.now,
        )
    )
    if pilot_code:
        statement = statement.where(OUTBOX.c.invitation_id.in_(_pilot_invitations(pilot_code)))
    return int(session.scalar(statement) or 0)


SENDING_GRACE = timedelta(minutes=30)
"""How long an e-mail or SMS may wait before the page says that sending does not run."""


def waiting_since(
    session: AnySession, clock: Clock, grace: timedelta = SENDING_GRACE
) -> datetime | None:
    """When the oldest e-mail or SMS that should already have gone out was due, if it has
    waited longer than ``grace``: sending (``vaikuttavuus invitations send`` from cron) does not
    run. None when nothing has waited that long."""
    oldest = session.scalar(
        select(func.min(OUTBOX.c.not_before)).where(
            OUTBOX.c.status == "pending", OUTBOX.c.channel.in_(("email", "sms"))
        )
    )
    if oldest is None:
        return None
    if oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=UTC)
    return oldest if oldest < clock.now - grace else None


def _pilot_invitations(pilot_code: str) -> Any:
    return (
        select(Invitation.id)
        .join(Enrolment, Invitation.enrolment_id == Enrolment.id)
        .join(Pilot, Enrolment.pilot_id == Pilot.id)
        .where(Pilot.code == pilot_code)
    )


def produce_letter_batch(
    session: AnySession,
    clock: Clock,
    *,
    pilot_code: str | None = None,
    limit: int | None = None,
    deliver: Callable[[bytes], None] | None = None,
    language: str = "fi",
) -> LetterBatch | None:
    """Render the next batch of pending letters into one PDF (one A4 page per person).

    The letters are claimed like any message; ``deliver`` (e.g. writing the file) runs before
    they are marked ``sent`` with their ``letter_batch``. If rendering or ``deliver`` fails,
    they go back to ``pending`` and their new links are revoked. None when nothing is waiting.
    """
    from vaikuttavuus.pdf import render_pdf
    from vaikuttavuus.services.patient_flow import issue_token

    expire_stale_claims(session, clock)
    session.commit()
    batch_id = f"{clock.now:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"
    size = limit or int(_config("LETTER_BATCH_SIZE", DEFAULT_LETTER_BATCH_SIZE))
    candidates = (
        select(OUTBOX.c.id)
        .where(
            OUTBOX.c.status == "pending",
            OUTBOX.c.channel == "letter",
            OUTBOX.c.not_before <= clock.now,
        )
        .order_by(OUTBOX.c.id)
        .limit(size)
    )
    if pilot_code:
        candidates = candidates.where(OUTBOX.c.invitation_id.in_(_pilot_invitations(pilot_code)))
    ids = list(session.scalars(candidates))
    session.commit()
    if not ids:
        return None
    session.execute(
        update(OUTBOX)
        .where(OUTBOX.c.id.in_(ids), OUTBOX.c.status == "pending")
        .values(
            status="sending",
            claim_token=batch_id,
            claimed_at=_ts(clock.now),
            attempts=OUTBOX.c.attempts + 1,
        )
    )
    session.commit()
    claimed = list(
        session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.claim_token == batch_id, OutboxMessage.status == "sending")
            .order_by(OutboxMessage.id)
        )
    )
    letters: list[dict[str, Any]] = []
    included: list[tuple[int, int, str]] = []  # message id, invitation id, purpose
    person_ids: list[int] = []
    tokens: list[str] = []
    failed = cancelled = 0
    for message in claimed:
        invitation = message.invitation
        problem = (
            "no invitation" if invitation is None else sendable_problem(invitation, clock.today)
        )
        if problem is not None or invitation is None:
            _finish(
                session, message.id, batch_id, status="cancelled", last_error=f"not sent: {problem}"
            )
            cancelled += 1
            continue
        person = invitation.enrolment.person
        fixed = bool((message.payload or {}).get("fixed_channel"))
        current = channel_for(person.email, person.phone)
        if not fixed and current != "letter":
            _release(session, message.id, batch_id, channel=current)
            continue
        if not (person.postal_address and person.postal_address.strip()):
            _finish(
                session,
                message.id,
                batch_id,
                status="failed",
                last_error="no e-mail, phone or postal address",
            )
            failed += 1
            continue
        language = _language(person)
        token = issue_token(session, invitation)
        tokens.append(token)
        facts = _facts(invitation, message.purpose, language, token)
        letters.append(
            letter_context(
                facts=facts,
                name=person.display_name,
                postal_address=person.postal_address,
                today=clock.today,
            )
        )
        included.append((message.id, invitation.id, message.purpose))
        person_ids.append(person.id)
    session.commit()
    if not letters:
        return None
    try:
        pdf = render_pdf("letters.html", language, letters=letters, batch_id=batch_id)
        if deliver is not None:
            deliver(pdf)
    except BaseException:
        session.rollback()
        _revoke(session, tokens, clock.now)
        session.execute(
            update(OUTBOX)
            .where(OUTBOX.c.claim_token == batch_id, OUTBOX.c.status == "sending")
            .values(status="pending", claim_token=None, claimed_at=None)
        )
        session.commit()
        raise
    message_ids = [message_id for message_id, _inv, _purpose in included]
    for start in range(0, len(message_ids), 500):
        session.execute(
            update(OUTBOX)
            .where(
                OUTBOX.c.id.in_(message_ids[start : start + 500]),
                OUTBOX.c.claim_token == batch_id,
                OUTBOX.c.status == "sending",
            )
            .values(status="sent", sent_at=_ts(clock.now), letter_batch=batch_id)
        )
    _mark_invitations_sent(
        session, [(inv, purpose) for _id, inv, purpose in included], "letter", clock.now
    )
    session.commit()
    return LetterBatch(
        batch_id=batch_id,
        pdf=pdf,
        letters=len(letters),
        failed=failed,
        cancelled=cancelled,
        person_ids=tuple(person_ids),
    )


# -- the whole run and summaries ----------------------------------------------------------------


@dataclass
class RunReport:
    refresh: RefreshResult
    enqueued: EnqueueResult
    sent: SendResult | None
    due: dict[str, int]  # pending and due per channel (after the run; before it on a dry run)
    dry_run: bool = False


def due_counts(session: AnySession, clock: Clock) -> dict[str, int]:
    rows = session.execute(
        select(OUTBOX.c.channel, func.count())
        .where(OUTBOX.c.status == "pending", OUTBOX.c.not_before <= clock.now)
        .group_by(OUTBOX.c.channel)
    ).all()
    return {str(channel): int(n) for channel, n in rows}


def run(
    session: AnySession,
    clock: Clock,
    senders: Senders | None = None,
    *,
    dry_run: bool = False,
    limit: int | None = None,
) -> RunReport:
    """Refresh the invitations, enqueue what is due and send it (``vaikuttavuus invitations
    send``). A dry run does the first two steps, counts, and rolls everything back."""
    refreshed = refresh(session, clock.today, clock.now)
    enqueued = enqueue(session, clock)
    if dry_run:
        due = due_counts(session, clock)
        session.rollback()
        return RunReport(refreshed, enqueued, None, due, dry_run=True)
    session.commit()
    sent = send_pending(session, clock, senders, limit=limit)
    return RunReport(refreshed, enqueued, sent, due_counts(session, clock))


def outbox_summary(
    session: AnySession, pilot_code: str | None = None
) -> list[tuple[str, str, int]]:
    """(channel, status, count) of every outbox row, optionally of one pilot."""
    statement = select(OUTBOX.c.channel, OUTBOX.c.status, func.count()).group_by(
        OUTBOX.c.channel, OUTBOX.c.status
    )
    if pilot_code:
        statement = statement.where(OUTBOX.c.invitation_id.in_(_pilot_invitations(pilot_code)))
    rows = session.execute(statement.order_by(OUTBOX.c.channel, OUTBOX.c.status)).all()
    return [(str(c), str(s), int(n)) for c, s, n in rows]


def invitation_summary(
    session: AnySession, pilot_code: str | None = None
) -> list[tuple[str, str, str, int]]:
    """(pilot, time point, status, count) of the invitations."""
    statement = (
        select(Pilot.code, TimePoint.code, Invitation.status, func.count())
        .select_from(Invitation)
        .join(TimePoint, Invitation.time_point_id == TimePoint.id)
        .join(Pilot, TimePoint.pilot_id == Pilot.id)
        .group_by(Pilot.code, TimePoint.code, TimePoint.ordinal, Invitation.status)
        .order_by(Pilot.code, TimePoint.ordinal, Invitation.status)
    )
    if pilot_code:
        statement = statement.where(Pilot.code == pilot_code)
    return [(str(p), str(t), str(s), int(n)) for p, t, s, n in session.execute(statement).all()]


def messages_of(session: AnySession, invitation_id: int) -> list[OutboxMessage]:
    """An invitation's outbox rows, oldest first."""
    return list(
        session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.invitation_id == invitation_id)
            .order_by(OutboxMessage.created_at, OutboxMessage.id)
        )
    )
