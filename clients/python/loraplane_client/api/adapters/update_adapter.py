from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.adapter import Adapter
from ...models.adapter_patch import AdapterPatch
from ...models.problem import Problem
from ...types import Response


def _get_kwargs(
    adapter_id: str,
    *,
    body: AdapterPatch,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}

    _kwargs: dict[str, Any] = {
        "method": "patch",
        "url": "/adapters/{adapter_id}".format(
            adapter_id=quote(str(adapter_id), safe=""),
        ),
    }

    _kwargs["json"] = body.to_dict()

    headers["Content-Type"] = "application/json"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Adapter | Problem | None:
    if response.status_code == 200:
        response_200 = Adapter.from_dict(response.json())

        return response_200

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

    if response.status_code == 422:
        response_422 = Problem.from_dict(response.json())

        return response_422

    if client.raise_on_unexpected_status:
        raise errors.UnexpectedStatus(response.status_code, response.content)
    else:
        return None


def _build_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Response[Adapter | Problem]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    adapter_id: str,
    *,
    client: AuthenticatedClient,
    body: AdapterPatch,
) -> Response[Adapter | Problem]:
    """Change an adapter's description and tags (JSON merge patch)

    Args:
        adapter_id (str):
        body (AdapterPatch): A JSON merge patch (RFC 7396) of an adapter's metadata: a field left
            out is unchanged,
            `null` clears it; `tags` merges key by key, a `null` value drops that key.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Adapter | Problem]
    """

    kwargs = _get_kwargs(
        adapter_id=adapter_id,
        body=body,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    adapter_id: str,
    *,
    client: AuthenticatedClient,
    body: AdapterPatch,
) -> Adapter | Problem | None:
    """Change an adapter's description and tags (JSON merge patch)

    Args:
        adapter_id (str):
        body (AdapterPatch): A JSON merge patch (RFC 7396) of an adapter's metadata: a field left
            out is unchanged,
            `null` clears it; `tags` merges key by key, a `null` value drops that key.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Adapter | Problem
    """

    return sync_detailed(
        adapter_id=adapter_id,
        client=client,
        body=body,
    ).parsed


async def asyncio_detailed(
    adapter_id: str,
    *,
    client: AuthenticatedClient,
    body: AdapterPatch,
) -> Response[Adapter | Problem]:
    """Change an adapter's description and tags (JSON merge patch)

    Args:
        adapter_id (str):
        body (AdapterPatch): A JSON merge patch (RFC 7396) of an adapter's metadata: a field left
            out is unchanged,
            `null` clears it; `tags` merges key by key, a `null` value drops that key.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Adapter | Problem]
    """

    kwargs = _get_kwargs(
        adapter_id=adapter_id,
        body=body,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    adapter_id: str,
    *,
    client: AuthenticatedClient,
    body: AdapterPatch,
) -> Adapter | Problem | None:
    """Change an adapter's description and tags (JSON merge patch)

    Args:
        adapter_id (str):
        body (AdapterPatch): A JSON merge patch (RFC 7396) of an adapter's metadata: a field left
            out is unchanged,
            `null` clears it; `tags` merges key by key, a `null` value drops that key.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Adapter | Problem
    """

    return (
        await asyncio_detailed(
            adapter_id=adapter_id,
            client=client,
            body=body,
        )
    ).parsed
