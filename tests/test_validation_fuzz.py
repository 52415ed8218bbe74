"""The reader and validator never crash on garbage and never accept a truncated file."""

from __future__ import annotations

import hashlib
from datetime import date

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from payments.contract import Companion, Contract, load_contract
from payments.intake import RejectedFile, check_file, read_rows
from payments.registry import load_registry
from payments.validation.rows import validate_rows
from payments.validation.schema import Window
from tests.test_validation_rules import GOOD, OTHER

CONTRACT = load_contract()
FUND = load_registry().get("13")
WINDOW = Window(("2020-04", "2020-05"), date(2020, 5, 31))
GOOD_FILE = (
    CONTRACT.header_line
    + "".join(
        ";".join(r[c] for c in CONTRACT.names) + "\n"
        for r in (GOOD, OTHER, GOOD | {"household_id": "1999999"})
    ).encode()
)


def _companion(data: bytes, rows: int) -> bytes:
    return Companion(
        CONTRACT.version,
        "13",
        "aes-2020-05",
        "13_aes-2020-05.csv",
        rows,
        len(data),
        hashlib.sha256(data).hexdigest(),
        "2020-05-10T06:00:00+00:00",
    ).to_json()


def _run(data: bytes, companion: bytes, contract: Contract = CONTRACT) -> int | None:
    """Rows accepted, or None when the file is rejected; must never raise anything else."""
    try:
        check_file(
            data,
            companion,
            file_name="f.csv",
            fund=FUND,
            scheme_id="aes-2020-05",
            contract=contract,
        )
    except RejectedFile:
        return None
    rows = read_rows(data, contract)
    result = validate_rows(
        rows.table,
        rows.lines,
        contract=contract,
        fund_code="13",
        window=WINDOW,
        as_of=date(2020, 5, 10),
        invalid_rows=rows.invalid,
    )
    assert result.accepted_rows + result.quarantined_rows == result.rows_read
    assert result.rows_read == data.count(b"\n") - 1
    return result.accepted_rows


pieces = st.sampled_from(
    [
        ";",
        "\n",
        "|",
        "2020-05",
        "13",
        "FR76",
        "é",
        "\xff",
        "\r",
        "\x00",
        "285072A00401252",
        "-1",
        " ",
        '"',
        "2A",
        "0",
    ]
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(st.one_of(pieces, st.text(max_size=8)), max_size=60), st.binary(max_size=40))
def test_garbage_after_the_header_never_crashes(parts: list[str], noise: bytes) -> None:
    body = "".join(parts).encode("utf-8", "surrogatepass") + noise
    data = CONTRACT.header_line + body
    if not data.endswith(b"\n"):
        data += b"\n"
    _run(data, _companion(data, data.count(b"\n") - 1))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_never_crash(data: bytes) -> None:
    _run(data, _companion(data, max(data.count(b"\n") - 1, 0)))


@settings(max_examples=200, deadline=None)
@given(st.integers(0, len(GOOD_FILE) - 1))
def test_truncated_file_is_always_rejected(cut: int) -> None:
    assert _run(GOOD_FILE[:cut], _companion(GOOD_FILE, 3)) is None


def test_the_untouched_file_is_accepted() -> None:
    assert _run(GOOD_FILE, _companion(GOOD_FILE, 3)) == 3


@settings(max_examples=100, deadline=None)
@given(st.integers(0, len(GOOD_FILE) - 1), st.integers(1, 255))
def test_altered_byte_is_always_rejected(position: int, delta: int) -> None:
    companion = _companion(GOOD_FILE, 3)
    altered = bytearray(GOOD_FILE)
    altered[position] = (altered[position] + delta) % 256
    assert _run(bytes(altered), companion) is None
