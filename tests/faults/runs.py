"""Small runs recorded in a real ledger, for the fault tests."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine, text

from payments.pipeline import run_batch
from payments.run_spec import RunResult
from payments.sample.writer import SampleSpec, write_sample
from payments.schemes import load_scheme
from payments.send import Sent, send
from payments.sepa.signing import Signer
from payments.transport.local import LocalTransport
from tests.conftest import MAY_2020
from tests.households import SECRET

AT = datetime(2020, 5, 14, 9, 0)


def sample(root: Path, funds: tuple[str, ...], *, households: int = 400, seed: int = 1) -> None:
    write_sample(SampleSpec(households=households, seed=seed, window=MAY_2020, funds=funds), root)


def run(
    ledger: Engine,
    root: Path,
    signer: Signer,
    funds: tuple[str, ...],
    *,
    triggered_by: str = "operator",
    max_transactions: int | None = None,
) -> RunResult:
    """Run the funds' files under the storage root ``root``, recorded in ``ledger``."""
    extra = {"max_transactions": max_transactions} if max_transactions else {}
    return run_batch(
        root,
        load_scheme("aes-2020-05"),
        secret=SECRET,
        signer=signer,
        ledger_url=ledger.url.render_as_string(hide_password=False),
        funds=list(funds),
        triggered_by=triggered_by,
        **extra,  # type: ignore[arg-type]
    )


def send_local(ledger: Engine, result: RunResult, root: Path, signer: Signer) -> Sent:
    """Send the run to the local bank folder under ``root`` (as ``payments send`` does)."""
    return send(
        ledger,
        result.out_dir,
        result.run_id,
        LocalTransport(root),
        trusted=signer.certificate,
        at=AT,
    )


def states(ledger: Engine, run_id: str | None = None) -> dict[str, int]:
    """Payments by state (of one run, or of the ledger)."""
    where = "WHERE run_id = :r" if run_id else ""
    with ledger.connect() as c:
        return dict(
            c.execute(
                text(f"SELECT state, COUNT(*) FROM payments {where} GROUP BY state"),
                {"r": run_id},
            ).all()
        )


def edit_fund_file(
    root: Path, code: str, edit: Callable[[list[list[str]], dict[str, int]], None]
) -> None:
    """Change a fund's sample file in place (rows as lists of cells) and re-seal its companion,
    as a fund would send it."""
    path = root / "funds" / code / f"{code}_aes-2020-05.csv"
    header, *body = path.read_text().split("\n")
    columns = {name: i for i, name in enumerate(header.split(";"))}
    rows = [line.split(";") for line in body if line]
    edit(rows, columns)
    path.write_bytes(("\n".join([header, *(";".join(r) for r in rows)]) + "\n").encode())
    reseal(path, rows=len(rows))


def reseal(path: Path, *, rows: int | None = None) -> None:
    """The companion of a fund file changed in place, made to match it again (size, hash)."""
    data = path.read_bytes()
    companion = Path(str(path) + ".ctl.json")
    meta = json.loads(companion.read_text())
    meta.update(byte_size=len(data), sha256=hashlib.sha256(data).hexdigest())
    if rows is not None:
        meta["row_count"] = rows
    companion.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")


def payments_cli(
    data: Path, *args: str, approvers: str = "finance", **extra: str
) -> subprocess.CompletedProcess[str]:
    """The ``payments`` command as a process on the demo setting, storage root ``data``: as
    someone at a shell would run it (``extra``: more environment, $LOGNAME say)."""
    env = {
        **os.environ,
        "PAYMENTS_DATA_DIR": str(data),
        "PAYMENTS_DEMO": "1",
        "PAYMENTS_FINANCE_APPROVERS": approvers,
        **extra,
    }
    env.pop("PAYMENTS_LEDGER_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "payments", *args], env=env, capture_output=True, text=True
    )
