"""The contract file, its documentation and the code agree."""

from __future__ import annotations

import re

import pyarrow as pa
import pytest

from payments.contract import Companion, Contract, load_contract
from payments.intake import check_file, read_rows
from payments.registry import Registry
from tests.conftest import ROOT
from tests.reference import iban_is_valid, nir_is_valid

DOC = (ROOT / "docs" / "file-format.md").read_text(encoding="utf-8")


def _fenced(lang: str) -> str:
    blocks = re.findall(rf"```{lang}\n(.*?)```", DOC, flags=re.S)
    assert len(blocks) == 1, f"expected one {lang} block in docs/file-format.md"
    return blocks[0]


def test_doc_column_table_matches_contract(contract: Contract) -> None:
    rows = re.findall(r"^\| (\d+) \| `([a-z_]+)` \| (\w+) \| (yes|no) \|", DOC, flags=re.M)
    assert [(int(i), name, kind, req == "yes") for i, name, kind, req in rows] == [
        (i, c.name, c.kind, c.required) for i, c in enumerate(contract.columns, 1)
    ]
    assert f"Contract version {contract.version}" in DOC


def test_worked_example_is_a_valid_file(contract: Contract, registry: Registry) -> None:
    data = _fenced("csv").encode("utf-8")
    companion_bytes = _fenced("json").encode("utf-8")
    companion = check_file(
        data,
        companion_bytes,
        file_name="2A_aes-2020-05.csv",
        fund=registry.get("2A"),
        scheme_id="aes-2020-05",
        contract=contract,
    )
    table = read_rows(data, contract).table
    assert table.num_rows == companion.row_count == 3
    assert all(nir_is_valid(n) for n in table.column("claimant_nir").to_pylist())
    assert all(iban_is_valid(i) for i in table.column("iban").to_pylist())
    # identifiers stay text: leading zeros, Corsica, letters in accounts
    assert table.schema.field("claimant_nir").type == pa.string()
    assert "2A" in table.column("claimant_nir")[0].as_py()


def test_examples_in_contract_match_patterns(contract: Contract) -> None:
    for column in contract.columns:
        if column.pattern and column.example:
            assert re.fullmatch(column.pattern, column.example), column.name
        if column.values:
            assert column.example in column.values


def test_companion_round_trip_and_rejects_incomplete() -> None:
    c = Companion("1.0", "13", "s", "13_s.csv", 1, 2, "ab", "2020-05-10T06:00:00+00:00")
    assert Companion.from_json(c.to_json()) == c
    with pytest.raises(ValueError, match="lacks fields"):
        Companion.from_json(b'{"contract_version": "1.0"}')


def test_unknown_contract_version_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"unknown input contract version '9\.9'"):
        load_contract("9.9")


def test_the_facts_keep_the_contract_s_student_statuses(contract: Contract) -> None:
    from payments.entitlement.facts import STUDENT_STATUS

    for column in ("claimant_student_status", "spouse_student_status"):
        assert STUDENT_STATUS.categories.to_list() == list(contract.column(column).values)
