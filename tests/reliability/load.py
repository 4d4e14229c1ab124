"""Virtual patients for the load tests: each walks its personal link over real HTTP (``requests``)
the way people and flaky networks do — pages posted out of order, double submits, retries after
a client-side timeout — and remembers exactly what the server acknowledged."""

from __future__ import annotations

import random
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import requests

from tests.support.crawl import HtmlForm, parse_page

FORM_TOKEN = re.compile(r'name="form_token"[^>]*value="([^"]+)"')


class ServerGoneError(Exception):
    """The server stopped answering (killed on purpose in the crash test)."""


@dataclass
class Stats:
    """Counters shared by every client thread."""

    requests: int = 0
    failures: int = 0  # 5xx answers and unexpected statuses
    connection_errors: int = 0
    timeouts: int = 0
    double_submits: int = 0
    out_of_order: int = 0
    submits_acknowledged: int = 0
    stored_unacknowledged: int = 0  # a submit stored just before a crash took its answer along
    lock: threading.Lock = field(default_factory=threading.Lock)
    problems: list[str] = field(default_factory=list)

    def add(self, **counts: int) -> None:
        with self.lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def problem(self, text: str) -> None:
        with self.lock:
            self.failures += 1
            if len(self.problems) < 50:
                self.problems.append(text)

    def summary(self) -> dict[str, int]:
        return {
            name: getattr(self, name)
            for name in (
                "requests", "failures", "connection_errors", "timeouts", "double_submits",
                "out_of_order", "submits_acknowledged", "stored_unacknowledged",
            )
        }  # fmt: skip


@dataclass
class Patient:
    """One personal link and what the server acknowledged for it."""

    token: str
    seed: int
    intended: dict[str, str] = field(default_factory=dict)  # item id → value sent
    pages: dict[int, dict[str, str]] = field(default_factory=dict)  # page → its answers
    acknowledged_pages: set[int] = field(default_factory=set)
    learned: bool = False  # every page has been read (a kill can interrupt the reading)
    submitted: bool = False  # the server answered the submit with the thank-you redirect
    finished: bool = False


class Client:
    """A browser-like client for one patient at a time (keep-alive session per thread)."""

    def __init__(
        self,
        base_url: str,
        stats: Stats,
        *,
        double_submit: float = 0.3,
        timeout_retry: float = 0.15,
        shuffle: float = 0.5,
        stop: threading.Event | None = None,
    ) -> None:
        self.base = base_url.rstrip("/")
        self.stats = stats
        self.double_submit = double_submit
        self.timeout_retry = timeout_retry
        self.shuffle = shuffle
        self.stop = stop or threading.Event()
        self.local = threading.local()

    # -- HTTP --------------------------------------------------------------------------------

    def session(self) -> requests.Session:
        if not hasattr(self.local, "session"):
            self.local.session = requests.Session()
        return self.local.session  # type: ignore[no-any-return]

    def request(self, method: str, path: str, *, timeout: float = 60.0, **kwargs: Any) -> Any:
        if self.stop.is_set():
            raise ServerGoneError(path)
        self.stats.add(requests=1)
        for attempt in range(2):
            try:
                response = self.session().request(
                    method, self.base + path, timeout=timeout, allow_redirects=False, **kwargs
                )
                break
            except requests.Timeout:
                self.stats.add(timeouts=1)
                raise
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as error:
                # refused, reset, or the body cut off when the server died after the headers;
                # once more on a new connection first, as a browser does when the server had
                # just closed the kept-alive one (a server that is gone refuses that too)
                self.stats.add(connection_errors=1)
                if attempt or self.stop.is_set():
                    raise ServerGoneError(path) from error
                del self.local.session  # the next request opens a new connection
                time.sleep(0.05)
        if response.status_code >= 500:
            self.stats.problem(f"{method} {path}: {response.status_code}")
        return response

    def post_with_retry(self, path: str, data: dict[str, Any], rng: random.Random) -> Any:
        """POST; sometimes give up after a few milliseconds first (as a phone on a bad network
        does) and send the same form again."""
        if rng.random() < self.timeout_retry:
            try:
                return self.request("POST", path, data=data, timeout=rng.choice([0.001, 0.01]))
            except requests.Timeout:
                pass  # the server may or may not have stored it: send again
        for attempt in range(5):
            try:
                return self.request("POST", path, data=data)
            except requests.Timeout:
                time.sleep(0.2 * (attempt + 1))
        raise ServerGoneError(path)

    # -- the walk ----------------------------------------------------------------------------

    def answer(self, patient: Patient) -> None:
        """Answer and submit; raises :class:`ServerGoneError` if the server disappears."""
        rng = random.Random(patient.seed)
        if not patient.learned:
            # The same seed gives the same choices, so pages acknowledged earlier agree.
            patient.pages.clear()
            patient.intended.clear()
            self._learn_pages(patient, rng)
        token_path = f"/r/{patient.token}"
        form_token = self._form_token(patient)
        if form_token is None:
            return  # stored before the server died; check_submitted checks what was stored
        order = sorted(patient.pages)
        if rng.random() < self.shuffle:
            rng.shuffle(order)
            self.stats.add(out_of_order=1)
        for number in order:
            if number in patient.acknowledged_pages:
                continue
            data = {"form_token": form_token, "direction": "next", **patient.pages[number]}
            response = self.post_with_retry(f"{token_path}/{number}", data, rng)
            if response.status_code == 302:
                patient.acknowledged_pages.add(number)
            else:
                self.stats.problem(f"page {number}: {response.status_code}")
                return
        self._submit(patient, form_token, rng)

    def _form_token(self, patient: Patient) -> str | None:
        """The form token of the link's first page; None when the link says its answers were
        received: a submit the server stored just before it was killed, whose answer was lost
        with it (the patient is then counted as submitted, and what was stored is checked)."""
        page = self.request("GET", f"/r/{patient.token}/1")
        if page.status_code == 200 and 'data-state="completed"' in page.text:
            patient.submitted = patient.finished = True
            self.stats.add(stored_unacknowledged=1)
            return None
        match = FORM_TOKEN.search(page.text)
        if page.status_code != 200 or not match:
            self.stats.problem(f"no form on page 1 of a link ({page.status_code})")
            raise ServerGoneError("no form")
        return match.group(1)

    def _learn_pages(self, patient: Patient, rng: random.Random) -> None:
        number = 1
        while True:
            page = self.request("GET", f"/r/{patient.token}/{number}")
            if page.status_code == 302:
                patient.learned = True
                return  # past the last page
            if page.status_code != 200:
                self.stats.problem(f"GET page {number}: {page.status_code}")
                raise ServerGoneError("cannot read pages")
            forms = [f for f in parse_page(page.url, page.text).forms if f.method == "post"]
            patient.pages[number] = self._choose(forms[0], rng)
            patient.intended.update(patient.pages[number])
            number += 1

    @staticmethod
    def _choose(form: HtmlForm, rng: random.Random) -> dict[str, str]:
        options: dict[str, list[str]] = {}
        answers: dict[str, str] = {}
        for f in form.user_fields:
            if f.kind in {"radio", "checkbox"}:
                options.setdefault(f.name, []).append(f.value)
            elif f.kind == "textarea":
                answers[f.name] = f"Palaute {rng.randint(1, 10**6)} åäö"
            else:
                answers[f.name] = str(rng.randint(0, 10))
        for name, values in options.items():
            answers[name] = rng.choice(values)
        return answers

    def _submit(self, patient: Patient, form_token: str, rng: random.Random) -> None:
        path = f"/r/{patient.token}/submit"
        data = {"form_token": form_token}
        results: list[Any] = []
        if rng.random() < self.double_submit:
            self.stats.add(double_submits=1)
            second = threading.Thread(target=self._submit_into, args=(path, data, results))
            second.start()
            self._submit_into(path, data, results, rng)
            second.join()
        else:
            self._submit_into(path, data, results, rng)
        for response in results:
            if response is None:
                continue
            location = response.headers.get("Location", "")
            if response.status_code == 302 and "/thanks" in location:
                if not patient.submitted:
                    patient.submitted = True
                    self.stats.add(submits_acknowledged=1)
            else:
                self.stats.problem(f"submit: {response.status_code} to {location[:40]}")
        if patient.submitted:
            patient.finished = True

    def _submit_into(
        self,
        path: str,
        data: dict[str, str],
        results: list[Any],
        rng: random.Random | None = None,
    ) -> None:
        try:
            results.append(self.post_with_retry(path, data, rng or random.Random(0)))
        except ServerGoneError:
            results.append(None)


def run_patients(
    client: Client,
    patients: list[Patient],
    *,
    threads: int,
    after_each: Callable[[Patient], None] | None = None,
) -> float:
    """Answer every patient with ``threads`` parallel clients; returns the seconds taken."""

    def one(patient: Patient) -> None:
        try:
            client.answer(patient)
        except ServerGoneError:
            return
        if after_each is not None:
            after_each(patient)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(one, patients))
    return time.perf_counter() - started
