"""Moving the payment date never lifts the recent-bank-change hold, and finance sees the date.

N5 of the second review: the trigger form's payment date was also the date
recent bank changes were counted back from. Moved five weeks later, every
change in the files looked old: 14 holds disappeared, and the approval text
named no date.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from payments.orchestration.request import parse_request
from payments.pipeline import run_batch
from payments.run_spec import RunOptions
from payments.schemes import load_scheme
from tests.faults.runs import sample
from tests.households import SECRET


def _recent_changes_held(root: Path, options: RunOptions) -> int:
    result = run_batch(root, load_scheme("aes-2020-05"), secret=SECRET, options=options)
    assert result.compute is not None
    by_reason = result.compute.preview["by_hold_reason"]
    return int(by_reason.get("recent_bank_change", {}).get("households", 0))


def test_a_later_payment_date_holds_as_many_recent_bank_changes(tmp_path: Path) -> None:
    sample(tmp_path, ("13", "75"), households=2_000, seed=3)
    on_time = _recent_changes_held(tmp_path, RunOptions())
    assert on_time > 0, "the sample should change some bank details in the month before"
    five_weeks_later = RunOptions(run_date=date(2020, 6, 20))
    assert _recent_changes_held(tmp_path, five_weeks_later) == on_time
    earlier = RunOptions(run_date=date(2020, 5, 1))  # earlier holds more, never fewer
    assert _recent_changes_held(tmp_path, earlier) >= on_time


def test_the_forms_payment_date_moves_the_payment_not_the_hold_window() -> None:
    request = parse_request({"payment_date": "2020-06-20"})
    assert request.scheme().spec.payment_date == date(2020, 6, 20)  # the files' date
    assert request.hold_date() == date(2020, 5, 15)  # the decree's: the window stays
    assert parse_request({"payment_date": "2020-05-12"}).hold_date() == date(2020, 5, 12)
