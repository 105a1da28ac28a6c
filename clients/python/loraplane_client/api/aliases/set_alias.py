from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.alias import Alias
from ...models.alias_update import AliasUpdate
from ...models.problem import Problem
from ...types import Response


def _get_kwargs(
    name: str,
    alias: str,
    *,
    body: AliasUpdate,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}

    _kwargs: dict[str, Any] = {
        "method": "put",
        "url": "/aliases/{name}/{alias}".format(
            name=quote(str(name), safe=""),
            alias=quote(str(alias), safe=""),
        ),
    }

    _kwargs["json"] = body.to_dict()

    headers["Content-Type"] = "application/json"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Alias | Problem | None:
    if response.status_code == 200:
        response_200 = Alias.from_dict(response.json())

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

    if response.status_code == 422:
        response_422 = Problem.from_dict(response.json())

        return response_422

    if client.raise_on_unexpected_status:
        raise errors.UnexpectedStatus(response.status_code, response.content)
    else:
        return None


def _build_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Response[Alias | Problem]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    name: str,
    alias: str,
    *,
    client: AuthenticatedClient,
    body: AliasUpdate,
) -> Response[Alias | Problem]:
    """Create or move an alias

    Args:
        name (str):
        alias (str):
        body (AliasUpdate):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Alias | Problem]
    """

    kwargs = _get_kwargs(
        name=name,
        alias=alias,
        body=body,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    name: str,
    alias: str,
    *,
    client: AuthenticatedClient,
    body: AliasUpdate,
) -> Alias | Problem | None:
    """Create or move an alias

    Args:
        name (str):
        alias (str):
        body (AliasUpdate):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Alias | Problem
    """

    return sync_detailed(
        name=name,
        alias=alias,
        client=client,
        body=body,
    ).parsed


async def asyncio_detailed(
    name: str,
    alias: str,
    *,
    client: AuthenticatedClient,
    body: AliasUpdate,
) -> Response[Alias | Problem]:
    """Create or move an alias

    Args:
        name (str):
        alias (str):
        body (AliasUpdate):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Alias | Problem]
    """

    kwargs = _get_kwargs(
        name=name,
        alias=alias,
        body=body,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    name: str,
    alias: str,
    *,
    client: AuthenticatedClient,
    body: AliasUpdate,
) -> Alias | Problem | None:
    """Create or move an alias

    Args:
        name (str):
        alias (str):
        body (AliasUpdate):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Alias | Problem
    """

    return (
        await asyncio_detailed(
            name=name,
            alias=alias,
            client=client,
            body=body,
        )
    ).parsed
