"""Request-scoped dependencies: the unit of work (the only place the api commits) and its
after-commit actions (dispatch messages and stop signals go out only once the rows are committed)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, TypeVar

import structlog
from fastapi import Depends
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from shared.db.engine import session_factory

log = structlog.get_logger(__name__)

T = TypeVar("T")


class UnitOfWork:
    """A session plus the actions to run once its transaction has committed."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._after_commit: list[Callable[[], None]] = []

    def after_commit(self, action: Callable[[], None]) -> None:
        """Run ``action`` after a successful commit; dropped on rollback."""
        self._after_commit.append(action)

    def run_after_commit(self) -> None:
        actions, self._after_commit = self._after_commit, []
        for action in actions:
            try:
                action()
            except Exception:
                # The rows are committed; the dispatcher's recovery covers a lost message or signal.
                log.exception("after_commit_failed", action=getattr(action, "__name__", repr(action)))


@contextmanager
def unit_of_work() -> Iterator[UnitOfWork]:
    """Commit when the block ends, roll back when it raises; then run the after-commit actions."""
    session = session_factory()()
    uow = UnitOfWork(session)
    try:
        yield uow
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
    uow.run_after_commit()


def get_uow() -> Iterator[UnitOfWork]:
    """Commit when the endpoint returns, roll back when it raises; then run after-commit actions.

    Used with ``scope="function"`` so the commit happens before the response is sent: a client that
    got code 0 knows its rows exist.
    """
    with unit_of_work() as uow:
        yield uow


UoW = Annotated[UnitOfWork, Depends(get_uow, scope="function")]


def run_in_uow(work: Callable[[UnitOfWork], T]) -> T:
    """``work`` in a unit of work with the same contract as :func:`get_uow`: commit when it returns,
    roll back when it raises, then the after-commit actions; its result once all that is done."""
    with unit_of_work() as uow:
        return work(uow)


async def in_uow(work: Callable[[UnitOfWork], T]) -> T:
    """:func:`run_in_uow` on a worker thread. The hot endpoints are ``async def`` and make this their
    only thread hop: a sync endpoint with sync dependencies costs one hop per dependency, one for the
    endpoint and one to validate its answer, and each hop costs the event loop and the GIL more than
    the endpoint's own work."""
    return await run_in_threadpool(run_in_uow, work)
