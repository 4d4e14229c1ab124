"""Message senders that record instead of sending, and a SQL statement counter."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from sqlalchemy import event

from vaikuttavuus.extensions import db
from vaikuttavuus.services.messaging import Senders

LINK = re.compile(r"https?://[^\s/]+/r/([A-Za-z0-9_-]{20,})")


@dataclass
class Delivery:
    channel: str
    recipient: str
    text: str
    subject: str = ""

    @property
    def tokens(self) -> list[str]:
        """The link tokens in the text (the opt-out link repeats the answer link's token)."""
        return list(dict.fromkeys(LINK.findall(self.text)))


@dataclass
class Recorder:
    """A thread-safe recording e-mail backend and SMS sender in one."""

    delay: float = 0.0
    deliveries: list[Delivery] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def send_email(self, message: EmailMessage) -> None:
        if self.delay:
            time.sleep(self.delay)
        body = message.get_content()
        with self.lock:
            self.deliveries.append(
                Delivery("email", str(message["To"]), body, str(message["Subject"]))
            )

    def send_sms(self, phone: str, text: str) -> None:
        if self.delay:
            time.sleep(self.delay)
        with self.lock:
            self.deliveries.append(Delivery("sms", phone, text))

    def senders(self) -> Senders:
        recorder = self

        class Email:
            def send(self, message: EmailMessage) -> None:
                recorder.send_email(message)

            def close(self) -> None:
                return None

        class Sms:
            def send(self, phone: str, text: str) -> None:
                recorder.send_sms(phone, text)

        return Senders(email=Email(), sms=Sms())

    def to(self, recipient: str) -> list[Delivery]:
        return [d for d in self.deliveries if d.recipient == recipient]


@contextmanager
def count_statements() -> Iterator[list[str]]:
    """The SQL statements run on the app's engine inside the block."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", record)


class SlowLoggingSmsSender:
    """The logging SMS sender, slowed down so that overlapping CLI runs really overlap
    (``SMS_SENDER=tests.support.recording:SlowLoggingSmsSender``)."""

    def __init__(self) -> None:
        from vaikuttavuus.services.messaging import LoggingSmsSender

        self.inner = LoggingSmsSender()

    def send(self, phone: str, text: str) -> None:
        time.sleep(0.02)
        self.inner.send(phone, text)
