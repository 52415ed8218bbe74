"""Any sequence of valid bank reports over a sent file leaves the ledger legal and tied out.

Hypothesis draws reports as banks may send them, in any order, repeated or
contradictory: pain.002 (.03 or .10) with a group status, a block status and
transaction lines; camt.054 returns with or without a reason. After each
sequence, every payment is in one state a sent payment can reach, that state
is the one the bank's recorded events say, and the reconciliation ties out to
the cent. The sent file is made once; each example starts from a copy of it.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text

from payments.bank.inbox import ingest_reports
from payments.ledger.finance import tie_out
from payments.ledger.migrate import engine_for, upgrade
from payments.sepa.signing import Signer
from tests.bank_simulator import sent_batch
from tests.iso_reports import Return, Tx, block, camt054, pain002

AT = datetime(2020, 5, 16, 9, 0)
NAMED = 12  # the payments lines may name; group and block statuses reach all of them
#: Codes each pain.002 version's schema allows at the group (and block) and the line.
GROUP = {
    "pain.002.001.03": ["ACCP", "ACSC", "ACSP", "ACTC", "ACWC", "PART", "PDNG", "RCVD", "RJCT"],
    "pain.002.001.10": ["ACCP", "ACSC", "ACTC", "PART", "PDNG", "RCVD", "RJCT", "BLCK", "CANC"],
}
LINE = {
    "pain.002.001.03": ["ACCP", "ACSC", "ACSP", "ACTC", "ACWC", "PDNG", "RJCT"],
    "pain.002.001.10": ["ACCP", "ACSC", "ACTC", "PDNG", "RJCT", "BLCK"],
}
AT_THE_BANK = {"sent", "accepted", "rejected", "returned"}

Sent = tuple[str, list[tuple[str, int]]]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory, signer: Signer) -> Iterator[Path]:
    """A SQLite ledger holding one fund's batch at the bank, to copy for each example."""
    root = tmp_path_factory.mktemp("sent")
    path = root / "ledger.sqlite"
    url = f"sqlite:///{path}"
    upgrade(url)
    engine = engine_for(url)
    sent_batch(engine, root / "data", signer, ("13",), seed=7, at=AT)
    engine.dispose()
    yield path


def _file(engine: Engine) -> Sent:
    with engine.connect() as c:
        msg = str(c.execute(text("SELECT MIN(msg_id) FROM payment_files")).scalar_one())
        rows = c.execute(
            text(
                "SELECT p.end_to_end_id, p.amount_cents FROM payments p JOIN payment_files f "
                "ON f.id = p.payment_file_id WHERE f.msg_id = :m ORDER BY p.id LIMIT :n"
            ),
            {"m": msg, "n": NAMED},
        ).all()
    return msg, [(str(e), int(a)) for e, a in rows]


@st.composite
def status_report(draw: st.DrawFn, sent: Sent) -> bytes:
    msg, ids = sent
    version = draw(st.sampled_from(sorted(GROUP)))
    named = draw(st.lists(st.sampled_from(range(len(ids))), unique=True, max_size=6))
    lines = [Tx(ids[i][0], draw(st.sampled_from(LINE[version])), "AC01", ids[i][1]) for i in named]
    group = draw(st.none() | st.sampled_from(GROUP[version]))
    block_status = draw(st.none() | st.sampled_from(GROUP[version]))
    return pain002(
        msg,
        group=group,
        group_reason="AM05",
        blocks=[block(msg, block_status, *lines)],
        version=version,
    )


@st.composite
def returns(draw: st.DrawFn, sent: Sent) -> bytes:
    msg, ids = sent
    named = draw(st.lists(st.sampled_from(range(len(ids))), unique=True, min_size=1, max_size=4))
    reasons = st.sampled_from(["AC04", "MD07", None])
    version = draw(st.sampled_from(["camt.054.001.02", "camt.054.001.04", "camt.054.001.08"]))
    return camt054(
        [Return(msg, ids[i][0], ids[i][1], draw(reasons)) for i in named], version=version
    )


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_any_sequence_of_reports_leaves_every_payment_legal_and_tied_out(
    template: Path, tmp_path: Path, data: st.DataObject
) -> None:
    copy = tmp_path / f"ledger-{data.draw(st.uuids())}.sqlite"
    shutil.copyfile(template, copy)
    engine = engine_for(f"sqlite:///{copy}")
    try:
        sent = _file(engine)
        reports = data.draw(
            st.lists(status_report(sent) | returns(sent), min_size=1, max_size=6), label="reports"
        )
        for n, report in enumerate(reports):
            done = ingest_reports(engine, [(f"r{n}.xml", report)], at=AT)
            assert not done.quarantined and not done.unmatched, (done.quarantined, done.unmatched)
        _check(engine)
    finally:
        engine.dispose()
        copy.unlink()


def _check(engine: Engine) -> None:
    with engine.connect() as c:
        rows = c.execute(
            text(
                "SELECT p.end_to_end_id, p.state, (SELECT e.status FROM bank_events e "
                " WHERE e.end_to_end_id = p.end_to_end_id ORDER BY e.id DESC LIMIT 1) "
                "FROM payments p WHERE p.payment_file_id IS NOT NULL"
            )
        ).all()
    for e2e, state, last_event in rows:
        assert state in AT_THE_BANK, (e2e, state)
        # the state is what the bank's last applied line said; sent if none moved it
        assert state == (last_event or "sent"), (e2e, state, last_event)
    assert all(line["ties_out"] for line in tie_out(engine)), tie_out(engine)
