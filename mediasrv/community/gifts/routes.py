"""Gifts over HTTP: catalogue, wallet, admin credits, sending, leaderboard, earnings, the
ledger's sums. Also owns the creator's live analytics. See docs/api.md (Gifts) and docs/chat.md (the gift frame).

A send answers 201 with the ledger row and the new balance; the same ``request_id`` again
answers 200 with the original row and ``replayed: true`` (nothing charged). Too few
coins is 402 with ``balance`` and ``price``.
"""

from __future__ import annotations

from aiohttp import web

from mediasrv.community.accounts.http import handle_param, optional_user, require_user
from mediasrv.community.accounts.models import HANDLE_PARAM
from mediasrv.community.gifts import models as m
from mediasrv.community.gifts.service import GiftRefused, GiftService
from mediasrv.config import Config, HANDLE_RE, STREAM_NAME_RE, STREAM_NAME_RULE
from mediasrv.httpkit import validate
from mediasrv.httpkit.body import read_body, read_query, respond
from mediasrv.httpkit.keys import ACCOUNTS, ANALYTICS_ACCESS, CONFIG, GIFTS, HUB
from mediasrv.httpkit.models import STREAM_NAME_PARAM
from mediasrv.httpkit.openapi import add_route, op, path_param
from mediasrv.httpkit.validate import ApiError
from mediasrv.store import User
from mediasrv.store.gifts import GiftRecord










def _service(request: web.Request) -> GiftService:
    service = request.app.get(GIFTS)
    if service is None:
        raise ApiError(503, "gifts are not available yet")
    return service


async def _user_by_handle(request: web.Request, handle: str, what: str = "user") -> User:
    accounts = request.app.get(ACCOUNTS)
    if accounts is None:
        raise ApiError(503, "accounts are not available yet")
    user = await accounts.get_user(handle)
    if user is None:
        raise ApiError(404, f"no such {what}")
    return user


def _handle(request: web.Request) -> str:
    return handle_param(request)


async def _stream_creator(request: web.Request) -> tuple[str, User]:
    """The stream name and its creator: the creator account whose handle is the name."""
    name = request.match_info["name"]
    if not STREAM_NAME_RE.fullmatch(name):
        raise ApiError(400, f"name: not a valid stream name ({STREAM_NAME_RULE})")
    handle = name.lower()
    creator = await _user_by_handle(request, handle, "creator") if HANDLE_RE.fullmatch(handle) else None
    if creator is None or not creator.at_least("creator"):
        raise ApiError(404, f"{name[:64]!r} is not a creator's stream")
    # In auth.mode accounts the stream is named by the handle; elsewhere by the URL's name.
    return (creator.handle if request.app[CONFIG].auth.mode == "accounts" else name), creator


def _gift_json(record: GiftRecord) -> dict:
    return {"id": f"g{record.id}", "request_id": record.request_id, "gift_id": record.gift_id,
            "stream": record.stream, "coins": record.price, "creator_coins": record.creator_coins,
            "platform_coins": record.platform_coins, "created_at": record.created_at}


# --- handlers -----------------------------------------------------------------------------

async def catalogue(request: web.Request) -> web.Response:
    service = _service(request)
    config = service.config
    return respond(m.Catalogue, {"gifts": service.catalogue_json(), "currency": config.currency,
                                 "coin_value": str(config.coin_value), "platform_share": str(config.platform_share)})


async def my_wallet(request: web.Request) -> web.Response:
    user = await require_user(request)
    balance = await _service(request).balance(user)
    return respond(m.Wallet, {"handle": user.handle, "balance": balance}, headers={"Cache-Control": "no-store"})


async def credit_wallet(request: web.Request) -> web.Response:
    actor = await require_user(request, "admin")
    service = _service(request)
    target = await _user_by_handle(request, _handle(request))
    body = await read_body(request, m.credit_model(service.config.max_credit))
    coins, key = body.coins, body.idempotency_key
    try:
        record = await service.credit(target, coins, key, actor)
    except GiftRefused as exc:
        raise ApiError(exc.status, exc.message, **exc.extra) from None
    return respond(m.Credited, {"handle": target.handle, "coins": record.coins, "idempotency_key": key,
                                "balance": record.balance, "replayed": record.replayed},
                   status=200 if record.replayed else 201)


async def send_gift(request: web.Request) -> web.Response:
    sender = await require_user(request)
    service = _service(request)
    name, creator = await _stream_creator(request)
    body = await read_body(request, _send_model(service))
    gift_id, request_id = body.gift_id, body.request_id
    try:
        record = await service.send(sender, creator, name, gift_id, request_id)
    except GiftRefused as exc:
        raise ApiError(exc.status, exc.message, **exc.extra) from None
    return respond(m.GiftSent, {"gift": _gift_json(record), "balance": record.balance, "replayed": record.replayed},
                   status=200 if record.replayed else 201)


async def leaderboard(request: web.Request) -> web.Response:
    service = _service(request)
    name, creator = await _stream_creator(request)
    # Who gave how many coins is the creator's analytics (issue 18): theirs, their
    # moderators' and operators'.
    access = request.app.get(ANALYTICS_ACCESS)
    if access is not None and not (await access(request, creator.handle)).full:
        if await optional_user(request) is None:
            raise ApiError(401, "log in first: a creator's gifters are theirs to see")
        raise ApiError(403, "only the creator, their moderators and operators can see their top gifters")
    scope = read_query(request, m.LeaderboardQuery).scope
    rows = await service.leaderboard(creator, live_only=scope == "broadcast", stream_name=name)
    return respond(m.Leaderboard, {"stream": name, "scope": scope, "live": request.app[HUB].get_public(name) is not None,
                                   "gifters": [{"rank": rank, "user": row.handle, "display_name": row.display_name,
                                           "coins": row.coins, "gifts": row.gifts}
                                          for rank, row in enumerate(rows, start=1)]})


async def earnings(request: web.Request) -> web.Response:
    actor = await require_user(request)
    service = _service(request)
    creator = await _user_by_handle(request, _handle(request))
    if creator.id != actor.id and not actor.at_least("admin"):
        raise ApiError(403, "only the creator and admins can see a creator's earnings")
    result = await service.earnings(creator)
    return respond(m.Earnings, {"handle": creator.handle, **result.to_json()}, headers={"Cache-Control": "no-store"})


async def ledger(request: web.Request) -> web.Response:
    await require_user(request, "admin")
    summary = await _service(request).ledger_summary()
    return respond(m.LedgerSummary, summary.to_json(), headers={"Cache-Control": "no-store"})


def _send_model(service: GiftService) -> type:
    return m.send_model(tuple(gift.id for gift in service.config.catalogue))


# --- wiring -------------------------------------------------------------------------------

def setup(app: web.Application, config: Config) -> None:
    """The gift routes; the gift service and the analytics are the composition root's."""
    validate.install(app)
    _routes(app, config)


def _routes(app: web.Application, config: Config) -> None:
    T = "gifts"
    handle = path_param("handle", "a user's handle (any case)", HANDLE_PARAM)
    name = path_param("name", "the stream (its creator's handle)", STREAM_NAME_PARAM)

    add_route(app, "GET", "/api/gifts", catalogue, op("The gift catalogue", tag=T, ok_schema=m.Catalogue))
    add_route(app, "GET", "/api/me/wallet", my_wallet, op(
        "The logged-in user's coin balance", tag=T, auth="required", ok_schema=m.Wallet))
    add_route(app, "POST", "/api/users/{handle}/wallet/credits", credit_wallet, op(
        "Credit coins to a wallet (a payment provider's confirmation)", tag=T, role="admin", params=[handle],
        description="Idempotent by `idempotency_key` (e.g. the payment's id): the same key again answers 200 "
                    "with `replayed: true` and adds nothing; the same key with other coins or another user is "
                    f"409. At most gifts.max_credit ({config.gifts.max_credit}) coins per credit.",
        body=m.credit_model(config.gifts.max_credit),
        ok=201, ok_also=[200], ok_description="credited (200 with replayed: true for a repeated key)",
        ok_schema=m.Credited,
        errors=[404, 409]))
    add_route(app, "POST", "/api/streams/{name}/gifts", send_gift, op(
        "Send a gift into a stream's chat", tag=T, auth="required", params=[name],
        description="Debits the sender, credits the creator (price minus gifts.platform_share, rounded down) "
                    "and the platform, appends to the ledger — one transaction — and shows a `gift` frame in "
                    "the stream's chat. The same `request_id` again answers 200 with the original gift and "
                    "`replayed: true`, charging nothing. 402: too few coins (`balance`, `price` in the answer); "
                    "403: the sender may not gift this creator; 409: the request_id was used for another gift; "
                    "422: a gift to yourself.",
        body=m.send_model(tuple(gift.id for gift in config.gifts.catalogue)),
        ok=201, ok_also=[200], ok_schema=m.GiftSent,
        ok_description="sent (200 with replayed: true for a repeated request_id)",
        errors=[402, 403, 404, 409, 422]))
    add_route(app, "GET", "/api/streams/{name}/leaderboard", leaderboard, op(
        "Top gifters of a stream (the creator, their moderators, operators)", tag=T, auth="required",
        errors=[400, 401, 403, 404], params=[name], query=m.LeaderboardQuery, ok_schema=m.Leaderboard))
    add_route(app, "GET", "/api/users/{handle}/earnings", earnings, op(
        "A creator's gift earnings in coins and money (the creator or an admin)", tag=T, auth="required",
        params=[handle], errors=[400, 403, 404], ok_schema=m.Earnings))
    add_route(app, "GET", "/api/ledger", ledger, op(
        "The ledger's sums and whether they balance", tag=T, role="admin", ok_schema=m.LedgerSummary))
