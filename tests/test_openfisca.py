"""Our schemes against OpenFisca-France, the open legal model of French benefits.

For every case of aes-2020-05 and aes-2020-11 that both models can say
something about (RSA, ASS, AER, prime forfaitaire, housing aids, children,
ages, student status), the cents our production path pays must be OpenFisca's
``covid_aide_exceptionnelle_famille_montant`` for the month (May 2020; October
2020 for the November aid, whose reference months are September and October).
Where the models differ by design, ``BY_DESIGN`` says why, with the article,
and the test checks they do differ (so the list stays true).

OpenFisca runs in its own interpreter (``make openfisca`` builds
.venv-openfisca from constraints-openfisca.txt: its pins conflict with
Airflow's); ``tests/openfisca_oracle.py`` is the script it runs.
"""

from __future__ import annotations

import json
import os
import subprocess
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.scheme_cases import DEFAULT_ROW, Case, cases_of, run_cases

OPENFISCA_PYTHON = Path(
    os.environ.get("PAYMENTS_OPENFISCA_PYTHON", ROOT / ".venv-openfisca" / "bin" / "python")
)
#: The month OpenFisca computes each scheme's aid for (it also reads the month before).
PERIOD = {"aes-2020-05": "2020-05", "aes-2020-11": "2020-10"}

_AGE = "OpenFisca counts ages on the first day of the month; the decree on the payment date"
_STUDENT = (
    "OpenFisca excludes every student; décret 2020-769 art. 1 II, which décret 2020-1453 "
    "repeats, keeps students who are apprentices « ou s'ils sont salariés »"
)
#: (scheme, case) → why OpenFisca gives another amount, by design of one model or the other.
BY_DESIGN: dict[tuple[str, str], str] = {
    ("aes-2020-05", "child-20-on-the-age-date"): _AGE + " (child 19 on 1 May, 20 on 15 May)",
    ("aes-2020-05", "child-20-the-day-before"): _AGE + " (child 19 on 1 May, 20 on 15 May)",
    ("aes-2020-11", "salaried-student"): _STUDENT,
    ("aes-2020-11", "partner-under-25-salaried-student"): _STUDENT,
    ("aes-2020-11", "25th-birthday-on-the-age-date"): _AGE + " (24 on 1 October, 25 on 27 Nov.)",
    ("aes-2020-11", "25-the-day-before"): _AGE + " (24 on 1 October, 25 on 27 November)",
    ("aes-2020-11", "child-20-on-the-age-date"): _AGE + " (child 19 on 1 Oct., 20 on 27 Nov.)",
    ("aes-2020-11", "child-born-on-the-age-date"): _AGE + " (not born on 1 October)",
}


def _in_scope(case: Case) -> bool:
    """What OpenFisca models: one fund's household, no RSO, nothing paid before."""
    funds = {r.get("fund_code", "13") for r in case.rows}
    return (
        len(funds) == 1 and not case.paid_before and not any(r.get("rso_cents") for r in case.rows)
    )


def _household(scheme_id: str, case: Case) -> dict[str, Any]:
    first = {**DEFAULT_ROW, **case.rows[0]}
    months: dict[str, dict[str, float]] = {}
    last_month = PERIOD[scheme_id]
    for row in case.rows:
        r = {**DEFAULT_ROW, **row}
        month = str(row.get("reference_month", _last_reference_month(scheme_id, last_month)))
        months[month] = {
            "rsa": r["rsa_cents"] / 100,
            "ass": r["ass_cents"] / 100,
            "aer": r["aer_cents"] / 100,
            "prime_forfaitaire": r["prime_forfaitaire_cents"] / 100,
            "housing": (r["apl_cents"] + r["alf_cents"] + r["als_cents"]) / 100,
        }
    spouse = first["spouse_birth_date"]
    return {
        "id": case.id,
        "claimant": {
            "birth": first["claimant_birth_date"].isoformat(),
            "student": first["claimant_student_status"] in ("student", "salaried_student"),
        },
        "spouse": {
            "birth": spouse.isoformat(),
            "student": first["spouse_student_status"] in ("student", "salaried_student"),
        }
        if spouse
        else None,
        "children": [d.isoformat() for d in first["children_birth_dates"] or []],
        "months": months,
    }


def _last_reference_month(scheme_id: str, period: str) -> str:
    from payments.schemes import load_scheme

    return load_scheme(scheme_id).spec.reference_months[-1]


def openfisca(period: str, households: list[dict[str, Any]]) -> dict[str, int]:
    if not OPENFISCA_PYTHON.exists():
        pytest.fail(f"{OPENFISCA_PYTHON}: no OpenFisca interpreter; run `make openfisca`")
    out = subprocess.run(
        [str(OPENFISCA_PYTHON), str(ROOT / "tests" / "openfisca_oracle.py")],
        input=json.dumps({"period": period, "households": households}),
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    return {k: int(v) for k, v in json.loads(out.stdout).items()}


@pytest.mark.parametrize("scheme_id", sorted(PERIOD))
def test_our_amounts_are_openfisca_s_for_households_both_model(
    scheme_id: str, tmp_path: Path
) -> None:
    ours = {o.case.id: o.cents for o in run_cases(scheme_id, tmp_path)}
    cases = [c for c in cases_of(scheme_id) if _in_scope(c)]
    assert len(cases) >= 15, "most cases are in both models' scope"
    theirs = openfisca(PERIOD[scheme_id], [_household(scheme_id, c) for c in cases])
    agree, differ = [], []
    for case in cases:
        why = BY_DESIGN.get((scheme_id, case.id))
        same = ours[case.id] == theirs[case.id]
        line = f"{case.id}: ours {ours[case.id]}, OpenFisca {theirs[case.id]}"
        if why is None and not same:
            differ.append(f"{line} ({case.article})")
        if why is not None and same:
            agree.append(f"{line}: listed as differing by design ({why}), but they agree")
    assert not differ and not agree, "\n".join(differ + agree)


def test_the_oracle_reads_a_household_as_openfisca_does() -> None:
    """One household by hand: RSA with two children in May 2020 is 150 + 2 x 100 euros."""
    household = {
        "id": "h",
        "claimant": {"birth": date(1985, 7, 14).isoformat(), "student": False},
        "spouse": None,
        "children": ["2012-03-04", "2016-11-30"],
        "months": {"2020-05": {"rsa": 500.0}},
    }
    assert openfisca("2020-05", [household]) == {"h": 35000}
