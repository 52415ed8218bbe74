"""Demo secrets made on the spot are made once, whoever asks first.

Under a real scheduler the batch's ``conclude`` and the reconciliation's
``reconcile`` both asked for the signing key at the same moment on a fresh
demo machine: each made a pair, the second overwrote the first's
certificate, and every delivery then refused the files as "signed by another
certificate than the trusted one". Several processes asking at once must all
get the same key and the same beneficiary-key secret.
"""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

from payments.config import Settings

ASKERS = 4


def _ask(data_dir: str, start: Any) -> tuple[str, str]:
    from cryptography.hazmat.primitives import hashes

    from payments.credentials import beneficiary_secret, payment_signer

    settings = Settings(data_dir=Path(data_dir), ledger_url="sqlite://", demo=True)
    start.wait()
    signer = payment_signer(settings)
    secret = beneficiary_secret(settings)
    return signer.certificate.fingerprint(hashes.SHA256()).hex(), secret.hex()


def test_processes_asking_at_once_share_one_key_and_one_secret(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        start = manager.Barrier(ASKERS)
        with context.Pool(ASKERS) as pool:
            answers = pool.starmap(_ask, [(str(tmp_path), start)] * ASKERS)
    fingerprints = {a[0] for a in answers}
    secrets = {a[1] for a in answers}
    assert len(fingerprints) == 1, answers
    assert len(secrets) == 1 and len(secrets.pop()) == 64, answers
