from http import HTTPStatus
from typing import Any

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.adapter import Adapter
from ...models.import_adapter_files_body import ImportAdapterFilesBody
from ...models.problem import Problem
from ...types import UNSET, Response, Unset


def _get_kwargs(
    *,
    body: ImportAdapterFilesBody,
    name: None | str | Unset = UNSET,
    base_model: None | str | Unset = UNSET,
    description: None | str | Unset = UNSET,
    tag: list[str] | None | Unset = UNSET,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}

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

    json_description: None | str | Unset
    if isinstance(description, Unset):
        json_description = UNSET
    else:
        json_description = description
    params["description"] = json_description

    json_tag: list[str] | None | Unset
    if isinstance(tag, Unset):
        json_tag = UNSET
    elif isinstance(tag, list):
        json_tag = tag

    else:
        json_tag = tag
    params["tag"] = json_tag

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/adapters",
        "params": params,
    }

    _kwargs["files"] = body.to_multipart()

    headers["Content-Type"] = "multipart/form-data; boundary=+++"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Adapter | Problem | None:
    if response.status_code == 200:
        response_200 = Adapter.from_dict(response.json())

        return response_200

    if response.status_code == 201:
        response_201 = Adapter.from_dict(response.json())

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

    if response.status_code == 415:
        response_415 = Problem.from_dict(response.json())

        return response_415

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
    *,
    client: AuthenticatedClient,
    body: ImportAdapterFilesBody,
    name: None | str | Unset = UNSET,
    base_model: None | str | Unset = UNSET,
    description: None | str | Unset = UNSET,
    tag: list[str] | None | Unset = UNSET,
) -> Response[Adapter | Problem]:
    """Import a PEFT folder trained elsewhere as the next version of `name`

     Validated like a worker's result: safetensors only (pickle formats are refused unread),
    adapter_config.json checked, every LoRA tensor's shape consistent with the rank, no path tricks in
    names. 201 with the new version; 200 with the existing one when `name` already holds exactly these
    bytes (same digest).

    Args:
        name (None | str | Unset): The adapter name.
        base_model (None | str | Unset): The model it was trained on.
        description (None | str | Unset):
        tag (list[str] | None | Unset): `key:value`
        body (ImportAdapterFilesBody):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Adapter | Problem]
    """

    kwargs = _get_kwargs(
        body=body,
        name=name,
        base_model=base_model,
        description=description,
        tag=tag,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    *,
    client: AuthenticatedClient,
    body: ImportAdapterFilesBody,
    name: None | str | Unset = UNSET,
    base_model: None | str | Unset = UNSET,
    description: None | str | Unset = UNSET,
    tag: list[str] | None | Unset = UNSET,
) -> Adapter | Problem | None:
    """Import a PEFT folder trained elsewhere as the next version of `name`

     Validated like a worker's result: safetensors only (pickle formats are refused unread),
    adapter_config.json checked, every LoRA tensor's shape consistent with the rank, no path tricks in
    names. 201 with the new version; 200 with the existing one when `name` already holds exactly these
    bytes (same digest).

    Args:
        name (None | str | Unset): The adapter name.
        base_model (None | str | Unset): The model it was trained on.
        description (None | str | Unset):
        tag (list[str] | None | Unset): `key:value`
        body (ImportAdapterFilesBody):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Adapter | Problem
    """

    return sync_detailed(
        client=client,
        body=body,
        name=name,
        base_model=base_model,
        description=description,
        tag=tag,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient,
    body: ImportAdapterFilesBody,
    name: None | str | Unset = UNSET,
    base_model: None | str | Unset = UNSET,
    description: None | str | Unset = UNSET,
    tag: list[str] | None | Unset = UNSET,
) -> Response[Adapter | Problem]:
    """Import a PEFT folder trained elsewhere as the next version of `name`

     Validated like a worker's result: safetensors only (pickle formats are refused unread),
    adapter_config.json checked, every LoRA tensor's shape consistent with the rank, no path tricks in
    names. 201 with the new version; 200 with the existing one when `name` already holds exactly these
    bytes (same digest).

    Args:
        name (None | str | Unset): The adapter name.
        base_model (None | str | Unset): The model it was trained on.
        description (None | str | Unset):
        tag (list[str] | None | Unset): `key:value`
        body (ImportAdapterFilesBody):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Adapter | Problem]
    """

    kwargs = _get_kwargs(
        body=body,
        name=name,
        base_model=base_model,
        description=description,
        tag=tag,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient,
    body: ImportAdapterFilesBody,
    name: None | str | Unset = UNSET,
    base_model: None | str | Unset = UNSET,
    description: None | str | Unset = UNSET,
    tag: list[str] | None | Unset = UNSET,
) -> Adapter | Problem | None:
    """Import a PEFT folder trained elsewhere as the next version of `name`

     Validated like a worker's result: safetensors only (pickle formats are refused unread),
    adapter_config.json checked, every LoRA tensor's shape consistent with the rank, no path tricks in
    names. 201 with the new version; 200 with the existing one when `name` already holds exactly these
    bytes (same digest).

    Args:
        name (None | str | Unset): The adapter name.
        base_model (None | str | Unset): The model it was trained on.
        description (None | str | Unset):
        tag (list[str] | None | Unset): `key:value`
        body (ImportAdapterFilesBody):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Adapter | Problem
    """

    return (
        await asyncio_detailed(
            client=client,
            body=body,
            name=name,
            base_model=base_model,
            description=description,
            tag=tag,
        )
    ).parsed
