"""Accounts: what usernames mode and multi-account mode resolve against."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Body, Depends, Path, Query

from api.accounts import repository
from api.accounts.repository import AccountFilters, AccountRow
from api.accounts.schemas import AccountCreate, AccountList, AccountPublic, AccountUpdate
from api.auth import require_api
from api.deps import UoW
from api.envelope import Envelope, error_responses, ok
from shared.db.models import Account
from shared.errors import Code, Conflict, NotFound

router = APIRouter(tags=["accounts"], dependencies=[Depends(require_api)])

AccountId = Annotated[int, Path(ge=1, le=2**63 - 1)]


def _public(row: AccountRow) -> AccountPublic:
    account, online, model = row.tuple()
    assert isinstance(account, Account) and account.id is not None and account.created_at is not None
    return AccountPublic(
        id=account.id,
        username=account.username,
        email=account.email,
        platform=account.platform,
        packagename=account.packagename,
        device=account.device,
        device_online=bool(online),
        device_name=model,
        logined=account.logined,
        status=account.status,
        tags=list(account.tags),
        created_at=account.created_at,
    )


def _load(uow: UoW, account_id: int) -> AccountRow:
    row = repository.get_account(uow.session, account_id)
    if row is None:
        raise NotFound(f"account {account_id} not found")
    return row


@router.get(
    "/accounts",
    summary="List accounts",
    response_model=Envelope[AccountList],
    responses=error_responses(Code.INVALID_PARAMS),
)
def list_accounts(
    uow: UoW,
    platform: Annotated[Literal["tiktok", "instagram"] | None, Query()] = None,
    device: Annotated[str | None, Query(max_length=128)] = None,
    logined: Annotated[int | None, Query(ge=0, le=1)] = None,
    status: Annotated[int | None, Query(ge=0, le=1, description="0 enabled, 1 disabled")] = None,
    tag: Annotated[str | None, Query(max_length=50)] = None,
    username: Annotated[str | None, Query(max_length=100)] = None,
    page: Annotated[int, Query(ge=1, le=10_000_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Envelope[AccountList]:
    filters = AccountFilters(
        platform=platform, device=device, logined=logined, status=status, tag=tag, username=username
    )
    rows = repository.list_accounts(uow.session, filters, offset=(page - 1) * page_size, limit=page_size)
    total = repository.count_accounts(uow.session, filters)
    return ok(AccountList(accounts=[_public(r) for r in rows], total=total, page=page, page_size=page_size))


@router.post(
    "/accounts",
    summary="Add an account",
    response_model=Envelope[AccountPublic],
    responses=error_responses(Code.INVALID_PARAMS, Code.CONFLICT),
)
def create_account(body: Annotated[AccountCreate, Body()], uow: UoW) -> Envelope[AccountPublic]:
    """The password, if given, is stored for the login script and never returned."""
    values = body.model_dump()
    values["username"] = body.username.removeprefix("@")
    account_id = repository.insert_account(uow.session, values)
    if account_id is None:
        raise Conflict(f"account {values['username']!r} already exists on {body.platform}")
    return ok(_public(_load(uow, account_id)))


@router.get(
    "/accounts/{account_id}",
    summary="One account",
    response_model=Envelope[AccountPublic],
    responses=error_responses(Code.INVALID_PARAMS, Code.NOT_FOUND),
)
def get_account(account_id: AccountId, uow: UoW) -> Envelope[AccountPublic]:
    return ok(_public(_load(uow, account_id)))


@router.patch(
    "/accounts/{account_id}",
    summary="Change an account",
    response_model=Envelope[AccountPublic],
    responses=error_responses(Code.INVALID_PARAMS, Code.NOT_FOUND),
)
def update_account(account_id: AccountId, body: Annotated[AccountUpdate, Body()], uow: UoW) -> Envelope[AccountPublic]:
    """Only the fields present in the body change; ``null`` clears device, packagename or email."""
    account = uow.session.get(Account, account_id, with_for_update=True)
    if account is None:
        raise NotFound(f"account {account_id} not found")
    for name, value in body.model_dump(exclude_unset=True).items():
        if value is None and name in ("logined", "status", "tags"):
            continue
        setattr(account, name, value)
    uow.session.flush()
    return ok(_public(_load(uow, account_id)))


@router.delete(
    "/accounts/{account_id}",
    summary="Remove an account",
    response_model=Envelope[None],
    responses=error_responses(Code.INVALID_PARAMS, Code.NOT_FOUND),
)
def delete_account(account_id: AccountId, uow: UoW) -> Envelope[None]:
    """Its tasks stay (they keep the username they were created for)."""
    if not repository.delete_account(uow.session, account_id):
        raise NotFound(f"account {account_id} not found")
    return ok(None)
