"""``python -m payments`` is the ``payments`` command."""

from payments.cli import app

app(prog_name="payments")
