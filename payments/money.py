"""Amounts for people to read: integer cents shown as euros (display only, never a float)."""

from __future__ import annotations


def euros(cents: int) -> str:
    """``123456789`` → ``1 234 567.89 €`` (narrow no-break spaces between thousands)."""
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(cents), 100)
    return f"{sign}{whole:,}.{part:02d} €".replace(",", "\u202f")
