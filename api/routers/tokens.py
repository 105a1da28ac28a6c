"""`/tokens`: admin-only token management."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import CursorQuery, LimitQuery, WorkerSessionDep, require
from api.errors import AUTH_ERRORS, problems
from service import auth
from service.schemas import NewToken, Page, Role, TokenCreate, TokenInfo

router = APIRouter(prefix="/tokens", tags=["tokens"], dependencies=[require(Role.admin)],
                   responses=AUTH_ERRORS)
ERRORS = problems({404: None, 422: None})


@router.post("", status_code=201, response_model=NewToken, operation_id="create_token",
             summary="Create a token (its value is shown once)", responses=ERRORS)
def create_token(body: TokenCreate, session: WorkerSessionDep) -> NewToken:
    token = auth.create_token(session, body)
    session.commit()
    return token


@router.get("", response_model=Page[TokenInfo], operation_id="list_tokens",
            summary="List tokens (never their values)", responses=ERRORS)
def list_tokens(
    session: WorkerSessionDep,
    limit: LimitQuery = 100,
    cursor: CursorQuery = None,
) -> Page[TokenInfo]:
    return auth.list_tokens(session, limit=limit, cursor=cursor)


@router.delete("/{token_id}", response_model=TokenInfo, operation_id="revoke_token",
               summary="Revoke a token; refused from its next request on", responses=ERRORS)
def revoke_token(token_id: str, session: WorkerSessionDep) -> TokenInfo:
    info = auth.revoke_token(session, token_id)
    session.commit()
    return info
