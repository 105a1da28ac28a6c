"""`/evaluations`: measure an adapter (or a bare base model) on a dataset, in a worker."""

from __future__ import annotations

from fastapi import APIRouter, Response
from starlette.concurrency import run_in_threadpool

from api.deps import PrincipalDep, SessionDep, StateDep, require
from api.errors import AUTH_ERRORS, problems
from service import tasks
from service.schemas import Evaluation, EvaluationCreate, Role

router = APIRouter(prefix="/evaluations", tags=["evaluations"],
                   dependencies=[require(Role.admin, Role.user)], responses=AUTH_ERRORS)

ERRORS = problems({404: "No such evaluation", 422: "Invalid input"})


@router.post("", status_code=201, response_model=Evaluation, operation_id="create_evaluation",
             summary="Queue an evaluation: loss, perplexity and exact match on a dataset",
             responses=ERRORS)
async def create_evaluation(body: EvaluationCreate, response: Response, state: StateDep,
                            principal: PrincipalDep) -> Evaluation:
    def submit() -> Evaluation:
        with state.session(principal.project) as session:
            evaluation = tasks.submit_evaluation(session, state.settings, body, state.store)
            session.commit()
            return evaluation

    evaluation = await run_in_threadpool(submit)
    state.new_work.notify()
    response.headers["Location"] = f"/evaluations/{evaluation.id}"
    return evaluation


@router.get("/{evaluation_id}", response_model=Evaluation, operation_id="get_evaluation",
            summary="An evaluation: its state, and its results once it succeeded",
            responses=ERRORS)
def get_evaluation(evaluation_id: str, session: SessionDep) -> Evaluation:
    return tasks.get_evaluation(session, evaluation_id)
