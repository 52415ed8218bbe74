"""Row validation and quarantine: every row ends accepted or quarantined with reasons.

``kernels`` holds vectorised identifier checks as polars expressions, ``rules``
the catalogue of row error codes and their sentences, ``schema`` the Pandera
(polars backend) schema built from the input contract, ``rows`` the pure step
from a text table to accepted + quarantined tables, and ``folder`` the shell
that runs it over a storage root and writes the outputs.
"""
