"""Dependencies as typed aliases: settings, database session, app state."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Annotated

import asyncio

from fastapi import Depends, Request
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from service.artifacts import ArtifactStore
from service.settings import Settings


class WorkSignal:
    """Wakes every long-polling claim in this process when work may be available."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        event, self._event = self._event, asyncio.Event()
        event.set()

    async def wait(self, timeout: float) -> None:
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
        except TimeoutError:
            pass


@dataclass
class AppState:
    """What one API process holds: settings, engine, sessions, artifact store, new-work signal."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    store: ArtifactStore
    new_work: WorkSignal = field(default_factory=WorkSignal)

    async def notify_new_work(self) -> None:
        self.new_work.notify()


def get_state(request: Request) -> AppState:
    return request.app.state.loraplane


def get_settings(request: Request) -> Settings:
    return get_state(request).settings


def get_store(request: Request) -> ArtifactStore:
    return get_state(request).store


def get_session(request: Request) -> Iterator[Session]:
    with get_state(request).sessions() as session:
        yield session


StateDep = Annotated[AppState, Depends(get_state)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_session)]
StoreDep = Annotated[ArtifactStore, Depends(get_store)]
