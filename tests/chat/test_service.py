"""The chat service without sockets: fan-out, flow control, viewer counts, the dispatch table."""

from __future__ import annotations

import json

from mediasrv.config import ChatConfig
from mediasrv.community.chat.service import ChatService, encode
from mediasrv.store import User

BOB = User(2, "bob", "Bob <b>", "viewer", 0.0)


def frames(member) -> list[dict]:
    out = list(member._frames)
    member._frames.clear()
    return [json.loads(f) for f in out]


def test_encode_leaves_no_markup_characters():
    frame = encode({"text": "<b>&amp;</b>\u2028é"})
    assert not any(c in frame for c in "<>&\u2028é")
    assert json.loads(frame) == {"text": "<b>&amp;</b>\u2028é"}


async def test_a_full_queue_drops_only_that_member():
    service = ChatService(ChatConfig(send_buffer=3))
    room = service.room("bob")
    dropped = []
    slow = service.join(room, None, on_drop=dropped.append)
    fast = service.join(room, BOB)
    for i in range(5):
        await service.handle(room, fast, json.dumps({"type": "message", "text": f"m{i}"}))
        frames(fast)  # the fast member keeps up
    assert dropped == [slow] and slow.closed == "too_slow" and room.members == {fast}
    assert service.members_dropped_slow == 1
    assert await slow.next_frames() is None


async def test_viewer_counts_are_sent_when_they_change():
    counts = {"bob": 0}
    service = ChatService(ChatConfig(), viewers=counts.__getitem__)
    room = service.room("bob")
    member = service.join(room, None)
    assert frames(member)[0]["viewers"] == 0
    service.update_viewer_counts()
    assert frames(member) == []
    counts["bob"] = 7
    service.update_viewer_counts()
    assert frames(member) == [{"type": "viewer-count", "viewers": 7}]


async def test_new_request_types_plug_into_the_dispatch_table():
    seen = []

    async def wave(room, member, request):
        seen.append(request)

    service = ChatService(ChatConfig(), extra_handlers={"wave": wave})
    room = service.room("bob")
    member = service.join(room, BOB)
    frames(member)
    await service.handle(room, member, '{"type": "wave"}')
    assert seen == [{"type": "wave"}] and frames(member) == []
    assert service.can_moderate(room, BOB)  # bob is the creator of the room named bob
    service.leave(room, member)
    assert "bob" not in service.rooms  # an empty room of a stream that is not live is forgotten
