"""``fast_frozen_init``: the replaced ``__init__`` builds the same frozen objects."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import pytest

from mediasrv.media.fastinit import fast_frozen_init
from mediasrv.media.types import MediaUnit
from mediasrv.rtmp.chunk import Message
from mediasrv.rtmp.events import AudioData, VideoData


@fast_frozen_init
@dataclass(frozen=True, slots=True)
class _Point:
    x: int
    y: int = 7
    label: str = "p"


def test_positional_keyword_and_defaults_match_the_dataclass_init() -> None:
    assert _Point(1) == _Point(x=1, y=7, label="p")
    assert (_Point(1, 2).x, _Point(1, 2).y, _Point(1, 2).label) == (1, 2, "p")
    assert _Point(y=3, x=4) == _Point(4, 3)
    with pytest.raises(TypeError):
        _Point()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        _Point(1, 2, "a", "extra")  # type: ignore[call-arg]


def test_still_frozen_hashable_and_replaceable() -> None:
    p = _Point(1, 2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.x = 5  # type: ignore[misc]
    assert hash(p) == hash(_Point(1, 2))
    assert {p, _Point(1, 2)} == {p}
    assert dataclasses.replace(p, y=9) == _Point(1, 9)
    assert repr(p) == "_Point(x=1, y=2, label='p')"


def test_inherited_fields_are_set_through_the_base_slots() -> None:
    event = VideoData(1, 40, b"\x17")
    assert (event.stream_id, event.timestamp, event.payload) == (1, 40, b"\x17")
    assert event != AudioData(1, 40, b"\x17")
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.timestamp = 0  # type: ignore[misc]


def test_hot_path_classes_use_it() -> None:
    for cls in (Message, VideoData, AudioData, MediaUnit):
        first = dataclasses.fields(cls)[0].name
        # The replacement runs in its own namespace holding the slot setters.
        assert f"_set_{first}" in cls.__init__.__globals__, cls


def test_refuses_what_it_cannot_reproduce() -> None:
    @dataclass(slots=True)
    class Mutable:
        x: int

    @dataclass(frozen=True)
    class NoSlots:
        x: int

    @dataclass(frozen=True, slots=True)
    class Factory:
        x: list = field(default_factory=list)

    @dataclass(frozen=True, slots=True)
    class PostInit:
        x: int

        def __post_init__(self) -> None:
            pass

    @dataclass(frozen=True, slots=True, kw_only=True)
    class KeywordOnly:
        x: int

    @dataclass(frozen=True, slots=True)
    class WithInitVar:
        x: int
        scale: dataclasses.InitVar[int] = 1

    for cls in (Mutable, NoSlots, Factory, PostInit, KeywordOnly, WithInitVar):
        with pytest.raises(TypeError):
            fast_frozen_init(cls)
