"""The seeded synthetic data set of both pilots (``vaikuttavuus demo-data``, benchmarks, tests).

:func:`generate` returns a :class:`SyntheticData`: one pandas DataFrame per table (``people``,
``enrolments``, ``procedures``, ``clinical_measurements``, ``service_exposures``,
``cost_items``, ``invitations``, ``responses``, ``answers``) with local integer keys and codes
instead of database ids; :mod:`vaikuttavuus.services.demo_data` writes it to the database.
Pure: stdlib, numpy and pandas (plus the pure :mod:`vaikuttavuus.domain`); no I/O, no clock.
Everything is vectorised over people with numpy; the only per-person Python calls are the
identity-code hash and the pseudonym (:mod:`vaikuttavuus.domain.identity`), which are
inherently one at a time. The same ``seed`` and ``today`` give identical frames.

All people are fictitious. Distributions are chosen to give realistic orders of magnitude
for Päijät-Häme (sources in brackets); they are not estimates of any real population.

Time and state
--------------
* ``today`` is the reference date: everything dated before it has happened, nothing on or
  after it has (procedures, measurements, costs, answers, withdrawals). Timestamps are UTC,
  drawn as Finnish local wall-clock times (EET/EEST by the EU summer-time rule): answers
  between 08 and 22 (weighted to the morning), messages at 09, record keeping 08–17.
* Every table row of an event that has happened carries a plausible ``created_at`` /
  ``recorded_at`` 1–14 days after the event (import lag), always before ``today``.

Split
-----
``people`` is the total: 40 % BPH patients (``BPH_SHARE``) and 60 % older adults; the default
900 gives 360 and 540. One enrolment per person.

BPH pilot (index date = procedure date)
---------------------------------------
* Procedure dates uniform from the pilot's ``start_date`` (default ≈ 30 months before
  ``today``) to 60 days after ``today``, so some baseline windows are open now. Decision to
  treat (enrolment, first urology visit) 14–90 days before, never after ``today − 1``.
* Age N(68, 8) clipped 50–90, all men [typical surgical BPH series].
* Arm: operating room 65 % (TURP 60 %, HoLEP 25 %, laser vaporisation 15 %) vs outpatient
  clinic 35 % (Rezūm 60 %, UroLift 40 %). Types missing from the pilot's ``procedure_types``
  are left out. Units: "PHKS urologia" (operating room) and "Poliklinikka Lahti" (70 %) /
  "Poliklinikka Heinola" (30 %); surgeons ``S01``–``S05`` (OR) and ``S05``–``S08``
  (office). NordDRG-like codes ``11M01``–``11M03`` (OR) and ``11O01``–``11O02`` (office) are
  illustrative, not real groups.
* Prostate volume lognormal (σ 0.35) with median 48 (TURP), 62 (HoLEP), 44 (laser), 42
  (Rezūm), 37 mL (UroLift) — ≈ 50 mL in the OR arm, ≈ 40 mL office — clipped 15–250.
* IPSS total at baseline N(21, 5) (OR) / N(18, 5) (office), rounded, clipped 8–35 [severe
  vs moderate–severe patients offered surgery vs office procedures], ±2 points between the
  baseline answer and the latent baseline. Mean relative reduction from baseline
  (``IPSS_RELATIVE_IMPROVEMENT``, at 3 / 12 months): TURP 65/66 %, HoLEP 68/70 %, laser
  55/55 %, Rezūm 48/44 %, UroLift 40/34 % (slight relapse of minimally invasive treatments)
  [published 1-year series and trials: TURP/HoLEP ≈ 60–70 %, Rezūm ≈ 45–50 %, UroLift
  ≈ 35–40 %], interpolated between the time points' ``offset_days``. Not everyone benefits
  (``IPSS_NO_BENEFIT``): TURP 20 %, HoLEP 19 %, laser 25 %, Rezūm 33 %, UroLift 42 % keep
  their symptoms (relative change N(0, 0.06), kept over time) [treatment failure and
  retreatment are more common after the minimally invasive procedures]; the others improve
  by correspondingly more, so each procedure's mean is the one above, with an individual
  response N(0, 0.15) kept over time; plus N(0, 0.05) per time point (clipped to −60 … 97 %)
  and answer noise N(0, 1.5) points. With the pilot's responder rule (≥ 3 points or ≥ 25 %)
  this gives ≈ 82 % responders after TURP/HoLEP (≈ 78 % laser), ≈ 72 % after Rezūm and
  ≈ 60 % after UroLift, and ≈ 3 % (operating room) / 6 % (office) worse by ≥ 3 points.
  The total is split into the seven items (codes 0–5) by weighted sampling of 35 "slots"
  without replacement (the sum is exact; per-person item profile with weights 1.0, 1.2, 0.9,
  1.0, 1.3, 0.8, 1.2 for ipss1–7 × lognormal(0, 0.35), slightly varying per time point).
  ``ipss_qol`` = round(0.6 + 0.155 × total + N(0, 0.75)) clipped 0–6 (≈ 1.3 mild, 2.6
  moderate, 4.3 severe).
* EQ-5D-5L: per dimension a latent = base + symptoms × (IPSS − 15)/7 + age × (age − 68)/8 +
  person N(0, 0.6) + N(0, 0.6), cut at 0, 1, 2, 3 into levels 1–5 (mobility and self-care
  driven by age; usual activities, pain and anxiety by symptoms), so levels improve with the
  IPSS; VAS = 90 − 4 × Σ(level − 1) − 0.3 × (age − 68) − 6 × person + N(0, 7), 0–100
  (England-2018 index ≈ 0.86 before, ≈ 0.93 after).
* PREM (``prem_bph``, 3 months): satisfaction = N(0, 0.8) + 1.2 × (relative IPSS
  improvement − 0.5) − 0.6 × (Clavien–Dindo ≥ II); agreement items 1–5 around 4.0–4.5
  (waiting time lower in the OR arm), overall rating mostly 1–2 with 2 % "don't know" (9),
  recommendation 0–10 ≈ 8.6 + 1.4 × satisfaction (≈ 55 % promoters, ≈ 8 % detractors),
  "what could we do better" (shown only when ``enable_when`` allows: overall 4–5) written by
  55 % of those who see it and other comments by 8 %, from short built-in Finnish, Swedish
  and English phrases in the respondent's language.
* Clinical measures (only those in ``cohorts/measures.yaml``, rounded to the measure's type
  and clipped into its range; yes/no as ``value_num`` 1/0, grades as ``value_text``):
  at the first visit Qmax N(9, 2.5) mL/s clipped 3–18, PVR lognormal median 100 mL, prostate
  volume, PSA ≈ 0.06 µg/L per mL of prostate × lognormal(0, 0.4) [PSA density]; at 3 months
  (85 %, ±14 d) and 12 months (60 %, ±30 d) Qmax + gain (``QMAX_GAIN``: ≈ +10 TURP/HoLEP,
  +8 laser, +4 office; person N(0, 3)) and PVR × 0.35 (OR) / 0.6 (office); length of stay
  (nights) TURP 1/2/3/4 at 70/22/6/2 % (mean 1.4 [published ≈ 1.4 d]), HoLEP mean ≈ 1.2,
  laser ≈ 0.75, office 0; catheter days TURP ≈ 2.3, HoLEP ≈ 1.5, laser ≈ 1.1, Rezūm ≈ 4,
  UroLift ≈ 0.3; Clavien–Dindo 0 in 82 % (OR) / 90 % (office), I, II, IIIa, IIIb, IVa rare;
  30-day readmission 3 % (OR) / 2.5 % (office) + 35 % if grade ≥ II (≈ 6 % / 4 %);
  re-operation within a year TURP 3 %, HoLEP 1.5 %, laser 4 %, Rezūm 5 %, UroLift 6 %
  [retreatment rates of 1–8 %].
* Resource use (product × quantity, ``kind = resource_use``, dated −90 … +365 days around
  the procedure): first visit, laboratory panel and uroflowmetry at the decision to treat;
  a nurse phone call before (70 %) and after (80 %); OR procedures: OR minutes N(70, 15)
  TURP / N(95, 20) HoLEP / N(65, 15) laser, anaesthesia minutes = OR + 15–30, PACU 1–4 h,
  ward days = length of stay, TURP or HoLEP consumables, laser fibre (HoLEP, laser),
  pathology (TURP, HoLEP); office: procedure-room minutes N(40, 8) Rezūm / N(45, 10)
  UroLift, the Rezūm device or 2–5 UroLift implants (mean ≈ 3.1); a catheter-removal visit
  when the catheter outlasts the stay; follow-up visit at ≈ 3 months (85 %, with
  uroflowmetry 80 %) and ≈ 12 months (35 %); when readmitted an emergency visit and 1–4
  readmission days; a re-operation (TURP-like OR episode and a visit a month before). With
  the shipped example unit costs this gives episode means of ≈ €5 400 TURP (10–90 %:
  ≈ 4 400–6 700), ≈ €6 700 HoLEP, ≈ €4 900 laser, ≈ €2 800 Rezūm and ≈ €3 000 UroLift
  [published: TURP €4 000–7 500, office procedures €1 700–3 200].
* Withdrawals 1.5 % per person-year (moved 45 %, declined 40 %, deceased 15 %).

Older adults pilot (index date = enrolment date)
-----------------------------------------------
* Enrolment uniform over the 730 days before ``today`` (or from the pilot's
  ``start_date``). Age N(79, 7) clipped 65–100; women 62 % [65+ population and service
  users]; living alone P = logistic(−0.3 + 0.8 × woman + 0.04 × (age − 79)) ≈ 55 %
  [Statistics Finland: about half of 75+ live alone]. Arm: outreach 45 %, client guidance
  55 %. Units "Etsivä vanhustyö Lahti/Heinola" and "Asiakasohjaus Päijät-Häme", workers
  ``W01``–``W10``.
* Latent loneliness on the UCLA-3 scale: trait = 6.0 + 0.8 × (lives alone − 0.55) +
  0.03 × (age − 79) + 0.3 × (outreach − 0.45) + N(0, 1.2); each answer = trait + occasion
  noise N(0, 0.75) (+ course and service effects at follow-up), so follow-ups regress to
  the mean. UCLA total = round, clipped 3–9 (baseline ≈ 60 % "lonely", total ≥ 6), split
  into ucla1–3 (codes 1–3) like the IPSS. Standardised level S = (latent − 6) / 1.4 drives
  DJG-6 (emotional items djg1–3: 0.9 S + N(0, 0.8) cut at −0.6, 0.3 into no/more or
  less/yes; social items djg4–6, positively worded: 0.8 S + N(0, 0.9) cut at −0.5, 0.4 into
  yes/more or less/no) and ``lonely1`` (S + N(0, 0.6) cut at −1.2, −0.4, 0.5, 1.4 into
  1–5; ≈ 35 % fairly often or all the time at baseline).
* Feeling of safety on the ``safe_daily`` scale: 3.9 − 0.3 × (trait − 6) −
  0.15 × (age − 79)/7 + person N(0, 0.6) + occasion N(0, 0.45) + service effects, rounded
  1–5 (≈ 32 % "insecure", ≤ 3, at baseline [LISPE: ≈ 30 % of 75–90-year-olds]). The
  optional items: safe_home = safe_daily + 0.3, safe_outdoors = safe_daily − 0.4 −
  0.2 × (age − 79)/7, knows_help = 3.7 + 0.4 (client guidance) + 0.3 (home care), each with
  noise; each optional item is left empty by 8 % of respondents.
* Services (``service_types`` of the pilot): each assigned with a logistic propensity on
  what the worker sees at baseline — the observed baseline UCLA-3 total and safe_daily, age,
  sex, living alone and arm (coefficients in ``_SERVICE_PROPENSITY``: lonelier people get
  friend service, group and day activity; older and less safe people home care) — and at
  most three kept (≈ 32 % none, 34 % one, 22 % two, 11 % three). Start 7–120 days after
  enrolment (20 %: 120–300), planned duration N(mean, sd) months per service (home care
  24 ± 8 … social rehabilitation 5 ± 2), ended early by withdrawal, still running (no end
  date) if the planned end is after ``today``. Provider sectors: day activity county 60 % /
  municipality 40 %; group activity municipality 45 % / NGO 35 % / parish 20 %; friend
  service NGO 75 % / parish 25 %; home care and social rehabilitation county; digital
  contact NGO / municipality; provider names from short illustrative lists. Contacts:
  Poisson per calendar month with monthly means day activity 4.3, group 3.5, friend 3,
  home care 35, social rehabilitation 3, digital 6; ``contacts`` is their sum. The cost
  recorded on the exposure (``cost_eur``) is ``contacts`` × the euros per contact of its
  service type and provider sector (``SERVICE_UNIT_COSTS``, 2025 prices: day activity 95 €
  county / 82 € municipality, group session 32 / 18 / 12 € municipality / NGO / parish,
  friend visit 25 € NGO / 15 € parish, home-care visit 55 €, social rehabilitation 70 €,
  digital contact 15 € NGO / 20 € municipality).
* **True effects** (``TRUE_SERVICE_EFFECTS``), added to the latent scores at a follow-up time
  point when the service started at least 30 days before it, and kept thereafter:

  ====================== ============ ==========
  service                UCLA-3 total safe_daily
  ====================== ============ ==========
  friend_service         −1.0         0
  group_activity         −0.8         0
  day_activity           −0.6         +0.15
  social_rehabilitation  −0.5         0
  digital_contact        −0.3         0
  home_care              0            +0.5
  ====================== ============ ==========

  Natural course: +0.1 UCLA point per year; regression to the mean from the occasion noise.
  Home-care clients are lonelier at baseline (assignment on baseline loneliness, age and
  safety) although home care does not change loneliness: unadjusted comparisons are
  confounded and unadjusted change scores are biased by regression to the mean. Assignment
  depends only on observed baseline answers and case mix, so a regression of the follow-up
  score on the baseline score, case mix and service indicators recovers the effects; rounding
  and the 3–9 range attenuate them slightly (with 20 000 people such a regression gives
  ≈ −0.97, −0.72, −0.52, −0.47, −0.28 and +0.03 for UCLA-3 and ≈ +0.46 for home care on
  safe_daily). The other loneliness instruments follow the same latent score; safety follows
  the trait, so loneliness effects do not spill over into safe_daily.
* PREM (``prem_services``, 6 months): satisfaction N(0, 1) + 0.2 × number of services;
  statements 1–5 around 3.9–4.2, recommendation ≈ 8.3 + 1.3 × satisfaction; "what should be
  improved" only when the recommendation is ≤ 6 (``enable_when``), free texts as for BPH.
* Resource use: monthly aggregates per service (quantity = that month's contacts; products in
  ``SERVICE_PRODUCTS``) and per arm 2–6 outreach visits (outreach) or 1–4 client-guidance
  contacts (client guidance) in the first four months, plus one follow-up contact at about
  six months for half of them.
* Withdrawals 4 % per person-year (deceased 55 %, moved 30 %, declined 15 %).

Invitations, responses and answers
----------------------------------
* One invitation per enrolment and time point, ``opens_on``/``closes_on`` from the pilot's
  window; it can be answered from the later of the opening day and the enrolment day.
* Willingness to answer: probability ``RESPONSE_PROBABILITY`` 92 % (baseline), 80 % (up to
  6 months), 68 % (later), lowered on the probit scale by 0.04 per year of age above 80, with
  a person-level propensity shared across time points (correlation 0.36), so non-response is
  clustered in people. Answer day after the first message: 60 % in the first week, 25 % the
  second (after the reminder on day 7), 12 % the third (reminder on day 14), 3 % later — or
  any day of the window if that would be after it. An answer drawn on or after ``today`` has
  not happened yet.
* 2.5 % of people opt out at an invitation already sent (``people.opted_out_at``; that and
  later invitations ``opted_out``). Withdrawal cancels the invitations not yet closed
  (``cancelled``, ``cancelled_at`` = the withdrawal time). Otherwise the status follows
  ``today``: ``scheduled`` before the window, ``open`` inside it, ``completed`` when
  answered, ``expired`` after it. Sent invitations have ``first_sent_at`` (09 local on the
  first day, or just after the enrolment was recorded if that was later), reminders on the
  pilot's reminder days while unanswered and open, ``opened_at``, ``completed_at``; nobody
  opens, answers or opts out before the first message.
* A completed invitation has a submitted response per instrument of its time point, all
  started together (3–25 minutes, assisted 10–30 minutes, before the common
  ``submitted_at``). 40 % of those who would answer later in a currently open window have
  started already: in-progress responses with the first 0…all pages saved.
* Language = the person's preferred language: Finnish 93 %, Swedish 5 % (the
  Swedish-speaking minority), English 2 %; names from small built-in Finnish,
  Finland-Swedish and English lists. Staff-entered answers (mode ``phone`` or ``paper``) 3 %
  (BPH; 60 % of them paper) and 8 % + 15 % at age ≥ 85 (older adults, ≈ 11 % overall; 40 %
  paper); the rest ``web``. Proxy answers (a relative or staff member answered for the
  person): BPH 1 % of web and 5 % of staff-entered answers; older adults 3 % and 15 %, plus
  10 and 25 points at age ≥ 85.
* Answers (long form): ``value`` is the canonical text of
  :func:`vaikuttavuus.domain.answers.canonical` and ``value_num`` its number (NaN for
  text). Optional items are left empty by 8 % (PROM) / 3 % (PREM) of respondents; items whose
  ``enable_when`` is not met are never answered; 4 % of submitted staff-entered responses (paper
  forms keyed in by staff) miss one required item (< 0.5 % of all submitted responses); an
  item of an instrument version the models do not know is answered uniformly within its
  options or range (free text: left empty).

People
------
Pseudonyms from :func:`identity.new_pseudonym`; identity codes from
:func:`identity.synthetic_identity_code` (individual numbers 900–999, never a real person's
permanent code) are hashed at once with :func:`identity.identity_hash` under
``pseudonym_key`` and dropped: **no clear identity code is returned**. Contact channel: BPH
e-mail 70 % / SMS 20 % / letter 10 %, older adults 40 / 25 / 35 %; e-mail
``firstname.lastname.NNN@example.invalid``; fake ``+358 40 …`` numbers for SMS users and 30 %
of e-mail users; postal addresses in Päijät-Häme towns for letter users. ``source`` is
``demo``; ``lives_alone`` is recorded for older adults only.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from statistics import NormalDist
from types import MappingProxyType
from typing import ClassVar

import numpy as np
import pandas as pd

from vaikuttavuus.domain import identity
from vaikuttavuus.domain.answers import canonical
from vaikuttavuus.domain.specs import (
    EnableWhen,
    InstrumentSpec,
    Item,
    MeasureCatalogue,
    MeasureSpec,
    PilotSpec,
    TimePointSpec,
)

__all__ = [
    "BPH_PILOT",
    "BPH_SHARE",
    "IPSS_NO_BENEFIT",
    "IPSS_RELATIVE_IMPROVEMENT",
    "OLDER_ADULTS_PILOT",
    "QMAX_GAIN",
    "RESPONSE_PROBABILITY",
    "SERVICE_PRODUCTS",
    "SERVICE_UNIT_COSTS",
    "TRUE_SERVICE_EFFECTS",
    "ServiceEffect",
    "SyntheticData",
    "generate",
]

# ------------------------------------------------------------------------------------------
# Public constants: the truths the data are generated from
# ------------------------------------------------------------------------------------------

BPH_PILOT = "bph"
OLDER_ADULTS_PILOT = "older-adults"
BPH_SHARE = 0.4
"""Share of ``people`` in the BPH pilot; the rest are older adults."""


@dataclass(frozen=True)
class ServiceEffect:
    """The true effect of receiving a service on the 6- and 12-month outcomes.

    ``ucla3_total``: points on the UCLA-3 total (3–9; negative = less lonely);
    ``safe_daily``: points on the ``safe_daily`` code (1–5; positive = feels safer).
    Both act on the continuous latent scale before rounding and clipping (see the module
    documentation for the attenuation this causes at the ends of the scales).
    """

    ucla3_total: float
    safe_daily: float


TRUE_SERVICE_EFFECTS: Mapping[str, ServiceEffect] = MappingProxyType(
    {
        "friend_service": ServiceEffect(ucla3_total=-1.0, safe_daily=0.0),
        "group_activity": ServiceEffect(ucla3_total=-0.8, safe_daily=0.0),
        "day_activity": ServiceEffect(ucla3_total=-0.6, safe_daily=0.15),
        "social_rehabilitation": ServiceEffect(ucla3_total=-0.5, safe_daily=0.0),
        "digital_contact": ServiceEffect(ucla3_total=-0.3, safe_daily=0.0),
        "home_care": ServiceEffect(ucla3_total=0.0, safe_daily=0.5),
    }
)
"""Known true service effects of the older adults pilot (see the module documentation)."""

IPSS_RELATIVE_IMPROVEMENT: Mapping[str, tuple[float, float]] = MappingProxyType(
    {
        "turp": (0.65, 0.66),
        "holep": (0.68, 0.70),
        "laser_vaporisation": (0.55, 0.55),
        "rezum": (0.48, 0.44),
        "urolift": (0.40, 0.34),
    }
)
"""Mean relative reduction of the IPSS total from baseline at 3 and at 12 months (over all
patients of the procedure, those who do not benefit included)."""

IPSS_NO_BENEFIT: Mapping[str, float] = MappingProxyType(
    {
        "turp": 0.20,
        "holep": 0.19,
        "laser_vaporisation": 0.25,
        "rezum": 0.33,
        "urolift": 0.42,
    }
)
"""Share of patients whose symptoms do not improve after the procedure (relative change
N(0, 0.06) of the baseline, kept over time: about the same, a few worse)."""

QMAX_GAIN: Mapping[str, tuple[float, float]] = MappingProxyType(
    {
        "turp": (10.0, 10.0),
        "holep": (10.5, 10.5),
        "laser_vaporisation": (8.0, 7.5),
        "rezum": (4.0, 3.5),
        "urolift": (4.0, 3.0),
    }
)
"""Mean gain in Qmax (mL/s) from baseline at 3 and at 12 months."""

RESPONSE_PROBABILITY: Mapping[str, float] = MappingProxyType(
    {"baseline": 0.92, "up_to_6_months": 0.80, "later": 0.68}
)
"""Probability of answering a time point (before the age adjustment)."""

SERVICE_PRODUCTS: Mapping[str, str] = MappingProxyType(
    {
        "day_activity": "DAY_ACTIVITY_DAY",
        "group_activity": "GROUP_SESSION",
        "friend_service": "FRIEND_VISIT",
        "home_care": "HOME_CARE_VISIT",
        "social_rehabilitation": "SOCIAL_REHAB_SESSION",
        "digital_contact": "DIGITAL_CONTACT",
    }
)
"""The product of each older adults' service type (monthly resource-use rows)."""

SERVICE_UNIT_COSTS: Mapping[tuple[str, str], float] = MappingProxyType(
    {
        ("day_activity", "county"): 95.0,
        ("day_activity", "municipality"): 82.0,
        ("group_activity", "municipality"): 32.0,
        ("group_activity", "ngo"): 18.0,
        ("group_activity", "parish"): 12.0,
        ("friend_service", "ngo"): 25.0,
        ("friend_service", "parish"): 15.0,
        ("home_care", "county"): 55.0,
        ("social_rehabilitation", "county"): 70.0,
        ("digital_contact", "ngo"): 15.0,
        ("digital_contact", "municipality"): 20.0,
    }
)
"""Euros per contact (2025 prices) of each service type by provider sector: the recorded
``service_exposures.cost_eur`` is ``contacts`` × this. The county's own services cost what its
product costing says (``costing/unit_costs.csv``); municipalities, NGOs and parishes are cheaper
for the county (purchased services, grants and volunteer coordination)."""

# ------------------------------------------------------------------------------------------
# Internal parameters
# ------------------------------------------------------------------------------------------

_EPOCH = date(1970, 1, 1)
_DAY_SECONDS = 86_400
_NORMAL = NormalDist()

_NO_BENEFIT_CHANGE = (0.0, 0.06)  # mean and sd of the relative improvement without benefit
_OR_PROCEDURES = {"turp": 0.60, "holep": 0.25, "laser_vaporisation": 0.15}
_OFFICE_PROCEDURES = {"rezum": 0.60, "urolift": 0.40}
_OR_SHARE = 0.65
_PROSTATE_MEDIAN = {
    "turp": 48.0,
    "holep": 62.0,
    "laser_vaporisation": 44.0,
    "rezum": 42.0,
    "urolift": 37.0,
}
_DRG = {
    "turp": "11M01",
    "holep": "11M02",
    "laser_vaporisation": "11M03",
    "rezum": "11O01",
    "urolift": "11O02",
}
_LENGTH_OF_STAY = {  # nights: probabilities of 0, 1, 2, 3, 4
    "turp": (0.0, 0.70, 0.22, 0.06, 0.02),
    "holep": (0.0, 0.85, 0.12, 0.03, 0.0),
    "laser_vaporisation": (0.35, 0.55, 0.10, 0.0, 0.0),
    "rezum": (1.0, 0.0, 0.0, 0.0, 0.0),
    "urolift": (1.0, 0.0, 0.0, 0.0, 0.0),
}
_CATHETER_DAYS = {  # probabilities of 0 … 7 days
    "turp": (0.0, 0.05, 0.70, 0.20, 0.05, 0.0, 0.0, 0.0),
    "holep": (0.0, 0.55, 0.40, 0.05, 0.0, 0.0, 0.0, 0.0),
    "laser_vaporisation": (0.10, 0.70, 0.20, 0.0, 0.0, 0.0, 0.0, 0.0),
    "rezum": (0.05, 0.0, 0.05, 0.25, 0.30, 0.20, 0.10, 0.05),
    "urolift": (0.70, 0.30, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
}
_CLAVIEN_GRADES = ("0", "I", "II", "IIIa", "IIIb", "IVa")
_CLAVIEN = {
    "operating_room": (0.82, 0.09, 0.06, 0.015, 0.012, 0.003),
    "outpatient_clinic": (0.90, 0.06, 0.035, 0.005, 0.0, 0.0),
}
_REOPERATION = {
    "turp": 0.03,
    "holep": 0.015,
    "laser_vaporisation": 0.04,
    "rezum": 0.05,
    "urolift": 0.06,
}
_OR_MINUTES = {"turp": (70.0, 15.0), "holep": (95.0, 20.0), "laser_vaporisation": (65.0, 15.0)}
_ROOM_MINUTES = {"rezum": (40.0, 8.0), "urolift": (45.0, 10.0)}
_UROLIFT_IMPLANTS = (0.0, 0.0, 0.25, 0.45, 0.22, 0.08)  # probabilities of 0 … 5 implants
_SURGEONS = {
    "operating_room": ("S01", "S02", "S03", "S04", "S05"),
    "outpatient_clinic": ("S05", "S06", "S07", "S08"),
}
_BPH_UNITS = {
    "operating_room": (("PHKS urologia", 1.0),),
    "outpatient_clinic": (("Poliklinikka Lahti", 0.7), ("Poliklinikka Heinola", 0.3)),
}

_SERVICE_PROPENSITY = {
    # intercept, baseline UCLA − 6, lives alone, (age − 79)/10, female, outreach arm,
    # baseline safe_daily − 3.5
    "day_activity": (-1.6, 0.25, 0.3, 0.3, 0.1, 0.0, -0.1),
    "group_activity": (-1.1, 0.15, 0.2, -0.4, 0.4, -0.1, 0.0),
    "friend_service": (-1.5, 0.45, 0.5, 0.1, 0.0, 0.2, 0.0),
    "home_care": (-1.0, 0.30, 0.3, 0.9, 0.0, 0.0, -0.4),
    "social_rehabilitation": (-2.4, 0.30, 0.0, -0.5, 0.0, 0.3, 0.0),
    "digital_contact": (-2.0, 0.20, 0.2, -0.8, 0.0, 0.0, 0.0),
}
_DEFAULT_PROPENSITY = (-1.8, 0.2, 0.2, 0.0, 0.0, 0.0, 0.0)
_SERVICE_SECTORS = {
    "day_activity": {"county": 0.6, "municipality": 0.4},
    "group_activity": {"municipality": 0.45, "ngo": 0.35, "parish": 0.20},
    "friend_service": {"ngo": 0.75, "parish": 0.25},
    "home_care": {"county": 1.0},
    "social_rehabilitation": {"county": 1.0},
    "digital_contact": {"ngo": 0.5, "municipality": 0.5},
}
_SERVICE_MONTHLY_CONTACTS = {
    "day_activity": 4.3,
    "group_activity": 3.5,
    "friend_service": 3.0,
    "home_care": 35.0,
    "social_rehabilitation": 3.0,
    "digital_contact": 6.0,
}
_SERVICE_DURATION_MONTHS = {  # (mean, sd) of the planned duration
    "day_activity": (10.0, 5.0),
    "group_activity": (6.0, 3.0),
    "friend_service": (12.0, 6.0),
    "home_care": (24.0, 8.0),
    "social_rehabilitation": (5.0, 2.0),
    "digital_contact": (6.0, 3.0),
}
_PROVIDERS = {
    "county": ("Päijät-Hämeen hyvinvointialue",),
    "municipality": (
        "Lahden kaupunki",
        "Heinolan kaupunki",
        "Hollolan kunta",
        "Orimattilan kaupunki",
        "Asikkalan kunta",
        "Kärkölän kunta",
    ),
    "ngo": (
        "Päijänteen Ystäväpiiri ry",
        "Lahden Seniorikeskus ry",
        "Hämeen Kylätoiminta ry",
        "Ikäihmisten Tukipiste ry",
    ),
    "parish": ("Lahden seurakuntayhtymä", "Heinolan seurakunta", "Hollolan seurakunta"),
}
_OLDER_UNITS = {
    "outreach": (("Etsivä vanhustyö Lahti", 0.7), ("Etsivä vanhustyö Heinola", 0.3)),
    "client_guidance": (("Asiakasohjaus Päijät-Häme", 1.0),),
}
_WORKERS = ("W01", "W02", "W03", "W04", "W05", "W06", "W07", "W08", "W09", "W10")
_WITHDRAWAL_RATE = {BPH_PILOT: 0.015, OLDER_ADULTS_PILOT: 0.04}  # per person-year
_WITHDRAWAL_REASONS = {
    BPH_PILOT: (("moved", 0.45), ("declined further participation", 0.40), ("deceased", 0.15)),
    OLDER_ADULTS_PILOT: (
        ("deceased", 0.55),
        ("moved", 0.30),
        ("declined further participation", 0.15),
    ),
}
_OPT_OUT_SHARE = 0.025
_LANGUAGES = (("fi", 0.93), ("sv", 0.05), ("en", 0.02))
_ASSISTED = {BPH_PILOT: 0.03, OLDER_ADULTS_PILOT: 0.08}  # plus 0.15 for ages ≥ 85 (older)
_PAPER_SHARE = {BPH_PILOT: 0.6, OLDER_ADULTS_PILOT: 0.4}  # of the staff-entered answers
# a relative or staff member answered for the person: (web, phone or paper) probabilities,
# plus (0.10, 0.25) at age ≥ 85 in the older adults pilot
_PROXY = {BPH_PILOT: (0.01, 0.05), OLDER_ADULTS_PILOT: (0.03, 0.15)}
_PROXY_85 = (0.10, 0.25)
_REQUIRED_MISSING_ASSISTED = 0.04  # submitted assisted responses missing one required item
_OPTIONAL_MISSING = {"prom": 0.08, "prem": 0.03}
_IN_PROGRESS_SHARE = 0.40
_ANSWER_HOURS = np.array(
    [0.03, 0.06, 0.09, 0.10, 0.09, 0.08, 0.07, 0.08, 0.08, 0.08, 0.08, 0.07, 0.05, 0.04]
)  # local hours 8 … 21
_SEND_HOUR = 9

_FEMALE_FI = (
    "Aino", "Anja", "Anneli", "Annikki", "Eeva", "Eila", "Elina", "Helena", "Helvi", "Hilkka",
    "Irma", "Kaarina", "Kirsti", "Leena", "Liisa", "Maija", "Marjatta", "Marja", "Orvokki",
    "Pirkko", "Raija", "Ritva", "Sirkka", "Sinikka", "Tuula", "Terttu", "Tellervo", "Vuokko",
    "Anna-Liisa", "Sirpa",
)  # fmt: skip
_MALE_FI = (
    "Antero", "Eero", "Erkki", "Esko", "Heikki", "Ilkka", "Jorma", "Juhani", "Kalevi", "Kari",
    "Markku", "Matti", "Mikko", "Olavi", "Pekka", "Pentti", "Raimo", "Reijo", "Seppo", "Tapani",
    "Timo", "Unto", "Veikko", "Väinö", "Jukka", "Hannu", "Kalle", "Lauri",
)  # fmt: skip
_LAST_FI = (
    "Virtanen", "Korhonen", "Mäkinen", "Nieminen", "Mäkelä", "Hämäläinen", "Laine",
    "Heikkinen", "Koskinen", "Järvinen", "Lehtonen", "Lehtinen", "Saarinen", "Salminen",
    "Heinonen", "Niemi", "Heikkilä", "Kinnunen", "Salonen", "Turunen", "Salo", "Laitinen",
    "Tuominen", "Rantanen", "Karjalainen", "Jokinen", "Mattila", "Savolainen", "Lahtinen",
    "Ahonen", "Hiltunen", "Manninen", "Peltonen", "Ojala", "Leinonen", "Kallio",
)  # fmt: skip
_FEMALE_SV = ("Ingrid", "Margareta", "Britt", "Gunilla", "Birgitta", "Solveig", "Kristina")
_MALE_SV = ("Bengt", "Göran", "Lars", "Nils", "Bo", "Stig", "Rolf", "Henrik")
_LAST_SV = ("Lindholm", "Holmström", "Andersson", "Johansson", "Nyström", "Lindqvist",
            "Sjöberg", "Eriksson", "Granqvist", "Åberg")  # fmt: skip
_FEMALE_EN = ("Mary", "Margaret", "Susan", "Elizabeth", "Helen")
_MALE_EN = ("John", "David", "Peter", "Michael", "Richard")
_LAST_EN = ("Smith", "Brown", "Taylor", "Wilson", "Evans", "Walker")
_TOWNS = (
    ("15100", "Lahti", ("Aleksanterinkatu", "Vesijärvenkatu", "Rautatienkatu", "Mukkulankatu")),
    ("15500", "Lahti", ("Kärpäsenkatu", "Ahtialantie", "Uudenmaankatu")),
    ("18100", "Heinola", ("Kauppakatu", "Savontie", "Siltakatu")),
    ("15870", "Hollola", ("Hollolantie", "Hämeenkoskentie")),
    ("16300", "Orimattila", ("Erkontie", "Kauppatie")),
    ("17200", "Vääksy", ("Kalmarinkatu", "Vääksyntie")),
    ("19700", "Sysmä", ("Sysmäntie",)),
    ("16600", "Järvelä", ("Kärköläntie",)),
)

_FREE_TEXT = {
    ("prem_bph", "improve"): {
        "fi": (
            "Odotusaika toimenpiteeseen oli liian pitkä.",
            "Toivoisin enemmän tietoa toipumisesta etukäteen.",
            "Kipulääkitys ei riittänyt kotona.",
            "Kotiutus tuntui kiireiseltä.",
            "Jälkitarkastukseen oli vaikea saada aikaa.",
        ),
        "sv": (
            "Väntetiden till åtgärden var för lång.",
            "Jag hade önskat mer information om återhämtningen.",
        ),
        "en": ("The waiting time was too long.", "I would have liked more information."),
    },
    ("prem_bph", "comments"): {
        "fi": (
            "Kiitos hyvästä hoidosta!",
            "Henkilökunta oli ystävällistä ja ammattitaitoista.",
            "Oireet helpottivat selvästi.",
            "Pysäköinti sairaalalla on hankalaa.",
            "Kaikki sujui hyvin.",
            "Virtsaaminen on nyt paljon helpompaa.",
        ),
        "sv": ("Tack för god vård!", "Personalen var vänlig och kunnig."),
        "en": ("Thank you for the good care.", "Everything went well."),
    },
    ("prem_services", "improve"): {
        "fi": (
            "Toivoisin, että sama työntekijä kävisi useammin.",
            "Tietoa palveluista oli vaikea löytää.",
            "Kuljetus päivätoimintaan oli hankala järjestää.",
            "Käyntejä voisi olla useammin.",
        ),
        "sv": ("Det var svårt att hitta information om tjänsterna.",),
        "en": ("The visits could be more frequent.",),
    },
    ("prem_services", "comments"): {
        "fi": (
            "Ystävän käynnit ovat viikon kohokohta.",
            "Ryhmässä on mukava tavata muita.",
            "Kiitos avusta!",
            "Olen saanut uusia tuttavia.",
        ),
        "sv": ("Tack för hjälpen!", "Det är trevligt att träffa andra i gruppen."),
        "en": ("Thank you for the help.",),
    },
}
_FREE_TEXT_SHARE = {"improve": 0.55, "comments": 0.08}


# ------------------------------------------------------------------------------------------
# The result
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class SyntheticData:
    """One synthetic data set: a DataFrame per table, with local keys and codes.

    Keys (``person_key``, ``enrolment_key``, ``invitation_key``, ``response_key``) are
    0-based integers local to this data set; pilots, arms, time points and instruments are
    given by code. Dates are ``datetime64`` (naive, midnight) and timestamps are
    timezone-aware UTC. ``instrument_versions`` names the instrument version (by code) whose
    items the answers follow.
    """

    people: pd.DataFrame
    enrolments: pd.DataFrame
    procedures: pd.DataFrame
    clinical_measurements: pd.DataFrame
    service_exposures: pd.DataFrame
    cost_items: pd.DataFrame
    invitations: pd.DataFrame
    responses: pd.DataFrame
    answers: pd.DataFrame
    instrument_versions: Mapping[str, str]
    seed: int
    today: date

    TABLES: ClassVar[tuple[str, ...]] = (
        "people",
        "enrolments",
        "procedures",
        "clinical_measurements",
        "service_exposures",
        "cost_items",
        "invitations",
        "responses",
        "answers",
    )
    """Table names, parents before children (the loading order)."""

    def frames(self) -> dict[str, pd.DataFrame]:
        """Every table's frame by table name, in loading order."""
        return {name: getattr(self, name) for name in self.TABLES}

    def counts(self) -> dict[str, int]:
        return {name: len(frame) for name, frame in self.frames().items()}


# ------------------------------------------------------------------------------------------
# Small vectorised helpers
# ------------------------------------------------------------------------------------------

_NONE = np.array(None)
"""None as an array, for ``np.where`` (what NumPy makes of a bare None; its type stubs do not
accept None as a branch)."""


def _day(value: date) -> int:
    return (value - _EPOCH).days


def _choice(
    rng: np.random.Generator, options: Sequence[object], weights: Sequence[float], size: int
) -> np.ndarray:
    """``size`` draws from ``options`` (an object array) with the given weights."""
    p = np.asarray(weights, dtype=float)
    values = np.empty(len(options), dtype=object)
    values[:] = list(options)
    return values[rng.choice(len(options), size=size, p=p / p.sum())]


def _categorical(rng: np.random.Generator, probabilities: np.ndarray) -> np.ndarray:
    """One category index per row of ``probabilities`` (rows need not sum to one)."""
    cumulative = np.cumsum(probabilities, axis=1)
    cumulative /= cumulative[:, -1:]
    draws = rng.random(len(probabilities))[:, None]
    return (draws > cumulative).sum(axis=1).clip(0, probabilities.shape[1] - 1)


def _per_group(keys: np.ndarray, table: Mapping[str, Sequence[float]]) -> np.ndarray:
    """A row of ``table`` for each key (a 2-D float array)."""
    rows = np.array([table[key] for key in table], dtype=float)
    position = {key: i for i, key in enumerate(table)}
    index = np.array([position[key] for key in keys.tolist()]) if len(keys) else np.zeros(0, int)
    return rows[index]


def _lookup(keys: np.ndarray, table: Mapping[str, float]) -> np.ndarray:
    codes, uniques = pd.factorize(keys)
    values = np.array([table[key] for key in uniques], dtype=float)
    return values[codes] if len(keys) else np.zeros(0)


def _bounded_round(values: np.ndarray, low: float, high: float) -> np.ndarray:
    return np.clip(np.rint(values), low, high)


def _dst_offsets(days: np.ndarray) -> np.ndarray:
    """UTC offset (seconds) of Finnish local time at noon of each day (EET/EEST, EU rule:
    summer time from the last Sunday of March to the last Sunday of October)."""
    unique, inverse = np.unique(days, return_inverse=True)
    offsets = np.empty(len(unique), dtype=np.int64)
    for position, day in enumerate(unique.tolist()):
        current = _EPOCH.fromordinal(_EPOCH.toordinal() + int(day))
        start = _last_sunday(current.year, 3)
        end = _last_sunday(current.year, 10)
        offsets[position] = 3 * 3600 if start <= current < end else 2 * 3600
    return offsets[inverse]


def _last_sunday(year: int, month: int) -> date:
    last = date(year, month, 31)
    return date.fromordinal(last.toordinal() - (last.weekday() + 1) % 7)


def _utc_seconds(days: np.ndarray, local_seconds: np.ndarray) -> np.ndarray:
    """UTC seconds since the epoch of a Finnish local wall-clock time on ``days``."""
    days = np.asarray(days, dtype=np.int64)
    if days.size == 0:
        return np.zeros(0, dtype=np.int64)
    return days * _DAY_SECONDS + np.asarray(local_seconds, dtype=np.int64) - _dst_offsets(days)


def _local_times(
    rng: np.random.Generator,
    days: np.ndarray,
    hours: np.ndarray | None = None,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """Random local times of day on ``days`` as UTC seconds (hours 8–21 by default)."""
    n = len(days)
    if hours is None:
        hours = np.arange(8, 22)
        weights = _ANSWER_HOURS
    hour = rng.choice(hours, size=n, p=None if weights is None else weights / weights.sum())
    seconds = hour * 3600 + rng.integers(0, 3600, size=n)
    return _utc_seconds(days, seconds)


def _dates(days: np.ndarray) -> np.ndarray:
    """Day numbers (NaN = missing) as ``datetime64[s]`` (NaT = missing)."""
    values = np.asarray(days, dtype=float)
    result = np.full(len(values), np.datetime64("NaT"), dtype="datetime64[s]")
    known = ~np.isnan(values)
    result[known] = values[known].astype(np.int64).astype("datetime64[D]").astype("datetime64[s]")
    return result


def _timestamps(seconds: np.ndarray) -> pd.DatetimeIndex:
    """UTC seconds since the epoch (NaN = missing) as timezone-aware UTC timestamps."""
    values = np.asarray(seconds, dtype=float)
    result = np.full(len(values), np.datetime64("NaT"), dtype="datetime64[s]")
    known = ~np.isnan(values)
    result[known] = values[known].astype(np.int64).astype("datetime64[s]")
    return pd.DatetimeIndex(result).tz_localize("UTC")


def _split_total(
    rng: np.random.Generator, totals: np.ndarray, weights: np.ndarray, capacity: int
) -> np.ndarray:
    """Split each total into len(weights[i]) item scores of 0…capacity that sum to it.

    Each item owns ``capacity`` slots; the ``total`` slots with the smallest exponential
    keys (rate = the item's weight) are filled — weighted sampling without replacement, so
    items with a larger weight tend to score higher while the sum is exact.
    """
    n, k = weights.shape
    rates = np.repeat(weights, capacity, axis=1)
    keys = rng.exponential(size=(n, k * capacity)) / rates
    order = np.argsort(keys, axis=1)
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(k * capacity)[None, :].repeat(n, axis=0), axis=1)
    chosen = ranks < totals[:, None]
    return chosen.reshape(n, k, capacity).sum(axis=2)


def _thresholds(latent: np.ndarray, cuts: Sequence[float], codes: Sequence[float]) -> np.ndarray:
    """Map a latent value to ``codes[i]`` where i = the number of cuts below it."""
    index = np.searchsorted(np.asarray(cuts, dtype=float), latent)
    return np.asarray(codes, dtype=float)[index]


# ------------------------------------------------------------------------------------------
# Cohorts
# ------------------------------------------------------------------------------------------

Model = Callable[[str, TimePointSpec, np.ndarray, np.random.Generator], dict[str, np.ndarray]]


@dataclass
class _Cohort:
    """One pilot's simulated people (arrays indexed by the position in the cohort)."""

    pilot: PilotSpec
    age: np.ndarray
    female: np.ndarray
    birth_day: np.ndarray
    index_day: np.ndarray
    enrolled_day: np.ndarray
    arm: np.ndarray
    unit: np.ndarray
    clinician: np.ndarray
    lives_alone: np.ndarray  # float: 1, 0 or NaN (not recorded)
    withdrawal_day: np.ndarray  # float: NaN = not withdrawn before today
    withdrawal_reason: np.ndarray
    assisted: np.ndarray  # probability of staff-assisted entry
    model: Model | None = None
    procedures: pd.DataFrame | None = None
    measurements: pd.DataFrame | None = None
    costs: pd.DataFrame | None = None
    exposures: pd.DataFrame | None = None

    @property
    def n(self) -> int:
        return len(self.age)


def _withdrawals(
    rng: np.random.Generator, pilot: str, enrolled_day: np.ndarray, end_day: np.ndarray, today: int
) -> tuple[np.ndarray, np.ndarray]:
    """Withdrawal day (NaN if none before ``today`` and ``end_day``) and reason."""
    n = len(enrolled_day)
    waited = rng.exponential(365.25 / _WITHDRAWAL_RATE[pilot], size=n)
    day = enrolled_day + 1 + np.floor(waited)
    happened = (day < today) & (day <= end_day)
    reasons = [reason for reason, _weight in _WITHDRAWAL_REASONS[pilot]]
    weights = [weight for _reason, weight in _WITHDRAWAL_REASONS[pilot]]
    reason = _choice(rng, reasons, weights, n)
    reason[~happened] = None
    return np.where(happened, day, np.nan), reason


def _birth_days(index_day: np.ndarray, age: np.ndarray) -> np.ndarray:
    """A birth day giving the (fractional) age at the index date."""
    return index_day - np.floor(age * 365.2425).astype(np.int64)


def _simulate_bph(
    spec: PilotSpec,
    measures: MeasureCatalogue,
    n: int,
    today: int,
    rng: np.random.Generator,
    benefit_rng: np.random.Generator,
) -> _Cohort:
    """The BPH cohort. Who does not benefit from the procedure is drawn from ``benefit_rng``
    (a stream of its own), so the rest of the cohort is what the same seed always gave."""
    arms = {arm.id for arm in spec.arms}
    for needed in ("operating_room", "outpatient_clinic"):
        if needed not in arms:
            raise ValueError(f"the BPH pilot has no arm '{needed}'")
    known_types = {p.id for p in spec.procedure_types} or set(_DRG)
    or_types = {k: v for k, v in _OR_PROCEDURES.items() if k in known_types}
    office_types = {k: v for k, v in _OFFICE_PROCEDURES.items() if k in known_types}
    if not or_types or not office_types:
        raise ValueError("the BPH pilot needs operating-room and office procedure types")

    start = _day(spec.start_date) if spec.start_date else today - 913  # ≈ 30 months
    start = min(start, today - 1)
    index_day = rng.integers(start, today + 61, size=n)
    wait = rng.integers(14, 91, size=n)
    enrolled_day = np.minimum(index_day - wait, today - 1 - rng.integers(0, 8, size=n))
    enrolled_day = np.minimum(enrolled_day, index_day)
    age = np.clip(rng.normal(68.0, 8.0, size=n), 50.0, 90.0)

    in_or = rng.random(n) < _OR_SHARE
    arm = np.where(in_or, "operating_room", "outpatient_clinic").astype(object)
    procedure = np.empty(n, dtype=object)
    procedure[in_or] = _choice(rng, list(or_types), list(or_types.values()), int(in_or.sum()))
    procedure[~in_or] = _choice(
        rng, list(office_types), list(office_types.values()), int((~in_or).sum())
    )
    unit = np.empty(n, dtype=object)
    clinician = np.empty(n, dtype=object)
    for setting in ("operating_room", "outpatient_clinic"):
        mask = arm == setting
        names, weights = zip(*_BPH_UNITS[setting], strict=True)
        unit[mask] = _choice(rng, names, weights, int(mask.sum()))
        surgeons = _SURGEONS[setting]
        clinician[mask] = _choice(rng, surgeons, [1.0] * len(surgeons), int(mask.sum()))

    # prostate, symptoms and their course
    volume = _lookup(procedure, _PROSTATE_MEDIAN) * np.exp(rng.normal(0.0, 0.35, size=n))
    volume = np.clip(volume, 15.0, 250.0)
    baseline_ipss = np.where(in_or, rng.normal(21.0, 5.0, n), rng.normal(18.0, 5.0, n))
    baseline_ipss = _bounded_round(baseline_ipss, 8, 35)
    individual = rng.normal(0.0, 0.15, size=n)  # persistent response to the procedure
    # a share of patients do not benefit: their symptoms stay about the same or get worse
    no_benefit_share = _lookup(procedure, dict(IPSS_NO_BENEFIT))
    no_benefit = benefit_rng.random(n) < no_benefit_share
    unchanged = benefit_rng.normal(_NO_BENEFIT_CHANGE[0], _NO_BENEFIT_CHANGE[1], size=n)
    improvement3 = _lookup(procedure, {k: v[0] for k, v in IPSS_RELATIVE_IMPROVEMENT.items()})
    improvement12 = _lookup(procedure, {k: v[1] for k, v in IPSS_RELATIVE_IMPROVEMENT.items()})
    ipss: dict[str, np.ndarray] = {}
    for tp in spec.time_points:
        if tp.offset_days <= 0:
            total = baseline_ipss + _bounded_round(rng.normal(0.0, 1.0, n), -2, 2)
        else:
            mean = _course(tp.offset_days, improvement3, improvement12)
            # those who benefit improve by more, so that the procedure's mean stays ``mean``
            benefit = (mean - no_benefit_share * _NO_BENEFIT_CHANGE[0]) / (1.0 - no_benefit_share)
            latent = np.where(no_benefit, unchanged, benefit + individual)
            relative = np.clip(latent + rng.normal(0.0, 0.05, n), -0.6, 0.97)
            total = baseline_ipss * (1.0 - relative) + rng.normal(0.0, 1.5, n)
        ipss[tp.id] = _bounded_round(total, 0, 35)
    item_weights = np.array([1.0, 1.2, 0.9, 1.0, 1.3, 0.8, 1.2]) * np.exp(
        rng.normal(0.0, 0.35, size=(n, 7))
    )
    health = rng.normal(0.0, 0.6, size=n)  # person effect on EQ-5D
    satisfaction = rng.normal(0.0, 0.8, size=n)

    # complications and follow-up events
    grade_index = _categorical(rng, _per_group(arm, _CLAVIEN))
    grade = np.asarray(_CLAVIEN_GRADES, dtype=object)[grade_index]
    serious = grade_index >= 2
    readmitted = rng.random(n) < np.where(in_or, 0.03, 0.025) + 0.35 * serious
    reoperated = rng.random(n) < _lookup(procedure, _REOPERATION)
    reoperation_day = index_day + rng.integers(90, 365, size=n)  # pathology a day later
    los = _categorical(rng, _per_group(procedure, _LENGTH_OF_STAY)).astype(float)
    catheter = _categorical(rng, _per_group(procedure, _CATHETER_DAYS)).astype(float)
    catheter = np.maximum(catheter, np.where(los > 0, 1.0, 0.0))

    end_day = index_day + spec.time_points[-1].window_close_days
    withdrawal_day, reason = _withdrawals(rng, BPH_PILOT, enrolled_day, end_day, today)
    stop = np.where(np.isnan(withdrawal_day), today, np.minimum(withdrawal_day, today))
    performed = index_day < stop

    cohort = _Cohort(
        pilot=spec,
        age=age,
        female=np.zeros(n, dtype=bool),
        birth_day=_birth_days(index_day, age),
        index_day=index_day,
        enrolled_day=enrolled_day,
        arm=arm,
        unit=unit,
        clinician=clinician,
        lives_alone=np.full(n, np.nan),
        withdrawal_day=withdrawal_day,
        withdrawal_reason=reason,
        assisted=np.full(n, _ASSISTED[BPH_PILOT]),
    )
    cohort.procedures = pd.DataFrame(
        {
            "position": np.flatnonzero(performed),
            "procedure_type": procedure[performed],
            "setting": arm[performed],
            "performed_day": index_day[performed],
            "drg_code": np.array([_DRG[p] for p in procedure[performed].tolist()], dtype=object),
            "unit": unit[performed],
            "surgeon_code": clinician[performed],
        }
    )
    cohort.measurements = _bph_measurements(
        rng,
        measures,
        cohort,
        volume,
        procedure,
        grade,
        los,
        catheter,
        readmitted,
        reoperated,
        reoperation_day,
        stop,
    )
    cohort.costs = _bph_costs(
        rng, cohort, procedure, los, catheter, readmitted, reoperated, reoperation_day, stop
    )

    def model(
        instrument: str, tp: TimePointSpec, idx: np.ndarray, rng: np.random.Generator
    ) -> dict[str, np.ndarray]:
        total = ipss[tp.id][idx]
        if instrument == "ipss":
            weights = item_weights[idx] * np.exp(rng.normal(0.0, 0.15, size=(len(idx), 7)))
            items = _split_total(rng, total.astype(np.int64), weights, 5)
            qol = _bounded_round(0.6 + 0.155 * total + rng.normal(0.0, 0.75, len(idx)), 0, 6)
            result = {f"ipss{i + 1}": items[:, i].astype(float) for i in range(7)}
            result["ipss_qol"] = qol
            return result
        if instrument == "eq5d5l":
            return _eq5d(rng, total, age[idx], health[idx])
        if instrument == "prem_bph":
            baseline = ipss[spec.baseline.id][idx]
            gained = (baseline - total) / np.maximum(baseline, 1.0)
            mood = satisfaction[idx] + 1.2 * (gained - 0.5) - 0.6 * serious[idx]
            return _prem_bph(rng, mood, in_or[idx])
        return {}

    cohort.model = model
    return cohort


def _course(offset_days: int, at3: np.ndarray, at12: np.ndarray) -> np.ndarray:
    """Mean relative improvement ``offset_days`` after the procedure."""
    if offset_days <= 90:
        return at3 * min(1.0, offset_days / 60.0)
    if offset_days >= 365:
        return at12
    share = (offset_days - 90) / (365 - 90)
    return at3 + (at12 - at3) * share


def _eq5d(
    rng: np.random.Generator, ipss: np.ndarray, age: np.ndarray, person: np.ndarray
) -> dict[str, np.ndarray]:
    """EQ-5D-5L levels: worse with more urinary symptoms (pain, activities, mood) and age."""
    n = len(ipss)
    symptoms = (ipss - 15.0) / 7.0
    older = (age - 68.0) / 8.0
    cuts = (0.0, 1.0, 2.0, 3.0)
    result = {}
    for item, base, slope_symptoms, slope_age in (
        ("mo", -0.4, 0.15, 0.45),
        ("sc", -1.1, 0.10, 0.35),
        ("ua", -0.3, 0.40, 0.25),
        ("pd", -0.1, 0.45, 0.15),
        ("ad", -0.5, 0.40, 0.0),
    ):
        latent = base + slope_symptoms * symptoms + slope_age * older + person
        latent = latent + rng.normal(0.0, 0.6, n)
        result[item] = _thresholds(latent, cuts, (1, 2, 3, 4, 5))
    burden = sum(result[item] - 1.0 for item in ("mo", "sc", "ua", "pd", "ad"))
    vas = 90.0 - 4.0 * burden - 0.3 * (age - 68.0) - 6.0 * person + rng.normal(0.0, 7.0, n)
    result["vas"] = _bounded_round(vas, 0, 100)
    return result


def _prem_bph(
    rng: np.random.Generator, mood: np.ndarray, operating_room: np.ndarray
) -> dict[str, np.ndarray]:
    n = len(mood)

    def agree(centre: float | np.ndarray, slope: float, noise: float) -> np.ndarray:
        return _bounded_round(centre + slope * mood + rng.normal(0.0, noise, n), 1, 5)

    overall = _bounded_round(1.7 - 0.8 * mood + rng.normal(0.0, 0.5, n), 1, 5)
    overall[rng.random(n) < 0.02] = 9  # "don't know"
    return {
        "information": agree(4.2, 0.6, 0.6),
        "involvement": agree(4.0, 0.5, 0.7),
        "respect": agree(4.5, 0.4, 0.5),
        "pain": agree(4.0, 0.6, 0.7),
        "waiting": agree(np.where(operating_room, 3.4, 3.9), 0.4, 0.9),
        "overall": overall,
        "recommend": _bounded_round(8.6 + 1.4 * mood + rng.normal(0.0, 1.0, n), 0, 10),
    }


def _bph_measurements(
    rng: np.random.Generator,
    measures: MeasureCatalogue,
    cohort: _Cohort,
    volume: np.ndarray,
    procedure: np.ndarray,
    grade: np.ndarray,
    los: np.ndarray,
    catheter: np.ndarray,
    readmitted: np.ndarray,
    reoperated: np.ndarray,
    reoperation_day: np.ndarray,
    stop: np.ndarray,
) -> pd.DataFrame:
    """Clinical measures at the first visit, the procedure and the 3/12-month follow-ups."""
    n = cohort.n
    index_day = cohort.index_day
    qmax0 = np.clip(rng.normal(9.0, 2.5, n), 3.0, 18.0)
    pvr0 = np.clip(100.0 * np.exp(rng.normal(0.0, 0.6, n)), 0.0, 600.0)
    psa = np.clip(0.06 * volume * np.exp(rng.normal(0.0, 0.4, n)), 0.1, 25.0)
    in_or = cohort.arm == "operating_room"
    gain3 = _lookup(procedure, {k: v[0] for k, v in QMAX_GAIN.items()})
    gain12 = _lookup(procedure, {k: v[1] for k, v in QMAX_GAIN.items()})
    personal_gain = rng.normal(0.0, 3.0, n)
    pvr_factor = np.where(in_or, 0.35, 0.6)
    at3 = index_day + 90 + rng.integers(-14, 15, n)
    at12 = index_day + 365 + rng.integers(-30, 31, n)
    discharge = index_day + los.astype(np.int64)
    reoperation_known = np.where(reoperated, reoperation_day, index_day + 365)
    everyone = np.ones(n, dtype=bool)
    followed3 = rng.random(n) < 0.85
    followed12 = rng.random(n) < 0.60
    qmax3 = qmax0 + gain3 + personal_gain + rng.normal(0.0, 1.5, n)
    qmax12 = qmax0 + gain12 + personal_gain + rng.normal(0.0, 1.5, n)
    pvr3 = pvr0 * pvr_factor * np.exp(rng.normal(0.0, 0.4, n))
    pvr12 = pvr0 * pvr_factor * np.exp(rng.normal(0.1, 0.4, n))
    first = cohort.enrolled_day
    rows: list[tuple[str, bool, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]] = [
        # (measure, after the procedure?, who, day, numeric value, text value)
        ("qmax", False, everyone, first, qmax0, None),
        ("pvr", False, everyone, first, pvr0, None),
        ("prostate_volume", False, everyone, first, volume, None),
        ("psa", False, everyone, first, psa, None),
        ("length_of_stay", True, everyone, discharge, los, None),
        ("catheter_days", True, everyone, index_day + catheter.astype(np.int64), catheter, None),
        ("clavien_dindo", True, everyone, index_day + 30, np.full(n, np.nan), grade),
        ("readmission_30d", True, everyone, index_day + 30, readmitted.astype(float), None),
        ("reoperation", True, everyone, reoperation_known, reoperated.astype(float), None),
        ("qmax", True, followed3, at3, qmax3, None),
        ("pvr", True, followed3, at3, pvr3, None),
        ("qmax", True, followed12, at12, qmax12, None),
        ("pvr", True, followed12, at12, pvr12, None),
    ]
    pieces = []
    for code, after, who, day, value, text in rows:
        try:
            spec = measures.measure(code)
        except KeyError:
            continue
        keep = who & (day < stop) & (day >= first)
        if after:
            keep &= index_day < stop
        count = int(keep.sum())
        pieces.append(
            pd.DataFrame(
                {
                    "position": np.flatnonzero(keep),
                    "measure_code": np.full(count, code, dtype=object),
                    "value_num": _measure_value(spec, value[keep]),
                    "value_text": text[keep] if text is not None else np.full(count, None),
                    "unit": np.full(count, spec.unit, dtype=object),
                    "measured_day": day[keep],
                }
            )
        )
    return pd.concat(pieces, ignore_index=True)


def _measure_value(spec: MeasureSpec, values: np.ndarray) -> np.ndarray:
    """Round to the measure's type and clip into the catalogue's range."""
    if spec.type == "grade":
        return np.full(len(values), np.nan)
    if spec.type == "yes_no":
        return values.astype(float)
    low = -np.inf if spec.min is None else spec.min
    high = np.inf if spec.max is None else spec.max
    digits = 0 if spec.type == "integer" else 1
    return np.clip(np.round(values, digits), low, high)


def _bph_costs(
    rng: np.random.Generator,
    cohort: _Cohort,
    procedure: np.ndarray,
    los: np.ndarray,
    catheter: np.ndarray,
    readmitted: np.ndarray,
    reoperated: np.ndarray,
    reoperation_day: np.ndarray,
    stop: np.ndarray,
) -> pd.DataFrame:
    """Resource use per patient from the decision to treat to 12 months (product × quantity)."""
    n = cohort.n
    index_day = cohort.index_day
    first = cohort.enrolled_day
    in_or = cohort.arm == "operating_room"
    everyone = np.ones(n, dtype=bool)
    ones = np.ones(n)
    minutes = np.zeros(n)
    for kind, (mean, sd) in {**_OR_MINUTES, **_ROOM_MINUTES}.items():
        mask = procedure == kind
        minutes[mask] = np.maximum(np.rint(rng.normal(mean, sd, int(mask.sum()))), 15.0)
    anaesthesia = minutes + rng.integers(15, 31, n)
    pacu = rng.choice([1.0, 1.5, 2.0, 2.5, 3.0, 4.0], size=n, p=[0.1, 0.2, 0.3, 0.2, 0.15, 0.05])
    implants = rng.choice(np.arange(6), size=n, p=_UROLIFT_IMPLANTS).astype(float)
    readmission_days = rng.choice([1.0, 2.0, 3.0, 4.0], size=n, p=[0.5, 0.3, 0.15, 0.05])
    readmission_at = index_day + rng.integers(2, 31, n)
    reop_minutes = np.maximum(np.rint(rng.normal(65.0, 12.0, n)), 20.0)
    reop_ward = rng.choice([1.0, 2.0], size=n, p=[0.6, 0.4])
    phone_before = rng.random(n) < 0.7
    phone_after = rng.random(n) < 0.8
    visit3 = rng.random(n) < 0.85
    flow3 = visit3 & (rng.random(n) < 0.8)
    visit12 = rng.random(n) < 0.35
    visit3_day = index_day + rng.integers(75, 106, n)
    turp, holep = procedure == "turp", procedure == "holep"
    laser = procedure == "laser_vaporisation"
    components: list[tuple[str, bool, np.ndarray, np.ndarray, np.ndarray]] = [
        # (product, after the procedure?, who, day, quantity)
        ("URO_VISIT_FIRST", False, everyone, first, ones),
        ("LAB_PANEL", False, everyone, first, ones),
        ("UROFLOWMETRY", False, everyone, first, ones),
        ("NURSE_PHONE", False, phone_before, index_day - rng.integers(3, 11, n), ones),
        ("OR_MINUTE", True, in_or, index_day, minutes),
        ("ANAESTHESIA_MINUTE", True, in_or, index_day, anaesthesia),
        ("PACU_HOUR", True, in_or, index_day, pacu),
        ("UROLOGY_WARD_DAY", True, los > 0, index_day, los),
        ("TURP_CONSUMABLES", True, turp, index_day, ones),
        ("HOLEP_CONSUMABLES", True, holep, index_day, ones),
        ("LASER_FIBRE", True, holep | laser, index_day, ones),
        ("PATHOLOGY_SAMPLE", True, turp | holep, index_day + 1, ones),
        ("PROC_ROOM_MINUTE", True, ~in_or, index_day, minutes),
        ("REZUM_DEVICE", True, procedure == "rezum", index_day, ones),
        ("UROLIFT_IMPLANT", True, (procedure == "urolift") & (implants > 0), index_day, implants),
        ("CATHETER_VISIT", True, catheter > los, index_day + catheter.astype(np.int64), ones),
        ("NURSE_PHONE", True, phone_after, index_day + rng.integers(7, 22, n), ones),
        ("URO_VISIT_FOLLOWUP", True, visit3, visit3_day, ones),
        ("UROFLOWMETRY", True, flow3, visit3_day, ones),
        ("URO_VISIT_FOLLOWUP", True, visit12, index_day + rng.integers(330, 366, n), ones),
        ("EMERGENCY_VISIT", True, readmitted, readmission_at, ones),
        ("READMISSION_DAY", True, readmitted, readmission_at, readmission_days),
        ("URO_VISIT_FOLLOWUP", True, reoperated, reoperation_day - 30, ones),
        ("OR_MINUTE", True, reoperated, reoperation_day, reop_minutes),
        ("ANAESTHESIA_MINUTE", True, reoperated, reoperation_day, reop_minutes + 20.0),
        ("PACU_HOUR", True, reoperated, reoperation_day, np.full(n, 2.0)),
        ("UROLOGY_WARD_DAY", True, reoperated, reoperation_day, reop_ward),
        ("TURP_CONSUMABLES", True, reoperated, reoperation_day, ones),
        ("PATHOLOGY_SAMPLE", True, reoperated, reoperation_day + 1, ones),
    ]
    pieces = []
    for product, after, who, day, quantity in components:
        keep = who & (day < stop) & (day >= first)
        if after:
            keep &= index_day < stop
        count = int(keep.sum())
        pieces.append(
            pd.DataFrame(
                {
                    "position": np.flatnonzero(keep),
                    "product_code": np.full(count, product, dtype=object),
                    "quantity": quantity[keep].astype(float),
                    "service_day": day[keep],
                }
            )
        )
    return pd.concat(pieces, ignore_index=True)


def _simulate_older(spec: PilotSpec, n: int, today: int, rng: np.random.Generator) -> _Cohort:
    arms = {arm.id for arm in spec.arms}
    for needed in ("outreach", "client_guidance"):
        if needed not in arms:
            raise ValueError(f"the older adults pilot has no arm '{needed}'")
    start = _day(spec.start_date) if spec.start_date else today - 730
    start = min(start, today - 1)
    index_day = rng.integers(start, today, size=n)
    age = np.clip(rng.normal(79.0, 7.0, size=n), 65.0, 100.0)
    female = rng.random(n) < 0.62
    alone_logit = -0.3 + 0.8 * female + 0.04 * (age - 79.0)
    lives_alone = rng.random(n) < 1.0 / (1.0 + np.exp(-alone_logit))
    outreach = rng.random(n) < 0.45
    arm = np.where(outreach, "outreach", "client_guidance").astype(object)
    unit = np.empty(n, dtype=object)
    for code in ("outreach", "client_guidance"):
        mask = arm == code
        names, weights = zip(*_OLDER_UNITS[code], strict=True)
        unit[mask] = _choice(rng, names, weights, int(mask.sum()))
    clinician = _choice(rng, _WORKERS, [1.0] * len(_WORKERS), n)

    # latent loneliness (UCLA-3 points) and feeling of safety (safe_daily points)
    trait = (
        6.0
        + 0.8 * (lives_alone - 0.55)
        + 0.03 * (age - 79.0)
        + 0.3 * (outreach - 0.45)
        + rng.normal(0.0, 1.2, size=n)
    )
    safety_person = rng.normal(0.0, 0.6, size=n)
    frail = (age - 79.0) / 7.0
    tps = spec.time_points
    noise = rng.normal(0.0, 0.75, size=(n, len(tps)))
    safety_noise = rng.normal(0.0, 0.45, size=(n, len(tps)))
    safety_base = 3.9 - 0.3 * (trait - 6.0) - 0.15 * frail + safety_person
    baseline_position = next(i for i, tp in enumerate(tps) if tp.baseline)
    ucla0 = trait + noise[:, baseline_position]
    safe0 = safety_base + safety_noise[:, baseline_position]
    observed_ucla0 = _bounded_round(ucla0, 3, 9)
    observed_safe0 = _bounded_round(safe0, 1, 5)

    end_day = index_day + tps[-1].window_close_days
    withdrawal_day, reason = _withdrawals(rng, OLDER_ADULTS_PILOT, index_day, end_day, today)
    stop = np.where(np.isnan(withdrawal_day), today, np.minimum(withdrawal_day, today))

    exposures = _older_services(
        rng,
        spec,
        index_day,
        age,
        female,
        lives_alone,
        outreach,
        observed_ucla0,
        observed_safe0,
        stop,
        today,
    )
    ucla: dict[str, np.ndarray] = {}
    safety: dict[str, np.ndarray] = {}
    for position, tp in enumerate(tps):
        if tp.baseline:
            ucla[tp.id], safety[tp.id] = ucla0, safe0
            continue
        at = index_day + tp.offset_days
        drift = 0.1 * tp.offset_days / 365.25
        effect_ucla = np.zeros(n)
        effect_safe = np.zeros(n)
        active = exposures["started_day"].to_numpy() <= at[exposures["position"].to_numpy()] - 30
        for service, effect in TRUE_SERVICE_EFFECTS.items():
            rows = exposures.loc[active & (exposures["service_type"] == service).to_numpy()]
            who = rows["position"].to_numpy()
            effect_ucla[who] += effect.ucla3_total
            effect_safe[who] += effect.safe_daily
        ucla[tp.id] = trait + drift + effect_ucla + noise[:, position]
        safety[tp.id] = safety_base + effect_safe + safety_noise[:, position]

    assisted = _ASSISTED[OLDER_ADULTS_PILOT] + 0.15 * (age >= 85)
    services_per_person = np.bincount(exposures["position"], minlength=n)
    guidance = arm == "client_guidance"
    satisfaction = rng.normal(0.0, 1.0, size=n)
    cohort = _Cohort(
        pilot=spec,
        age=age,
        female=female,
        birth_day=_birth_days(index_day, age),
        index_day=index_day,
        enrolled_day=index_day.copy(),
        arm=arm,
        unit=unit,
        clinician=clinician,
        lives_alone=lives_alone.astype(float),
        withdrawal_day=withdrawal_day,
        withdrawal_reason=reason,
        assisted=assisted,
        exposures=exposures,
    )
    cohort.costs, exposures["contacts"] = _older_costs(rng, cohort, exposures, stop)
    exposures["cost_eur"] = _exposure_costs(exposures)
    home_care = np.zeros(n, dtype=bool)
    home_care[exposures.loc[exposures["service_type"] == "home_care", "position"]] = True

    def model(
        instrument: str, tp: TimePointSpec, idx: np.ndarray, rng: np.random.Generator
    ) -> dict[str, np.ndarray]:
        m = len(idx)
        latent = ucla[tp.id][idx]
        level = (latent - 6.0) / 1.4
        if instrument == "ucla3":
            total = _bounded_round(latent, 3, 9).astype(np.int64)
            weights = np.exp(rng.normal(0.0, 0.25, size=(m, 3)))
            items = _split_total(rng, total - 3, weights, 2) + 1
            return {f"ucla{i + 1}": items[:, i].astype(float) for i in range(3)}
        if instrument == "djg6":
            result = {}
            for item in ("djg1", "djg2", "djg3"):
                x = 0.9 * level + rng.normal(0.0, 0.8, m)
                result[item] = _thresholds(x, (-0.6, 0.3), (3, 2, 1))
            for item in ("djg4", "djg5", "djg6"):
                x = 0.8 * level + rng.normal(0.0, 0.9, m)
                result[item] = _thresholds(x, (-0.5, 0.4), (1, 2, 3))
            return result
        if instrument == "lonely1":
            x = level + rng.normal(0.0, 0.6, m)
            return {"lonely1": _thresholds(x, (-1.2, -0.4, 0.5, 1.4), (1, 2, 3, 4, 5))}
        if instrument == "insecurity":
            safe = safety[tp.id][idx]
            return {
                "safe_daily": _bounded_round(safe, 1, 5),
                "safe_home": _bounded_round(safe + 0.3 + rng.normal(0.0, 0.5, m), 1, 5),
                "safe_outdoors": _bounded_round(
                    safe - 0.4 - 0.2 * frail[idx] + rng.normal(0.0, 0.6, m), 1, 5
                ),
                "knows_help": _bounded_round(
                    3.7 + 0.4 * guidance[idx] + 0.3 * home_care[idx] + rng.normal(0.0, 0.7, m),
                    1,
                    5,
                ),
            }
        if instrument == "prem_services":
            mood = satisfaction[idx] + 0.2 * services_per_person[idx]
            return {
                "felt_heard": _bounded_round(4.2 + 0.6 * mood + rng.normal(0.0, 0.6, m), 1, 5),
                "help_mattered": _bounded_round(4.0 + 0.6 * mood + rng.normal(0.0, 0.7, m), 1, 5),
                "involved": _bounded_round(3.9 + 0.5 * mood + rng.normal(0.0, 0.7, m), 1, 5),
                "recommend": _bounded_round(8.3 + 1.3 * mood + rng.normal(0.0, 1.0, m), 0, 10),
            }
        return {}

    cohort.model = model
    return cohort


def _older_services(
    rng: np.random.Generator,
    spec: PilotSpec,
    index_day: np.ndarray,
    age: np.ndarray,
    female: np.ndarray,
    lives_alone: np.ndarray,
    outreach: np.ndarray,
    ucla0: np.ndarray,
    safe0: np.ndarray,
    stop: np.ndarray,
    today: int,
) -> pd.DataFrame:
    """0–3 services per person, assigned on observed baseline answers and case mix."""
    n = len(index_day)
    services = [s.id for s in spec.service_types]
    if not services:
        return pd.DataFrame(
            {
                "position": np.zeros(0, np.int64),
                "service_type": np.zeros(0, object),
                "provider_sector": np.zeros(0, object),
                "provider_name": np.zeros(0, object),
                "started_day": np.zeros(0, np.int64),
                "ended_day": np.zeros(0),
            }
        )
    sectors = [s.id for s in spec.provider_sectors]
    covariates = np.column_stack(
        [np.ones(n), ucla0 - 6.0, lives_alone, (age - 79.0) / 10.0, female, outreach, safe0 - 3.5]
    )
    coefficients = np.array([_SERVICE_PROPENSITY.get(s, _DEFAULT_PROPENSITY) for s in services])
    probability = 1.0 / (1.0 + np.exp(-(covariates @ coefficients.T)))
    chosen = rng.random(probability.shape) < probability
    # at most three services: keep three of the chosen at random
    keys = np.where(chosen, rng.random(chosen.shape), 2.0)
    rank = np.argsort(np.argsort(keys, axis=1), axis=1)
    chosen &= rank < 3
    position, column = np.nonzero(chosen)
    service = np.asarray(services, dtype=object)[column]
    m = len(position)
    late = rng.random(m) < 0.2
    delay = np.where(late, rng.integers(120, 301, m), rng.integers(7, 121, m))
    started = index_day[position] + delay
    duration = np.zeros(m)
    sector = np.empty(m, dtype=object)
    name = np.empty(m, dtype=object)
    for code in services:
        mask = service == code
        count = int(mask.sum())
        mean, sd = _SERVICE_DURATION_MONTHS.get(code, (6.0, 3.0))
        duration[mask] = np.maximum(rng.normal(mean, sd, count), 1.0) * 30.44
        shares = {k: v for k, v in _SERVICE_SECTORS.get(code, {}).items() if k in sectors}
        if not shares:
            shares = dict.fromkeys(sectors, 1.0)
        sector[mask] = _choice(rng, list(shares), list(shares.values()), count)
    for code in sectors:
        mask = sector == code
        providers = _PROVIDERS.get(code, (None,))
        name[mask] = _choice(rng, providers, [1.0] * len(providers), int(mask.sum()))
    planned_end = started + np.rint(duration)
    limit = stop[position]  # the withdrawal day or today
    keep = started < limit
    withdrawn = limit < today
    ended = np.where(
        planned_end < limit,
        planned_end,
        np.where(withdrawn, np.maximum(limit - 1, started), np.nan),
    )
    return pd.DataFrame(
        {
            "position": position[keep],
            "service_type": service[keep],
            "provider_sector": sector[keep],
            "provider_name": name[keep],
            "started_day": started[keep],
            "ended_day": ended[keep],
        }
    ).reset_index(drop=True)


def _older_costs(
    rng: np.random.Generator, cohort: _Cohort, exposures: pd.DataFrame, stop: np.ndarray
) -> tuple[pd.DataFrame, np.ndarray]:
    """Monthly contact counts per service, plus outreach visits or guidance contacts; and
    each exposure's total contacts (the sum of its months)."""
    position = exposures["position"].to_numpy()
    started = exposures["started_day"].to_numpy().astype(np.int64)
    ended = exposures["ended_day"].to_numpy()
    last = np.where(np.isnan(ended), stop[position] - 1, ended).astype(np.int64)
    first_month = _month_index(started)
    months = _month_index(last) - first_month + 1
    months = np.maximum(months, 1)
    row = np.repeat(np.arange(len(position)), months)
    month = first_month[row] + _ranks_within(months)
    segment_start = np.maximum(_month_start(month), started[row])
    segment_end = np.minimum(_month_start(month + 1) - 1, last[row])
    days = np.maximum(segment_end - segment_start + 1, 0)
    service = exposures["service_type"].to_numpy()[row]
    rate = _lookup(service, {s: _SERVICE_MONTHLY_CONTACTS.get(s, 3.0) for s in pd.unique(service)})
    quantity = rng.poisson(rate * days / 30.44).astype(float)
    contacts = np.bincount(row, weights=quantity, minlength=len(position)).astype(np.int64)
    product = np.array([SERVICE_PRODUCTS.get(s) for s in service.tolist()], dtype=object)
    keep = (quantity > 0) & ~pd.isna(product)
    pieces = [
        pd.DataFrame(
            {
                "position": position[row][keep],
                "product_code": product[keep],
                "quantity": quantity[keep],
                "service_day": segment_start[keep],
            }
        )
    ]
    n = cohort.n
    outreach = cohort.arm == "outreach"
    visits = np.where(outreach, rng.integers(2, 7, n), rng.integers(1, 5, n))
    person = np.repeat(np.arange(n), visits)
    day = cohort.index_day[person] + np.where(
        _ranks_within(visits) == 0, 0, rng.integers(1, 121, len(person))
    )
    follow_up = rng.random(n) < 0.5
    person = np.concatenate([person, np.flatnonzero(follow_up)])
    day = np.concatenate(
        [day, cohort.index_day[follow_up] + rng.integers(150, 200, int(follow_up.sum()))]
    )
    product = np.where(outreach[person], "OUTREACH_VISIT", "CLIENT_GUIDANCE_CONTACT")
    keep = day < stop[person]
    pieces.append(
        pd.DataFrame(
            {
                "position": person[keep],
                "product_code": product[keep].astype(object),
                "quantity": np.ones(int(keep.sum())),
                "service_day": day[keep],
            }
        )
    )
    return pd.concat(pieces, ignore_index=True), contacts


def _exposure_costs(exposures: pd.DataFrame) -> np.ndarray:
    """Each exposure's cost so far: its contacts × the unit cost of its service type and
    provider sector (``SERVICE_UNIT_COSTS``; NaN, i.e. not recorded, for a pair without one)."""
    pairs = pd.MultiIndex.from_arrays(
        [exposures["service_type"].to_numpy(), exposures["provider_sector"].to_numpy()]
    )
    prices = pd.Series(
        list(SERVICE_UNIT_COSTS.values()), index=pd.MultiIndex.from_tuples(SERVICE_UNIT_COSTS)
    )
    unit = prices.reindex(pairs).to_numpy(dtype=float) if len(pairs) else np.zeros(0)
    return np.round(exposures["contacts"].to_numpy(dtype=float) * unit, 2)


def _month_index(days: np.ndarray) -> np.ndarray:
    months = np.asarray(days, dtype=np.int64).astype("datetime64[D]").astype("datetime64[M]")
    return months.astype(np.int64)


def _month_start(month: np.ndarray) -> np.ndarray:
    return month.astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)


def _ranks_within(counts: np.ndarray) -> np.ndarray:
    """0, 1, …, counts[i] − 1 for each i, concatenated."""
    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    return np.arange(total) - starts


# ------------------------------------------------------------------------------------------
# Invitations, responses and answers
# ------------------------------------------------------------------------------------------


def _response_probability(tp: TimePointSpec) -> float:
    if tp.baseline:
        return RESPONSE_PROBABILITY["baseline"]
    if tp.offset_days <= 200:
        return RESPONSE_PROBABILITY["up_to_6_months"]
    return RESPONSE_PROBABILITY["later"]


@dataclass
class _Answering:
    """The schedule of one cohort: invitation, response and answer frames and opt-outs."""

    invitations: pd.DataFrame
    responses: pd.DataFrame
    answers: pd.DataFrame
    opted_out_at: np.ndarray  # UTC seconds per cohort position (NaN = not opted out)


def _schedule(
    cohort: _Cohort,
    instruments: Mapping[str, InstrumentSpec],
    today: int,
    enrolment_keys: np.ndarray,
    invitation_key0: int,
    response_key0: int,
    language: np.ndarray,
    channel: np.ndarray,
    created: np.ndarray,
    withdrawn_at: np.ndarray,
    rng: np.random.Generator,
    answer_rng: np.random.Generator,
    mode_rng: np.random.Generator,
) -> _Answering:
    spec = cohort.pilot
    tps = spec.time_points
    n, t_count = cohort.n, len(tps)
    tp_index = np.arange(t_count)[None, :]
    opens = cohort.index_day[:, None] + np.array([tp.window_open_days for tp in tps])[None, :]
    closes = cohort.index_day[:, None] + np.array([tp.window_close_days for tp in tps])[None, :]
    start = np.maximum(opens, cohort.enrolled_day[:, None])
    withdrawal = np.where(np.isnan(cohort.withdrawal_day), np.inf, cohort.withdrawal_day)

    # who would answer: a person-level propensity shared by the time points (Gaussian copula)
    propensity = rng.normal(size=n)[:, None]
    latent = 0.6 * propensity + 0.8 * rng.normal(size=(n, t_count))
    thresholds = np.array([_NORMAL.inv_cdf(_response_probability(tp)) for tp in tps])
    thresholds = thresholds[None, :] - 0.04 * np.maximum(cohort.age - 80.0, 0.0)[:, None]
    willing = latent < thresholds

    # the day of answering, counted from the first message; reminders bring answers back
    part = _categorical(rng, np.tile([0.6, 0.25, 0.12, 0.03], (n * t_count, 1)))
    low = np.array([0, 7, 14, 21])[part]
    high = np.array([7, 14, 21, 60])[part]
    delay = (low + np.floor(rng.random(n * t_count) * (high - low))).reshape(n, t_count)
    day = start + delay
    span = closes - start
    fallback = start + np.floor(rng.random((n, t_count)) * (span + 1))
    day = np.where(day > closes, fallback, day).astype(np.int64)

    # opting out at one of the invitations already sent
    sent_before = (start < today) & (start < withdrawal[:, None])
    sent_count = sent_before.sum(axis=1)
    opts_out = (rng.random(n) < _OPT_OUT_SHARE) & (sent_count > 0)
    opt_tp = np.where(opts_out, np.floor(rng.random(n) * sent_count).astype(np.int64), t_count)
    rows = np.arange(n)
    opt_k = np.minimum(opt_tp, t_count - 1)
    opt_day = start[rows, opt_k] + rng.integers(0, 6, n)
    opt_day = np.minimum.reduce(
        [opt_day, np.full(n, today - 1), closes[rows, opt_k], withdrawal - 1]
    ).astype(np.int64)
    opt_seconds = np.where(opts_out, _local_times(rng, opt_day), np.nan)
    halt = np.minimum(withdrawal, np.where(opts_out, opt_day + 1, np.inf))

    submitted = willing & (day < today) & (day < withdrawal[:, None]) & (tp_index < opt_tp[:, None])
    cancelled = ~submitted & (closes >= withdrawal[:, None]) & (tp_index < opt_tp[:, None])
    opted = ~submitted & (tp_index >= opt_tp[:, None])
    status = np.where(
        submitted,
        "completed",
        np.where(
            opted,
            "opted_out",
            np.where(
                cancelled,
                "cancelled",
                np.where(today < opens, "scheduled", np.where(today > closes, "expired", "open")),
            ),
        ),
    ).astype(object)
    in_progress = (
        (status == "open")
        & willing
        & (start <= today - 1)
        & (rng.random((n, t_count)) < _IN_PROGRESS_SHARE)
    )
    progress_day = start + np.floor(rng.random((n, t_count)) * np.maximum(today - start, 1))
    progress_day = progress_day.astype(np.int64)

    # timestamps (UTC seconds); nothing happens before the first message (09 local, or just
    # after the enrolment was recorded when that was later the same day)
    sent = start < np.minimum(today, halt)[:, None]
    send_hours = np.array([_SEND_HOUR])
    first_sent = _local_times(rng, np.ravel(start), send_hours, None).reshape(n, t_count)
    first_sent = np.maximum(first_sent, created[:, None] + 300)
    first_sent = np.where(sent, first_sent, np.nan)
    earliest = np.nan_to_num(first_sent, nan=-np.inf) + 120
    assisted = rng.random((n, t_count)) < cohort.assisted[:, None]
    mode, proxy = _modes(cohort, assisted, mode_rng)
    duration = np.where(
        assisted, rng.integers(600, 1801, (n, t_count)), rng.integers(240, 1501, (n, t_count))
    )
    submit_seconds = _local_times(rng, np.ravel(day)).reshape(n, t_count).astype(float)
    started_seconds = np.where(
        submitted,
        np.maximum(submit_seconds - duration, earliest),
        np.maximum(_local_times(rng, np.ravel(progress_day)).reshape(n, t_count), earliest),
    )
    submit_seconds = np.where(submitted, started_seconds + duration, submit_seconds)
    updated_seconds = np.where(
        submitted, submit_seconds, started_seconds + rng.integers(60, 601, (n, t_count))
    )
    opt_seconds = np.where(opts_out, np.maximum(opt_seconds, earliest[rows, opt_k]), np.nan)
    reminders = np.zeros((n, t_count), dtype=np.int64)
    last_sent = first_sent.copy()
    for after in spec.reminders.after_days:
        reminder_day = start + after
        due = (
            sent
            & (reminder_day < today)
            & (reminder_day <= closes)
            & (reminder_day < halt[:, None])
            & ~(submitted & (reminder_day >= day))
        )
        reminders += due
        reminder_seconds = _local_times(rng, np.ravel(reminder_day), send_hours, None)
        last_sent = np.where(due, reminder_seconds.reshape(n, t_count), last_sent)
    answered = submitted | in_progress
    opened_at = np.where(answered, started_seconds, np.nan)
    at_opt = tp_index == opt_tp[:, None]
    opened_at = np.where(at_opt & opts_out[:, None], opt_seconds[:, None], opened_at)

    invitation_keys = invitation_key0 + np.arange(n * t_count).reshape(n, t_count)
    invitations = pd.DataFrame(
        {
            "invitation_key": np.ravel(invitation_keys),
            "enrolment_key": np.repeat(enrolment_keys, t_count),
            "pilot": spec.id,
            "time_point": np.tile(np.array([tp.id for tp in tps], dtype=object), n),
            "opens_on": _dates(np.ravel(opens)),
            "closes_on": _dates(np.ravel(closes)),
            "status": np.ravel(status),
            "channel": np.repeat(channel, t_count),
            "created_at": _timestamps(np.repeat(created, t_count)),
            "first_sent_at": _timestamps(np.ravel(first_sent)),
            "last_sent_at": _timestamps(np.ravel(last_sent)),
            "reminders_sent": np.ravel(reminders),
            "opened_at": _timestamps(np.ravel(opened_at)),
            "completed_at": _timestamps(np.ravel(np.where(submitted, submit_seconds, np.nan))),
            "cancelled_at": _timestamps(
                np.ravel(np.where(status == "cancelled", withdrawn_at[:, None], np.nan))
            ),
        }
    )

    # responses: one per instrument of each answered invitation, grouped by time point and
    # instrument so that response keys (and answers) come out in one ascending order
    response_pieces = []
    answer_pieces = []
    key = response_key0
    for t, tp in enumerate(tps):
        who = np.flatnonzero(answered[:, t])
        specs = [instruments[code] for code in tp.instruments]
        sections = np.array([len(s.sections) for s in specs])
        before = np.concatenate([[0], np.cumsum(sections)[:-1]])
        saved = np.floor(answer_rng.random(len(who)) * (sections.sum() + 1)).astype(np.int64)
        for j, instrument in enumerate(specs):
            m = len(who)
            keys = key + np.arange(m)
            key += m
            is_submitted = submitted[who, t]
            done = np.where(
                is_submitted, len(instrument.sections), np.clip(saved - before[j], 0, sections[j])
            )
            response_pieces.append(
                pd.DataFrame(
                    {
                        "response_key": keys,
                        "enrolment_key": enrolment_keys[who],
                        "invitation_key": invitation_keys[who, t],
                        "pilot": spec.id,
                        "time_point": tp.id,
                        "instrument": instrument.id,
                        "status": np.where(is_submitted, "submitted", "in_progress").astype(object),
                        "language": language[who],
                        "mode": mode[who, t],
                        "proxy": proxy[who, t],
                        "started_at": started_seconds[who, t],
                        "updated_at": updated_seconds[who, t],
                        "submitted_at": np.where(is_submitted, submit_seconds[who, t], np.nan),
                    }
                )
            )
            raw = cohort.model(instrument.id, tp, who, answer_rng) if cohort.model else {}
            answer_pieces.append(
                _block_answers(
                    instrument,
                    raw,
                    keys,
                    is_submitted,
                    assisted[who, t],
                    done,
                    language[who],
                    updated_seconds[who, t],
                    answer_rng,
                )
            )
    responses = pd.concat(response_pieces, ignore_index=True)
    responses["idempotency_key"] = _hex_keys(answer_rng, len(responses))
    for column in ("started_at", "updated_at", "submitted_at"):
        responses[column] = _timestamps(responses[column].to_numpy())
    answers = pd.concat(answer_pieces, ignore_index=True)
    answers["updated_at"] = _timestamps(answers["updated_at"].to_numpy())
    return _Answering(invitations, responses, answers, opt_seconds)


def _hex_keys(rng: np.random.Generator, count: int) -> np.ndarray:
    """``count`` random 128-bit keys as 32 hexadecimal characters."""
    text = rng.bytes(16 * count).hex().encode("ascii")
    return np.frombuffer(text, dtype="S32").astype(str).astype(object)


def _modes(
    cohort: _Cohort, assisted: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Per person and time point: the mode (``web``; staff-entered answers ``phone`` or
    ``paper``) and whether someone else answered for the person (more often at age ≥ 85 in the
    older adults pilot). Drawn from their own stream, so the rest of the data set does not
    depend on them."""
    pilot = cohort.pilot.id
    shape = assisted.shape
    paper = rng.random(shape) < _PAPER_SHARE[pilot]
    mode = np.where(assisted, np.where(paper, "paper", "phone"), "web").astype(object)
    web, entered = _PROXY[pilot]
    oldest = (cohort.age >= 85)[:, None] if pilot == OLDER_ADULTS_PILOT else np.zeros((shape[0], 1))
    chance = np.where(assisted, entered + _PROXY_85[1] * oldest, web + _PROXY_85[0] * oldest)
    proxy = rng.random(shape) < chance
    return mode, proxy


def _block_answers(
    spec: InstrumentSpec,
    raw: Mapping[str, np.ndarray],
    response_keys: np.ndarray,
    submitted: np.ndarray,
    assisted: np.ndarray,
    sections_done: np.ndarray,
    language: np.ndarray,
    updated: np.ndarray,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Long answers of one instrument's responses from the model's raw values.

    Applies, item by item in questionnaire order: unanswered optional items, the rare missing
    required item of an assisted (paper) entry, ``enable_when`` and, for responses still in
    progress, the pages not yet saved. Values go through :func:`canonical`.
    """
    n = len(response_keys)
    values: dict[str, np.ndarray] = {}
    present: dict[str, np.ndarray] = {}
    required = [item.id for item in spec.items if item.required]
    drop_required = submitted & assisted & (rng.random(n) < _REQUIRED_MISSING_ASSISTED)
    dropped_item = rng.integers(0, max(len(required), 1), n)
    rows: list[np.ndarray] = []
    positions: list[np.ndarray] = []
    texts: list[np.ndarray] = []
    numbers: list[np.ndarray] = []
    for section_number, section in enumerate(spec.sections):
        for item in section.items:
            value = raw.get(item.id)
            if value is None or len(value) != n:
                value = _fallback_values(spec, item, n, language, rng)
            shown = _is_present(value)
            if not item.required:
                shown &= rng.random(n) >= _OPTIONAL_MISSING[spec.kind]
            else:
                shown &= ~(drop_required & (dropped_item == required.index(item.id)))
            if item.enable_when:
                shown &= _enabled(item, values, present)
            shown &= section_number < sections_done
            values[item.id] = value
            present[item.id] = shown
            where = np.flatnonzero(shown)
            text, number = _canonical_many(spec, item, value[where])
            rows.append(where)
            positions.append(np.full(len(where), len(positions)))
            texts.append(text)
            numbers.append(number)
    row = np.concatenate(rows)
    order = np.lexsort((np.concatenate(positions), row))
    row = row[order]
    item_ids = np.array([item.id for item in spec.items], dtype=object)
    return pd.DataFrame(
        {
            "response_key": response_keys[row],
            "item_id": item_ids[np.concatenate(positions)[order]],
            "value": np.concatenate(texts)[order],
            "value_num": np.concatenate(numbers)[order],
            "updated_at": updated[row],
        }
    )


def _is_present(values: np.ndarray) -> np.ndarray:
    if values.dtype == object:
        return np.array([v is not None for v in values.tolist()], dtype=bool)
    return ~np.isnan(values.astype(float))


def _fallback_values(
    spec: InstrumentSpec, item: Item, n: int, language: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Values for an item the pilot's model does not cover: free text from the built-in
    lists, or plausible answers drawn at random within the item's options or range."""
    if item.type == "text":
        result = np.full(n, None, dtype=object)
        lists = _FREE_TEXT.get((spec.id, item.id))
        if lists is None:
            return result
        writes = rng.random(n) < _FREE_TEXT_SHARE.get(item.id, 0.05)
        for code, phrases in lists.items():
            mask = writes & (language == code)
            result[mask] = _choice(rng, phrases, [1.0] * len(phrases), int(mask.sum()))
        return result
    if item.type in {"single_choice", "multiple_choice"}:
        options = [option.code for option in spec.options_for(item)]
        return _choice(rng, options, [1.0] * len(options), n)
    if item.type == "scale_0_10":
        return _bounded_round(rng.normal(8.0, 2.0, n), 0, 10)
    if item.type == "yes_no":
        return (rng.random(n) < 0.5).astype(float)
    if item.type in {"integer", "decimal"} and item.min is not None and item.max is not None:
        value = item.min + rng.random(n) * (item.max - item.min)
        return np.rint(value) if item.type == "integer" else np.round(value, 1)
    return np.full(n, np.nan)  # dates and anything else: left unanswered


def _canonical_many(
    spec: InstrumentSpec, item: Item, values: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Stored text and number of each value, via :func:`canonical` on the distinct values."""
    codes, uniques = pd.factorize(values)
    texts = np.empty(len(uniques), dtype=object)
    numbers = np.full(len(uniques), np.nan)
    for position, unique in enumerate(uniques.tolist()):
        raw = int(unique) if isinstance(unique, float) and unique.is_integer() else unique
        stored = canonical(spec, item, raw)
        if stored is None:
            raise ValueError(f"{spec.key} {item.id}: the generator produced an empty answer")
        texts[position] = stored.value
        if stored.value_num is not None:
            numbers[position] = stored.value_num
    return texts[codes], numbers[codes]


def _enabled(
    item: Item, values: Mapping[str, np.ndarray], present: Mapping[str, np.ndarray]
) -> np.ndarray:
    """Vectorised :func:`vaikuttavuus.domain.answers.is_enabled` over the shown answers."""
    results = [_condition(condition, values, present) for condition in item.enable_when]
    combined = (
        np.logical_and.reduce(results)
        if item.enable_behavior == "all"
        else (np.logical_or.reduce(results))
    )
    return np.asarray(combined, dtype=bool)


def _condition(
    condition: EnableWhen, values: Mapping[str, np.ndarray], present: Mapping[str, np.ndarray]
) -> np.ndarray:
    shown = present[condition.item]
    if condition.operator == "exists":
        wanted = True if condition.value is None else bool(condition.value)
        return shown == wanted
    expected = condition.value
    if isinstance(expected, bool):
        expected = 1 if expected else 0
    stored = values[condition.item]
    numeric = _as_float(stored)
    try:
        target = float(expected)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        target = math.nan
    if condition.operator in {"=", "!="}:
        if math.isnan(target):
            hit = np.array([str(v) == str(expected) for v in stored.tolist()], dtype=bool)
        else:
            hit = numeric == target
        return shown & (hit if condition.operator == "=" else ~hit)
    compare = {
        ">": np.greater,
        ">=": np.greater_equal,
        "<": np.less,
        "<=": np.less_equal,
    }[condition.operator]
    with np.errstate(invalid="ignore"):
        return shown & compare(numeric, target)


def _as_float(values: np.ndarray) -> np.ndarray:
    if values.dtype != object:
        return values.astype(float)
    return pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy(float)


# ------------------------------------------------------------------------------------------
# People
# ------------------------------------------------------------------------------------------


def _ascii(name: str) -> str:
    folded = name.lower().translate(str.maketrans("äöåü", "aoau"))
    return folded.replace(" ", "")


def _names(
    rng: np.random.Generator, female: np.ndarray, language: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """First and last names (with their ASCII forms for e-mail addresses)."""
    n = len(female)
    first = np.empty(n, dtype=object)
    last = np.empty(n, dtype=object)
    lists = {
        "fi": (_FEMALE_FI, _MALE_FI, _LAST_FI),
        "sv": (_FEMALE_SV, _MALE_SV, _LAST_SV),
        "en": (_FEMALE_EN, _MALE_EN, _LAST_EN),
    }
    for code, (women, men, surnames) in lists.items():
        speaks = language == code
        for is_female, names in ((True, women), (False, men)):
            mask = speaks & (female == is_female)
            first[mask] = _choice(rng, names, [1.0] * len(names), int(mask.sum()))
        last[speaks] = _choice(rng, surnames, [1.0] * len(surnames), int(speaks.sum()))
    return first, last, _fold(first), _fold(last)


def _fold(names: np.ndarray) -> np.ndarray:
    codes, uniques = pd.factorize(names)
    return np.array([_ascii(name) for name in uniques], dtype=object)[codes]


def _contacts(
    rng: np.random.Generator, channel: np.ndarray, first_ascii: np.ndarray, last_ascii: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """E-mail, phone and postal address (each None unless used)."""
    n = len(channel)
    number = pd.Series(rng.integers(100, 1000, n)).astype(str).to_numpy(dtype=object)
    email = first_ascii + "." + last_ascii + "." + number + "@example.invalid"
    email = np.where(channel == "email", email, _NONE)
    middle = pd.Series(rng.integers(0, 1000, n)).astype(str).str.zfill(3).to_numpy(dtype=object)
    tail = pd.Series(rng.integers(0, 10000, n)).astype(str).str.zfill(4).to_numpy(dtype=object)
    phone = "+358 40 " + middle + " " + tail
    has_phone = (channel == "sms") | ((channel == "email") & (rng.random(n) < 0.3))
    phone = np.where(has_phone, phone, _NONE)
    town = rng.integers(0, len(_TOWNS), n)
    street = np.empty(n, dtype=object)
    postal = np.empty(n, dtype=object)
    for position, (code, name, streets) in enumerate(_TOWNS):
        mask = town == position
        street[mask] = _choice(rng, streets, [1.0] * len(streets), int(mask.sum()))
        postal[mask] = f"{code} {name}"
    house = pd.Series(rng.integers(1, 80, n)).astype(str).to_numpy(dtype=object)
    flat = pd.Series(rng.integers(1, 30, n)).astype(str).to_numpy(dtype=object)
    staircase = _choice(rng, ("A", "B", "C"), (0.5, 0.3, 0.2), n)
    in_block = rng.random(n) < 0.6
    line1 = street + " " + house + np.where(in_block, " " + staircase + " " + flat, "")
    address = np.where(channel == "letter", line1 + "\n" + postal, _NONE)
    return email, phone, address


def _identity_hashes(
    pyrng: random.Random, birth_day: np.ndarray, female: np.ndarray, key: bytes
) -> np.ndarray:
    """Keyed hashes of unique synthetic identity codes; the codes themselves are dropped.

    Codes use the test-range individual numbers 900–999 (50 per sex and birth date); when two
    people draw the same code, the later one is moved to the previous birth date and drawn
    again until every code is unique.
    """
    birth = birth_day.astype(np.int64).copy()
    sexes = np.where(female, "female", "male")

    def hashed(position: int) -> str:
        born = date.fromordinal(_EPOCH.toordinal() + int(birth[position]))
        code = identity.synthetic_identity_code(born, sexes[position], pyrng)
        return identity.identity_hash(code, key)

    hashes = np.array([hashed(i) for i in range(len(birth))], dtype=object)
    while True:
        repeated = np.flatnonzero(pd.Series(hashes).duplicated().to_numpy())
        if len(repeated) == 0:
            return hashes
        birth[repeated] -= 1
        hashes[repeated] = [hashed(int(i)) for i in repeated]


def _pseudonyms(pyrng: random.Random, count: int) -> np.ndarray:
    values = np.array([identity.new_pseudonym(pyrng) for _ in range(count)], dtype=object)
    while True:
        repeated = np.flatnonzero(pd.Series(values).duplicated().to_numpy())
        if len(repeated) == 0:
            return values
        values[repeated] = [identity.new_pseudonym(pyrng) for _ in repeated]


# ------------------------------------------------------------------------------------------
# generate()
# ------------------------------------------------------------------------------------------


def generate(
    *,
    pilots: Mapping[str, PilotSpec],
    instruments: Mapping[str, InstrumentSpec],
    measures: MeasureCatalogue,
    people: int,
    seed: int,
    today: date,
    pseudonym_key: bytes,
) -> SyntheticData:
    """Generate the synthetic data set of both pilots (see the module documentation).

    ``pilots`` maps pilot ids to specs and must hold ``bph`` and ``older-adults``;
    ``instruments`` maps instrument ids to the version to answer (every instrument of every
    time point); ``people`` is the total (40 % BPH); ``today`` is the reference date (things
    dated before it have happened); ``pseudonym_key`` keys the identity-code hashes. The same
    arguments give identical frames.
    """
    if people < 2:
        raise ValueError("people must be at least 2 (one per pilot)")
    if not pseudonym_key:
        raise ValueError("pseudonym_key is empty")
    for code in (BPH_PILOT, OLDER_ADULTS_PILOT):
        if code not in pilots:
            raise ValueError(f"the pilot '{code}' is not defined")
    for code in (BPH_PILOT, OLDER_ADULTS_PILOT):
        for tp in pilots[code].time_points:
            unknown = [i for i in tp.instruments if i not in instruments]
            if unknown:
                raise ValueError(f"pilot '{code}', time point '{tp.id}': no instrument {unknown}")

    # spawn(9)'s first eight children are spawn(8)'s: the ninth (modes) was added later
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(9)]
    cohort_rng, people_rng, schedule_rng, answer_rng, record_rng, benefit_rng = streams[:6]
    mode_rng = streams[8]
    pyrng = random.Random(seed)
    day0 = _day(today)
    n_bph = round(people * BPH_SHARE)
    n_bph = min(max(n_bph, 1), people - 1)
    cohorts = [
        _simulate_bph(pilots[BPH_PILOT], measures, n_bph, day0, cohort_rng, benefit_rng),
        _simulate_older(pilots[OLDER_ADULTS_PILOT], people - n_bph, day0, cohort_rng),
    ]
    total = people
    offsets = np.cumsum([0] + [c.n for c in cohorts])[:-1]

    def joined(attribute: str) -> np.ndarray:
        return np.concatenate([getattr(c, attribute) for c in cohorts])

    female = joined("female")
    languages = [language for language, _weight in _LANGUAGES]
    weights = [weight for _language, weight in _LANGUAGES]
    language = _choice(people_rng, languages, weights, total)
    channel = np.concatenate(
        [
            _choice(people_rng, ("email", "sms", "letter"), (0.70, 0.20, 0.10), cohorts[0].n),
            _choice(people_rng, ("email", "sms", "letter"), (0.40, 0.25, 0.35), cohorts[1].n),
        ]
    )
    first, last, first_ascii, last_ascii = _names(people_rng, female, language)
    email, phone, address = _contacts(people_rng, channel, first_ascii, last_ascii)
    enrolled_day = joined("enrolled_day")
    created = _local_times(record_rng, enrolled_day, np.arange(8, 16), None).astype(float)
    withdrawal_day = joined("withdrawal_day")
    known = ~np.isnan(withdrawal_day)
    withdrawn_at = np.full(total, np.nan)
    withdrawn_at[known] = _local_times(
        record_rng, withdrawal_day[known].astype(np.int64), np.arange(8, 17), None
    )

    invitation_parts, response_parts, answer_parts, opted_out = [], [], [], []
    invitation_key = response_key = 0
    for cohort, offset in zip(cohorts, offsets, strict=True):
        part = slice(int(offset), int(offset) + cohort.n)
        answering = _schedule(
            cohort,
            instruments,
            day0,
            np.arange(part.start, part.stop),
            invitation_key,
            response_key,
            language[part],
            channel[part],
            created[part],
            withdrawn_at[part],
            schedule_rng,
            answer_rng,
            mode_rng,
        )
        invitation_key += len(answering.invitations)
        response_key += len(answering.responses)
        invitation_parts.append(answering.invitations)
        response_parts.append(answering.responses)
        answer_parts.append(answering.answers)
        opted_out.append(answering.opted_out_at)

    person_keys = np.arange(total)
    people_frame = pd.DataFrame(
        {
            "person_key": person_keys,
            "pseudonym": _pseudonyms(pyrng, total),
            "identity_hash": _identity_hashes(pyrng, joined("birth_day"), female, pseudonym_key),
            "first_name": first,
            "last_name": last,
            "birth_year": joined("birth_day")
            .astype("datetime64[D]")
            .astype("datetime64[Y]")
            .astype(np.int64)
            + 1970,
            "sex": np.where(female, "female", "male").astype(object),
            "lives_alone": pd.array(
                np.where(np.isnan(joined("lives_alone")), _NONE, joined("lives_alone") > 0.5),
                dtype="boolean",
            ),
            "email": email,
            "phone": phone,
            "postal_address": address,
            "preferred_language": language,
            "opted_out_at": _timestamps(np.concatenate(opted_out)),
            "source": "demo",
            "created_at": _timestamps(created),
        }
    )
    last_close = np.concatenate(
        [c.index_day + c.pilot.time_points[-1].window_close_days for c in cohorts]
    )
    status = np.where(known, "withdrawn", np.where(last_close < day0, "completed", "active"))
    enrolments = pd.DataFrame(
        {
            "enrolment_key": person_keys,
            "person_key": person_keys,
            "pilot": np.concatenate([np.full(c.n, c.pilot.id, dtype=object) for c in cohorts]),
            "arm": joined("arm"),
            "index_date": _dates(joined("index_day")),
            "enrolled_on": _dates(enrolled_day),
            "unit": joined("unit"),
            "clinician_code": joined("clinician"),
            "status": status.astype(object),
            "withdrawn_at": _timestamps(withdrawn_at),
            "withdrawal_reason": joined("withdrawal_reason"),
            "created_at": _timestamps(created),
        }
    )

    def keyed(attribute: str) -> list[pd.DataFrame]:
        frames = []
        for cohort, offset in zip(cohorts, offsets, strict=True):
            frame = getattr(cohort, attribute)
            if frame is not None:
                frame = frame.copy()
                frame.insert(0, "enrolment_key", frame.pop("position").to_numpy() + offset)
                frames.append(frame)
        return frames

    procedures = pd.concat(keyed("procedures"), ignore_index=True)
    procedures["performed_on"] = _dates(procedures.pop("performed_day").to_numpy())
    procedures["created_at"] = _recorded(record_rng, procedures["performed_on"], day0)

    measurements = pd.concat(keyed("measurements"), ignore_index=True)
    measurements["measured_on"] = _dates(measurements.pop("measured_day").to_numpy())
    measurements["source"] = "import"
    measurements["recorded_at"] = _recorded(record_rng, measurements["measured_on"], day0)

    exposures = pd.concat(keyed("exposures"), ignore_index=True)
    exposures["started_on"] = _dates(exposures.pop("started_day").to_numpy())
    exposures["ended_on"] = _dates(exposures.pop("ended_day").to_numpy())
    exposures["created_at"] = _recorded(record_rng, exposures["started_on"], day0)

    costs = pd.concat(keyed("costs"), ignore_index=True)
    costs = costs.sort_values(["enrolment_key", "service_day"], kind="stable")
    costs = costs.reset_index(drop=True)
    costs.insert(1, "kind", "resource_use")
    costs["service_date"] = _dates(costs.pop("service_day").to_numpy())
    costs["created_at"] = _recorded(record_rng, costs["service_date"], day0)

    return SyntheticData(
        people=people_frame,
        enrolments=enrolments,
        procedures=procedures,
        clinical_measurements=measurements,
        service_exposures=exposures,
        cost_items=costs,
        invitations=pd.concat(invitation_parts, ignore_index=True),
        responses=pd.concat(response_parts, ignore_index=True),
        answers=pd.concat(answer_parts, ignore_index=True),
        instrument_versions=MappingProxyType(
            {code: spec.version for code, spec in sorted(instruments.items())}
        ),
        seed=seed,
        today=today,
    )


def _recorded(rng: np.random.Generator, dates: pd.Series, today: int) -> pd.DatetimeIndex:
    """When a row reached the system: 1–14 days after its date, never on or after today."""
    day = dates.to_numpy(dtype="datetime64[D]").astype(np.int64)
    day = np.minimum(day + rng.integers(1, 15, len(day)), today - 1)
    return _timestamps(_local_times(rng, day, np.arange(8, 17), None).astype(float))
