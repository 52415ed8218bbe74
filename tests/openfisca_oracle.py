"""OpenFisca-France as a legal oracle: run by the OpenFisca interpreter (.venv-openfisca).

Reads households as JSON on stdin — ``{"period": "2020-05", "households": [{"id",
"claimant": {...}, "spouse": {...} | null, "children": [birth dates], "months":
{"2020-04": {"rsa": euros, "ass": euros, ...}}}]}`` — and writes
``{id: cents}``: OpenFisca's ``covid_aide_exceptionnelle_famille_montant`` for
the period. Every benefit is given for the period's month and the month before
(zero where the household has none), so OpenFisca computes none of them itself.

Standard library and OpenFisca only: this file is not imported by the tests'
interpreter (OpenFisca's pins conflict with Airflow's), only run by the other.
"""

from __future__ import annotations

import json
import sys
from datetime import date


def _months(period: str) -> list[str]:
    year, month = (int(p) for p in period.split("-"))
    before = date(year, month, 1)
    previous = (
        before.replace(year=year - 1, month=12) if month == 1 else before.replace(month=month - 1)
    )
    return [f"{previous:%Y-%m}", period]


def situation(period: str, households: list[dict]) -> dict:
    months = _months(period)
    individus: dict = {}
    familles: dict = {}
    foyers: dict = {}
    menages: dict = {}
    for h in households:
        hid = h["id"]
        parents = [f"{hid}-claimant"] + ([f"{hid}-spouse"] if h.get("spouse") else [])
        children = [f"{hid}-child{i}" for i in range(len(h["children"]))]
        people = {
            f"{hid}-claimant": h["claimant"],
            **({f"{hid}-spouse": h["spouse"]} if h.get("spouse") else {}),
        }
        for pid, person in people.items():
            given = {m: h["months"].get(m, {}) for m in months}
            individus[pid] = {
                "date_naissance": {"ETERNITY": person["birth"]},
                "etudiant": {m: person["student"] for m in months},
                **{
                    var: {
                        m: (given[m].get(key, 0) if pid.endswith("claimant") else 0) for m in months
                    }
                    for var, key in (
                        ("ass", "ass"),
                        ("aer", "aer"),
                        ("prime_forfaitaire_mensuelle_reprise_activite", "prime_forfaitaire"),
                    )
                },
            }
        for cid, birth in zip(children, h["children"], strict=True):
            individus[cid] = {"date_naissance": {"ETERNITY": birth}}
        familles[hid] = {
            "parents": parents,
            "enfants": children,
            "rsa": {m: h["months"].get(m, {}).get("rsa", 0) for m in months},
            "aide_logement": {m: h["months"].get(m, {}).get("housing", 0) for m in months},
        }
        foyers[hid] = {"declarants": parents, "personnes_a_charge": children}
        menages[hid] = {
            "personne_de_reference": parents[:1],
            **({"conjoint": parents[1:]} if len(parents) > 1 else {}),
            "enfants": children,
        }
    return {
        "individus": individus,
        "familles": familles,
        "foyers_fiscaux": foyers,
        "menages": menages,
    }


def main() -> None:
    from openfisca_core.simulation_builder import SimulationBuilder
    from openfisca_france import FranceTaxBenefitSystem

    request = json.load(sys.stdin)
    households = request["households"]
    simulation = SimulationBuilder().build_from_entities(
        FranceTaxBenefitSystem(), situation(request["period"], households)
    )
    amounts = simulation.calculate("covid_aide_exceptionnelle_famille_montant", request["period"])
    ids = simulation.populations["famille"].ids
    json.dump(
        {str(i): round(float(a) * 100) for i, a in zip(ids, amounts, strict=True)}, sys.stdout
    )


if __name__ == "__main__":
    main()
