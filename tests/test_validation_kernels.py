"""Vectorised NIR and IBAN checks agree with independent references on every row."""

from __future__ import annotations

import re

import numpy as np
import polars as pl
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from payments.identifiers.iban import french_iban
from payments.identifiers.nir import nir_key
from payments.sample.identities import make_ibans
from payments.validation.kernels import (
    FRENCH_IBAN_FORMAT,
    IBAN_FORMAT,
    NIR_FORMAT,
    french_rib_remainders,
    iban_bytes,
    iban_formats,
    iban_mod97_remainders,
    nir_formats,
    nir_keys_ok,
)
from tests.reference import iban_is_valid, nir_is_valid

ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _mutate(draw: st.DrawFn, text: str) -> str:
    """Sometimes change, drop or add a character, as typing mistakes do."""
    action = draw(st.sampled_from(["keep", "change", "drop", "add", "swap"]))
    if action == "keep" or not text:
        return text
    i = draw(st.integers(0, len(text) - 1))
    c = draw(st.sampled_from(ALNUM))
    if action == "change":
        return text[:i] + c + text[i + 1 :]
    if action == "drop":
        return text[:i] + text[i + 1 :]
    if action == "add":
        return text[:i] + c + text[i:]
    j = min(i + 1, len(text) - 1)
    return text[:i] + text[j] + text[i] + text[j + 1 :]


@st.composite
def nirs(draw: st.DrawFn) -> str:
    sex = draw(st.sampled_from("12"))
    yy, mm = draw(st.integers(0, 99)), draw(st.integers(1, 12))
    dept = draw(st.sampled_from(["2A", "2B", "20", "75", "01", "97", "99", "13"]))
    rest = draw(st.integers(0, 999_999))
    body = f"{sex}{yy:02d}{mm:02d}{dept}{rest:06d}"
    return _mutate(draw, body + f"{nir_key(body):02d}")


@st.composite
def ibans(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["fr", "fr_letters", "foreign", "junk"]))
    if kind == "junk":
        return draw(st.text(alphabet=ALNUM + " é", min_size=0, max_size=36))
    if kind == "foreign":
        country = draw(st.sampled_from(["DE", "BE", "ES", "IT", "GB", "NL"]))
        bban_len = {"DE": 18, "BE": 12, "ES": 20, "IT": 23, "GB": 18, "NL": 14}[country]
        bban = draw(st.text(alphabet="0123456789", min_size=bban_len, max_size=bban_len))
        check = 98 - int("".join(str(int(c, 36)) for c in bban + country + "00")) % 97
        return _mutate(draw, f"{country}{check:02d}{bban}")
    bank, branch = draw(st.integers(0, 99_999)), draw(st.integers(0, 99_999))
    alphabet = ALNUM if kind == "fr_letters" else "0123456789"
    account = draw(st.text(alphabet=alphabet, min_size=11, max_size=11))
    return _mutate(draw, french_iban(f"{bank:05d}", f"{branch:05d}", account))


@settings(max_examples=300, deadline=None)  # figures are for make bench, never tests
@given(st.lists(nirs(), min_size=1, max_size=200))
def test_nir_kernel_agrees_with_reference(values: list[str]) -> None:
    df = pl.DataFrame({"nir": values})
    fmt = df.select(pl.col("nir").str.contains(r"^[1-478][0-9]{4}(?:2A|2B|[0-9]{2})[0-9]{8}$"))
    ok = nir_keys_ok(pa.array(values, pa.string())).tolist()
    for value, well_formed, key_ok in zip(values, fmt.to_series().to_list(), ok, strict=True):
        assert (well_formed and key_ok) == nir_is_valid(value), value


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.none() | nirs() | st.text(alphabet="0123456789ABé2", min_size=13, max_size=16),
        min_size=1,
        max_size=100,
    ),
    st.integers(0, 2),
)
def test_nir_shape_agrees_with_the_regex(values: list[str | None], cut: int) -> None:
    arr = pa.array(["x"] * cut + values, pa.string()).slice(cut)
    expected = [value is not None and bool(re.fullmatch(NIR_FORMAT, value)) for value in values]
    assert nir_formats(arr).tolist() == expected
    # The two NIR checks of one column share a reading of its bytes (validation's memo):
    # same answers as each reading alone, in either order.
    memo: dict[str, object] = {}
    keys_alone = nir_keys_ok(arr).tolist()
    assert nir_keys_ok(arr, memo).tolist() == keys_alone
    assert nir_formats(arr, memo).tolist() == expected
    assert nir_keys_ok(arr, memo).tolist() == keys_alone


@settings(max_examples=300, deadline=None)  # figures are for make bench, never tests
@given(st.lists(ibans(), min_size=1, max_size=200))
def test_iban_kernels_agree_with_schwifty(values: list[str]) -> None:
    arr = pa.array(values, pa.string())
    mod = iban_mod97_remainders(arr)
    rib = french_rib_remainders(arr)
    for value, m, r in zip(values, mod, rib, strict=True):
        plain = value.isascii() and value.isalnum() and value == value.upper() and value
        if plain:
            # straightforward ISO 13616: letters to 10..35, rotate, one big integer
            digits = "".join(str(int(c, 36)) for c in value[4:] + value[:4])
            assert (m == 1) == (int(digits) % 97 == 1), value
        else:
            assert m != 1, value
        if re.fullmatch(FRENCH_IBAN_FORMAT, value):
            # French IBAN in the right shape (the format rule runs beside the
            # kernels): mod-97 and RIB key both right <=> schwifty with its BBAN check.
            assert (m == 1 and r == 0) == iban_is_valid(value), value
        elif value.startswith("FR") and plain and m == 1 and r == 0:
            assert not iban_is_valid(value) or len(value) == 27


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.none()
        | ibans()
        | st.text(alphabet=ALNUM + "frR é-", max_size=40)
        | st.sampled_from(
            ["FR" + "7" * 25, "FR76" + "1" * 33, "fr76" + "1" * 23, "DE00" + "A" * 11]
        ),
        min_size=1,
        max_size=100,
    ),
    st.integers(0, 3),
)
def test_iban_shapes_agree_with_the_regexes(values: list[str | None], cut: int) -> None:
    arr = pa.array(["x"] * cut + values, pa.string()).slice(cut)  # a slice, too
    well, french = iban_formats(iban_bytes(arr))
    for value, w, f in zip(values, well.tolist(), french.tolist(), strict=True):
        assert w == bool(value is not None and re.fullmatch(IBAN_FORMAT, value)), value
        assert f == bool(value is not None and re.fullmatch(FRENCH_IBAN_FORMAT, value)), value


def test_kernels_on_a_large_generated_sample() -> None:
    rng = np.random.default_rng(3)
    good, _ = make_ibans(rng, 20_000)
    values = good.to_pylist()
    # one wrong character in every other IBAN
    bad = [
        v[:10] + str((int(v[10]) + 1) % 10) + v[11:] if i % 2 else v for i, v in enumerate(values)
    ]
    mod = iban_mod97_remainders(pa.array(bad))
    expected = np.array([iban_is_valid(v) for v in bad])
    assert ((mod == 1) == expected).all()
    assert expected.sum() == 10_000


def test_nulls_and_non_ascii_never_pass() -> None:
    arr = pa.array([None, "FR14é20041010050500013M02606", ""], pa.string())
    assert (iban_mod97_remainders(arr) != 1).all()


def test_kernels_read_a_sliced_array_from_its_own_offset() -> None:
    """An Arrow slice shares its parent's buffers: the kernels must start at the slice."""
    rng = np.random.default_rng(5)
    good, _ = make_ibans(rng, 50)
    values = ["XX00NOTANIBAN", *good.to_pylist()]
    whole = pa.array(values, pa.string())
    sliced = whole.slice(1)
    assert sliced.offset == 1
    assert (iban_mod97_remainders(sliced) == iban_mod97_remainders(whole)[1:]).all()
    assert (french_rib_remainders(sliced) == french_rib_remainders(whole)[1:]).all()
    assert (iban_mod97_remainders(sliced) == 1).all()


def test_a_null_that_keeps_bytes_in_the_buffer_is_read_as_null() -> None:
    """Arrow lets a null slot span bytes; the kernels must not read them as a value."""
    body = "1850575000001"
    good = body + f"{nir_key(body):02d}"
    data = (good + "285057500000199" + good).encode()  # the null's slot holds a wrong NIR
    offsets = np.array([0, 15, 30, 45], np.int32)
    validity = pa.py_buffer(bytes([0b101]))
    arr = pa.Array.from_buffers(
        pa.string(), 3, [validity, pa.py_buffer(offsets.tobytes()), pa.py_buffer(data)]
    )
    assert arr.to_pylist() == [good, None, good]
    assert nir_formats(arr).tolist() == [True, False, True]
    assert nir_keys_ok(arr).tolist() == [True, True, True]


def test_nir_kernel_on_nulls_corsica_and_a_slice() -> None:
    corsica_a, corsica_b = "185052A000001", "185052B000001"
    values = [
        None,
        "",
        "2690599150001",  # too short: malformed, the format rule reports it
        corsica_a + f"{nir_key(corsica_a):02d}",
        corsica_b + f"{nir_key(corsica_b):02d}",
        corsica_a + f"{nir_key(corsica_a) % 97 + 1:02d}",  # a wrong key
    ]
    arr = pa.array(["x", *values], pa.string()).slice(1)
    assert nir_keys_ok(arr).tolist() == [True, True, True, True, True, False]
