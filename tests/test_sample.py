"""The sample generator: realistic, valid, deterministic, and defects on request."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from payments.contract import Companion, Contract
from payments.intake import read_rows
from payments.registry import Registry
from payments.sample.defects import DEFECT_KINDS
from payments.sample.writer import SampleResult, SampleSpec, allocate, write_sample
from tests.conftest import MAY_2020
from tests.reference import iban_is_valid, nir_is_valid


def _read_all(result: SampleResult, contract: Contract) -> pa.Table:
    root = Path(result.root)
    return pa.concat_tables(
        read_rows((root / f.path).read_bytes(), contract).table for f in result.files
    )


def test_allocate_is_exact_and_proportional() -> None:
    assert allocate(10, [1, 1, 1]) == [4, 3, 3]
    parts = allocate(4_100_000, [652, 2604, 76])
    assert sum(parts) == 4_100_000
    assert parts[1] > parts[0] > parts[2]


def test_files_cover_every_fund_and_rows_sum(
    clean_sample: SampleResult, registry: Registry, contract: Contract
) -> None:
    assert [f.fund_code for f in clean_sample.files] == registry.codes
    assert clean_sample.rows == 30_000
    root = Path(clean_sample.root)
    for f in clean_sample.files:
        data = (root / f.path).read_bytes()
        companion = Companion.from_json((root / (f.path + contract.companion_suffix)).read_bytes())
        assert companion.row_count == f.rows == data.count(b"\n") - 1
        assert companion.sha256 == hashlib.sha256(data).hexdigest()
        assert companion.byte_size == len(data)
        assert data.startswith(contract.header_line)
        data.decode("utf-8")
    # Spread in proportion to population: Nord is the largest fund, Lozère the smallest.
    by_fund = {f.fund_code: f.rows for f in clean_sample.files}
    assert max(by_fund, key=by_fund.__getitem__) == "59"
    assert min(by_fund, key=by_fund.__getitem__) == "48"


def test_every_nir_and_iban_is_valid(clean_sample: SampleResult, contract: Contract) -> None:
    rows = _read_all(clean_sample, contract)
    for nir in rows.column("claimant_nir").to_pylist():
        assert nir_is_valid(nir), nir
    spouses = [s for s in rows.column("spouse_nir").to_pylist() if s is not None]
    assert len(spouses) > 0.2 * rows.num_rows
    assert all(nir_is_valid(s) for s in spouses)
    for iban in rows.column("iban").to_pylist():
        assert iban_is_valid(iban), iban


def test_rows_are_realistic(clean_sample: SampleResult, contract: Contract) -> None:
    rows = _read_all(clean_sample, contract)
    nirs = rows.column("claimant_nir")
    corsica = pc.utf8_slice_codeunits(nirs, 5, 7)
    assert set(corsica.to_pylist()) >= {"2A", "2B", "20", "97", "99"}
    names = "".join(rows.column("claimant_last_name").to_pylist())
    assert {"é", "ç", "œ", "'", "-"} <= set(names)
    children = [c for c in rows.column("children_birth_dates").to_pylist() if c]
    counts = Counter(c.count("|") + 1 for c in children)
    assert counts[1] and counts[2] and counts[3]
    assert any(len(set(c.split("|"))) < len(c.split("|")) for c in children)  # twins
    for col in ("rsa_cents", "ass_cents", "apl_cents", "rso_cents"):
        values = pc.cast(rows.column(col), pa.int64())
        assert pc.min(values).as_py() >= 0
        assert pc.max(values).as_py() > 0
    students = Counter(rows.column("claimant_student_status").to_pylist())
    assert set(students) == set(contract.column("claimant_student_status").values)
    # household numbers are unique inside a fund
    keys = pc.binary_join_element_wise(rows.column("fund_code"), rows.column("household_id"), ":")
    assert pc.count_distinct(keys).as_py() == rows.num_rows


def test_same_parameters_same_bytes(tmp_path: Path) -> None:
    spec = SampleSpec(households=3_000, seed=5, window=MAY_2020, defect_rate=0.05)
    a = write_sample(spec, tmp_path / "a")
    b = write_sample(spec, tmp_path / "b")
    assert [f.sha256 for f in a.files] == [f.sha256 for f in b.files]
    ta = (tmp_path / "a" / a.truth_path).read_bytes()
    tb = (tmp_path / "b" / b.truth_path).read_bytes()
    assert pq.read_table(pa.BufferReader(ta)).equals(pq.read_table(pa.BufferReader(tb)))
    c = write_sample(SampleSpec(households=3_000, seed=6, window=MAY_2020), tmp_path / "c")
    assert [f.sha256 for f in a.files] != [f.sha256 for f in c.files]


def test_defects_produce_every_kind(defect_sample: SampleResult) -> None:
    for kind in DEFECT_KINDS:
        assert defect_sample.defects[kind] > 0, kind
    meta = json.loads(
        (Path(defect_sample.root) / "_sample" / "sample_aes-2020-05.json").read_text()
    )
    assert meta["defects"] == defect_sample.defects


def _truth(result: SampleResult, kind: str) -> list[dict[str, object]]:
    truth = pq.read_table(Path(result.root) / result.truth_path)
    return [r for r in truth.to_pylist() if r["kind"] == kind]


def _line(result: SampleResult, fund: str, line: int) -> list[str]:
    root = Path(result.root)
    path = next(f.path for f in result.files if f.fund_code == fund)
    raw = (root / path).read_bytes().split(b"\n")[line - 1]
    return raw.decode("utf-8").split(";")


@pytest.mark.parametrize(
    "kind",
    [
        "bad_nir_key",
        "bad_iban",
        "missing_field",
        "duplicate_in_file",
        "moved_between_funds",
        "shared_iban",
    ],
)
def test_each_row_defect_is_really_in_the_file(
    defect_sample: SampleResult, contract: Contract, kind: str
) -> None:
    names = contract.names
    damaged = {t["fund_code"] for t in _truth(defect_sample, "non_utf8")} | {
        t["fund_code"] for t in _truth(defect_sample, "truncated")
    }
    checked = 0
    for t in _truth(defect_sample, kind):
        fund, line = str(t["fund_code"]), int(str(t["line"]))
        if fund in damaged:
            continue
        row = dict(zip(names, _line(defect_sample, fund, line), strict=True))
        checked += 1
        if kind == "bad_nir_key":
            assert not nir_is_valid(row["claimant_nir"])
            assert len(row["claimant_nir"]) == 15
        elif kind == "bad_iban":
            assert not iban_is_valid(row["iban"])
        elif kind == "missing_field":
            assert row[str(t["detail"])] == ""
        elif kind == "duplicate_in_file":
            source = int(str(t["detail"]).rsplit(" ", 1)[1])
            assert _line(defect_sample, fund, source) == list(row.values())
        elif kind == "shared_iban":
            assert row["iban"] == t["detail"] and iban_is_valid(row["iban"])
        elif kind == "moved_between_funds":
            assert nir_is_valid(row["claimant_nir"])
    assert checked > 0
    if kind == "moved_between_funds":
        nirs = Counter(
            dict(
                zip(
                    names,
                    _line(defect_sample, str(t["fund_code"]), int(str(t["line"]))),
                    strict=True,
                )
            )["claimant_nir"]
            for t in _truth(defect_sample, kind)
            if t["fund_code"] not in damaged
        )
        assert max(nirs.values()) == 2  # the same household in two funds' files
    if kind == "shared_iban":
        shared = Counter(str(t["detail"]) for t in _truth(defect_sample, kind))
        assert max(shared.values()) >= 2


def test_file_defects_damage_the_bytes(defect_sample: SampleResult, contract: Contract) -> None:
    root = Path(defect_sample.root)
    for t in _truth(defect_sample, "non_utf8"):
        path = next(f.path for f in defect_sample.files if f.fund_code == t["fund_code"])
        line = (root / path).read_bytes().split(b"\n")[int(str(t["line"])) - 1]
        with pytest.raises(UnicodeDecodeError):
            line.decode("utf-8")
    for t in _truth(defect_sample, "truncated"):
        path = next(f.path for f in defect_sample.files if f.fund_code == t["fund_code"])
        companion = Companion.from_json((root / (path + contract.companion_suffix)).read_bytes())
        assert (root / path).stat().st_size < companion.byte_size
