"""NIR and IBAN helpers agree with independent references, scalar and vectorised."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from payments.identifiers.iban import (
    french_iban,
    french_iban_check_digits,
    iban_mod97,
    rib_key,
    rib_keys,
)
from payments.identifiers.nir import is_valid_nir, nir_key, nir_keys
from tests.reference import iban_is_valid, nir_is_valid

digits = st.text(alphabet="0123456789", min_size=1, max_size=1)


def test_known_french_iban_from_la_banque_postale() -> None:
    # Published example account with a letter in the account number.
    assert french_iban("20041", "01005", "0500013M026") == "FR1420041010050500013M02606"
    assert iban_mod97("FR1420041010050500013M02606") == 1


def test_corsica_keys_use_19_and_18() -> None:
    body_2a, body_2b = "185072A004012", "185072B004012"
    assert nir_key(body_2a) == 97 - int("1850719004012") % 97
    assert nir_key(body_2b) == 97 - int("1850718004012") % 97
    assert nir_is_valid(body_2a + f"{nir_key(body_2a):02d}")
    assert not is_valid_nir(body_2a + f"{(nir_key(body_2a) % 97) + 1:02d}")


@given(
    bank=st.integers(0, 99_999),
    branch=st.integers(0, 99_999),
    account=st.text(alphabet="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=11, max_size=11),
)
def test_french_iban_is_valid_for_schwifty(bank: int, branch: int, account: str) -> None:
    iban = french_iban(f"{bank:05d}", f"{branch:05d}", account)
    assert iban_is_valid(iban), iban


@given(
    bank=st.lists(st.integers(0, 99_999), min_size=1, max_size=50),
    data=st.data(),
)
def test_vectorised_iban_matches_scalar(bank: list[int], data: st.DataObject) -> None:
    n = len(bank)
    branch = data.draw(st.lists(st.integers(0, 99_999), min_size=n, max_size=n))
    account = data.draw(st.lists(st.integers(0, 10**11 - 1), min_size=n, max_size=n))
    b, br, a = (np.array(x, np.int64) for x in (bank, branch, account))
    keys = rib_keys(b, br, a)
    checks = french_iban_check_digits(b, br, a, keys)
    for i in range(n):
        scalar = french_iban(f"{bank[i]:05d}", f"{branch[i]:05d}", f"{account[i]:011d}")
        assert keys[i] == rib_key(f"{bank[i]:05d}", f"{branch[i]:05d}", f"{account[i]:011d}")
        assert scalar[2:4] == f"{checks[i]:02d}"


@given(st.lists(st.integers(10**12, 3 * 10**12 - 1), min_size=1, max_size=100))
def test_vectorised_nir_key_matches_reference(bodies: list[int]) -> None:
    keys = nir_keys(np.array(bodies, np.int64))
    for body, key in zip(bodies, keys, strict=True):
        assert nir_is_valid(f"{body:013d}{key:02d}")


@given(st.text(max_size=20))
def test_nir_validator_never_crashes_and_agrees(text: str) -> None:
    assert is_valid_nir(text) == nir_is_valid(text)
