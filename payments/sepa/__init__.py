"""SEPA credit transfers: pain.001 payment files, signatures, manifests, verification.

``charset`` transliterates names to the SEPA character set, ``pain001`` writes
the XML (vectorised over Arrow, streamed to disk), ``signing`` makes and checks
detached CMS signatures a bank verifies with ``openssl cms``, ``batch`` writes
a fund's files with their manifest, ``verify`` checks a batch end to end.
"""
