"""An S3-compatible server for the tests: moto's server mode, in-process, on loopback.

Real HTTP, real S3 protocol (through s3fs and botocore, as against MinIO in
the compose deployment); each test gets its own bucket.
"""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Iterator

import pytest

_BUCKETS = itertools.count(1)


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_root(
    s3_endpoint: str, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> str:
    """``s3://<bucket>/root`` in a fresh bucket, with the ``AWS_*`` environment pointing at it."""
    import boto3

    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    name = re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower())[:48].strip("-")
    bucket = f"{name}-{next(_BUCKETS)}"
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=bucket)
    return f"s3://{bucket}/root"
