"""Who may watch a live, by its visibility (issue 18; docs/security.md, "Who may watch").

One pure rule, ``may_watch``, from facts the live control gathers about a viewer (signed
in, the creator, an operator, one of the creator's moderators, a follower, invited,
blocked by the creator):

- ``public``: anyone; ``unlisted``: anyone with the link (never listed, never alerted);
- ``followers``: the creator's signed-in followers;
- ``private``: the people the creator invited;
- ``backstage`` (a live not made public yet): nobody more;

and in every case the creator, the site's operators (moderators, admins) and the
moderators the creator appointed. A user the creator blocked is refused whatever the
visibility, unless they are the creator or an operator (an operator moderates every live).

Who is told of a live is decided where the telling is, from ``Stream.visibility`` (those
features do not know this one): discovery lists public lives (an 18+ one not for
signed-out viewers) and, to a signed-in follower who may watch it (it asks ``may_watch``
through the live control), a followers-only one; alerts and webhooks go out for public
and followers-only ones.
"""

from __future__ import annotations

from dataclasses import dataclass

#: A live not made public yet (``Stream.private``): its creator's team only.
BACKSTAGE = "backstage"


@dataclass(frozen=True, slots=True)
class Viewer:
    """What is known of one viewer for one creator's live."""

    signed_in: bool = False
    creator: bool = False
    operator: bool = False
    moderator: bool = False
    follower: bool = False
    invited: bool = False
    blocked: bool = False


def may_watch(visibility: str, viewer: Viewer) -> bool:
    """Whether ``viewer`` may watch a live of ``visibility`` (or ``BACKSTAGE``)."""
    if viewer.creator or viewer.operator:
        return True
    if viewer.blocked:
        return False
    if viewer.moderator:
        return True
    if visibility in ("public", "unlisted"):
        return True
    if visibility == "followers":
        return viewer.signed_in and viewer.follower
    if visibility == "private":
        return viewer.signed_in and viewer.invited
    return False

