"""`/samples`: completions of a few prompts by an adapter (or a bare base model), in a worker."""

from __future__ import annotations

from fastapi import APIRouter, Response
from starlette.concurrency import run_in_threadpool

from api.deps import PrincipalDep, SessionDep, StateDep, require
from api.errors import AUTH_ERRORS, problems
from service import tasks
from service.schemas import Role, Sample, SampleCreate

router = APIRouter(prefix="/samples", tags=["samples"],
                   dependencies=[require(Role.admin, Role.user)], responses=AUTH_ERRORS)

ERRORS = problems({404: "No such sample job", 422: "Invalid input"})


@router.post("", status_code=201, response_model=Sample, operation_id="create_sample",
             summary="Queue a sample job: completions of prompts (greedy at temperature 0)",
             responses=ERRORS)
async def create_sample(body: SampleCreate, response: Response, state: StateDep,
                            principal: PrincipalDep) -> Sample:
    def submit() -> Sample:
        with state.session(principal.project) as session:
            sample = tasks.submit_sample(session, state.settings, body)
            session.commit()
            return sample

    sample = await run_in_threadpool(submit)
    state.new_work.notify()
    response.headers["Location"] = f"/samples/{sample.id}"
    return sample


@router.get("/{sample_id}", response_model=Sample, operation_id="get_sample",
            summary="A sample job: its state, and its completions once it succeeded",
            responses=ERRORS)
def get_sample(sample_id: str, session: SessionDep) -> Sample:
    return tasks.get_sample(session, sample_id)
