"""Whose are a live's analytics (issue 18): per-live stats and events (gift coins, health
warnings, unique viewers, chat rate, followers gained) are readable by the creator, the
moderators they appointed and operators (site moderators, admins) only; anyone else gets
what the watch page shows, the viewer count, unless the creator hides it
(``hide_viewer_count``). A stream no account owns (``auth.mode`` open or webhook names)
keeps its figures public, as before: there is no creator to keep them for.

``analytics_view`` is given to the observe routes as ``app[ANALYTICS_ACCESS]`` by the
composition root (observe knows no community feature)."""

from __future__ import annotations

from aiohttp import web

from mediasrv.community.accounts.http import optional_user
from mediasrv.config import HANDLE_RE
from mediasrv.httpkit.keys import ACCOUNTS, MODERATION
from mediasrv.ports import FULL_ANALYTICS, AnalyticsView


async def analytics_view(request: web.Request, name: str) -> AnalyticsView:
    """What the asker of ``request`` may read of stream ``name``'s figures. The token may
    come as ``?access_token=`` (an EventSource sends no header); an invalid one is a 401."""
    accounts = request.app.get(ACCOUNTS)
    if accounts is None or not HANDLE_RE.fullmatch(name.lower()):
        return FULL_ANALYTICS
    creator = await accounts.get_user(name.lower())
    if creator is None:
        return FULL_ANALYTICS
    user = await optional_user(request, query_token=True)
    if user is not None:
        if user.id == creator.id or user.at_least("moderator"):
            return FULL_ANALYTICS
        moderation = request.app.get(MODERATION)
        if moderation is not None and await moderation.appointed(creator.id, user.id):
            return FULL_ANALYTICS
    return AnalyticsView(False, viewers=not accounts.privacy.hidden(creator.handle))
