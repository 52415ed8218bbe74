"""National scale: 4.1 M households in 101 files (about 15 s, 700 MB of temp disk)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from payments.contract import Companion, Contract
from payments.sample.writer import SampleSpec, write_sample
from tests.conftest import MAY_2020


@pytest.mark.national
def test_national_sample_writes_101_files_summing_to_4_1_million(
    tmp_path: Path, contract: Contract
) -> None:
    result = write_sample(SampleSpec(households=4_100_000, seed=2020, window=MAY_2020), tmp_path)
    assert len(result.files) == 101
    total = 0
    for f in result.files:
        path = tmp_path / f.path
        companion = Companion.from_json(
            (tmp_path / (f.path + contract.companion_suffix)).read_bytes()
        )
        h = hashlib.sha256()
        lines = 0
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 22), b""):
                h.update(block)
                lines += block.count(b"\n")
        assert h.hexdigest() == companion.sha256
        assert lines - 1 == companion.row_count == f.rows
        total += lines - 1
    assert total == 4_100_000
