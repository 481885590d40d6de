"""Issue 18: display names and titles accepted bidi overrides, zero-width and invisible
characters (``a\\u200bd\\u200bm\\u200bi\\u200bn``, ``\\u202enimda``, ``\\ufeff``) that the
chat already stripped. One rule (``mediasrv.textrules``) serves both now."""

from __future__ import annotations

import pytest

from mediasrv.community.chat.rules import ChatRefused, clean_text
from mediasrv.httpkit.jsonlimits import too_deep
from mediasrv.textrules import has_visible, is_invisible, strip_invisible
from tests.accounts.support import PASSWORD, accounts_server

#: (sent, what is kept) for a name or a title.
STRIPPED = [
    ("a\u200bd\u200bm\u200bi\u200bn", "admin"),  # zero-width spaces
    ("\u202enimda", "nimda"),  # a right-to-left override
    ("\u2066Bob\u2069 \u200e", "Bob"),  # isolates and a mark
    ("Zo\u00eb \u2764\ufe0f", "Zo\u00eb \u2764\ufe0f"),  # letters, an emoji and its variation selector stay
]
#: Names with nothing visible: refused.
INVISIBLE = ["\ufeff", "\u200b\u200c\u200d", " \u3164 ", "\u2800", "\u202e \u202c"]


@pytest.mark.parametrize("sent, kept", STRIPPED)
def test_the_chat_and_names_share_one_rule(sent, kept):
    assert strip_invisible(sent).strip() == kept
    assert clean_text(sent, max_chars=100) == kept


@pytest.mark.parametrize("sent", INVISIBLE)
def test_text_with_nothing_visible_is_refused_by_the_chat_too(sent):
    assert not has_visible(sent)
    with pytest.raises(ChatRefused):
        clean_text(sent, max_chars=100)


def test_the_rule_keeps_tabs_and_line_breaks_for_the_caller():
    assert not any(is_invisible(ch) for ch in "\t\n\r")
    assert is_invisible("\x00") and is_invisible("\u202e") and is_invisible("\u3164")


def test_json_depth_is_found_without_parsing():
    assert too_deep("[" * 33 + "]" * 33) and not too_deep("[" * 32 + "]" * 32)
    assert too_deep(b'{"a": ' + b"[1, " * 40 + b"]" * 40 + b"}")
    assert not too_deep('{"text": "' + "[" * 500 + '"}')  # brackets inside a string do not nest
    assert not too_deep('{"text": "\\"[[[[", "b": [[1]]}')  # nor after an escaped quote
    assert not too_deep("[[[{")  # unbalanced and shallow: left to the parser, which refuses it
    assert too_deep("[" * 100)  # unbalanced and deep: refused for its depth


@pytest.mark.e2e
async def test_names_and_titles_are_stripped_or_refused(tmp_path):
    async with accounts_server(tmp_path) as api:
        for i, (sent, kept) in enumerate(STRIPPED):
            response = await api.http.post("/api/users", json={"handle": f"user{i}", "password": PASSWORD,
                                                               "display_name": sent})
            assert response.status == 201, await response.text()
            assert (await response.json())["display_name"] == kept
        for i, sent in enumerate(INVISIBLE):
            response = await api.http.post("/api/users", json={"handle": f"ghost{i}", "password": PASSWORD,
                                                               "display_name": sent})
            assert "display_name" in await api.error(response, 400)
        creator = await api.user("alice", "creator")
        response = await api.http.patch("/api/me", headers=creator, json={"display_name": "\u202eecila"})
        assert (await response.json())["display_name"] == "ecila"
        await api.error(await api.http.patch("/api/me", headers=creator, json={"display_name": "\u200b"}), 400)
        response = await api.http.patch("/api/me/settings", headers=creator,
                                        json={"title": "Live\u200b \u202enow\u202c"})
        assert (await response.json())["title"] == "Live now"
        # Handles stay ASCII.
        response = await api.http.post("/api/users", json={"handle": "\u0430dmin", "password": PASSWORD})
        await api.error(response, 400)
