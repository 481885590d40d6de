"""Moderation rules with time passed in: standing, who may act on whom, timeouts, word
lists, reasons, report transitions and the report quota."""

from __future__ import annotations

import pytest

from mediasrv.community.moderation.rules import (
    ModerationRefused,
    ReportQuota,
    Standing,
    check_resolution,
    check_target,
    clean_reason,
    clean_word_list,
    may_manage,
    may_moderate,
    standing,
    time_left,
    timeout_until,
)


def code(fn, *args, **kwargs) -> str:
    with pytest.raises(ModerationRefused) as info:
        fn(*args, **kwargs)
    return info.value.code


def test_standing_orders_roles_and_relations():
    assert standing(role="viewer", is_creator=False, is_appointed=False) is Standing.VIEWER
    assert standing(role="viewer", is_creator=False, is_appointed=True) is Standing.APPOINTED_MODERATOR
    assert standing(role="moderator", is_creator=False, is_appointed=True) is Standing.SITE_MODERATOR
    assert standing(role="creator", is_creator=True, is_appointed=False) is Standing.CREATOR
    assert standing(role="moderator", is_creator=True, is_appointed=False) is Standing.CREATOR
    assert standing(role="admin", is_creator=True, is_appointed=False) is Standing.ADMIN
    assert not may_moderate(Standing.VIEWER) and may_moderate(Standing.APPOINTED_MODERATOR)
    assert may_manage(Standing.CREATOR) and may_manage(Standing.ADMIN)
    assert not may_manage(Standing.SITE_MODERATOR) and not may_manage(Standing.APPOINTED_MODERATOR)


@pytest.mark.parametrize("actor,target,allowed", [
    (Standing.CREATOR, Standing.VIEWER, True),
    (Standing.CREATOR, Standing.SITE_MODERATOR, True),
    (Standing.APPOINTED_MODERATOR, Standing.VIEWER, True),
    (Standing.APPOINTED_MODERATOR, Standing.APPOINTED_MODERATOR, False),
    (Standing.APPOINTED_MODERATOR, Standing.SITE_MODERATOR, False),
    (Standing.APPOINTED_MODERATOR, Standing.ADMIN, False),
    (Standing.SITE_MODERATOR, Standing.APPOINTED_MODERATOR, True),
    (Standing.SITE_MODERATOR, Standing.ADMIN, False),
    (Standing.ADMIN, Standing.SITE_MODERATOR, True),
    (Standing.VIEWER, Standing.VIEWER, False),
])
def test_who_may_act_on_whom(actor, target, allowed):
    if allowed:
        check_target(actor, target, self_target=False, target_is_creator=False)
    else:
        assert code(check_target, actor, target, self_target=False, target_is_creator=False) == "forbidden"


def test_nobody_acts_on_the_creator_or_themselves():
    def refusal(actor, target, *, self_target, target_is_creator):
        return code(check_target, actor, target, self_target=self_target, target_is_creator=target_is_creator)

    assert refusal(Standing.ADMIN, Standing.CREATOR, self_target=False, target_is_creator=True) == "forbidden"
    assert refusal(Standing.CREATOR, Standing.CREATOR, self_target=True, target_is_creator=True) == "bad_request"
    assert refusal(Standing.ADMIN, Standing.ADMIN, self_target=True, target_is_creator=False) == "bad_request"


def test_timeouts_are_whole_minutes_within_the_limit_and_expire():
    assert timeout_until(1000.0, 5, 60) == 1300.0
    for bad in (0, 61, -1, 1.5, "5", True, None):
        assert code(timeout_until, 1000.0, bad, 60) == "bad_request"
    assert time_left(1300.0, 1000.0) == 300.0
    assert time_left(1300.0, 1300.0) == 0.0 and time_left(1300.0, 2000.0) == 0.0
    assert time_left(None, 1000.0) == 0.0


def test_reasons_are_bounded_single_line_text():
    assert clean_reason("  spam \n links ", max_chars=20, required=True) == "spam links"
    assert clean_reason(None, max_chars=20, required=False) == ""
    assert code(clean_reason, "", max_chars=20, required=True) == "bad_request"
    assert code(clean_reason, "   ", max_chars=20, required=True) == "bad_request"
    assert code(clean_reason, "x" * 21, max_chars=20, required=True) == "bad_request"
    assert code(clean_reason, 5, max_chars=20, required=True) == "bad_request"
    assert code(clean_reason, "bidi \u202e trick", max_chars=50, required=True) == "bad_request"


def test_word_lists_fold_duplicates_and_enforce_limits():
    assert clean_word_list(["Bad", " bad ", "two  words", "BAD"], max_words=5, max_chars=20) == ("Bad", "two words")
    assert clean_word_list([], max_words=0, max_chars=20) == ()
    assert code(clean_word_list, "bad", max_words=5, max_chars=20) == "bad_request"
    assert code(clean_word_list, ["ok", 3], max_words=5, max_chars=20) == "bad_request"
    assert code(clean_word_list, ["ok", "  "], max_words=5, max_chars=20) == "bad_request"
    assert code(clean_word_list, ["x" * 21], max_words=5, max_chars=20) == "bad_request"
    assert code(clean_word_list, ["a", "b", "c"], max_words=2, max_chars=20) == "bad_request"


def test_a_report_is_closed_once():
    check_resolution("open", "resolved")
    check_resolution("open", "dismissed")
    assert code(check_resolution, "open", "open") == "bad_request"
    assert code(check_resolution, "resolved", "dismissed") == "conflict"


def test_report_quota_is_a_sliding_window():
    quota = ReportQuota(limit=2, window=100.0)
    assert quota.retry_after([], 0.0) == 0.0
    assert quota.retry_after([10.0], 20.0) == 0.0
    assert quota.retry_after([10.0, 30.0], 40.0) == 70.0  # the report at 10 leaves the window at 110
    assert quota.retry_after([10.0, 30.0], 110.0) == 0.0
    assert quota.retry_after([10.0, 30.0, 50.0], 120.0) == 10.0  # 30 and 50 are inside: 30 leaves at 130
