from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.job import Job
from ...models.problem import Problem
from ...models.task_result import TaskResult
from ...types import Response


def _get_kwargs(
    job_id: str,
    *,
    body: TaskResult,
    x_loraplane_lease: str,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    headers["X-Loraplane-Lease"] = x_loraplane_lease

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/worker/jobs/{job_id}/result".format(
            job_id=quote(str(job_id), safe=""),
        ),
    }

    _kwargs["json"] = body.to_dict()

    headers["Content-Type"] = "application/json"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Job | Problem | None:
    if response.status_code == 200:
        response_200 = Job.from_dict(response.json())

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
) -> Response[Job | Problem]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    job_id: str,
    *,
    client: AuthenticatedClient,
    body: TaskResult,
    x_loraplane_lease: str,
) -> Response[Job | Problem]:
    """Finish an evaluation or a sample job: its result is stored and it succeeds, together

    Args:
        job_id (str):
        x_loraplane_lease (str):
        body (TaskResult): A worker's result for an evaluation (`evaluation`) or a sample job
            (`sample`).

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Job | Problem]
    """

    kwargs = _get_kwargs(
        job_id=job_id,
        body=body,
        x_loraplane_lease=x_loraplane_lease,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    job_id: str,
    *,
    client: AuthenticatedClient,
    body: TaskResult,
    x_loraplane_lease: str,
) -> Job | Problem | None:
    """Finish an evaluation or a sample job: its result is stored and it succeeds, together

    Args:
        job_id (str):
        x_loraplane_lease (str):
        body (TaskResult): A worker's result for an evaluation (`evaluation`) or a sample job
            (`sample`).

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Job | Problem
    """

    return sync_detailed(
        job_id=job_id,
        client=client,
        body=body,
        x_loraplane_lease=x_loraplane_lease,
    ).parsed


async def asyncio_detailed(
    job_id: str,
    *,
    client: AuthenticatedClient,
    body: TaskResult,
    x_loraplane_lease: str,
) -> Response[Job | Problem]:
    """Finish an evaluation or a sample job: its result is stored and it succeeds, together

    Args:
        job_id (str):
        x_loraplane_lease (str):
        body (TaskResult): A worker's result for an evaluation (`evaluation`) or a sample job
            (`sample`).

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Job | Problem]
    """

    kwargs = _get_kwargs(
        job_id=job_id,
        body=body,
        x_loraplane_lease=x_loraplane_lease,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    job_id: str,
    *,
    client: AuthenticatedClient,
    body: TaskResult,
    x_loraplane_lease: str,
) -> Job | Problem | None:
    """Finish an evaluation or a sample job: its result is stored and it succeeds, together

    Args:
        job_id (str):
        x_loraplane_lease (str):
        body (TaskResult): A worker's result for an evaluation (`evaluation`) or a sample job
            (`sample`).

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Job | Problem
    """

    return (
        await asyncio_detailed(
            job_id=job_id,
            client=client,
            body=body,
            x_loraplane_lease=x_loraplane_lease,
        )
    ).parsed
