"""The rule of who may watch (``community.live.audience``) and the site's allowed
visibilities (``live.visibility_default`` / ``visibility_allowed``), without a server."""

from __future__ import annotations

import pytest

from mediasrv.community.live.audience import BACKSTAGE, Viewer, may_watch
from mediasrv.config import ConfigError, build_config

NOBODY = Viewer()
STRANGER = Viewer(signed_in=True)
FOLLOWER = Viewer(signed_in=True, follower=True)
INVITED = Viewer(signed_in=True, invited=True)
MODERATOR = Viewer(signed_in=True, moderator=True)
CREATOR = Viewer(signed_in=True, creator=True)
OPERATOR = Viewer(signed_in=True, operator=True)
BLOCKED = Viewer(signed_in=True, follower=True, invited=True, moderator=True, blocked=True)

TABLE = {
    "public": {NOBODY, STRANGER, FOLLOWER, INVITED, MODERATOR, CREATOR, OPERATOR},
    "unlisted": {NOBODY, STRANGER, FOLLOWER, INVITED, MODERATOR, CREATOR, OPERATOR},
    "followers": {FOLLOWER, MODERATOR, CREATOR, OPERATOR},
    "private": {INVITED, MODERATOR, CREATOR, OPERATOR},
    BACKSTAGE: {MODERATOR, CREATOR, OPERATOR},
}


@pytest.mark.parametrize("visibility", sorted(TABLE))
def test_who_may_watch_each_visibility(visibility):
    for viewer in (NOBODY, STRANGER, FOLLOWER, INVITED, MODERATOR, CREATOR, OPERATOR, BLOCKED):
        assert may_watch(visibility, viewer) is (viewer in TABLE[visibility]), (visibility, viewer)


def test_a_block_does_not_shut_out_the_creator_or_an_operator():
    assert may_watch("private", Viewer(signed_in=True, creator=True, blocked=True))
    assert may_watch("private", Viewer(signed_in=True, operator=True, blocked=True))
    assert not may_watch("public", BLOCKED)


def test_operators_set_the_default_and_forbid_values():
    config = build_config({"live": {"visibility_default": "followers", "visibility_allowed": ["followers", "private"]}})
    assert config.live.effective_visibility("") == "followers"  # no choice made
    assert config.live.effective_visibility("public") == "followers"  # forbidden: the default
    assert config.live.effective_visibility("private") == "private"
    with pytest.raises(ConfigError, match="visibility_default"):
        build_config({"live": {"visibility_default": "public", "visibility_allowed": ["private"]}})
