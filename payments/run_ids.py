"""What a payments run id looks like: ``<scheme>-<12 hex>`` (``dry-`` first for a dry run).

Checked wherever a run id comes from outside (a page's URL, a DAG's conf, the
command line) before it names a folder: ``../runs/<run>`` must never reach a
path.
"""

from __future__ import annotations

import re

RUN_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,80}")
