"""Each row error code, from a minimal file with one bad row; and the quarantine outputs."""

from __future__ import annotations

from datetime import date

import numpy as np
import pyarrow as pa
import pytest

from payments.contract import Contract
from payments.intake import read_rows
from payments.validation.rows import validate_rows
from payments.validation.rules import RULES
from payments.validation.schema import Window

WINDOW = Window(("2020-04", "2020-05"), date(2020, 5, 31))
AS_OF = date(2020, 5, 10)
GOOD = {
    "fund_code": "13",
    "household_id": "1234567",
    "reference_month": "2020-05",
    "claimant_nir": "285072A00401252",
    "claimant_last_name": "N'Diaye",
    "claimant_first_name": "Aïcha",
    "claimant_birth_date": "1985-07-14",
    "claimant_student_status": "none",
    "spouse_nir": "183049935004295",
    "spouse_birth_date": "1983-04-02",
    "rsa_cents": "43210",
    "rso_cents": "0",
    "ass_cents": "0",
    "aer_cents": "0",
    "prime_forfaitaire_cents": "0",
    "apl_cents": "0",
    "alf_cents": "0",
    "als_cents": "0",
    "children_birth_dates": "2012-03-04|2016-11-30",
    "iban": "FR7630004000031234567890143",
    "bic": "BNPAFRPPXXX",
    "account_holder": "M OU MME N DIAYE",
    "bank_details_changed_on": "2017-09-01",
    "spouse_student_status": "none",
    "payee_kind": "",
    "payee_name": "",
}
#: Rules about a row as a whole: reported on "(row)", not a column.
ROW_RULES = ("spouse_nir_same", "payee_incomplete")
OTHER = {**GOOD, "household_id": "7654321", "claimant_nir": "164029710503365", "spouse_nir": ""}

CASES: list[tuple[str, dict[str, str]]] = [
    ("required", {"claimant_last_name": ""}),
    ("required", {"iban": ""}),
    ("fund_code_mismatch", {"fund_code": "59"}),
    ("household_id_format", {"household_id": "12AB"}),
    ("month_format", {"reference_month": "05/2020"}),
    ("month_outside_window", {"reference_month": "2020-03"}),
    ("nir_format", {"claimant_nir": "28507"}),
    ("nir_key", {"claimant_nir": "285072A00401253"}),
    ("nir_key", {"spouse_nir": "183049935004296"}),
    ("spouse_nir_same", {"spouse_nir": "285072A00401252"}),
    ("date_format", {"claimant_birth_date": "1985-02-30"}),
    ("date_format", {"bank_details_changed_on": "14/07/1985"}),
    ("date_implausible", {"claimant_birth_date": "1885-07-14"}),
    ("date_implausible", {"bank_details_changed_on": "2020-06-01"}),
    ("enum_value", {"claimant_student_status": "yes"}),
    ("enum_value", {"spouse_student_status": "sometimes"}),
    ("enum_value", {"payee_kind": "tutor", "payee_name": "UDAF 13"}),
    ("payee_incomplete", {"payee_kind": "tutelle"}),
    ("payee_incomplete", {"payee_name": "UDAF 13"}),
    ("amount_format", {"rsa_cents": "432.10"}),
    ("amount_negative", {"ass_cents": "-100"}),
    ("children_format", {"children_birth_dates": "2012-03-04,2016-11-30"}),
    ("child_after_reference", {"children_birth_dates": "2012-03-04|2020-06-02"}),
    ("iban_format", {"iban": "FR76 3000 4000"}),
    ("iban_checksum", {"iban": "FR7630004000031234567890144"}),
    ("iban_rib_key", {"iban": "FR4930004000031234567890144"}),  # mod-97 right, RIB key wrong
    ("bic_format", {"bic": "BNPA"}),
]


def _file(contract: Contract, *rows: dict[str, str]) -> bytes:
    body = "".join(";".join(r[c] for c in contract.names) + "\n" for r in rows)
    return contract.header_line + body.encode()


def _validate(contract: Contract, data: bytes):  # type: ignore[no-untyped-def]
    rows = read_rows(data, contract)
    return validate_rows(
        rows.table,
        rows.lines,
        contract=contract,
        fund_code="13",
        window=WINDOW,
        as_of=AS_OF,
        invalid_rows=rows.invalid,
    )


def test_good_rows_are_accepted_with_contract_types(contract: Contract) -> None:
    result = _validate(contract, _file(contract, GOOD, OTHER))
    assert result.accepted_rows == 2 and result.quarantined_rows == 0
    assert result.accepted.schema == contract.accepted_schema()
    row = result.accepted.to_pylist()[0]
    assert row["rsa_cents"] == 43210 and isinstance(row["rsa_cents"], int)
    assert row["children_birth_dates"] == [date(2012, 3, 4), date(2016, 11, 30)]
    assert row["claimant_nir"] == "285072A00401252"


@pytest.mark.parametrize(("code", "change"), CASES, ids=[f"{c}-{next(iter(d))}" for c, d in CASES])
def test_each_rule_quarantines_the_bad_row_only(
    contract: Contract, code: str, change: dict[str, str]
) -> None:
    result = _validate(
        contract,
        _file(
            contract,
            OTHER,
            {**GOOD, **change},
            OTHER | {"household_id": "1111111", "claimant_nir": "1640297105033" + "65"},
        ),
    )
    assert result.accepted_rows == 2
    q = result.quarantine.to_pylist()
    assert len(q) == 1 and q[0]["line"] == 3
    assert q[0]["error_codes"] == [code]
    column = next(iter(change))
    assert q[0]["error_messages"][0].startswith(column) or code in ROW_RULES
    assert RULES[code].sentence in q[0]["error_messages"][0]
    # the quarantined row keeps exactly what was sent
    sent = {**GOOD, **change}
    assert all((q[0][k] or "") == sent[k] for k in contract.names)


def test_all_rules_are_covered_by_a_case() -> None:
    covered = {c for c, _ in CASES} | {"field_count", "duplicate_row", "duplicate_household"}
    assert covered == set(RULES)


def test_duplicates(contract: Contract) -> None:
    conflicting = {**GOOD, "rsa_cents": "1"}
    result = _validate(
        contract,
        _file(
            contract,
            GOOD,
            OTHER,
            GOOD,
            conflicting | {"household_id": "2222222"},
            conflicting | {"household_id": "2222222", "rsa_cents": "2"},
        ),
    )
    q = {r["line"]: r["error_codes"] for r in result.quarantine.to_pylist()}
    # exact copy of line 2: the copy goes, the first stays; 2222222 twice with
    # different data: both go, nobody can tell which is right.
    assert q == {4: ["duplicate_row"], 5: ["duplicate_household"], 6: ["duplicate_household"]}
    assert result.accepted_rows == 2


def test_several_errors_on_one_row_are_all_reported(contract: Contract) -> None:
    bad = {**GOOD, "claimant_nir": "285072A00401253", "iban": "", "rsa_cents": "-5"}
    result = _validate(contract, _file(contract, bad))
    assert sorted(result.quarantine.column("error_codes")[0].as_py()) == [
        "amount_negative",
        "nir_key",
        "required",
    ]
    assert result.rule_counts == {"amount_negative": 1, "nir_key": 1, "required": 1}


def test_wrong_field_count_is_quarantined_with_its_line(contract: Contract) -> None:
    data = _file(contract, GOOD) + b"13;1234;oops\n" + _file(contract, OTHER).split(b"\n", 1)[1]
    result = _validate(contract, data)
    assert result.rows_read == 3 and result.accepted_rows == 2
    q = result.quarantine.to_pylist()[0]
    assert q["line"] == 3 and q["error_codes"] == ["field_count"]
    assert q["raw_line"] == "13;1234;oops"


def test_tie_out_holds_on_mixed_input(contract: Contract) -> None:
    rows = [GOOD, OTHER] + [
        {**GOOD, "household_id": f"{i:07d}", **CASES[i % len(CASES)][1]} for i in range(1000, 1100)
    ]
    result = _validate(contract, _file(contract, *rows))
    assert result.rows_read == len(rows)
    assert result.accepted_rows + result.quarantined_rows == len(rows)
    lines = pa.concat_arrays([result.quarantine.column("line").combine_chunks()]).to_numpy()
    assert len(np.unique(lines)) == len(lines)


def test_docs_list_every_rule_and_file_error() -> None:
    from payments.intake import FileError
    from tests.conftest import ROOT

    doc = (ROOT / "docs" / "validation.md").read_text()
    for code in [*RULES, *(e.value for e in FileError)]:
        assert f"| `{code}` |" in doc, code


@pytest.mark.parametrize("text", ["NA", "N/A", "null", "NULL", "NaN", "nan", "#N/A"])
def test_text_that_looks_like_a_missing_marker_is_text(contract: Contract, text: str) -> None:
    """Only an empty field is missing: a claimant named "NA" is paid, a bad row keeps "N/A"."""
    named = {**GOOD, "claimant_last_name": text, "account_holder": f"{text} M"}
    bad = {**OTHER, "claimant_first_name": text, "iban": "N/A"}
    result = _validate(contract, _file(contract, named, bad))
    assert result.accepted_rows == 1
    assert result.accepted.column("claimant_last_name").to_pylist() == [text]
    q = result.quarantine.to_pylist()
    assert q[0]["error_codes"] == ["iban_format"]  # not "required": the value was sent
    assert (q[0]["claimant_first_name"], q[0]["iban"]) == (text, "N/A")
