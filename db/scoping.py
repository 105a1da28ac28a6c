"""Project isolation at the session level.

A session whose `info["project"]` is set sees only rows of that project: every ORM SELECT,
UPDATE and DELETE gets `project = :project` on each project-scoped table it touches, and new
rows are stamped with the project. Sessions without it (admins, workers, the lease sweeper)
see every project. `execution_options(unscoped=True)` lifts the filter for one statement
(garbage collection must see every reference to a shared blob).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, with_loader_criteria

from db.models import DEFAULT_PROJECT, ProjectScoped

PROJECT_KEY = "project"


def project_for_new_rows(session: Session) -> str:
    """The project new rows of this session belong to (an all-projects session: the default)."""
    return session.info.get(PROJECT_KEY) or DEFAULT_PROJECT


@event.listens_for(Session, "do_orm_execute")
def _filter_by_project(state: ORMExecuteState) -> None:
    project = state.session.info.get(PROJECT_KEY)
    if project is None or state.execution_options.get("unscoped"):
        return
    if state.is_select or state.is_update or state.is_delete:
        state.statement = state.statement.options(
            with_loader_criteria(ProjectScoped, lambda cls: cls.project == project,
                                 include_aliases=True)
        )


@event.listens_for(Session, "before_flush")
def _stamp_project(session: Session, _context: Any, _instances: Any) -> None:
    project = project_for_new_rows(session)
    for obj in session.new:
        if isinstance(obj, ProjectScoped) and getattr(obj, "project", None) is None:
            obj.project = project
