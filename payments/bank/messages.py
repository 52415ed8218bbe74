"""A bank report's XML, read as banks write it: any prefix, any ISO version, a BOM, comments.

Told apart by the message element under ``Document`` (not by namespace, which
banks vary: ``pain.002.001.03.ch.02``). When the namespace is exactly an ISO
one we hold the official schema of, the whole report is validated against it
before a line is read: a report that fails is refused with the schema's own
sentence, never half-applied. A bank's variant namespace is read the same way,
unvalidated (we have no official schema for it).
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from payments.sepa.schemas import message_name, official, schema

#: The message element under ``Document`` → which report it is.
KINDS = {
    "CstmrPmtStsRpt": "pain.002",
    "BkToCstmrDbtCdtNtfctn": "camt.054",
    "BkToCstmrStmt": "camt.053",
}
_BOM = b"\xef\xbb\xbf"


class ReportError(ValueError):
    """A report that cannot be read as a pain.002, camt.054 or camt.053; the message says why."""


@dataclass(frozen=True)
class Message:
    body: etree._Element  # the message element (CstmrPmtStsRpt…), comments and PIs removed
    kind: str  # pain.002 | camt.054 | camt.053
    name: str | None  # the version its namespace names (pain.002.001.10), when it names one
    validated: bool  # against the official schema of ``name``


def local(el: etree._Element) -> str:
    """An element's name without its namespace."""
    return str(etree.QName(el).localname)


def _parse(data: bytes) -> etree._Element:
    if data.startswith(_BOM):
        data = data[len(_BOM) :]
    data = data.lstrip(b" \t\r\n")  # some banks put a newline before the declaration
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, remove_comments=True, remove_pis=True
    )
    try:
        return etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise ReportError(f"not well-formed XML: {exc}") from None


def read_message(data: bytes) -> Message:
    """The report's message element, validated when its namespace is an official one."""
    root = _parse(data)
    body = root if local(root) in KINDS else next(iter(root), None)
    if body is None or local(root) not in ("Document", *KINDS) or local(body) not in KINDS:
        raise ReportError(
            "neither a pain.002 status report nor a camt.054 notification nor a camt.053 statement"
        )
    kind = KINDS[local(body)]
    namespace = etree.QName(body).namespace
    name = message_name(namespace)
    if name is not None and not name.startswith(kind):
        raise ReportError(f"a {local(body)} element in the {name} namespace")
    checked = official(namespace)
    if checked is not None:
        xsd = schema(checked)
        if not xsd.validate(root.getroottree()):
            error = next(iter(xsd.error_log))
            raise ReportError(f"not valid {checked} (line {error.line}): {error.message}")
    return Message(body, kind, name, checked is not None)
