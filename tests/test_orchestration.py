"""The DAG's decisions, without Airflow running: parameters, four eyes, the cut-off, the texts."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from payments.errors import FourEyesError
from payments.orchestration.deadline import bank_cutoff, cutoff_for_conf
from payments.orchestration.decision import Answer, check_respondent
from payments.orchestration.receiving import workspace_for
from payments.orchestration.request import RequestError, parse_request, scheme_for
from payments.orchestration.summary import approval_text, euros
from payments.registry import load_registry
from payments.schemes import load_scheme


def test_defaults_pay_every_fund_under_the_default_scheme() -> None:
    request = parse_request({})
    assert request.scheme_id == "aes-2020-05"
    assert request.funds == tuple(load_registry().codes)
    assert request.payment_date is None and request.dry_run is False


def test_funds_are_taken_in_registry_order_from_a_list_or_a_text() -> None:
    assert parse_request({"funds": ["75", "01"]}).funds == ("01", "75")
    assert parse_request({"funds": "75, 01"}).funds == ("01", "75")


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"scheme_id": "aes-2021-01"}, "param scheme_id"),
        ({"funds": ["01", "999"]}, "param funds: unknown fund codes ['999']"),
        ({"payment_date": "15/05/2020"}, "param payment_date"),
        ({"dry_run": "yes"}, "param dry_run"),
    ],
)
def test_a_wrong_parameter_is_named(params: dict[str, object], named: str) -> None:
    with pytest.raises(RequestError, match=named.replace("[", r"\[").replace("]", r"\]")):
        parse_request(params)


def test_a_moved_payment_date_changes_the_scheme_text_and_so_the_run() -> None:
    scheme = load_scheme("aes-2020-05")
    moved = scheme_for("aes-2020-05", date(2020, 5, 18))
    assert moved.spec.payment_date == date(2020, 5, 18)
    assert moved.text != scheme.text and "set by the run" in moved.text
    assert moved.rules[0].spec == scheme.rules[0].spec
    assert scheme_for("aes-2020-05", scheme.spec.payment_date) is not moved
    with pytest.raises(RequestError, match="before the scheme's age date"):
        scheme_for("aes-2020-05", date(2019, 1, 1))


def test_four_eyes_on_our_side() -> None:
    def said(user: str) -> Answer:
        return Answer(user, user, "Approve", datetime(2020, 5, 14, 9))

    check_respondent(said("finance"), "operator", ("finance",))
    with pytest.raises(FourEyesError, match="four eyes"):
        check_respondent(said("finance"), "finance", ("finance",))
    with pytest.raises(FourEyesError, match="not a finance approver"):
        check_respondent(said("operator"), "admin", ("finance",))
    with pytest.raises(FourEyesError, match="names no user"):
        check_respondent(said(""), "admin", ("finance",))


def test_respondents_exclude_the_trigger_user_and_are_never_empty() -> None:
    from payments.orchestration.approval import respondents

    assert respondents(("finance", "cfo"), "cfo") == [{"id": "finance", "name": "finance"}]
    with pytest.raises(FourEyesError, match="nobody may approve it"):
        respondents(("finance",), "finance")


def test_bank_cutoff_is_the_day_before_the_payment_at_16_utc() -> None:
    assert bank_cutoff(date(2020, 5, 15)) == datetime(2020, 5, 14, 16, 0, tzinfo=UTC)
    assert cutoff_for_conf({}) == datetime(2020, 5, 14, 16, 0, tzinfo=UTC)
    assert cutoff_for_conf({"scheme_id": "youth-2020-06"}) == datetime(
        2020, 6, 24, 16, 0, tzinfo=UTC
    )
    assert cutoff_for_conf({"payment_date": "2020-05-20"}) == datetime(
        2020, 5, 19, 16, 0, tzinfo=UTC
    )
    assert cutoff_for_conf({"scheme_id": "nope"}) is None


def test_a_run_that_starts_after_its_cutoff_gets_no_deadline() -> None:
    """The review: every run of a 2020 scheme showed a red "Missed" deadline at once."""
    cutoff = datetime(2020, 5, 14, 16, 0, tzinfo=UTC)
    assert cutoff_for_conf({}, started=datetime(2020, 5, 14, 8, 0, tzinfo=UTC)) == cutoff
    assert cutoff_for_conf({}, started=cutoff) is None
    assert cutoff_for_conf({}, started=datetime(2026, 12, 2, 9, 0, tzinfo=UTC)) is None


def test_workspace_is_a_safe_folder_name_per_airflow_run() -> None:
    a = workspace_for("manual__2020-05-14T08:00:00+00:00")
    assert a.startswith("runs/.staging-manual__2020-05-14T08_00_00_00_00-")
    assert a != workspace_for("manual__2020-05-14T08:00:00+00:01")
    assert "/" not in a.removeprefix("runs/")


def test_euros_are_formatted_from_integer_cents() -> None:
    assert euros(0) == "0.00 €"
    assert euros(123456789) == "1\u202f234\u202f567.89 €"
    assert euros(-5) == "-0.05 €"


def test_the_approval_text_shows_what_leaves_what_is_held_and_what_is_missing() -> None:
    summary = {
        "run_id": "aes-2020-05-abc",
        "scheme_id": "aes-2020-05",
        "triggered_by": "operator",
        "validation": {
            "rows_read": 10,
            "accepted": 9,
            "quarantined": 1,
            "funds": {"expected": 2, "received": 1, "missing": 1, "rejected": 0},
        },
        "payment_files": {"files": 1, "payments": 7, "cents": 135000},
        "by_rule": {"rsa_ass": {"households": 7, "children": 6, "payable_cents": 135000}},
        "by_hold_reason": {"shared_iban": {"households": 2, "cents": 30000}},
        "by_fund": [
            {
                "fund": "01",
                "status": "received",
                "rows_read": 10,
                "accepted": 9,
                "quarantined": 1,
                "held": 2,
                "payments": 7,
                "payments_cents": 135000,
            }
        ],
        "not_received": [{"fund": "02", "message": "funds/02/x.csv: no file received"}],
    }
    summary["national"] = {"already_paid": {"households": 3}}
    text = approval_text(summary)
    first, *_ = text.splitlines()
    assert first == "## To be paid: 7 payments, 1\u202f350.00 €"
    assert "in 1 signed files" in text
    assert "**not paid again**: 3 households" in text
    assert "Held for review, not in the files: 2 households, 300.00 €" in text
    assert "| shared_iban | 2 | 300.00 € |" in text
    assert "- 02: funds/02/x.csv: no file received" in text
    assert "triggered by **operator**, who cannot approve it" in text
    # The per-fund table is on the run's page, linked: the buttons stay in sight.
    assert "| 01 |" not in text and "(/payments/runs/aes-2020-05-abc)" in text


def test_the_deadline_alert_names_the_run_scheme_and_cutoff() -> None:
    from payments.orchestration.deadline import late_message

    context = {
        "dag_run": {"dag_run_id": "manual__2020-05-14", "conf": {"scheme_id": "youth-2020-06"}},
        "deadline": {"deadline_time": "2020-06-24T16:00:00+00:00"},
    }
    text = late_message(context)
    assert "manual__2020-05-14" in text and "youth-2020-06" in text
    assert "2020-06-24T16:00:00+00:00" in text
    assert "payment batch ?" in late_message(None)


def test_the_trigger_form_offers_funds_and_scheme_titles_and_needs_neither() -> None:
    """The form's JSON schema, as the UI renders it and the API validates it (review:
    "Funds" marked required, no list of codes, raw scheme ids, a locale date)."""
    from airflow.sdk.definitions.param import ParamsDict

    from payments.orchestration.form import batch_params

    params = batch_params()
    registry = load_registry()
    funds = params["funds"]
    assert "null" in funds.schema["type"], "empty means every fund: the field is optional"
    assert funds.schema["examples"] == list(registry.codes), "a multi-select of the codes"
    assert funds.schema["values_display"]["13"].startswith("13 ")  # the code and the fund's name
    for empty in (None, []):
        assert funds.resolve(empty) == empty
        assert parse_request({"funds": empty}).funds == tuple(registry.codes)
    with pytest.raises(Exception, match="'999' is not one of"):
        funds.resolve(["999"])
    titles = params["scheme_id"].schema["values_display"]
    assert titles["aes-2020-05"] == "aes-2020-05: Aide exceptionnelle de solidarité (mai 2020)"
    assert set(titles) == set(params["scheme_id"].schema["enum"])
    date_param = params["payment_date"]
    assert date_param.resolve("2020-05-14") == "2020-05-14"
    with pytest.raises(Exception, match="does not match"):
        date_param.resolve("05/14/2020")
    ParamsDict(params).validate()  # the defaults pass the schema as they are
