"""Request-scoped dependencies: the unit of work (the only place the api commits) and its
after-commit actions (dispatch messages and stop signals go out only once the rows are committed)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated

import structlog
from fastapi import Depends
from sqlalchemy.orm import Session

from shared.db.engine import session_factory

log = structlog.get_logger(__name__)


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


def get_uow() -> Iterator[UnitOfWork]:
    """Commit when the endpoint returns, roll back when it raises; then run after-commit actions.

    Used with ``scope="function"`` so the commit happens before the response is sent: a client that
    got code 0 knows its rows exist.
    """
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


UoW = Annotated[UnitOfWork, Depends(get_uow, scope="function")]
