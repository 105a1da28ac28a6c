"""`/aliases/{name}/{alias}`: stable names (`prod`, `staging`) for adapter versions."""

from __future__ import annotations

from fastapi import APIRouter, Response

from api.deps import SessionDep, require
from api.errors import AUTH_ERRORS, problems
from service.registry import aliases
from service.schemas import Alias, AliasUpdate, Role

router = APIRouter(prefix="/aliases", tags=["aliases"], dependencies=[require(Role.admin, Role.user)],
                   responses=AUTH_ERRORS)

ERRORS = problems({404: "No such alias", 422: "Invalid alias or adapter"})


@router.get(
    "/{name}/{alias}",
    response_model=Alias,
    operation_id="get_alias",
    summary="Resolve an alias (`latest`: the newest version)",
    responses=ERRORS,
)
def get_alias(name: str, alias: str, session: SessionDep) -> Alias:
    return aliases.get_alias(session, name, alias)


@router.put(
    "/{name}/{alias}",
    response_model=Alias,
    operation_id="set_alias",
    summary="Create or move an alias",
    responses=ERRORS,
)
def set_alias(name: str, alias: str, body: AliasUpdate, session: SessionDep) -> Alias:
    result = aliases.set_alias(session, name, alias, body.adapter_id)
    session.commit()
    return result


@router.delete(
    "/{name}/{alias}",
    status_code=204,
    response_class=Response,
    operation_id="delete_alias",
    summary="Drop an alias",
    responses=ERRORS,
)
def delete_alias(name: str, alias: str, session: SessionDep) -> Response:
    aliases.delete_alias(session, name, alias)
    session.commit()
    return Response(status_code=204)
