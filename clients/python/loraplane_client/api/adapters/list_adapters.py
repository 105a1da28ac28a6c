from http import HTTPStatus
from typing import Any

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.list_adapters_kind_type_0 import ListAdaptersKindType0
from ...models.list_adapters_servable_type_0 import ListAdaptersServableType0
from ...models.page_adapter import PageAdapter
from ...models.problem import Problem
from ...types import UNSET, Response, Unset


def _get_kwargs(
    *,
    name: None | str | Unset = UNSET,
    base_model: None | str | Unset = UNSET,
    kind: ListAdaptersKindType0 | None | Unset = UNSET,
    tag: list[str] | None | Unset = UNSET,
    order_by: str | Unset = "created_at",
    servable: ListAdaptersServableType0 | None | Unset = UNSET,
    limit: int | Unset = 50,
    cursor: None | str | Unset = UNSET,
) -> dict[str, Any]:

    params: dict[str, Any] = {}

    json_name: None | str | Unset
    if isinstance(name, Unset):
        json_name = UNSET
    else:
        json_name = name
    params["name"] = json_name

    json_base_model: None | str | Unset
    if isinstance(base_model, Unset):
        json_base_model = UNSET
    else:
        json_base_model = base_model
    params["base_model"] = json_base_model

    json_kind: None | str | Unset
    if isinstance(kind, Unset):
        json_kind = UNSET
    elif isinstance(kind, ListAdaptersKindType0):
        json_kind = kind.value
    else:
        json_kind = kind
    params["kind"] = json_kind

    json_tag: list[str] | None | Unset
    if isinstance(tag, Unset):
        json_tag = UNSET
    elif isinstance(tag, list):
        json_tag = tag

    else:
        json_tag = tag
    params["tag"] = json_tag

    params["order_by"] = order_by

    json_servable: None | str | Unset
    if isinstance(servable, Unset):
        json_servable = UNSET
    elif isinstance(servable, ListAdaptersServableType0):
        json_servable = servable.value
    else:
        json_servable = servable
    params["servable"] = json_servable

    params["limit"] = limit

    json_cursor: None | str | Unset
    if isinstance(cursor, Unset):
        json_cursor = UNSET
    else:
        json_cursor = cursor
    params["cursor"] = json_cursor

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/adapters",
        "params": params,
    }

    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> PageAdapter | Problem | None:
    if response.status_code == 200:
        response_200 = PageAdapter.from_dict(response.json())

        return response_200

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
) -> Response[PageAdapter | Problem]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient,
    name: None | str | Unset = UNSET,
    base_model: None | str | Unset = UNSET,
    kind: ListAdaptersKindType0 | None | Unset = UNSET,
    tag: list[str] | None | Unset = UNSET,
    order_by: str | Unset = "created_at",
    servable: ListAdaptersServableType0 | None | Unset = UNSET,
    limit: int | Unset = 50,
    cursor: None | str | Unset = UNSET,
) -> Response[PageAdapter | Problem]:
    """List adapters, newest first

    Args:
        name (None | str | Unset):
        base_model (None | str | Unset):
        kind (ListAdaptersKindType0 | None | Unset):
        tag (list[str] | None | Unset): `key:value` (or `key`: has that tag); several: all must
            hold.
        order_by (str | Unset): `created_at` (newest first, the default), `metrics.<name>`
            (ascending) or `-metrics.<name>` (descending) by a final metric; adapters without that
            numeric metric come last either way, ties newest first. Default: 'created_at'.
        servable (ListAdaptersServableType0 | None | Unset): Only adapters that engine loads
            (their `serving.<engine>.ok`).
        limit (int | Unset):  Default: 50.
        cursor (None | str | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[PageAdapter | Problem]
    """

    kwargs = _get_kwargs(
        name=name,
        base_model=base_model,
        kind=kind,
        tag=tag,
        order_by=order_by,
        servable=servable,
        limit=limit,
        cursor=cursor,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    *,
    client: AuthenticatedClient,
    name: None | str | Unset = UNSET,
    base_model: None | str | Unset = UNSET,
    kind: ListAdaptersKindType0 | None | Unset = UNSET,
    tag: list[str] | None | Unset = UNSET,
    order_by: str | Unset = "created_at",
    servable: ListAdaptersServableType0 | None | Unset = UNSET,
    limit: int | Unset = 50,
    cursor: None | str | Unset = UNSET,
) -> PageAdapter | Problem | None:
    """List adapters, newest first

    Args:
        name (None | str | Unset):
        base_model (None | str | Unset):
        kind (ListAdaptersKindType0 | None | Unset):
        tag (list[str] | None | Unset): `key:value` (or `key`: has that tag); several: all must
            hold.
        order_by (str | Unset): `created_at` (newest first, the default), `metrics.<name>`
            (ascending) or `-metrics.<name>` (descending) by a final metric; adapters without that
            numeric metric come last either way, ties newest first. Default: 'created_at'.
        servable (ListAdaptersServableType0 | None | Unset): Only adapters that engine loads
            (their `serving.<engine>.ok`).
        limit (int | Unset):  Default: 50.
        cursor (None | str | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        PageAdapter | Problem
    """

    return sync_detailed(
        client=client,
        name=name,
        base_model=base_model,
        kind=kind,
        tag=tag,
        order_by=order_by,
        servable=servable,
        limit=limit,
        cursor=cursor,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient,
    name: None | str | Unset = UNSET,
    base_model: None | str | Unset = UNSET,
    kind: ListAdaptersKindType0 | None | Unset = UNSET,
    tag: list[str] | None | Unset = UNSET,
    order_by: str | Unset = "created_at",
    servable: ListAdaptersServableType0 | None | Unset = UNSET,
    limit: int | Unset = 50,
    cursor: None | str | Unset = UNSET,
) -> Response[PageAdapter | Problem]:
    """List adapters, newest first

    Args:
        name (None | str | Unset):
        base_model (None | str | Unset):
        kind (ListAdaptersKindType0 | None | Unset):
        tag (list[str] | None | Unset): `key:value` (or `key`: has that tag); several: all must
            hold.
        order_by (str | Unset): `created_at` (newest first, the default), `metrics.<name>`
            (ascending) or `-metrics.<name>` (descending) by a final metric; adapters without that
            numeric metric come last either way, ties newest first. Default: 'created_at'.
        servable (ListAdaptersServableType0 | None | Unset): Only adapters that engine loads
            (their `serving.<engine>.ok`).
        limit (int | Unset):  Default: 50.
        cursor (None | str | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[PageAdapter | Problem]
    """

    kwargs = _get_kwargs(
        name=name,
        base_model=base_model,
        kind=kind,
        tag=tag,
        order_by=order_by,
        servable=servable,
        limit=limit,
        cursor=cursor,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient,
    name: None | str | Unset = UNSET,
    base_model: None | str | Unset = UNSET,
    kind: ListAdaptersKindType0 | None | Unset = UNSET,
    tag: list[str] | None | Unset = UNSET,
    order_by: str | Unset = "created_at",
    servable: ListAdaptersServableType0 | None | Unset = UNSET,
    limit: int | Unset = 50,
    cursor: None | str | Unset = UNSET,
) -> PageAdapter | Problem | None:
    """List adapters, newest first

    Args:
        name (None | str | Unset):
        base_model (None | str | Unset):
        kind (ListAdaptersKindType0 | None | Unset):
        tag (list[str] | None | Unset): `key:value` (or `key`: has that tag); several: all must
            hold.
        order_by (str | Unset): `created_at` (newest first, the default), `metrics.<name>`
            (ascending) or `-metrics.<name>` (descending) by a final metric; adapters without that
            numeric metric come last either way, ties newest first. Default: 'created_at'.
        servable (ListAdaptersServableType0 | None | Unset): Only adapters that engine loads
            (their `serving.<engine>.ok`).
        limit (int | Unset):  Default: 50.
        cursor (None | str | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        PageAdapter | Problem
    """

    return (
        await asyncio_detailed(
            client=client,
            name=name,
            base_model=base_model,
            kind=kind,
            tag=tag,
            order_by=order_by,
            servable=servable,
            limit=limit,
            cursor=cursor,
        )
    ).parsed
