"""The patient pages after the walkthrough (issue 17): whom to call, where the "continue later"
note belongs, the send button above the review, the language a browser chose, what the
questions say.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.conftest import FORM_TOKEN_FIELD
from tests.web.test_walking_skeleton import IPSS_ANSWERS, answer_pages
from vaikuttavuus.extensions import db
from vaikuttavuus.models import ServiceExposure

CONTINUE_LATER = "Voit jatkaa myöhemmin samasta linkistä"


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_the_unit_contact_shows_where_a_patient_needs_it(
    client: FlaskClient, enrol_patient: Any, patient_link: Any
) -> None:
    """Intro, opt-out, opted-out, thank-you and already-answered pages name the person's unit
    with its phone (a tel: link) and hours; another unit of the pilot gets its own; a unit not
    in the definition gets the pilot's default."""
    heinola = enrol_patient(index_offset_days=10)
    heinola.unit = "Poliklinikka Heinola"
    elsewhere = enrol_patient(index_offset_days=10)
    elsewhere.unit = "Yksikkö jota ei ole määritelty"
    db.session.commit()
    token = patient_link(heinola)

    start = client.get(f"/r/{token}").get_data(as_text=True)
    assert "Poliklinikka, Heinola" in start
    assert 'href="tel:030001230"' in start and "ma, ke ja to klo 9–12" in start
    assert CONTINUE_LATER in _text(start)
    opt_out = client.get(f"/r/{token}/opt-out").get_data(as_text=True)
    assert "03 000 1230" in opt_out
    assert "hoitoosi" not in opt_out and "saamaasi hoitoon tai palveluihin" in opt_out

    default = client.get(f"/r/{patient_link(elsewhere)}").get_data(as_text=True)
    assert "Urologian poliklinikka" in default and "03 000 1200" in default

    review = answer_pages(client, token, IPSS_ANSWERS)
    form_token = FORM_TOKEN_FIELD.search(review)
    assert form_token
    thanks = client.get(
        client.post(f"/r/{token}/submit", data={"form_token": form_token.group(1)}).headers[
            "Location"
        ]
    ).get_data(as_text=True)
    assert "03 000 1230" in thanks
    assert CONTINUE_LATER not in _text(thanks)  # nothing is left to continue
    done = client.get(f"/r/{token}").get_data(as_text=True)
    assert "Olet jo vastannut" in done and "03 000 1230" in done
    assert CONTINUE_LATER not in _text(done)


def test_the_older_adults_pages_speak_of_services_and_name_them(
    client: FlaskClient, enrol_patient: Any, patient_link: Any
) -> None:
    """The introduction does not speak of treatment; the experience questionnaire names the
    services the client has received; the insecurity items carry no note for staff."""
    enrolment = enrol_patient(pilot="older-adults", arm="outreach", index_offset_days=-190)
    enrolment.unit = "Etsivä vanhustyö Heinola"
    db.session.add(
        ServiceExposure(
            enrolment_id=enrolment.id,
            service_type="friend_service",
            provider_sector="ngo",
            provider_name="Päijänteen Ystäväpiiri ry",
            started_on=date.today() - timedelta(days=150),
            contacts=12,
        )
    )
    db.session.commit()
    token = patient_link(enrolment, "m6")
    start = _text(client.get(f"/r/{token}").get_data(as_text=True))
    assert "hoito" not in start.lower()
    assert "miten hyvin palvelut toimivat" in start and "03 000 1320" in start
    pages = [_text(client.get(f"/r/{token}/{n}").get_data(as_text=True)) for n in range(1, 9)]
    assert not any("Hankkeen laatima" in page or "ei validoitu" in page for page in pages)
    prem = [page for page in pages if "Kokemuksesi saamistasi palveluista" in page]
    assert prem, "the experience questionnaire is on the m6 pages"
    for page in prem:
        assert "Ystävä- ja vierailijatoiminta (Päijänteen Ystäväpiiri ry)" in page
    assert "suosittelisit saamiasi palveluja" in prem[-1]
    assert "tätä palvelua" not in " ".join(prem)


def test_the_review_page_offers_the_send_button_first(
    client: FlaskClient, enrol_patient: Any, patient_link: Any
) -> None:
    token = patient_link(enrol_patient(index_offset_days=10))
    review = answer_pages(client, token, IPSS_ANSWERS)
    first_answer = review.index('class="answers"')
    forms = [m.start() for m in re.finditer(r'<form method="post" action="[^"]*/submit"', review)]
    assert len(forms) == 2 and forms[0] < first_answer < forms[1]
    assert "Vastauksesi lähetetään, kun painat Lähetä vastaukset." in review


def test_an_incomplete_review_links_to_the_pages_to_answer(
    client: FlaskClient, enrol_patient: Any, patient_link: Any
) -> None:
    token = patient_link(enrol_patient(index_offset_days=10))
    review = client.get(f"/r/{token}/review").get_data(as_text=True)
    assert "/submit" not in review
    links = re.findall(r'href="#review-(\d+)"', review)
    assert links and all(f'id="review-{n}"' in review for n in links)


def test_the_language_chosen_is_remembered_by_this_browser_only(
    app: Flask, enrol_patient: Any, patient_link: Any
) -> None:
    """One switch to English keeps this browser in English; a new browser opens the link in
    the registered language (Finnish) until the answers are sent in English."""
    enrolment = enrol_patient(index_offset_days=10)
    token = patient_link(enrolment)
    browser = app.test_client()
    assert 'lang="en"' in browser.get(f"/r/{token}?lang=en").get_data(as_text=True)
    assert 'lang="en"' in browser.get(f"/r/{token}/1").get_data(as_text=True)
    fresh = app.test_client()
    assert '<html lang="fi"' in fresh.get(f"/r/{token}").get_data(as_text=True)
    db.session.refresh(enrolment.person)
    assert enrolment.person.preferred_language == "fi"

    review = answer_pages(browser, token, IPSS_ANSWERS)
    form_token = FORM_TOKEN_FIELD.search(review)
    assert form_token
    browser.post(f"/r/{token}/submit", data={"form_token": form_token.group(1)})
    db.session.refresh(enrolment.person)
    assert enrolment.person.preferred_language == "en"  # the language the answers came in
    assert '<html lang="en"' in app.test_client().get(f"/r/{token}").get_data(as_text=True)


def test_letters_and_messages_say_whom_to_call(app: Flask, enrol_patient: Any) -> None:
    from vaikuttavuus.models import Invitation, TimePoint
    from vaikuttavuus.services import messaging

    enrolment = enrol_patient(index_offset_days=10)
    enrolment.unit = "PHKS urologia"
    db.session.commit()
    invitation = db.session.scalar(
        select(Invitation)
        .join(TimePoint, Invitation.time_point_id == TimePoint.id)
        .where(Invitation.enrolment_id == enrolment.id, TimePoint.code == "baseline")
    )
    assert invitation is not None
    with app.test_request_context():
        for language, name in (("fi", "Urologian osasto, PHKS"), ("sv", "Urologiska avdelningen")):
            facts = messaging._facts(invitation, "initial", language, "x" * 32)
            letter = messaging.letter_context(
                facts=facts, name="Testi", postal_address="Katu 1", today=date.today()
            )
            assert name in letter["help"] and "03 000 1210" in letter["help"]
            assert "03 000 1210" in messaging.compose(facts).body
