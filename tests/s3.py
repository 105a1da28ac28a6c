"""An S3-compatible server for the tests: moto's standalone server on a loopback port.

Suites that must hold on either store import `artifacts_url` (and `s3_endpoint`) from here;
it overrides the local-only fixture of tests/conftest.py with one parametrised by store, as
`db_url` is by engine:

    from tests.s3 import artifacts_url, s3_endpoint  # noqa: F401  (fixtures)
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

STORES = ["local", "s3"]
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "loraplane-test", "AWS_SECRET_ACCESS_KEY": "loraplane-test",
               "AWS_REGION": "us-east-1"}


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """The server's URL; the AWS settings boto3 reads point at it for the whole session."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    saved = {name: os.environ.get(name) for name in [*CREDENTIALS, "AWS_ENDPOINT_URL"]}
    os.environ.update(CREDENTIALS, AWS_ENDPOINT_URL=endpoint)
    try:
        yield endpoint
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        server.stop()


def new_bucket(endpoint: str) -> str:
    """A fresh, empty bucket on the test server; its name."""
    import boto3

    name = f"lp-{uuid.uuid4().hex[:16]}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=name)
    return name


@pytest.fixture(params=STORES)
def artifacts_url(request: pytest.FixtureRequest) -> str | None:
    """None (the local store) or `s3://<fresh bucket>/artifacts` on the test server."""
    if request.param == "local":
        return None
    return f"s3://{new_bucket(request.getfixturevalue('s3_endpoint'))}/artifacts"
