"""What every payments page shares: the frame, the navigation, tables and charts as HTML.

Pages are plain server-rendered HTML, no script: they show inside Airflow's
UI (an iframe under *Browse*) and open alone as well. Every value a fund, a
bank or a user controls goes through :func:`esc`; amounts arrive as integer
cents and are formatted here for display only. Charts are inline SVG.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence

from payments.money import euros
from payments.ui.access import PERMISSIONS, Role

#: The pages, in navigation order: (path under the app, title, the action that reads it).
PAGES = (
    ("runs", "Runs", "read_run"),
    ("holds", "Holds", "read_holds"),
    ("quarantine", "Quarantine", "read_quarantine"),
    ("bank", "Bank", "read_bank"),
    ("reconciliation", "Reconciliation", "read_reconciliation"),
    ("audit", "Audit", "read_audit"),
)

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.2rem 1.5rem; color: #1d2733; }
nav { margin-bottom: 1rem; } nav a { margin-right: 1rem; } nav a.here { font-weight: bold; }
table { border-collapse: collapse; margin-bottom: 1.2rem; }
th, td { border: 1px solid #ccd3db; padding: 0.2rem 0.5rem; } th { background: #eef2f6; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tfoot td { font-weight: bold; } .big { font-size: 1.3rem; }
.note { color: #4b5a69; } .warn { color: #8a5a00; } .bad { color: #a11; } .ok { color: #176c2e; }
.badge { display: inline-block; padding: 0.1rem 0.5rem; border-radius: 0.6rem;
  background: #ffe9b3; color: #5c4200; font-weight: bold; }
form.inline { display: inline; } figure { margin: 0 0 1.2rem 0; }
"""


def esc(value: object) -> str:
    """Text for HTML: escaped, ``None`` as empty."""
    return "" if value is None else html.escape(str(value))


def page(title: str, body: str, *, base: str, roles: frozenset[Role], here: str = "") -> str:
    """A whole page: the navigation shows only the pages the user's roles may read."""
    links = " ".join(
        f'<a href="{base}/{path}"{" class=here" if path == here else ""}>{name}</a>'
        for path, name, action in PAGES
        if roles & PERMISSIONS[action]
    )
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
        f"<style>{STYLE}</style></head><body><nav>{links}</nav><h1>{esc(title)}</h1>"
        f"{body}</body></html>"
    )


def table(
    table_id: str, headings: Sequence[str], rows: Iterable[Sequence[str]], *, empty: str = "none"
) -> str:
    """A table; cells are HTML already (escape with :func:`esc`, or :func:`num` for figures)."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headings)
    body = "".join("<tr>" + "".join(_cell(c) for c in row) + "</tr>" for row in rows)
    if not body:
        body = f'<tr><td colspan="{len(headings)}" class="note">{esc(empty)}</td></tr>'
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _cell(cell: str) -> str:
    return cell if cell.startswith("<td") else f"<td>{cell}</td>"


def num(value: int) -> str:
    """A count, right-aligned, thousands split by a thin space that every font shows."""
    return f'<td class="num">{value:,}</td>'.replace(",", "\u2009")


def money(cents: int) -> str:
    """An amount in euros from integer cents, right-aligned."""
    return f'<td class="num">{esc(euros(int(cents)))}</td>'


def bar_chart(title: str, items: Sequence[tuple[str, int]], *, chart_id: str = "") -> str:
    """An inline SVG bar chart (no script, no library): label and amount in cents."""
    if not items:
        return ""
    top = max(v for _, v in items) or 1
    height = 18 * len(items) + 24
    bars = []
    for i, (label, value) in enumerate(items):
        width = round(300 * value / top)
        y = 20 + 18 * i
        bars.append(
            f'<text x="0" y="{y + 12}" font-size="11">{esc(label)}</text>'
            f'<rect x="200" y="{y}" width="{width}" height="14" fill="#4a7bb7">'
            f"<title>{esc(label)}: {esc(euros(value))}</title></rect>"
            f'<text x="{206 + width}" y="{y + 12}" font-size="11">{esc(euros(value))}</text>'
        )
    ident = f' id="{chart_id}"' if chart_id else ""
    return (
        f"<figure{ident}><figcaption>{esc(title)}</figcaption>"
        f'<svg role="img" aria-label="{esc(title)}" width="640" height="{height}">'
        f"{''.join(bars)}</svg></figure>"
    )
