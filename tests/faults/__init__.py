"""Reproductions of the security and reliability review's findings, one module per promise.

Each test fails on the code the review read and passes since the fix; the
finding's number (H1, M2, …) is in its docstring. ../shared/reviews/security-2026-12.md
has the reproductions these were built from.
"""
