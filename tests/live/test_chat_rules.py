"""Chat rules with time passed in; hypothesis for the text cleaner."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mediasrv.community.chat.rules import (
    ChatRefused,
    RefusalCode,
    RoomRules,
    RoomSettings,
    Speaker,
    TokenBucket,
    WordFilter,
    clean_text,
)


def refused(fn, *args) -> RefusalCode:
    with pytest.raises(ChatRefused) as info:
        fn(*args)
    return info.value.refusal.code


def test_clean_text_strips_control_and_bidi_and_keeps_markup_as_text():
    assert clean_text("  hi\u202e\u200b there\n\n", max_chars=50) == "hi there"
    assert clean_text("<script>alert(1)</script>", max_chars=50) == "<script>alert(1)</script>"
    limit = lambda text: clean_text(text, max_chars=50)  # noqa: E731
    assert refused(limit, " \u200b ") is RefusalCode.EMPTY
    assert refused(limit, "x" * 51) is RefusalCode.TOO_LONG
    assert refused(limit, 42) is RefusalCode.EMPTY


@given(st.text(max_size=300))
def test_clean_text_never_returns_control_characters(text):
    try:
        out = clean_text(text, max_chars=100)
    except ChatRefused as exc:
        assert exc.refusal.code in (RefusalCode.EMPTY, RefusalCode.TOO_LONG)
        return
    assert 0 < len(out) <= 100
    assert out == out.strip()
    assert not any(ord(ch) < 32 or 0x200B <= ord(ch) <= 0x200F or 0x202A <= ord(ch) <= 0x202E for ch in out)


def test_token_bucket_three_per_two_seconds():
    bucket = TokenBucket(rate=3, per=2.0, burst=3)
    assert [bucket.allow(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = bucket.allow(0.0)
    assert wait == pytest.approx(2 / 3)
    assert bucket.allow(0.7) == 0.0


def test_word_filter_is_case_and_accent_insensitive_on_word_boundaries():
    words = WordFilter(["bad", "two words"])
    assert words.find("this is BÁD") == "bad"
    assert words.find("badge and abad") is None
    assert words.find("say Two  words") is None  # whitespace folded earlier by clean_text
    assert words.find("say two words!") == "two words"


def test_room_rules_order_and_moderator_exemptions():
    rules = RoomRules(settings=RoomSettings(slow_mode_seconds=10, followers_only=True, banned_words=("spoiler",)),
                      server_words=("slur",))
    viewer = Speaker(1)
    follower = Speaker(2, is_follower=True)
    mod = Speaker(3, is_moderator=True)
    assert refused(rules.check, viewer, "hello", 0) is RefusalCode.FOLLOWERS_ONLY
    assert rules.check(follower, "hello", 0) == "hello"
    assert refused(rules.check, follower, "again", 5) is RefusalCode.SLOW_MODE
    assert rules.check(follower, "again", 10.5) == "again"
    assert refused(rules.check, follower, "a SPOILER", 30) is RefusalCode.BANNED_WORD
    assert refused(rules.check, mod, "slur", 0) is RefusalCode.BANNED_WORD
    assert [rules.check(mod, f"m{i}", 0) for i in range(5)] == [f"m{i}" for i in range(5)]
    assert refused(rules.check, Speaker(4, banned=True), "hi", 0) is RefusalCode.BANNED
    assert refused(rules.check, Speaker(5, is_follower=True, timed_out_until=60), "hi", 30) is RefusalCode.TIMED_OUT


def test_rate_limit_applies_per_user():
    rules = RoomRules(rate=3, per=2.0, burst=3)
    a, b = Speaker(1), Speaker(2)
    for i in range(3):
        rules.check(a, f"{i}", 0.0)
    assert refused(rules.check, a, "4", 0.1) is RefusalCode.RATE_LIMITED
    assert rules.check(b, "other user", 0.1) == "other user"


def test_chat_off_lets_only_the_creator_write_and_comes_before_every_other_rule():
    rules = RoomRules(settings=RoomSettings(followers_only=True, enabled=False), server_words=("slur",))
    off = "the creator has turned the chat off"
    for speaker in (Speaker(1), Speaker(2, is_follower=True), Speaker(3, is_moderator=True),
                    Speaker(4, banned=True), Speaker(5, timed_out_until=60)):
        with pytest.raises(ChatRefused) as info:
            rules.check(speaker, "hi", 0)
        assert (info.value.refusal.code, info.value.refusal.reason, info.value.refusal.retry_after) == (
            RefusalCode.CHAT_OFF, off, 0.0), speaker
    creator = Speaker(6, is_moderator=True, is_creator=True)
    assert rules.check(creator, "back in five", 0) == "back in five"
    assert refused(rules.check, creator, "slur", 0) is RefusalCode.BANNED_WORD  # the rest still applies
    rules.update_settings(RoomSettings(enabled=True))
    assert rules.check(Speaker(1), "hi", 0) == "hi"
