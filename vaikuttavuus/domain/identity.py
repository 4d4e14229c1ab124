"""Finnish personal identity codes (henkilötunnus), their keyed hashes and pseudonyms.

Format ``DDMMYYCZZZQ``: birth date, century sign ``C``, individual number ``ZZZ`` (odd for
men, even for women) and check character ``Q`` =
``"0123456789ABCDEFHJKLMNPRSTUVWXY"[int(DDMMYYZZZ) % 31]``. Century signs after the 2023
reform (Digital and Population Data Services Agency, DVV):

* ``+`` 1800s;
* ``-``, ``Y``, ``X``, ``W``, ``V``, ``U`` 1900s;
* ``A``, ``B``, ``C``, ``D``, ``E``, ``F`` 2000s.

Individual numbers 002–899 are used in permanent codes; 900–999 are used only for temporary
identifiers and test data, never in a permanent code, so :func:`synthetic_identity_code` draws
from 900–999 and a synthetic code cannot be a real person's permanent code. 000 and 001 are not
used at all and are rejected.

A code is never stored: :func:`identity_hash` (HMAC-SHA256 under the instance's key) is the only
stored form; :func:`new_pseudonym` makes the short identifier shown on screens and exports.
Free text that may hold a code (reasons, notes, log lines) goes through
:func:`mask_identity_codes` first.

Stdlib only.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import re
from datetime import date
from typing import Literal

__all__ = [
    "CENTURY_SIGNS",
    "CHECK_CHARACTERS",
    "IDENTITY_CODE_SHAPE",
    "PSEUDONYM_ALPHABET",
    "SYNTHETIC_NUMBERS",
    "ErrorKey",
    "Sex",
    "birth_date",
    "check_character",
    "contains_identity_code",
    "identity_hash",
    "is_pseudonym",
    "is_synthetic",
    "is_valid",
    "mask_identity_code",
    "mask_identity_codes",
    "new_pseudonym",
    "normalise",
    "normalise_pseudonym",
    "sex",
    "synthetic_identity_code",
    "validate",
]

CHECK_CHARACTERS = "0123456789ABCDEFHJKLMNPRSTUVWXY"
CENTURY_SIGNS: dict[str, int] = {
    "+": 1800,
    "-": 1900,
    "Y": 1900,
    "X": 1900,
    "W": 1900,
    "V": 1900,
    "U": 1900,
    "A": 2000,
    "B": 2000,
    "C": 2000,
    "D": 2000,
    "E": 2000,
    "F": 2000,
}
SYNTHETIC_NUMBERS = range(900, 1000)
"""Individual numbers of temporary and test codes; never in a permanent code."""

Sex = Literal["male", "female"]
ErrorKey = Literal["format", "century_sign", "date", "individual_number", "check_character"]

_SHAPE = re.compile(r"^(\d{2})(\d{2})(\d{2})(.)(\d{3})([0-9A-Z])$")
_DASHES = str.maketrans({"\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2212": "-"})


def normalise(code: str) -> str:
    """Strip surrounding white space and upper-case; typographic dashes become ``-``."""
    return code.strip().upper().translate(_DASHES)


def check_character(date_digits: str, individual_number: str) -> str:
    """The check character of ``DDMMYY`` + ``ZZZ``."""
    return CHECK_CHARACTERS[int(date_digits + individual_number) % 31]


def _parts(code: str) -> tuple[date, int, str] | ErrorKey:
    """(birth date, individual number, check character) or the first error found."""
    match = _SHAPE.match(normalise(code))
    if match is None:
        return "format"
    day, month, year, sign, number, check = match.groups()
    century = CENTURY_SIGNS.get(sign)
    if century is None:
        return "century_sign"
    try:
        born = date(century + int(year), int(month), int(day))
    except ValueError:
        return "date"
    if int(number) < 2:
        return "individual_number"
    if check != check_character(day + month + year, number):
        return "check_character"
    return born, int(number), check


def validate(code: str) -> ErrorKey | None:
    """``None`` for a valid code, else the first problem as a key for translated messages.

    Keys, in the order checked: ``format`` (not DDMMYY, one character, three digits and a
    check character), ``century_sign`` (not one of :data:`CENTURY_SIGNS`), ``date`` (no such
    day), ``individual_number`` (000 or 001) and ``check_character``.
    """
    parts = _parts(code)
    return parts if isinstance(parts, str) else None


def is_valid(code: str) -> bool:
    return validate(code) is None


def _valid_parts(code: str) -> tuple[date, int, str]:
    parts = _parts(code)
    if isinstance(parts, str):
        raise ValueError(f"not a valid personal identity code ({parts})")
    return parts


def birth_date(code: str) -> date:
    """The date of birth in a valid code; ``ValueError`` for an invalid one."""
    return _valid_parts(code)[0]


def sex(code: str) -> Sex:
    """``male`` for an odd individual number, ``female`` for an even one."""
    return "male" if _valid_parts(code)[1] % 2 == 1 else "female"


def is_synthetic(code: str) -> bool:
    """Whether ``code`` is valid and uses a temporary/test individual number (900–999)."""
    parts = _parts(code)
    return not isinstance(parts, str) and parts[1] in SYNTHETIC_NUMBERS


def identity_hash(code: str, key: bytes) -> str:
    """HMAC-SHA256 (hex) of the normalised code under ``key`` — the only stored form.

    The code must be valid (so that one person always gets one hash) and the key not empty.
    """
    if not key:
        raise ValueError("the hashing key is empty")
    _valid_parts(code)
    return hmac.new(key, normalise(code).encode("ascii"), hashlib.sha256).hexdigest()


def synthetic_identity_code(
    birth_date: date, sex: Sex, rng: random.Random, *, century_sign: str | None = None
) -> str:
    """A valid code for demo and test data, with an individual number in 900–999.

    The individual number is odd for ``male`` and even for ``female``. The century sign is
    ``+``, ``-`` or ``A`` for the birth century unless ``century_sign`` names another sign of
    the same century (e.g. ``Y`` or ``B``).
    """
    century = birth_date.year // 100 * 100
    signs = [sign for sign, start in CENTURY_SIGNS.items() if start == century]
    if not signs:
        raise ValueError("identity codes cover birth years 1800–2099")
    if century_sign is None:
        century_sign = signs[0]
    elif century_sign not in signs:
        raise ValueError(f"the century sign {century_sign!r} is not for {century}s births")
    if sex not in ("male", "female"):
        raise ValueError("sex must be 'male' or 'female'")
    first = SYNTHETIC_NUMBERS.start + (1 if sex == "male" else 0)
    number = f"{rng.randrange(first, SYNTHETIC_NUMBERS.stop, 2):03d}"
    digits = f"{birth_date.day:02d}{birth_date.month:02d}{birth_date.year % 100:02d}"
    return f"{digits}{century_sign}{number}{check_character(digits, number)}"


# -- identity codes in free text ---------------------------------------------------------------

IDENTITY_CODE_SHAPE = re.compile(
    r"(?<![0-9A-Za-z])\d{6}[-+A-FU-Ya-fu-y\u2010-\u2013\u2212]\d{3}[0-9A-Za-z](?![0-9A-Za-z])"
)
"""Anything shaped like an identity code inside a longer text (valid check character or not:
a mistyped code still points at a person)."""


def contains_identity_code(text: str) -> bool:
    """Whether ``text`` holds something shaped like an identity code."""
    return IDENTITY_CODE_SHAPE.search(text) is not None


def mask_identity_code(value: str) -> str:
    """Letters and digits become ``*``; separators stay (``010150-901D`` → ``******-****``)."""
    return re.sub(r"[0-9A-Za-z]", "*", value)


def mask_identity_codes(text: str) -> str:
    """``text`` with every substring shaped like an identity code masked."""
    return IDENTITY_CODE_SHAPE.sub(lambda match: mask_identity_code(match.group(0)), text)


# -- pseudonyms --------------------------------------------------------------------------------

PSEUDONYM_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
"""Crockford's base32: no I, L, O or U, so nothing is mistaken for 1, 0 or V."""
PSEUDONYM_PREFIX = "P-"
_PSEUDONYM = re.compile(rf"^P-[{PSEUDONYM_ALPHABET}]+$")
_CROCKFORD_ALIASES = str.maketrans({"O": "0", "I": "1", "L": "1"})


def new_pseudonym(rng: random.Random, length: int = 6) -> str:
    """A short pseudonym such as ``P-7K3M9Q`` (Crockford base32).

    Six characters give about 10⁹ values: collisions are rare but possible, so the caller
    checks uniqueness and draws again. Pass ``random.SystemRandom()`` in production so that
    pseudonyms cannot be predicted from one another.
    """
    if length < 1:
        raise ValueError("length must be at least 1")
    return PSEUDONYM_PREFIX + "".join(rng.choice(PSEUDONYM_ALPHABET) for _ in range(length))


def normalise_pseudonym(value: str) -> str:
    """Upper-case, strip, add a missing ``P-`` and read O as 0 and I/L as 1 (Crockford)."""
    text = value.strip().upper().translate(_DASHES)
    body = text.removeprefix(PSEUDONYM_PREFIX)
    return PSEUDONYM_PREFIX + body.translate(_CROCKFORD_ALIASES)


def is_pseudonym(value: str) -> bool:
    """Whether ``value`` has the pseudonym form (``P-`` and Crockford base32 characters)."""
    return _PSEUDONYM.match(value) is not None
