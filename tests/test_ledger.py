"""The ledger on SQLite and PostgreSQL: paid once, legal states, intact event log."""

from __future__ import annotations

import logging
import threading
import uuid
from datetime import date, datetime

import polars as pl
import pyarrow as pa
import pytest
from sqlalchemy import Engine, create_engine, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from payments.entitlement.decide import decide
from payments.entitlement.facts import household_facts
from payments.entitlement.holds import load_hold_policy
from payments.ledger import bulk, claims, decisions, events, files, holds, moves, runs, states
from payments.ledger.ddl import ddl_text
from payments.ledger.migrate import upgrade
from payments.ledger.models import BeneficiaryClaim, Event, Payment
from payments.ledger.views import sql_file_text
from payments.registry import load_registry
from payments.schemes import load_scheme
from tests.conftest import ROOT
from tests.households import APPROVERS, SECRET, household, nir, table

AT = datetime(2020, 5, 14, 9, 0, 0)
MAY = load_scheme("aes-2020-05")


def _decisions(rows: list[dict], prior: pa.Table | None = None) -> pa.Table:
    facts = household_facts(table(rows), MAY, secret=SECRET, overseas=False)
    return decide(
        facts,
        MAY,
        holds=load_hold_policy(),
        fund_order=load_registry().codes,
        run_date=date(2020, 5, 15),
        prior=prior,
    )


def _run(session: Session, run_id: str, rows: list[dict]) -> decisions.Recorded:
    runs.record_run(
        session,
        run_id=run_id,
        scheme=MAY,
        parameters={"x": 1},
        code_version="test",
        at=AT,
        triggered_by="alice",
    )
    prior = claims.prior_payments(session, [MAY.id])
    return decisions.record_decisions(
        session, run_id=run_id, scheme=MAY, decisions=_decisions(rows, prior), at=AT
    )


def test_a_second_run_pays_only_households_not_already_paid(ledger: Engine) -> None:
    first = [household(rsa_cents=1) for _ in range(3)] + [household(als_cents=1)]
    late = household(rsa_cents=1)  # a late fund file: one new household
    with Session(ledger) as s, s.begin():
        assert _run(s, "run-1", first).inserted == 3
    with Session(ledger) as s, s.begin():
        again = _run(s, "run-2", [*first, late])
        assert again.inserted == 1  # only the late one
    with Session(ledger) as s:
        assert runs.count_by_state(s, MAY.id) == {"computed": 4}
        assert s.execute(
            select(Payment.household_id).where(Payment.run_id == "run-2")
        ).scalars().all() == [late["household_id"]]


def test_the_database_refuses_a_second_claim(ledger: Engine) -> None:
    with Session(ledger) as s, s.begin():
        _run(s, "run-1", [household(rsa_cents=1)])
    with Session(ledger) as s:
        claim = s.execute(select(BeneficiaryClaim)).scalars().first()
        assert claim is not None
        values = {
            "scheme_id": claim.scheme_id,
            "beneficiary_key": claim.beneficiary_key,
            "payment_id": claim.payment_id,
        }
        with pytest.raises(IntegrityError):
            s.execute(insert(BeneficiaryClaim).values(**values))


def test_spouse_key_is_claimed_too(ledger: Engine) -> None:
    a, b = nir(1), nir(2)
    with Session(ledger) as s, s.begin():
        _run(s, "run-1", [household(claimant_nir=a, spouse_nir=b, rsa_cents=1)])
    with Session(ledger) as s, s.begin():
        # the couple again, roles swapped, in another fund: already paid
        swapped = household(fund_code="59", claimant_nir=b, spouse_nir=a, rsa_cents=1)
        assert _run(s, "run-2", [swapped]).inserted == 0


def _in_a_file(s: Session, run_id: str) -> None:
    """Every payment of the run placed in one payment file, as a run writing files does."""
    e2e = s.execute(select(Payment.end_to_end_id).where(Payment.run_id == run_id)).scalars().all()
    manifest = {
        "execution_date": "2020-05-15",
        "files": [
            {
                "fund_code": "75",
                "msg_id": f"MSG-{run_id}",
                "path": "f.xml",
                "sha256": "0" * 64,
                "bytes": 1,
                "nb_of_txs": len(e2e),
                "ctrl_sum_cents": 1,
            }
        ],
    }
    ids = files.record_payment_files(s, run_id, manifest, AT)
    files.file_payments(
        s,
        run_id,
        pl.DataFrame({"end_to_end_id": e2e, "payment_file_id": [ids[f"MSG-{run_id}"]] * len(e2e)}),
    )


def test_state_machine(ledger: Engine) -> None:
    with Session(ledger) as s, s.begin():
        _run(s, "run-1", [household(rsa_cents=1)])
        (pid,) = s.execute(select(Payment.id)).scalars().all()
        with pytest.raises(states.IllegalTransition, match="from 'computed' to 'sent'"):
            moves.transition(s, [pid], states.SENT, at=AT, actor="x")
        _in_a_file(s, "run-1")
        assert runs.approve_run(s, "run-1", by="bob", at=AT) == 1
        with pytest.raises(PermissionError, match="final"):
            runs.approve_run(s, "run-1", by="bob", at=AT)
        assert s.get(Payment, pid).state == states.IN_FILE  # type: ignore[union-attr]
        for new in (states.SENT, states.ACCEPTED, states.RETURNED):
            moves.transition(s, [pid], new, at=AT, actor="bank")
        with pytest.raises(states.IllegalTransition):
            moves.transition(s, [pid], states.ACCEPTED, at=AT, actor="bank")


def test_holds_and_release(ledger: Engine) -> None:
    with Session(ledger) as s, s.begin():
        rec = _run(s, "run-1", [household(rsa_cents=1, iban="DE89370400440532013000")])
        assert rec.held == 1
        (pid,) = s.execute(select(Payment.id)).scalars().all()
        holds.release_hold(
            s, pid, by="finance", note="checked with the fund", at=AT, approvers=APPROVERS
        )
        assert s.get(Payment, pid).state == states.COMPUTED  # type: ignore[union-attr]
        with pytest.raises(states.IllegalTransition):
            holds.release_hold(s, pid, by="finance", note="again", at=AT, approvers=APPROVERS)


def test_finance_views(ledger: Engine) -> None:
    with Session(ledger) as s, s.begin():
        _run(
            s,
            "run-1",
            [
                household(rsa_cents=1),
                household(rsa_cents=1, children_birth_dates=[date(2010, 1, 1)]),
                household(rsa_cents=1, iban="DE89370400440532013000"),
            ],
        )
    with ledger.connect() as c:
        row = c.execute(
            text(
                "SELECT households, amount_cents, computed_count, computed_cents, "
                "held_count, held_cents FROM finance_by_fund"
            )
        ).one()
    assert tuple(row) == (3, 55000, 2, 40000, 1, 15000)


def test_event_log_detects_edits_and_deletions(ledger: Engine) -> None:
    with Session(ledger) as s, s.begin():
        _run(s, "run-1", [household(rsa_cents=1)])
        for i in range(3):
            events.append(s, "note", {"i": i}, at=AT)
    with Session(ledger) as s:
        assert events.verify_chain(s) == []
    with Session(ledger) as s, s.begin():
        s.execute(update(Event).where(Event.seq == 3).values(payload='{"i":99}'))
    with Session(ledger) as s:
        assert events.verify_chain(s) == ["event 3: content does not match its hash (edited)"]
    with Session(ledger) as s, s.begin():
        s.execute(update(Event).where(Event.seq == 3).values(payload='{"i":1}'))
        s.execute(Event.__table__.delete().where(Event.seq == 2))
    with Session(ledger) as s:
        problems = events.verify_chain(s)
        assert any("deleted" in p for p in problems), problems


def test_concurrent_appends_keep_one_chain(ledger: Engine) -> None:
    if ledger.dialect.name == "sqlite":
        pytest.skip("SQLite serialises writers itself; the lock matters on PostgreSQL")
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(10):
                with Session(ledger) as s, s.begin():
                    events.append(s, "concurrent", {"worker": n, "i": i}, at=AT)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with Session(ledger) as s:
        assert events.verify_chain(s) == []
        assert s.execute(text("SELECT COUNT(*) FROM event_log")).scalar() == 40


def test_sql_folder_matches_the_code() -> None:
    assert (ROOT / "sql" / "ledger.sql").read_text() == ddl_text()
    assert (ROOT / "sql" / "views.sql").read_text() == sql_file_text()


def test_payments_audit_verify_reports_a_tampered_row(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from payments.cli import app
    from payments.ledger.migrate import engine_for, upgrade

    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    monkeypatch.setenv("PAYMENTS_LEDGER_URL", url)
    upgrade(url)
    engine = engine_for(url)
    with Session(engine) as s, s.begin():
        _run(s, "run-1", [household(rsa_cents=1)])
    runner = CliRunner()
    ok = runner.invoke(app, ["audit", "verify", "--data-dir", str(tmp_path)])
    assert ok.exit_code == 0 and "intact" in ok.output
    with engine.begin() as c:
        c.execute(text("UPDATE event_log SET payload = '{}' WHERE seq = 1"))
    bad = runner.invoke(app, ["audit", "verify", "--data-dir", str(tmp_path)])
    assert bad.exit_code == 1 and "event 1: content does not match its hash" in bad.output


def _constraints(engine: Engine) -> set[tuple[str, str, str]]:
    with engine.connect() as c:
        return {
            (str(t), str(n), str(d))
            for t, n, d in c.execute(
                text(
                    "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
                    "FROM pg_constraint WHERE connamespace = 'public'::regnamespace"
                )
            )
        }


def test_a_bulk_load_keeps_every_guarantee(ledger: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Large loads rebuild the key constraints (PostgreSQL): same answers, same constraints."""
    monkeypatch.setattr(bulk, "BULK_ROWS", 1)
    postgres = ledger.dialect.name == "postgresql"
    before = _constraints(ledger) if postgres else set()
    first = [household(rsa_cents=1) for _ in range(5)]
    with Session(ledger) as s, s.begin():
        assert _run(s, "run-1", first).inserted == 5
    with Session(ledger) as s, s.begin():
        assert _run(s, "run-2", [*first, household(rsa_cents=1)]).inserted == 1
    if postgres:
        assert _constraints(ledger) == before
    with Session(ledger) as s:
        claim_ids = s.execute(select(BeneficiaryClaim.payment_id)).scalars().all()
        assert len(claim_ids) == len(set(claim_ids)) == 6

    # Another writer claimed a key after we looked: the rebuilt primary key refuses
    # the load, and nothing of the run remains.
    late = household(rsa_cents=1)
    with Session(ledger) as s:
        looked = _decisions([late], claims.prior_payments(s, [MAY.id]))  # what we looked at
    key = looked.column("claimant_key")[0].as_py()
    with Session(ledger) as s, s.begin():
        s.execute(
            insert(BeneficiaryClaim).values(
                scheme_id=MAY.id, beneficiary_key=key, payment_id=claim_ids[0]
            )
        )
    monkeypatch.setattr(decisions, "claimed", lambda *args: set())
    with pytest.raises(IntegrityError), Session(ledger) as s, s.begin():
        runs.record_run(
            s, run_id="run-3", scheme=MAY, parameters={}, code_version="t", at=AT, triggered_by="b"
        )
        decisions.record_decisions(s, run_id="run-3", scheme=MAY, decisions=looked, at=AT)
    with Session(ledger) as s:
        assert s.execute(select(Payment).where(Payment.run_id == "run-3")).first() is None
    if postgres:
        assert _constraints(ledger) == before


def test_the_ledger_database_sorts_identifiers_by_bytes(ledger: Engine, caplog) -> None:  # type: ignore[no-untyped-def]
    """PostgreSQL ledgers are created in C collation; another one is upgraded with a warning."""
    if ledger.dialect.name != "postgresql":
        pytest.skip("SQLite compares text by bytes already")
    from payments.ledger.migrate import database_collation

    with ledger.connect() as conn:
        assert database_collation(conn) == "C"
    admin = create_engine(ledger.url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    name = f"t_locale_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        # A database as the server makes it by default (C.UTF-8 on Debian's).
        server_default = conn.execute(
            text("SELECT datcollate FROM pg_database WHERE datname = 'template1'")
        ).scalar_one()
        if server_default in ("C", "POSIX"):
            admin.dispose()
            return
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        with caplog.at_level(logging.WARNING, logger="payments.ledger.migrate"):
            upgrade(ledger.url.set(database=name).render_as_string(hide_password=False))
        assert f"collation is {server_default}, not C" in caplog.text
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


def _ledger_contents(session: Session) -> tuple[list[tuple], list[tuple], list[tuple]]:
    """Payments, claims and holds, with ids replaced by end-to-end ids (comparable across loads)."""
    e2e = dict(session.execute(select(Payment.id, Payment.end_to_end_id)).all())
    payments = sorted(
        session.execute(
            text(
                "SELECT end_to_end_id, scheme_id, beneficiary_key, spouse_key, run_id, fund_code, "
                "household_id, rule_id, base_cents, child_cents, amount_cents, state, reason, "
                "attempt FROM payments"
            )
        ).all()
    )
    claimed = sorted(
        (k, e2e[p])
        for k, p in session.execute(
            text("SELECT beneficiary_key, payment_id FROM beneficiary_claims")
        )
    )
    held = sorted(
        (e2e[p], r) for p, r in session.execute(text("SELECT payment_id, reasons FROM holds"))
    )
    return payments, claimed, held


def test_bulk_and_row_by_row_loads_record_the_same_ledger(
    ledger: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ids given by the bulk load: same payments, claims (spouses too), holds and re-issues."""
    couple = household(rsa_cents=1, spouse_nir=nir(serial=9001), spouse_birth_date=date(1986, 1, 1))
    rows = [
        couple,
        *(household(rsa_cents=1) for _ in range(4)),
        household(rsa_cents=1, iban="DE89370400440532013000"),  # held: foreign IBAN
    ]
    newcomer = household(rsa_cents=1)
    contents = []
    for bulk_rows, scheme_run in ((10**9, "row"), (1, "bulk")):
        monkeypatch.setattr(bulk, "BULK_ROWS", bulk_rows)
        with Session(ledger) as s, s.begin():
            s.execute(text("DELETE FROM holds"))
            s.execute(text("DELETE FROM beneficiary_claims"))
            s.execute(text("DELETE FROM payments"))
        with Session(ledger) as s, s.begin():
            assert _run(s, f"{scheme_run}-1", rows).inserted == 6
            returned = s.execute(
                select(Payment.id).where(Payment.household_id == rows[1]["household_id"])
            ).scalar_one()
            s.execute(update(Payment).where(Payment.id == returned).values(state=states.RETURNED))
        with Session(ledger) as s, s.begin():
            rec = _run(s, f"{scheme_run}-2", [*rows, newcomer])
            assert rec.inserted == 2  # the re-issue and the newcomer
            contents.append(_ledger_contents(s))
    row_by_row, loaded = contents
    strip = lambda payments: [p[:4] + p[5:] for p in payments]  # noqa: E731  run ids differ
    assert strip(loaded[0]) == strip(row_by_row[0])
    assert loaded[1:] == row_by_row[1:]
    assert [p[13] for p in loaded[0]].count(2) == 1  # one re-issue, as attempt 2
    assert len(loaded[1]) == 8  # 7 households, one with a spouse; the re-issue took over its claim
    assert [e for e, _ in loaded[2]] == [p[0] for p in loaded[0] if p[11] == states.HELD]


def test_runs_keyed_with_another_construction_are_never_mixed(ledger: Engine) -> None:
    """A ledger started with other beneficiary keys refuses this code: it would pay all again."""
    from payments.ledger.models import Run

    with Session(ledger) as s, s.begin():
        _run(s, "run-1", [household(rsa_cents=1)])
    with Session(ledger) as s, s.begin():
        run = s.get(Run, "run-1")
        assert run is not None and '"key_version"' in run.parameters
        run.parameters = '{"x":1}'  # as recorded before key versions were (version 1)
    with pytest.raises(runs.KeyVersionError, match="version 1"), Session(ledger) as s:
        _run(s, "run-2", [household(rsa_cents=1)])


def test_a_row_the_server_refuses_fails_the_whole_copy(ledger: Engine) -> None:
    """Rows stream to COPY from a queue (PostgreSQL): a refused row still fails the load."""
    import polars as pl

    with Session(ledger) as s, s.begin():
        _run(s, "run-1", [household(rsa_cents=1)])
    good = {
        "scheme_id": MAY.id,
        "run_id": "run-1",
        "fund_code": "13",
        "rule_id": "r",
        "base_cents": 15000,
        "child_cents": 0,
        "amount_cents": 15000,
        "state": states.COMPUTED,
    }
    rows = [
        {
            **good,
            "beneficiary_key": f"k{i:031d}",
            "household_id": f"{i:010d}",
            "end_to_end_id": f"E2E-{i}",
        }
        for i in range(260_000)  # two slices: the refused row is in the second
    ]
    rows[-1]["amount_cents"] = 1  # the check (amount = base + child) refuses the very last row
    frame = pl.DataFrame(rows)
    with pytest.raises(Exception, match="amount_parts"), Session(ledger) as s, s.begin():
        bulk.insert_frame(s, Payment, frame)
    with Session(ledger) as s:
        assert (
            s.execute(select(Payment).where(Payment.household_id == "0000000000")).first() is None
        )


def test_the_migrations_build_what_the_models_declare(ledger: Engine) -> None:
    """Alembic's own comparison: the migrated database and the models agree, key order included."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy import inspect

    from payments.ledger.models import Base

    with ledger.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
        found = inspect(conn)
        assert found.get_pk_constraint("beneficiary_claims")["constrained_columns"] == [
            "beneficiary_key",
            "scheme_id",
        ]
        assert ["beneficiary_key", "scheme_id", "attempt"] in [
            u["column_names"] for u in found.get_unique_constraints("payments")
        ]


def test_the_keys_first_migration_goes_down_and_up(ledger: Engine) -> None:
    """0004 reorders keys on a ledger with rows, both ways, and keeps every row."""
    from alembic import command
    from sqlalchemy import inspect

    from payments.ledger.migrate import alembic_config

    with Session(ledger) as s, s.begin():
        _run(s, "run-1", [household(rsa_cents=1), household(rsa_cents=1)])
    url = ledger.url.render_as_string(hide_password=False)
    command.downgrade(alembic_config(url), "0003")
    with ledger.connect() as conn:
        pk = inspect(conn).get_pk_constraint("beneficiary_claims")["constrained_columns"]
        assert pk == ["scheme_id", "beneficiary_key"]
    upgrade(url)
    with Session(ledger) as s:
        assert len(s.execute(select(BeneficiaryClaim)).all()) == 2
        assert runs.count_by_state(s, MAY.id) == {"computed": 2}


AWKWARD = ["", None, "a,b", 'say "hi"', "\\.", "two\nlines", " padded ", "Lœuillet", "\\N", "NULL"]


def test_copy_csv_writes_what_arrows_csv_writer_writes() -> None:
    """The COPY text (polars) is byte for byte Arrow's writer's, the reference it replaced."""
    import io

    import polars as pl
    import pyarrow.csv as pacsv

    frame = pl.DataFrame(
        {
            "text": AWKWARD,
            "number": [0, -1, None, 2**40, 7, 8, 9, 10, 11, 12],
            "key": [f"{i:032x}" for i in range(len(AWKWARD))],
        }
    )
    sink = io.BytesIO()
    pacsv.write_csv(frame.to_arrow(), sink, pacsv.WriteOptions(include_header=False))
    assert bulk.copy_csv(frame) == sink.getvalue()


def test_copy_keeps_empty_text_apart_from_null(ledger: Engine) -> None:
    """An empty reason stays empty, a missing one stays NULL, odd text comes back as sent."""
    import polars as pl

    with Session(ledger) as s, s.begin():
        _run(s, "run-1", [household(rsa_cents=1)])
    n = len(AWKWARD)
    frame = pl.DataFrame(
        {
            "scheme_id": [MAY.id] * n,
            "beneficiary_key": [f"odd{i:029d}" for i in range(n)],
            "run_id": ["run-1"] * n,
            "fund_code": ["13"] * n,
            "household_id": [f"{i:010d}" for i in range(n)],
            "rule_id": ["r"] * n,
            "base_cents": [15000] * n,
            "child_cents": [0] * n,
            "amount_cents": [15000] * n,
            "end_to_end_id": [f"ODD-{i}" for i in range(n)],
            "state": [states.COMPUTED] * n,
            "reason": AWKWARD,
        }
    )
    with Session(ledger) as s, s.begin():
        bulk.insert_frame(s, Payment, frame)
    with Session(ledger) as s:
        got = dict(
            s.execute(
                select(Payment.end_to_end_id, Payment.reason).where(
                    Payment.end_to_end_id.like("ODD-%")
                )
            ).all()
        )
    assert got == {f"ODD-{i}": reason for i, reason in enumerate(AWKWARD)}
