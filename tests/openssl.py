"""The stock ``openssl`` command a bank runs to verify a detached signature."""

from __future__ import annotations

import subprocess
from pathlib import Path


def openssl_verify(data: Path, cert: Path) -> subprocess.CompletedProcess[str]:
    """``openssl cms -verify`` of ``data`` against ``data.p7s``, trusting ``cert``."""
    return subprocess.run(
        [
            "openssl",
            "cms",
            "-verify",
            "-binary",
            "-inform",
            "DER",
            "-in",
            f"{data}.p7s",
            "-content",
            str(data),
            "-CAfile",
            str(cert),
            "-purpose",
            "any",
            "-out",
            "/dev/null",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
