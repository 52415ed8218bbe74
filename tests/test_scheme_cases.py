"""Every scheme's cases file, through the production path: each household gets what its
decree says, under the rule the case names (the article is in the failure message)."""

from __future__ import annotations

from pathlib import Path

import pytest

from payments.schemes import scheme_ids
from tests.scheme_cases import cases_of, run_cases


@pytest.mark.parametrize("scheme_id", scheme_ids())
def test_every_case_of_the_scheme_is_paid_as_its_decree_says(
    scheme_id: str, tmp_path: Path
) -> None:
    wrong = [
        f"{o.case.id} ({o.case.article}): expected {o.case.expect_cents} cents by "
        f"{o.case.expect_rule}, got {o.cents} by {o.rule} {o.statuses}"
        for o in run_cases(scheme_id, tmp_path)
        if not o.holds
    ]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("scheme_id", scheme_ids())
def test_every_scheme_has_cases_and_every_rule_quotes_its_article(scheme_id: str) -> None:
    from payments.schemes import load_scheme

    scheme = load_scheme(scheme_id)
    assert scheme.spec.legifrance, scheme_id
    for rule in scheme.spec.rules:
        assert rule.text and rule.legifrance, f"{scheme_id}: rule {rule.id}"
    cases = cases_of(scheme_id)
    assert len({c.id for c in cases}) == len(cases), "case ids are unique"
    decided = {c.expect_rule for c in cases}
    assert {r.id for r in scheme.spec.rules} <= decided, "every rule has a case that it decides"
    assert None in decided, "and at least one household the scheme pays nothing"
