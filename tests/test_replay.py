"""Replay for auditors: a finished run rebuilt from its archive is byte-identical, and any
altered byte (an archived input, a stored output) is named."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from payments.archive import RUN_RECORD, archive_path
from payments.pipeline import run_batch
from payments.replay import replay_run
from payments.sample.writer import SampleSpec, write_sample
from payments.schemes import load_scheme
from payments.sepa.signing import Signer, generate_demo_pair
from tests.conftest import MAY_2020
from tests.households import APPROVERS, SECRET


@pytest.fixture
def finished(tmp_path: Path, signer: Signer) -> tuple[Path, str]:
    """A run with the ledger (a held household, a quarantined row, a rejected file)."""
    spec = SampleSpec(households=2500, seed=5, window=MAY_2020, defect_rate=0.03)
    write_sample(spec, tmp_path)
    shutil.rmtree(tmp_path / "funds" / "13")  # a missing fund too
    result = run_batch(
        tmp_path,
        load_scheme("aes-2020-05"),
        secret=SECRET,
        signer=signer,
        ledger_url=f"sqlite:///{tmp_path / 'ledger.sqlite'}",
        funds=["01", "13", "14", "37", "75"],
    )
    return tmp_path, result.run_id


def test_replay_of_a_finished_run_is_byte_identical(
    finished: tuple[Path, str], signer: Signer, tmp_path: Path
) -> None:
    root, run_id = finished
    record = json.loads((root / "runs" / run_id / RUN_RECORD).read_text())
    assert any(p.startswith("payments/") and p.endswith(".xml") for p in record["outputs"])
    assert {i["fund"]: i["status"] for i in record["inputs"]}["13"] == "missing"
    # The replay reads only the archive: the funds' folders may be gone.
    shutil.rmtree(root / "funds")
    report = replay_run(root, run_id, tmp_path / "scratch", secret=SECRET, signer=signer)
    assert report.problems == []
    assert report.ok and report.replayed_run_id == run_id
    assert len(report.identical) == len(record["outputs"])


def test_one_altered_byte_of_an_archived_input_is_reported(
    finished: tuple[Path, str], signer: Signer, tmp_path: Path
) -> None:
    root, run_id = finished
    record = json.loads((root / "runs" / run_id / RUN_RECORD).read_text())
    entry = next(i for i in record["inputs"] if i["fund"] == "75")
    path = archive_path(root, entry["sha256"])
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    report = replay_run(root, run_id, tmp_path / "scratch", secret=SECRET, signer=signer)
    assert not report.ok
    assert report.problems[0].startswith("funds/75/75_aes-2020-05.csv: archived bytes altered")
    assert entry["sha256"] in report.problems[0]
    assert any(p.startswith("run id: replay gives") for p in report.problems)


def test_an_output_altered_after_the_run_is_reported(
    finished: tuple[Path, str], signer: Signer, tmp_path: Path
) -> None:
    root, run_id = finished
    run_dir = root / "runs" / run_id
    xml = sorted((run_dir / "payments").rglob("*.xml"))[0]
    xml.write_bytes(xml.read_bytes().replace(b"<Ustrd>", b"<Ustrd>X", 1))
    report = replay_run(root, run_id, tmp_path / "scratch", secret=SECRET, signer=signer)
    rel = str(xml.relative_to(run_dir))
    assert report.problems == [
        next(p for p in report.problems if p.startswith(f"{rel}: stored file has SHA-256"))
    ]
    assert "altered after the run" in report.problems[0]


def test_audit_bundle_checks_offline_and_names_what_was_altered(
    finished: tuple[Path, str], signer: Signer, tmp_path: Path
) -> None:
    import zipfile
    from datetime import datetime

    from payments.bundle import INDEX, check_bundle, export_bundle
    from payments.ledger.migrate import engine_for
    from payments.release import approve
    from payments.send import send
    from payments.sepa.signing import load_certificate
    from payments.transport.local import LocalTransport

    root, run_id = finished
    url = f"sqlite:///{root / 'ledger.sqlite'}"
    at = datetime(2020, 5, 14, 9, 0)
    engine = engine_for(url)
    approve(engine, root / "runs" / run_id, run_id, by="finance", at=at, approvers=APPROVERS)
    send(
        engine,
        root / "runs" / run_id,
        run_id,
        LocalTransport(root),
        trusted=signer.certificate,
        at=at,
    )
    from sqlalchemy.orm import Session

    from payments.ledger.integrity import write_chain_head

    with Session(engine) as session:  # as the DAG's report step does after delivery
        write_chain_head(session, root / "runs" / run_id, signer)
    cert = tmp_path / "signer.pem"
    from cryptography.hazmat.primitives.serialization import Encoding

    cert.write_bytes(signer.certificate.public_bytes(Encoding.PEM))
    bundle = export_bundle(root, url, run_id, tmp_path / "bundle.zip", cert)
    assert check_bundle(bundle, signer.certificate) == []
    again = export_bundle(root, url, run_id, tmp_path / "again.zip", cert)
    assert again.read_bytes() == bundle.read_bytes()  # same run, same bundle bytes

    # Another signer: the auditor's trusted certificate refuses it.
    generate_demo_pair(tmp_path / "k2.pem", tmp_path / "c2.pem", common_name="other")
    assert any(
        "signature" in p for p in check_bundle(bundle, load_certificate(tmp_path / "c2.pem"))
    )

    # One member edited: named against the index.
    with zipfile.ZipFile(bundle) as z:
        members = {n: z.read(n) for n in z.namelist()}
    members["reconciliation.csv"] = members["reconciliation.csv"].replace(b";", b",", 1)
    edited = tmp_path / "edited.zip"
    with zipfile.ZipFile(edited, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    assert check_bundle(edited, signer.certificate) == [
        f"reconciliation.csv: SHA-256 differs from {INDEX}"
    ]
    assert check_bundle(bundle, None) != [], "no trusted certificate, nothing proven"
