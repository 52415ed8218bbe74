"""Shared fixtures: the contract, the registry and generated samples."""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

# Airflow reads its configuration when first imported: give every test process
# (each xdist worker) its own AIRFLOW_HOME and SQLite metadata database, and
# this checkout's DAGs, before anything imports airflow.
_AIRFLOW_HOME = tempfile.mkdtemp(prefix="payments-airflow-home-")
atexit.register(shutil.rmtree, _AIRFLOW_HOME, True)
os.environ["AIRFLOW_HOME"] = _AIRFLOW_HOME
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(Path(__file__).resolve().parents[1] / "dags")
os.environ.pop("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", None)

import pytest
from hypothesis import settings

from payments.contract import Contract, load_contract
from payments.registry import Registry, load_registry
from payments.sample.households import Window
from payments.sample.writer import SampleResult, SampleSpec, write_sample
from payments.sepa.signing import Signer, generate_demo_pair, load_signer

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("PAYMENTS_SHARED_DIR", ROOT.parent / "shared"))
#: SHA-256 of the official pain.001.001.03 XSD, as published in ../shared/README.md.
OFFICIAL_XSD_SHA256 = "87bd9b06f7f74128764d304af60f96f0d5583c92031113a892048272c8934d14"


def official_xsd() -> Path:
    """The official XSD from ../shared; without it (a clone elsewhere), the vendored
    copy, which is only used after its SHA-256 is checked against the published one."""
    import hashlib

    shared = SHARED / "reference/iso20022/pain.001.001.03.xsd"
    path = shared if shared.exists() else ROOT / "payments/reference/iso20022/pain.001.001.03.xsd"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == OFFICIAL_XSD_SHA256, path
    return path


MAY_2020 = Window("aes-2020-05", ("2020-04", "2020-05"), date(2020, 5, 10))


@pytest.fixture(scope="session")
def airflow_db() -> str:
    """This process's Airflow metadata database, migrated (for dag.test())."""
    out = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return _AIRFLOW_HOME


@pytest.fixture(scope="session")
def signer(tmp_path_factory: pytest.TempPathFactory) -> Signer:
    """A throw-away signing key and certificate for the tests that sign payment files."""
    folder = tmp_path_factory.mktemp("keys")
    generate_demo_pair(folder / "k.pem", folder / "c.pem", common_name="Caf test")
    return load_signer(folder / "k.pem", folder / "c.pem")


@pytest.fixture(scope="session")
def contract() -> Contract:
    return load_contract()


@pytest.fixture(scope="session")
def registry() -> Registry:
    return load_registry()


@pytest.fixture(scope="session")
def clean_sample(tmp_path_factory: pytest.TempPathFactory) -> SampleResult:
    """A defect-free sample over every fund."""
    root = tmp_path_factory.mktemp("clean")
    return write_sample(SampleSpec(households=30_000, seed=11, window=MAY_2020), root)


@pytest.fixture(scope="session")
def defect_sample(tmp_path_factory: pytest.TempPathFactory) -> SampleResult:
    """A sample where 5 % of rows carry a defect, plus damaged files."""
    root = tmp_path_factory.mktemp("defects")
    spec = SampleSpec(households=20_000, seed=12, window=MAY_2020, defect_rate=0.05)
    return write_sample(spec, root)


# Under CI, property-based tests draw the same examples every run: a red build
# is then reproducible, never a roll of the dice.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


from tests.ledger_fixtures import ledger, pg_url  # noqa: F401 - shared ledger fixtures
from tests.s3 import s3_endpoint, s3_root  # noqa: F401 - the in-process S3 server
from tests.sshd import sshd  # noqa: F401 - the real OpenSSH server fixture
