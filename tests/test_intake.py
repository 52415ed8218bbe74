"""File-level receipt: each rejection reason from a minimal bad file."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pyarrow as pa
import pytest

from payments.contract import Companion, Contract, load_contract
from payments.intake import FileError, read_rows, receive_fund, reject_duplicate_contents
from payments.pipeline import run_batch
from payments.registry import Registry
from payments.schemes import load_scheme

ROW_1_0 = (
    "13;1234567;2020-05;285072A00401252;Martin;Léa;1985-07-14;none;;;43210;0;0;0;0;0;0;0;;"
    "FR7630004000031234567890143;;LEA MARTIN;2017-09-01\n"
)
#: The same row in contract 1.1: the partner's studies and the payee, empty.
ROW = ROW_1_0.replace("\n", ";;;\n")


def _drop(
    root: Path,
    contract: Contract,
    data: bytes,
    *,
    fund: str = "13",
    companion: dict[str, object] | None = None,
) -> None:
    folder = root / "funds" / fund
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{fund}_aes-2020-05.csv"
    (folder / name).write_bytes(data)
    fields: dict[str, object] = {
        "contract_version": contract.version,
        "fund_code": fund,
        "scheme_id": "aes-2020-05",
        "file_name": name,
        "row_count": max(data.count(b"\n") - 1, 0),
        "byte_size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "produced_at": "2020-05-10T06:00:00+00:00",
    }
    fields.update(companion or {})
    (folder / (name + ".ctl.json")).write_bytes(Companion(**fields).to_json())  # type: ignore[arg-type]


def _receive(root: Path, registry: Registry, contract: Contract, fund: str = "13") -> str | None:
    receipt, _ = receive_fund(root, registry.get(fund), "aes-2020-05", contract)
    return receipt.error


def test_a_file_in_contract_1_0_is_still_received_and_read_with_1_0_s_columns(
    tmp_path: Path, registry: Registry
) -> None:
    """Contract 1.1 added three columns at the end; funds that still send 1.0 are read as 1.0
    (validation then gives their rows the new columns, empty)."""
    old = load_contract("1.0")
    _drop(tmp_path, old, old.header_line + ROW_1_0.encode())
    receipt, rows = receive_fund(tmp_path, registry.get("13"), "aes-2020-05", load_contract())
    assert receipt.ok and rows is not None and rows.contract is not None
    assert rows.contract.version == "1.0" and rows.table.num_rows == 1


def test_good_file_is_received(tmp_path: Path, registry: Registry, contract: Contract) -> None:
    _drop(tmp_path, contract, contract.header_line + ROW.encode())
    receipt, rows = receive_fund(tmp_path, registry.get("13"), "aes-2020-05", contract)
    assert receipt.ok and rows is not None and rows.table.num_rows == 1
    assert rows.lines.tolist() == [2]


@pytest.mark.parametrize(
    ("data", "companion", "error"),
    [
        (None, None, FileError.FILE_MISSING),
        (b"HEADER", {"byte_size": 99}, FileError.SIZE_MISMATCH),
        (b"HEADER" + ROW.encode(), {"sha256": "0" * 64}, FileError.SHA256_MISMATCH),
        (b"HEADER" + ROW.replace("é", "\xe9").encode("latin-1"), None, FileError.ENCODING),
        (b"fund;household\n" + ROW.encode(), None, FileError.HEADER),
        (b"HEADER" + ROW.encode()[:-5], None, FileError.ROW_COUNT),
        (b"HEADER", None, FileError.EMPTY),
        (b"HEADER" + ROW.replace("\n", "\r\n").encode(), None, FileError.LINE_ENDINGS),
        (b"", None, FileError.EMPTY),
        (b"HEADER" + ROW.encode(), {"fund_code": "59"}, FileError.WRONG_FUND),
        (b"HEADER" + ROW.encode(), {"scheme_id": "other"}, FileError.WRONG_SCHEME),
        (b"HEADER" + ROW.encode(), {"contract_version": "0.9"}, FileError.CONTRACT_VERSION),
    ],
)
def test_each_file_error(
    tmp_path: Path,
    registry: Registry,
    contract: Contract,
    data: bytes | None,
    companion: dict[str, object] | None,
    error: FileError,
) -> None:
    if data is not None:
        _drop(
            tmp_path, contract, data.replace(b"HEADER", contract.header_line), companion=companion
        )
    assert _receive(tmp_path, registry, contract) == error


def test_missing_or_garbled_companion(
    tmp_path: Path, registry: Registry, contract: Contract
) -> None:
    _drop(tmp_path, contract, contract.header_line + ROW.encode())
    ctl = tmp_path / "funds/13/13_aes-2020-05.csv.ctl.json"
    ctl.write_bytes(b"{not json")
    assert _receive(tmp_path, registry, contract) == FileError.COMPANION_INVALID
    ctl.unlink()
    assert _receive(tmp_path, registry, contract) == FileError.COMPANION_MISSING


def test_encoding_error_names_the_line(
    tmp_path: Path, registry: Registry, contract: Contract
) -> None:
    bad = ROW.replace("Léa", "L\udce9a").encode("utf-8", "surrogateescape")
    _drop(tmp_path, contract, contract.header_line + ROW.encode() + bad)
    receipt, _ = receive_fund(tmp_path, registry.get("13"), "aes-2020-05", contract)
    assert receipt.error == FileError.ENCODING
    assert "line 3" in str(receipt.message) and "13_aes-2020-05.csv" in str(receipt.message)


def test_reader_checks_utf8_itself_unless_the_file_was_checked(contract: Contract) -> None:
    """Skipping the reader's check is only for bytes ``check_file`` has passed."""
    bad = ROW.replace("Léa", "L\udce9a").encode("utf-8", "surrogateescape")
    with pytest.raises(pa.ArrowInvalid):
        read_rows(contract.header_line + bad, contract)
    good = contract.header_line + ROW.encode() + ROW.replace("Léa", "Ŀéa ✓").encode()
    assert read_rows(good, contract, utf8_checked=True).table.equals(
        read_rows(good, contract).table
    )


def test_same_content_twice_is_rejected_once(
    tmp_path: Path, registry: Registry, contract: Contract
) -> None:
    data = contract.header_line + ROW.encode()
    _drop(tmp_path, contract, data, fund="13")
    _drop(tmp_path, contract, data, fund="59")
    receipts = [
        receive_fund(tmp_path, registry.get(f), "aes-2020-05", contract)[0] for f in ("13", "59")
    ]
    assert receipts[0].ok and receipts[1].ok
    reject_duplicate_contents(receipts)
    assert receipts[0].ok and receipts[1].error == FileError.DUPLICATE_CONTENT


def test_one_bad_fund_does_not_stop_the_others(
    tmp_path: Path, registry: Registry, contract: Contract
) -> None:
    _drop(tmp_path, contract, contract.header_line + ROW.encode(), fund="13")
    _drop(tmp_path, contract, b"garbage\n", fund="59")
    scheme = load_scheme("aes-2020-05")
    result = run_batch(tmp_path, scheme, secret=b"s" * 32, funds=["13", "59", "75"])
    assert [r.status for r in result.validation.funds] == ["received", "rejected", "missing"]
    assert (result.out_dir / "validation" / "13" / "accepted.parquet").exists()
    assert result.compute is not None
    assert result.compute.preview["national"]["households"] == 1
    again = run_batch(tmp_path, scheme, secret=b"s" * 32, funds=["13", "59", "75"])
    assert again.run_id == result.run_id


def test_lines_with_wrong_field_count_are_set_aside(contract: Contract) -> None:
    good = ROW.encode()
    data = contract.header_line + good + b"13;1;2\n" + good.replace(b"1234567", b"7654321")
    rows = read_rows(data, contract)
    assert rows.table.num_rows == 2
    assert rows.lines.tolist() == [2, 4]
    assert [(r.line, r.fields) for r in rows.invalid] == [(3, 3)]


def test_funds_on_contract_1_0_and_1_1_are_computed_in_one_run(tmp_path: Path) -> None:
    """A fund still on 1.0 beside one on 1.1: its accepted rows get 1.1's columns, empty,
    and the national step reads every fund alike."""
    import polars as pl

    from payments.sample.writer import SampleSpec, write_sample
    from tests.conftest import MAY_2020

    spec = SampleSpec(households=2_000, seed=5, window=MAY_2020, funds=("13",))
    write_sample(spec, tmp_path, contract=load_contract("1.0"))
    write_sample(SampleSpec(households=2_000, seed=6, window=MAY_2020, funds=("75",)), tmp_path)
    result = run_batch(tmp_path, load_scheme("aes-2020-05"), secret=b"s" * 32, funds=["13", "75"])
    assert [r.status for r in result.validation.funds] == ["received", "received"]
    old = pl.read_parquet(result.out_dir / "validation" / "13" / "accepted.parquet")
    new = pl.read_parquet(result.out_dir / "validation" / "75" / "accepted.parquet")
    assert old.schema == new.schema and old.height > 0
    assert old.get_column("payee_name").null_count() == old.height
    assert new.get_column("payee_name").null_count() < new.height  # the sample has some
    assert result.compute is not None
    assert set(result.compute.preview["by_fund"]) == {"13", "75"}
