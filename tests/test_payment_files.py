"""pain.001 batches: schema-valid, sums right, deterministic, signed, tamper-evident."""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from payments.entitlement.decide import decide
from payments.entitlement.facts import household_facts
from payments.entitlement.holds import load_hold_policy
from payments.registry import load_registry
from payments.sample.names import FEMALE_FIRST_NAMES, LAST_NAMES, MALE_FIRST_NAMES
from payments.schemes import load_scheme
from payments.sepa.batch import BatchResult, FileLayout, write_batch
from payments.sepa.charset import (
    transliterate_expr,
    transliterate_one,
    transliterate_touched,
    untransliterable,
)
from payments.sepa.pain001 import FORMATS, cents_text
from payments.sepa.profiles import (
    HEAD_BYTES,
    LINE_BYTES,
    WRITABLE,
    BankProfile,
    UnknownProfile,
    load_profile,
    names,
)
from payments.sepa.schemas import XSD_SHA256, schema
from payments.sepa.signing import Signer
from payments.sepa.verify import _cents, verify_batch
from tests.conftest import SHARED, official_xsd
from tests.households import SECRET, household, iban, nir, table
from tests.openssl import openssl_verify

NS = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.001.001.03"}
OFFICIAL_XSD = etree.XMLSchema(etree.parse(str(official_xsd())))
CREATED = datetime(2020, 5, 14, 8, 0, 0)


@pytest.fixture(scope="module")
def decisions() -> pa.Table:
    scheme = load_scheme("aes-2020-05")
    registry = load_registry()
    rows = []
    for i, fund in enumerate(["13", "2A", "974"]):
        for j in range(7 + i * 3):
            rows.append(
                household(
                    # not the serial: the same rows in whichever process builds them
                    household_id=f"{3000000 + i * 100 + j}",
                    claimant_nir=nir(serial=i * 100 + j),
                    iban=iban(i * 100 + j),
                    fund_code=fund,
                    rsa_cents=1 if j % 3 else 0,
                    ass_cents=1 if j % 3 == 0 else 0,
                    claimant_last_name=LAST_NAMES[(i * 7 + j) % len(LAST_NAMES)],
                    claimant_first_name="Zoé",
                    account_holder=""
                    if j == 4
                    else f"M OU MME {LAST_NAMES[(i * 7 + j) % len(LAST_NAMES)].upper()}",
                    bic="BNPAFRPPXXX" if j % 2 else None,
                    children_birth_dates=[date(2010, 1, 1)] * (j % 3),
                )
            )
    facts = pa.concat_tables(
        household_facts(
            table([r for r in rows if r["fund_code"] == f]),
            scheme,
            secret=SECRET,
            overseas=registry.get(f).overseas,
        )
        for f in ["13", "2A", "974"]
    )
    return decide(
        facts,
        scheme,
        holds=load_hold_policy(),
        fund_order=registry.codes,
        run_date=date(2020, 5, 15),
    )


def _batch(
    decisions: pa.Table,
    signer: Signer,
    out: Path,
    max_tx: int = 4,
    profile: BankProfile | None = None,
) -> BatchResult:
    """The test batch, for ``profile`` (default sepa-2009: pain.001.001.03, checked here
    against the official XSD)."""
    return write_batch(
        decisions,
        load_scheme("aes-2020-05"),
        run_id="aes-2020-05-test",
        created_at=CREATED,
        signer=signer,
        out_dir=out,
        layout=FileLayout(max_tx, profile or load_profile("sepa-2009")),
    )


#: What the writer wrote for the test batch before bank profiles existed (commit 036e23f):
#: SHA-256 over its files' "path sha256" lines. sepa-2009 must keep writing these bytes.
PRE_PROFILE_FILES = "b7724c417113ef57d184ce7774d08bbc422c5679dfc226f74dc197993e6d81fa"


def _files_digest(batch: BatchResult) -> str:
    h = hashlib.sha256()
    for f in sorted(batch.files, key=lambda f: f.path):
        h.update(f"{f.path} {f.sha256}\n".encode())
    return h.hexdigest()


def test_the_sepa_2009_profile_writes_what_was_written_before_profiles(
    decisions: pa.Table, signer: Signer, tmp_path: Path
) -> None:
    batch = _batch(decisions, signer, tmp_path)
    assert len(batch.files) == 8 and _files_digest(batch) == PRE_PROFILE_FILES


def _official_09() -> etree.XMLSchema:
    """pain.001.001.09's XSD from ../shared, else the vendored copy (hash pinned)."""
    shared = SHARED / "reference/iso20022/xsd/pain.001.001.09.xsd"
    if shared.exists():
        assert hashlib.sha256(shared.read_bytes()).hexdigest() == XSD_SHA256["pain.001.001.09"]
        return etree.XMLSchema(etree.parse(str(shared)))
    return schema("pain.001.001.09")


def test_epc_2019_files_are_pain_001_001_09_valid_against_the_official_schema(
    decisions: pa.Table, signer: Signer, tmp_path: Path
) -> None:
    epc = load_profile("epc-2019")
    batch = _batch(decisions, signer, tmp_path / "a", profile=epc)
    xsd = _official_09()
    for f in batch.files:
        data = (tmp_path / "a" / f.path).read_bytes()
        assert xsd.validate(etree.fromstring(data).getroottree()), xsd.error_log
        assert b"<BICFI>" in data and b"<BIC>" not in data and f.format == "pain.001.001.09"
        assert b"<PstlAdr>" not in data  # no address, so never an unstructured one
    assert batch.manifest["format"] == "pain.001.001.09"
    assert verify_batch(tmp_path / "a", signer.certificate) == []
    again = _batch(decisions, signer, tmp_path / "b", profile=epc)
    assert _files_digest(again) == _files_digest(batch)  # byte-deterministic


def test_a_profile_s_instrument_and_byte_limit_shape_the_files(
    decisions: pa.Table, signer: Signer, tmp_path: Path
) -> None:
    inst = replace(
        load_profile("epc-2019"),
        local_instrument="INST",
        max_bytes=HEAD_BYTES + 3 * LINE_BYTES,
    )
    batch = _batch(decisions, signer, tmp_path, max_tx=100, profile=inst)
    assert max(f.nb_of_txs for f in batch.files) == 3
    for f in batch.files:
        data = (tmp_path / f.path).read_bytes()
        assert b"<LclInstrm><Cd>INST</Cd></LclInstrm>" in data
        assert len(data) <= inst.max_bytes
    assert verify_batch(tmp_path, signer.certificate) == []


def test_the_profiles_name_versions_the_writer_has() -> None:
    assert tuple(FORMATS) == WRITABLE
    assert [load_profile(n).pain001 for n in names()] == ["pain.001.001.09", "pain.001.001.03"]
    assert load_registry().funds[0].bank_profile == "epc-2019"
    with pytest.raises(UnknownProfile, match="no bank profile 'nope'"):
        load_profile("nope")


def test_files_are_valid_against_the_official_schema(
    decisions: pa.Table, signer: Signer, tmp_path: Path
) -> None:
    batch = _batch(decisions, signer, tmp_path)
    assert len(batch.files) >= 5
    for f in batch.files:
        doc = etree.parse(str(tmp_path / f.path))
        assert OFFICIAL_XSD.validate(doc), OFFICIAL_XSD.error_log


def test_control_sums_and_counts_per_file_and_block(
    decisions: pa.Table, signer: Signer, tmp_path: Path
) -> None:
    batch = _batch(decisions, signer, tmp_path)
    payable = [d for d in decisions.to_pylist() if d["status"] == "payable"]
    assert batch.manifest["totals"]["nb_of_txs"] == len(payable)
    assert batch.manifest["totals"]["ctrl_sum_cents"] == sum(d["payable_cents"] for d in payable)
    for f in batch.files:
        doc = etree.parse(str(tmp_path / f.path))
        amounts = [_cents(a) for a in doc.xpath("//p:InstdAmt/text()", namespaces=NS)]
        grp = doc.find("p:CstmrCdtTrfInitn/p:GrpHdr", NS)
        for block in [grp, *doc.findall("p:CstmrCdtTrfInitn/p:PmtInf", NS)]:
            assert int(block.findtext("p:NbOfTxs", namespaces=NS)) == len(amounts) == f.nb_of_txs
            assert _cents(block.findtext("p:CtrlSum", namespaces=NS)) == sum(amounts)
        assert f.ctrl_sum_cents == sum(amounts) and f.nb_of_txs <= 4
        assert doc.findtext(".//p:ReqdExctnDt", namespaces=NS) == "2020-05-15"
        ids = doc.xpath("//p:EndToEndId/text()", namespaces=NS)
        assert all(i.startswith("AES202005-") and len(i) <= 35 for i in ids)


def test_splitting_and_bytes_are_deterministic(
    decisions: pa.Table, signer: Signer, tmp_path: Path
) -> None:
    a = _batch(decisions, signer, tmp_path / "a")
    b = _batch(decisions, signer, tmp_path / "b")
    files = sorted(
        p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file()
    )
    assert files == sorted(
        p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file()
    )
    for rel in files:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel
    assert [f.msg_id for f in a.files] == [f.msg_id for f in b.files]
    one_file = _batch(decisions, signer, tmp_path / "c", max_tx=100)
    assert len(one_file.files) == 3  # one per fund


def test_same_bytes_whatever_the_writer_threads_and_the_input_form(
    decisions: pa.Table, signer: Signer, tmp_path: Path
) -> None:
    """Funds are written by threads: their number, Arrow or polars input, and the
    decisions' row order change nothing."""
    runs = {
        "one": dict(decisions=decisions, threads=1),
        "two": dict(decisions=decisions, threads=2),
        "four_polars": dict(decisions=pl.DataFrame(decisions), threads=4),
        "reversed": dict(decisions=pl.DataFrame(decisions).reverse(), threads=2),
    }
    manifests = {}
    for name, args in runs.items():
        batch = write_batch(
            args["decisions"],
            load_scheme("aes-2020-05"),
            run_id="aes-2020-05-test",
            created_at=CREATED,
            signer=signer,
            out_dir=tmp_path / name,
            layout=FileLayout(max_transactions=4, threads=args["threads"]),
        )
        manifests[name] = batch.manifest
    assert manifests["one"] == manifests["two"] == manifests["four_polars"]
    assert manifests["one"] == manifests["reversed"]
    files = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*.*"))
    assert len(files) > 10
    for rel in files:
        first = (tmp_path / "one" / rel).read_bytes()
        assert first == (tmp_path / "two" / rel).read_bytes(), rel
        assert first == (tmp_path / "four_polars" / rel).read_bytes(), rel
        assert first == (tmp_path / "reversed" / rel).read_bytes(), rel


def test_openssl_verifies_files_and_catches_tampering(
    decisions: pa.Table, signer: Signer, tmp_path: Path
) -> None:
    batch = _batch(decisions, signer, tmp_path / "batch")
    cert = tmp_path / "cert.pem"
    cert.write_bytes(signer.certificate.public_bytes(Encoding.PEM))
    first = tmp_path / "batch" / batch.files[0].path
    assert openssl_verify(first, cert).returncode == 0
    assert openssl_verify(tmp_path / "batch" / "manifest.json", cert).returncode == 0
    data = bytearray(first.read_bytes())
    data[len(data) // 2] ^= 0x01
    first.write_bytes(bytes(data))
    result = openssl_verify(first, cert)
    assert result.returncode != 0 and "Verification failure" in result.stderr


def test_signing_a_digest_gives_the_library_s_own_signature(signer: Signer) -> None:
    """The hashed-once path is byte for byte what ``cryptography`` makes of the data."""
    import hashlib

    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.serialization import pkcs7

    from payments.sepa.signing import _OPTIONS

    for data in (b"", b"x", b"<Document/>" * 10_000, bytes(range(256)) * 3):
        library = (
            pkcs7.PKCS7SignatureBuilder()
            .set_data(data)
            .add_signer(signer.certificate, signer.key, hashes.SHA256())
            .sign(serialization.Encoding.DER, _OPTIONS)
        )
        assert signer.sign_digest(hashlib.sha256(data).digest()) == library
        assert signer.sign(data) == library


@pytest.mark.parametrize("tamper", ["byte", "remove", "add", "manifest", "signature"])
def test_payments_verify_reports_tampering(
    decisions: pa.Table, signer: Signer, tmp_path: Path, tamper: str
) -> None:
    batch = _batch(decisions, signer, tmp_path)
    assert verify_batch(tmp_path, signer.certificate) == []
    target = tmp_path / batch.files[1].path
    if tamper == "byte":
        data = bytearray(target.read_bytes())
        data[-30] ^= 0x20
        target.write_bytes(bytes(data))
        expected = "SHA-256 differs"
    elif tamper == "remove":
        target.unlink()
        expected = "missing (removed)"
    elif tamper == "add":
        shutil.copy(target, target.with_name("EXTRA.xml"))
        expected = "not in the manifest (added)"
    elif tamper == "manifest":
        manifest = json.loads((tmp_path / "manifest.json").read_text())
        manifest["totals"]["ctrl_sum_cents"] += 1
        (tmp_path / "manifest.json").write_text(json.dumps(manifest))
        expected = "manifest.json: signature"
    else:
        target.with_name(target.name + ".p7s").write_bytes(b"\x30\x03\x02\x01\x00")
        expected = "signature"
    problems = verify_batch(tmp_path, signer.certificate)
    assert any(expected in p for p in problems), problems


@pytest.mark.parametrize("whole", [True, False], ids=["parsed whole", "streamed"])
def test_payments_verify_recounts_a_signed_file(
    decisions: pa.Table,
    signer: Signer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    whole: bool,
) -> None:
    """A file whose signatures and hashes are right but whose figures are not is refused.

    The signer itself could have written it wrong: the transactions are
    recounted against the group header, the payment blocks and the manifest,
    whether the file is parsed whole or streamed (above ``FULL_SCHEMA_BYTES``).
    """
    import hashlib

    from payments.sepa import verify

    if not whole:
        monkeypatch.setattr(verify, "FULL_SCHEMA_BYTES", 0)
    batch = _batch(decisions, signer, tmp_path)
    assert verify_batch(tmp_path, signer.certificate) == []
    entry = batch.files[1]
    target = tmp_path / entry.path
    text = target.read_text()
    first = text.index("<InstdAmt")
    amount_at = text.index(">", first) + 1
    end = text.index("<", amount_at)
    cents = _cents(text[amount_at:end]) + 100
    data = (text[:amount_at] + cents_text(cents) + text[end:]).encode()
    target.write_bytes(data)
    target.with_name(target.name + ".p7s").write_bytes(signer.sign(data))
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    for f in manifest["files"]:
        if f["path"] == entry.path:
            f["sha256"], f["bytes"] = hashlib.sha256(data).hexdigest(), len(data)
    raw = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    (tmp_path / "manifest.json").write_bytes(raw)
    (tmp_path / "manifest.json.p7s").write_bytes(signer.sign(raw))
    problems = verify_batch(tmp_path, signer.certificate)
    assert any(f"{entry.path}: group header says" in p for p in problems), problems
    assert any("payment blocks do not add up" in p for p in problems), problems
    assert any("manifest says" in p for p in problems), problems


def test_cli_verify_exit_codes(decisions: pa.Table, signer: Signer, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from payments.cli import app

    _batch(decisions, signer, tmp_path / "b")
    cert = tmp_path / "cert.pem"
    cert.write_bytes(signer.certificate.public_bytes(Encoding.PEM))
    ok = CliRunner().invoke(app, ["verify", str(tmp_path / "b"), "--cert", str(cert)])
    assert ok.exit_code == 0, ok.output
    (tmp_path / "b" / "manifest.json.p7s").unlink()
    bad = CliRunner().invoke(app, ["verify", str(tmp_path / "b"), "--cert", str(cert)])
    assert bad.exit_code == 1 and "signature missing" in bad.output


def test_every_generated_name_transliterates_to_the_sepa_set() -> None:
    names = [*FEMALE_FIRST_NAMES, *MALE_FIRST_NAMES, *LAST_NAMES]
    out = pa.array([transliterate_one(n) for n in names])
    assert not any(untransliterable(out).to_pylist()), [
        (n, o) for n, o in zip(names, out.to_pylist(), strict=True)
    ]
    assert transliterate_one("Lœuillet") == "Loeuillet"
    assert transliterate_one("Faÿ") == "Fay"
    assert transliterate_one("Nguyễn") == "Nguyen"
    assert transliterate_one("N’Diaye") == "N'Diaye"
    assert transliterate_one("Jean-Baptiste  Müller") == "Jean-Baptiste Muller"
    assert len(transliterate_one("A" * 100)) == 70


_NAME = st.lists(
    st.sampled_from(list("aZé Œœ&_’-'.,/?:()+\u00a0\t0ßÿễИĳſÅ×\u0301\u2003")), max_size=12
).map("".join)


@given(st.lists(st.none() | _NAME, max_size=30), st.integers(1, 12))
def test_the_plain_name_fast_path_changes_nothing(names: list[str | None], cut: int) -> None:
    """Names left alone by the fast path are exactly what the full chain gives them."""
    series = pl.Series("v", names, dtype=pl.String)
    full = series.to_frame().select(transliterate_expr(pl.col("v"), cut)).to_series()
    assert transliterate_touched(series, cut)[0].to_list() == full.to_list()
    assert series.to_list() == names  # the input is left as it was


def test_every_latin_character_transliterates_as_the_chain_does() -> None:
    """Each character up to Latin Extended-B and a few beyond, alone and inside a name."""
    chars = [chr(c) for c in range(1, 0x250)] + list("ễИ\u0301\u2003\u00a0ﬁ²")
    values = pl.Series("v", [*chars, *(f" Jo{c}  x " for c in chars)])
    full = values.to_frame().select(transliterate_expr(pl.col("v"), 70)).to_series()
    assert transliterate_touched(values, 70)[0].to_list() == full.to_list()


def test_names_that_cannot_be_written_are_held_not_dropped(signer: Signer, tmp_path: Path) -> None:
    """Review M7: such a payment was left out of the files yet kept its claim (never paid, never
    re-issued). It is held (name_unwritable), in the review list, until the fund corrects it."""
    scheme = load_scheme("aes-2020-05")
    rows = [
        household(
            rsa_cents=1,
            account_holder="Иван Петров",
            claimant_first_name="Иван",
            claimant_last_name="Петров",
        ),
        household(rsa_cents=1),
    ]
    facts = household_facts(table(rows), scheme, secret=SECRET, overseas=False)
    d = decide(
        facts,
        scheme,
        holds=load_hold_policy().model_copy(update={"check_holder_name": False}),
        fund_order=load_registry().codes,
        run_date=date(2020, 5, 15),
    )
    held = pl.from_arrow(d).filter(pl.col("household_id") == rows[0]["household_id"])  # type: ignore[union-attr]
    assert held.get_column("status").to_list() == ["held"]
    assert held.get_column("hold_reasons").to_list() == [["name_unwritable"]]
    batch = _batch(d, signer, tmp_path)
    assert batch.manifest["totals"]["nb_of_txs"] == 1
    assert batch.excluded == []


def test_a_name_empty_after_transliteration_is_reported_not_written() -> None:
    from payments.sepa.batch import transactions

    rows = pl.DataFrame(
        {
            "fund_code": ["13", "13", "13"],
            "household_id": ["1000001", "1000002", "1000003"],
            "payable_cents": [15000, 15000, 15000],
            "account_holder": ["Léa Martin", " ", None],
            "claimant_first_name": ["Léa", " ", None],
            "claimant_last_name": ["Martin", "\u0301", None],
            "iban": ["FR7630006000011234567890189"] * 3,
            "bic": [None, None, None],
        }
    )
    good, bad = transactions(rows, "aes-2020-05")
    assert good.get_column("creditor_name").to_list() == ["Lea Martin"]
    assert bad.get_column("household_id").to_list() == ["1000002", "1000003"]


@given(st.integers(0, 10**12))
def test_amount_text_round_trips(cents: int) -> None:
    assert _cents(cents_text(cents)) == cents


def test_vendored_xsd_is_the_official_one() -> None:
    from importlib import resources

    vendored = resources.files("payments.reference").joinpath("iso20022/pain.001.001.03.xsd")
    assert vendored.read_bytes() == official_xsd().read_bytes()
