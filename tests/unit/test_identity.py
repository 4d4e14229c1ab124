"""Finnish personal identity codes, keyed hashes and pseudonyms (vaikuttavuus.domain.identity).

Valid examples are the public example 131052-308T and the Digital and Population Data Services
Agency's examples for the century signs introduced in 2023; check characters in the other
cases are worked out by hand in the comments.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import re
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vaikuttavuus.domain import identity
from vaikuttavuus.domain.identity import (
    CENTURY_SIGNS,
    CHECK_CHARACTERS,
    birth_date,
    identity_hash,
    is_pseudonym,
    is_synthetic,
    is_valid,
    new_pseudonym,
    normalise,
    normalise_pseudonym,
    sex,
    synthetic_identity_code,
    validate,
)


def test_public_example() -> None:
    # 131052308 = 31 × 4227493 + 25 → CHECK_CHARACTERS[25] = "T"
    assert 131052308 % 31 == 25
    assert CHECK_CHARACTERS[25] == "T"
    assert validate("131052-308T") is None
    assert is_valid("131052-308T")
    assert birth_date("131052-308T") == date(1952, 10, 13)
    assert sex("131052-308T") == "female"  # 308 is even
    assert not is_synthetic("131052-308T")


@pytest.mark.parametrize(
    ("code", "born", "expected_sex"),
    [
        # DVV's examples of the new century signs (2023 reform)
        ("010594Y9021", date(1994, 5, 1), "female"),
        ("020594X903P", date(1994, 5, 2), "male"),
        ("020594X902N", date(1994, 5, 2), "female"),
        ("030594W903B", date(1994, 5, 3), "male"),
        ("030694W9024", date(1994, 6, 3), "female"),
        ("040594V9030", date(1994, 5, 4), "male"),
        ("040594V902Y", date(1994, 5, 4), "female"),
        ("050594U903M", date(1994, 5, 5), "male"),
        ("050594U902L", date(1994, 5, 5), "female"),
        ("010516B903X", date(2016, 5, 1), "male"),
        ("010516B902W", date(2016, 5, 1), "female"),
        ("020516C903K", date(2016, 5, 2), "male"),
        ("020516C902J", date(2016, 5, 2), "female"),
        ("030516D9037", date(2016, 5, 3), "male"),
        ("030516D9026", date(2016, 5, 3), "female"),
        # 010101002 = 31 × 325838 + 24 → "S"; "+" is the 1800s
        ("010101+002S", date(1801, 1, 1), "female"),
        # 290200 (a leap day: 2000 is a leap year) + 123: 290200123 % 31 = 9 → "9"
        ("290200A1239", date(2000, 2, 29), "male"),
        # same digits with E (also the 2000s) → same check character
        ("290200E1239", date(2000, 2, 29), "male"),
    ],
)
def test_valid_codes_and_century_signs(code: str, born: date, expected_sex: str) -> None:
    assert validate(code) is None
    assert birth_date(code) == born
    assert sex(code) == expected_sex


def test_hand_computed_check_characters() -> None:
    assert 10101002 % 31 == 24 and CHECK_CHARACTERS[24] == "S"
    assert 290200123 % 31 == 9 and CHECK_CHARACTERS[9] == "9"
    assert identity.check_character("131052", "308") == "T"


def test_every_century_sign_maps_to_its_century() -> None:
    assert {sign for sign, c in CENTURY_SIGNS.items() if c == 1800} == {"+"}
    assert {sign for sign, c in CENTURY_SIGNS.items() if c == 1900} == set("-YXWVU")
    assert {sign for sign, c in CENTURY_SIGNS.items() if c == 2000} == set("ABCDEF")


def test_normalise_strips_upper_cases_and_fixes_dashes() -> None:
    assert normalise("  131052-308t\n") == "131052-308T"
    assert normalise("131052\u2013308T") == "131052-308T"  # en dash from a word processor
    assert validate(" 131052-308t ") is None
    assert validate("131052\u2212308T") is None  # minus sign


@pytest.mark.parametrize(
    ("code", "error"),
    [
        ("", "format"),
        ("131052308T", "format"),  # no century sign
        ("131052-308", "format"),  # no check character
        ("131052-308TT", "format"),
        ("13105-2308T", "format"),
        ("1310X2-308T", "format"),
        ("131052-3O8T", "format"),  # letter O in the individual number
        ("131052*308T", "century_sign"),
        ("131052G308T", "century_sign"),
        ("131052Z308T", "century_sign"),
        ("131052 308T", "century_sign"),
        ("310252-308T", "date"),  # 31 February
        ("290201A1239", "date"),  # 2001 is no leap year
        ("290200-1239", "date"),  # 1900 is no leap year
        ("001052-308T", "date"),
        ("131352-308T", "date"),
        # 131052000 = 131052308 − 308 ≡ 25 − 29 ≡ 27 (mod 31) → "V": right check character,
        # but 000 is never used
        ("131052-000V", "individual_number"),
        # 131052001 ≡ 28 → "W"
        ("131052-001W", "individual_number"),
        ("131052-308U", "check_character"),
        ("131052-309T", "check_character"),
        ("131053-308T", "check_character"),
        ("131052-308G", "check_character"),  # G is not a check character at all
    ],
)
def test_error_kinds(code: str, error: str) -> None:
    assert validate(code) == error
    assert not is_valid(code)
    with pytest.raises(ValueError, match=error):
        birth_date(code)
    with pytest.raises(ValueError, match=error):
        sex(code)
    with pytest.raises(ValueError, match=error):
        identity_hash(code, b"key")
    assert not is_synthetic(code)


def test_individual_number_check_is_not_vacuous() -> None:
    assert 131052000 % 31 == 27 and CHECK_CHARACTERS[27] == "V"
    assert 131052001 % 31 == 28 and CHECK_CHARACTERS[28] == "W"
    # 131052002 ≡ 29 → "X": 002 is the first individual number in use
    assert 131052002 % 31 == 29 and CHECK_CHARACTERS[29] == "X"
    assert validate("131052-002X") is None


def test_identity_hash_is_hmac_sha256_of_the_normalised_code() -> None:
    key = b"instance-key"
    expected = hmac.new(key, b"131052-308T", hashlib.sha256).hexdigest()
    assert identity_hash("131052-308T", key) == expected
    assert identity_hash(" 131052-308t ", key) == expected
    assert re.fullmatch(r"[0-9a-f]{64}", expected)
    assert identity_hash("131052-308T", b"another-key") != expected
    # the same digits with another century sign are another person
    assert identity_hash("131052A308T", key) != expected


def test_identity_hash_needs_a_key() -> None:
    with pytest.raises(ValueError, match="key"):
        identity_hash("131052-308T", b"")


def test_synthetic_code_examples() -> None:
    rng = random.Random(7)
    code = synthetic_identity_code(date(1950, 5, 17), "female", rng)
    assert code.startswith("170550-9")
    assert is_valid(code) and is_synthetic(code)
    assert int(code[7:10]) % 2 == 0
    male = synthetic_identity_code(date(2004, 12, 31), "male", rng)
    assert male[6] == "A" and int(male[7:10]) % 2 == 1
    old = synthetic_identity_code(date(1899, 1, 2), "male", rng)
    assert old[6] == "+" and birth_date(old) == date(1899, 1, 2)
    new_sign = synthetic_identity_code(date(1994, 5, 1), "female", rng, century_sign="Y")
    assert new_sign[6] == "Y" and birth_date(new_sign) == date(1994, 5, 1)


def test_synthetic_code_rejects_impossible_requests() -> None:
    rng = random.Random(1)
    with pytest.raises(ValueError, match="1800"):
        synthetic_identity_code(date(1799, 12, 31), "male", rng)
    with pytest.raises(ValueError, match="century sign"):
        synthetic_identity_code(date(1994, 5, 1), "male", rng, century_sign="A")
    with pytest.raises(ValueError, match="sex"):
        synthetic_identity_code(date(1994, 5, 1), "other", rng)  # type: ignore[arg-type]


def test_synthetic_codes_cover_the_whole_reserved_range() -> None:
    rng = random.Random(3)
    numbers = {
        int(synthetic_identity_code(date(1960, 1, 1), s, rng)[7:10])  # type: ignore[arg-type]
        for s in ("male", "female")
        for _ in range(3000)
    }
    assert numbers == set(range(900, 1000))


@given(
    born=st.dates(min_value=date(1800, 1, 1), max_value=date(2099, 12, 31)),
    person_sex=st.sampled_from(["male", "female"]),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
    sign_choice=st.integers(min_value=0, max_value=5),
)
def test_generated_codes_round_trip(
    born: date, person_sex: str, seed: int, sign_choice: int
) -> None:
    century = born.year // 100 * 100
    signs = [s for s, c in CENTURY_SIGNS.items() if c == century]
    sign = signs[sign_choice % len(signs)]
    code = synthetic_identity_code(born, person_sex, random.Random(seed), century_sign=sign)  # type: ignore[arg-type]
    assert validate(code) is None
    assert birth_date(code) == born
    assert sex(code) == person_sex
    assert code[6] == sign
    assert 900 <= int(code[7:10]) <= 999
    assert is_synthetic(code)
    # any other check character is caught
    wrong = next(c for c in CHECK_CHARACTERS if c != code[-1])
    assert validate(code[:-1] + wrong) == "check_character"


@given(
    born=st.dates(min_value=date(1800, 1, 1), max_value=date(2099, 12, 31)),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
    key=st.binary(min_size=1, max_size=64),
    other_key=st.binary(min_size=1, max_size=64),
)
def test_hash_is_stable_and_key_dependent(
    born: date, seed: int, key: bytes, other_key: bytes
) -> None:
    code = synthetic_identity_code(born, "male", random.Random(seed))
    digest = identity_hash(code, key)
    assert identity_hash(code.lower(), key) == digest
    assert identity_hash(f" {code} ", key) == digest
    if other_key != key:
        assert identity_hash(code, other_key) != digest


def test_pseudonyms() -> None:
    first = new_pseudonym(random.Random(42))
    assert first == new_pseudonym(random.Random(42))  # seeded: reproducible demo data
    assert re.fullmatch(r"P-[0-9A-HJKMNP-TV-Z]{6}", first)
    assert is_pseudonym(first)
    assert len(new_pseudonym(random.Random(1), length=8)) == 10
    rng = random.Random(5)
    many = {new_pseudonym(rng) for _ in range(5000)}
    assert len(many) == 5000
    assert not set("".join(many)) & set("ILOU")
    with pytest.raises(ValueError, match="length"):
        new_pseudonym(rng, length=0)


def test_pseudonym_normalisation() -> None:
    assert normalise_pseudonym(" p-7k3m9q ") == "P-7K3M9Q"
    assert normalise_pseudonym("7K3M9Q") == "P-7K3M9Q"
    assert normalise_pseudonym("P-7KOIL9") == "P-7K0119"  # Crockford: O→0, I/L→1
    assert is_pseudonym("P-7K3M9Q")
    assert not is_pseudonym("P-7K3M9U")
    assert not is_pseudonym("7K3M9Q")
    assert not is_pseudonym("P-")
