"""A generated sample with defects: every defect lands where it should, counts tie out."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from payments.contract import load_contract
from payments.registry import load_registry
from payments.sample.writer import SampleResult, SampleSpec, write_sample
from payments.validation.folder import largest_first, validate_folder
from payments.validation.outputs import FolderValidation
from payments.validation.schema import Window
from tests.conftest import MAY_2020

WINDOW = Window(("2020-04", "2020-05"), date(2020, 5, 31))
#: Where each injected defect kind must end.
ROW_CODES = {
    "bad_nir_key": "nir_key",
    "bad_iban": "iban_checksum",
    "missing_field": "required",
    "duplicate_in_file": "duplicate_row",
}
FILE_CODES = {"non_utf8": "encoding", "truncated": "size_mismatch"}
#: Valid rows by design: the national stage deduplicates and holds them.
NATIONAL = {"moved_between_funds", "shared_iban"}


@pytest.fixture(scope="module")
def validated(tmp_path_factory: pytest.TempPathFactory) -> tuple[SampleResult, FolderValidation]:
    root = tmp_path_factory.mktemp("val")
    sample = write_sample(
        SampleSpec(households=40_000, seed=21, window=MAY_2020, defect_rate=0.02), root
    )
    return sample, validate_folder(root, root / "out", "aes-2020-05", WINDOW, workers=2)


def test_every_defect_kind_lands_with_its_own_code(
    validated: tuple[SampleResult, FolderValidation],
) -> None:
    sample, result = validated
    truth = pq.read_table(Path(sample.root) / sample.truth_path).to_pylist()
    by_fund = {f.fund_code: f for f in result.funds}
    rejected = {f.fund_code for f in result.funds if f.status == "rejected"}
    for kind, code in FILE_CODES.items():
        funds = {t["fund_code"] for t in truth if t["kind"] == kind}
        assert funds and all(by_fund[f].file_error == code for f in funds), kind
    quarantined: dict[tuple[str, int], list[str]] = {}
    for f in result.funds:
        if f.status == "received":
            q = pq.read_table(result.out_dir / f.fund_code / "quarantine.parquet")
            for line, codes in zip(
                q.column("line").to_pylist(), q.column("error_codes").to_pylist(), strict=True
            ):
                quarantined[(f.fund_code, line)] = codes
    expected: dict[tuple[str, int], str] = {}
    for t in truth:
        if t["kind"] in ROW_CODES and t["fund_code"] not in rejected:
            expected[(t["fund_code"], t["line"])] = ROW_CODES[t["kind"]]
    assert {k: [v] for k, v in expected.items()} == quarantined  # and nothing else
    for kind in ROW_CODES:
        assert any(t["kind"] == kind for t in truth), kind
    national = [t for t in truth if t["kind"] in NATIONAL and t["fund_code"] not in rejected]
    assert national and all((t["fund_code"], t["line"]) not in quarantined for t in national)


def test_counts_tie_out(validated: tuple[SampleResult, FolderValidation]) -> None:
    sample, result = validated
    totals = result.totals()
    assert totals["rows_read"] == totals["accepted"] + totals["quarantined"]
    for f in result.funds:
        assert f.tie_out
        if f.status == "received":
            report = json.loads((result.out_dir / f.fund_code / "report.json").read_text())
            accepted = pq.read_metadata(result.out_dir / f.fund_code / "accepted.parquet")
            assert report["tie_out"] and accepted.num_rows == f.accepted
            stat = next(s for s in sample.files if s.fund_code == f.fund_code)
            assert f.rows_read == stat.rows
    received = sum(
        s.rows
        for s in sample.files
        if s.fund_code in {f.fund_code for f in result.funds if f.status == "received"}
    )
    assert totals["rows_read"] == received
    doc = json.loads((result.out_dir / "validation.json").read_text())
    assert doc["totals"] == totals


def test_quarantine_csv_opens_as_text(validated: tuple[SampleResult, FolderValidation]) -> None:
    _, result = validated
    f = next(f for f in result.funds if f.quarantined)
    text = (result.out_dir / f.fund_code / "quarantine.csv").read_text(encoding="utf-8-sig")
    header = text.splitlines()[0]
    assert header.startswith('"line";"error_codes";"error_messages";"fund_code"')
    assert len(text.splitlines()) == f.quarantined + 1


def test_workers_do_not_change_outputs(
    validated: tuple[SampleResult, FolderValidation], tmp_path: Path
) -> None:
    sample, _ = validated
    funds = ["13", "2A", "59", "75", "971"]
    one = validate_folder(
        Path(sample.root), tmp_path / "1", "aes-2020-05", WINDOW, funds=funds, workers=1
    )
    two = validate_folder(
        Path(sample.root), tmp_path / "2", "aes-2020-05", WINDOW, funds=funds, workers=2
    )
    assert one.totals() == two.totals()
    for f in one.funds:
        for name in ("accepted.parquet", "quarantine.parquet", "quarantine.csv"):
            assert (tmp_path / "1" / f.fund_code / name).read_bytes() == (
                tmp_path / "2" / f.fund_code / name
            ).read_bytes()


def test_workers_take_the_largest_files_first(
    validated: tuple[SampleResult, FolderValidation],
) -> None:
    sample, result = validated
    root = Path(sample.root)
    registry = load_registry()
    contract = load_contract()
    order = largest_first(root, registry.funds, "aes-2020-05", contract)
    assert sorted(order) == list(range(len(registry.funds)))  # every fund, once

    def size(i: int) -> int:
        fund = registry.funds[i]
        path = root / fund.inbox / contract.data_file_name(fund.code, "aes-2020-05")
        return path.stat().st_size if path.exists() else 0

    sizes = [size(i) for i in order]
    assert sizes == sorted(sizes, reverse=True) and sizes[0] > sizes[-1]
    # results still come back in registry order
    assert [f.fund_code for f in result.funds] == registry.codes
