from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.blob import Blob
from ...models.problem import Problem
from ...types import File, Response


def _get_kwargs(
    job_id: str,
    sha256: str,
    *,
    body: File,
    x_loraplane_lease: str,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    headers["X-Loraplane-Lease"] = x_loraplane_lease

    _kwargs: dict[str, Any] = {
        "method": "put",
        "url": "/worker/jobs/{job_id}/blobs/{sha256}".format(
            job_id=quote(str(job_id), safe=""),
            sha256=quote(str(sha256), safe=""),
        ),
    }

    _kwargs["content"] = body.payload
    headers["Content-Type"] = "application/octet-stream"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Blob | Problem | None:
    if response.status_code == 201:
        response_201 = Blob.from_dict(response.json())

        return response_201

    if response.status_code == 400:
        response_400 = Problem.from_dict(response.json())

        return response_400

    if response.status_code == 401:
        response_401 = Problem.from_dict(response.json())

        return response_401

    if response.status_code == 403:
        response_403 = Problem.from_dict(response.json())

        return response_403

    if response.status_code == 404:
        response_404 = Problem.from_dict(response.json())

        return response_404

    if response.status_code == 409:
        response_409 = Problem.from_dict(response.json())

        return response_409

    if response.status_code == 413:
        response_413 = Problem.from_dict(response.json())

        return response_413

    if response.status_code == 422:
        response_422 = Problem.from_dict(response.json())

        return response_422

    if client.raise_on_unexpected_status:
        raise errors.UnexpectedStatus(response.status_code, response.content)
    else:
        return None


def _build_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Response[Blob | Problem]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    job_id: str,
    sha256: str,
    *,
    client: AuthenticatedClient,
    body: File,
    x_loraplane_lease: str,
) -> Response[Blob | Problem]:
    """Upload one file (checkpoint or result) by its sha256; streamed and verified

    Args:
        job_id (str):
        sha256 (str):
        x_loraplane_lease (str):
        body (File):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Blob | Problem]
    """

    kwargs = _get_kwargs(
        job_id=job_id,
        sha256=sha256,
        body=body,
        x_loraplane_lease=x_loraplane_lease,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    job_id: str,
    sha256: str,
    *,
    client: AuthenticatedClient,
    body: File,
    x_loraplane_lease: str,
) -> Blob | Problem | None:
    """Upload one file (checkpoint or result) by its sha256; streamed and verified

    Args:
        job_id (str):
        sha256 (str):
        x_loraplane_lease (str):
        body (File):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Blob | Problem
    """

    return sync_detailed(
        job_id=job_id,
        sha256=sha256,
        client=client,
        body=body,
        x_loraplane_lease=x_loraplane_lease,
    ).parsed


async def asyncio_detailed(
    job_id: str,
    sha256: str,
    *,
    client: AuthenticatedClient,
    body: File,
    x_loraplane_lease: str,
) -> Response[Blob | Problem]:
    """Upload one file (checkpoint or result) by its sha256; streamed and verified

    Args:
        job_id (str):
        sha256 (str):
        x_loraplane_lease (str):
        body (File):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Blob | Problem]
    """

    kwargs = _get_kwargs(
        job_id=job_id,
        sha256=sha256,
        body=body,
        x_loraplane_lease=x_loraplane_lease,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    job_id: str,
    sha256: str,
    *,
    client: AuthenticatedClient,
    body: File,
    x_loraplane_lease: str,
) -> Blob | Problem | None:
    """Upload one file (checkpoint or result) by its sha256; streamed and verified

    Args:
        job_id (str):
        sha256 (str):
        x_loraplane_lease (str):
        body (File):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Blob | Problem
    """

    return (
        await asyncio_detailed(
            job_id=job_id,
            sha256=sha256,
            client=client,
            body=body,
            x_loraplane_lease=x_loraplane_lease,
        )
    ).parsed
