"""``payments verify``: is this batch exactly what was signed?

Checks, and reports every problem found (never stops at the first):
the manifest's signature; that the files on disk are exactly the manifest's (one
added or removed is reported); each file's size, SHA-256 and signature; the XML
against the ISO 20022 schema (whole file up to ``FULL_SCHEMA_BYTES``, else the
headers and a sample of transactions); and NbOfTxs / CtrlSum in the group
header, the payment block and the manifest against the transactions counted and
summed while streaming through the file.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from cryptography import x509
from lxml import etree

from payments.sepa.layout import MANIFEST
from payments.sepa.schemas import ISO_NAMESPACE, XSD_SHA256, schema
from payments.sepa.signing import SIGNATURE_SUFFIX, SignatureError, verify_detached

FULL_SCHEMA_BYTES = 64 << 20
SAMPLE_EVERY = 1000


def _cents(text: str | None) -> int:
    """'150.00' -> 15000, exactly (no float)."""
    if text is None:
        raise ValueError("missing amount")
    whole, _, part = text.strip().partition(".")
    if not whole.isdigit() or (part and not part.isdigit()) or len(part) > 2:
        raise ValueError(f"amount {text!r} is not a euro amount with at most 2 decimals")
    return int(whole) * 100 + int(part.ljust(2, "0") or 0)


def scan(path: Path, ns: str) -> dict[str, Any]:
    """Stream through a payment file: header figures, counted figures, sampled XML."""
    q = f"{{{ns}}}"
    out: dict[str, Any] = {"txs": 0, "sum": 0, "grp": None, "pmt": [], "sample": []}
    tx = q + "CdtTrfTxInf"
    pmt: dict[str, str | None] = {}
    # Only the elements read here are handed to Python: a file of 85,000
    # transactions has some two million elements, and one Python step each
    # took seconds (the tree is still built whole, then cleared as we go).
    wanted = [tx, q + "NbOfTxs", q + "CtrlSum", q + "GrpHdr", q + "PmtInf"]
    for _event, el in etree.iterparse(str(path), events=("end",), tag=wanted, huge_tree=True):
        if el.tag == tx:
            out["sum"] += _cents(el.findtext(f"{q}Amt/{q}InstdAmt"))
            if out["txs"] % SAMPLE_EVERY == 0:
                out["sample"].append(etree.tostring(el))
            out["txs"] += 1
            el.clear()
            # drop transactions already read, so memory stays flat
            prev = el.getprevious()
            while prev is not None and prev.tag == tx:
                el.getparent().remove(prev)
                prev = el.getprevious()
        elif el.tag in (q + "NbOfTxs", q + "CtrlSum") and el.getparent().tag == q + "PmtInf":
            pmt[el.tag] = el.text
        elif el.tag == q + "GrpHdr":
            out["grp"] = (int(el.findtext(q + "NbOfTxs") or -1), _cents(el.findtext(q + "CtrlSum")))
            out["head"] = etree.tostring(el)
        elif el.tag == q + "PmtInf":
            out["pmt"].append((int(pmt.get(q + "NbOfTxs") or -1), _cents(pmt.get(q + "CtrlSum"))))
            pmt = {}
    return out


def figures(doc: etree._Element, ns: str) -> dict[str, Any]:
    """What :func:`scan` reads, off a parsed document (its elements found in C, not one by one)."""
    q = {"p": ns}

    def pair(node: etree._Element) -> tuple[int, int]:
        count = node.findtext("p:NbOfTxs", namespaces=q)
        return int(count) if count and count.isdigit() else -1, _cents(
            node.findtext("p:CtrlSum", namespaces=q)
        )

    header = doc.find("p:CstmrCdtTrfInitn/p:GrpHdr", namespaces=q)
    amounts = doc.xpath(
        "/p:Document/p:CstmrCdtTrfInitn/p:PmtInf/p:CdtTrfTxInf/p:Amt/p:InstdAmt/text()",
        namespaces=q,
    )
    count = doc.xpath("count(/p:Document/p:CstmrCdtTrfInitn/p:PmtInf/p:CdtTrfTxInf)", namespaces=q)
    return {
        "txs": int(count),
        "sum": sum(_cents(a) for a in amounts),
        "grp": pair(header) if header is not None else None,
        "pmt": [pair(b) for b in doc.iterfind("p:CstmrCdtTrfInitn/p:PmtInf", namespaces=q)],
    }


def _sampled_document(path: Path, ns: str, scanned: dict[str, Any]) -> etree._Element:
    """Headers plus every ``SAMPLE_EVERY``-th transaction, as a small valid-shaped document."""
    head = path.open("rb").read(8192)
    start = head.index(b"<PmtInf>")
    end = head.index(b"<CdtTrfTxInf>", start) if b"<CdtTrfTxInf>" in head[start:] else len(head)
    pmt_head = head[start:end].decode()
    body = b"".join(scanned["sample"]).decode().replace(f' xmlns="{ns}"', "")
    doc = (
        f'<Document xmlns="{ns}"><CstmrCdtTrfInitn>'
        + scanned["head"].decode().replace(f' xmlns="{ns}"', "")
        + pmt_head
        + body
        + "</PmtInf></CstmrCdtTrfInitn></Document>"
    )
    return etree.fromstring(doc.encode())


def verify_batch(
    folder: Path, trusted: x509.Certificate, *, only: set[str] | None = None
) -> list[str]:
    """Every problem found in the batch under ``folder``; empty when all is right.

    ``only`` (manifest paths) limits the file checks to those files, for a
    delivery of one fund's files: the signed manifest and the list of files
    are still checked whole, but the national totals are not (each fund's
    delivery checks its own files, so every file that leaves is checked once).
    """
    problems: list[str] = []
    manifest_path = folder / MANIFEST
    if not manifest_path.exists():
        return [f"{MANIFEST}: missing"]
    manifest_bytes = manifest_path.read_bytes()
    problems += _check_signature(manifest_path, manifest_bytes, trusted)
    try:
        manifest = json.loads(manifest_bytes)
    except json.JSONDecodeError as exc:
        return [*problems, f"{MANIFEST}: not JSON ({exc})"]
    listed = {f["path"]: f for f in manifest.get("files", [])}
    on_disk = {str(p.relative_to(folder)) for p in folder.rglob("*.xml")}
    for extra in sorted(on_disk - listed.keys()):
        problems.append(f"{extra}: file not in the manifest (added)")
    for missing in sorted(listed.keys() - on_disk):
        problems.append(f"{missing}: listed in the manifest but missing (removed)")
    batch_format = manifest.get("format", "pain.001.001.03")
    total_txs = total_cents = 0
    for rel in sorted(listed.keys() & on_disk):
        if only is not None and rel not in only:
            continue
        found, counted = _check_file(folder, rel, listed[rel], batch_format, trusted)
        problems += found
        total_txs += counted[0]
        total_cents += counted[1]
    totals = manifest.get("totals", {})
    if (
        only is None
        and not problems
        and (totals.get("nb_of_txs"), totals.get("ctrl_sum_cents"))
        != (
            total_txs,
            total_cents,
        )
    ):
        problems.append(f"{MANIFEST}: totals do not match the files")
    return problems


def _check_file(
    folder: Path, rel: str, entry: dict[str, Any], batch_format: str, trusted: x509.Certificate
) -> tuple[list[str], tuple[int, int]]:
    """One payment file against its manifest entry: bytes, hash, signature, schema, and
    its figures (group header, blocks, transactions). Returns the problems and the
    (transactions, cents) it holds."""
    problems: list[str] = []
    path = folder / rel
    fmt = entry.get("format", batch_format)
    if fmt not in XSD_SHA256 or not fmt.startswith("pain.001."):
        problems.append(f"{rel}: format {fmt!r} is not a pain.001 we hold the schema of")
        return problems, (0, 0)
    ns, xsd = ISO_NAMESPACE + fmt, schema(fmt)
    data = path.read_bytes()
    if len(data) != entry["bytes"]:
        problems.append(f"{rel}: {len(data)} bytes, manifest says {entry['bytes']}")
    if hashlib.sha256(data).hexdigest() != entry["sha256"]:
        problems.append(f"{rel}: SHA-256 differs from the manifest (file altered)")
    problems += _check_signature(path, data, trusted)
    # Up to FULL_SCHEMA_BYTES the file is parsed once, validated whole and
    # its figures read off that tree; a larger one is streamed (flat memory)
    # and a sample of it validated.
    try:
        if len(data) <= FULL_SCHEMA_BYTES:
            doc = etree.fromstring(data, etree.XMLParser(huge_tree=True))
            scanned = figures(doc, ns)
        else:
            scanned = scan(path, ns)
            doc = _sampled_document(path, ns, scanned)
    except (etree.XMLSyntaxError, ValueError) as exc:
        problems.append(f"{rel}: not a readable payment file ({exc})")
        return problems, (0, 0)
    if not xsd.validate(doc):
        first = xsd.error_log.filter_from_errors()[0]
        problems.append(f"{rel}, line {first.line}: schema: {first.message}")
    counted = (scanned["txs"], scanned["sum"])
    if scanned["grp"] != counted:
        problems.append(f"{rel}: group header says {scanned['grp']}, transactions {counted}")
    if (
        sum(p[0] for p in scanned["pmt"]) != counted[0]
        or sum(p[1] for p in scanned["pmt"]) != counted[1]
    ):
        problems.append(f"{rel}: payment blocks do not add up to the transactions")
    if (entry["nb_of_txs"], entry["ctrl_sum_cents"]) != counted:
        problems.append(
            f"{rel}: manifest says {entry['nb_of_txs']} transactions / "
            f"{entry['ctrl_sum']}, file holds {counted[0]} / {counted[1]} cents"
        )
    return problems, counted


def _check_signature(path: Path, data: bytes, trusted: x509.Certificate) -> list[str]:
    sig = path.with_name(path.name + SIGNATURE_SUFFIX)
    if not sig.exists():
        return [f"{sig.name}: signature missing"]
    try:
        verify_detached(data, sig.read_bytes(), trusted)
    except SignatureError as exc:
        return [f"{path.name}: signature: {exc}"]
    return []
