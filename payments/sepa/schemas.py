"""The official ISO 20022 schemas this project writes and reads, vendored with their hashes.

The XSDs live in ``payments/reference/iso20022/`` as published (sources in
docs/payments.md); each is refused at load if its SHA-256 is not the one
pinned here, so a schema edited in place cannot make a bad file pass.
"""

from __future__ import annotations

import hashlib
import re
from functools import cache
from importlib import resources

from lxml import etree

ISO_NAMESPACE = "urn:iso:std:iso:20022:tech:xsd:"

#: Message name → SHA-256 of its vendored XSD.
XSD_SHA256 = {
    "camt.053.001.02": "05ec472590dda5e433fd646e9cf3849fa1ba01c033052aaca3089cec6862692d",
    "camt.053.001.08": "c3cfac080dc31476bde7444b05d00e1b23558d5e44529e58d0ad562e6013873d",
    "camt.054.001.02": "8bb91f1d645277487b4262538c9064161e8feb48ceb8b0c680716fd07c32da01",
    "camt.054.001.04": "1bb115c106bd7ee4fac82520b477ee8ea40a8686a9111ff182e33a14ae0014d2",
    "camt.054.001.08": "2b392a1f7e70e70902fd0d803ff85989613bd1cae351663240b0bb9243be2c28",
    "pain.001.001.03": "87bd9b06f7f74128764d304af60f96f0d5583c92031113a892048272c8934d14",
    "pain.001.001.09": "de038b373e47b0077b1832ddd81f4b2f1eb25d35721f62da1e38b7f5a09fda24",
    "pain.002.001.03": "c0c2b98f51638147598678bbec3d5aedfa270a819c2fda8014ba3c34a5972195",
    "pain.002.001.10": "2f9f8d0e9891fa9f31ccf0576397afe501614384d688ae6e43ba694b3d24b0cf",
}

_MESSAGE = re.compile(r"(pain|camt)\.\d{3}\.\d{3}\.\d{2}")


def message_name(namespace: str | None) -> str | None:
    """``pain.002.001.03`` for its ISO namespace and for a bank's variant of it
    (``…/pain.002.001.03.ch.02.xsd``); None when the namespace names no message."""
    found = _MESSAGE.search(namespace or "")
    return found.group(0) if found else None


def official(namespace: str | None) -> str | None:
    """The message name when ``namespace`` is exactly an ISO one we hold the schema of."""
    if namespace is None or not namespace.startswith(ISO_NAMESPACE):
        return None
    name = namespace.removeprefix(ISO_NAMESPACE)
    return name if name in XSD_SHA256 else None


@cache
def schema(name: str) -> etree.XMLSchema:
    """The vendored official XSD of ``name``, refused if its SHA-256 is not the pinned one."""
    if name not in XSD_SHA256:
        raise KeyError(f"no vendored schema for {name!r}")
    data = resources.files("payments.reference").joinpath(f"iso20022/{name}.xsd").read_bytes()
    if hashlib.sha256(data).hexdigest() != XSD_SHA256[name]:
        raise RuntimeError(f"vendored {name}.xsd does not have its published SHA-256")
    return etree.XMLSchema(etree.fromstring(data))
