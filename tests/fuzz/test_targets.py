"""Bounded fuzzing in CI: every target of ``tests/fuzz/targets.py`` gets random bytes and
mutated real inputs. The only allowed outcomes are a result or the package's typed error;
any other exception fails the test with the input that caused it (hypothesis shrinks it).

``benchmarks/fuzz.py`` runs the same targets coverage-guided (atheris) for longer.
Set ``MEDIASRV_FUZZ_EXAMPLES`` to run more examples per target locally.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz.targets import TARGETS, Target

EXAMPLES = int(os.environ.get("MEDIASRV_FUZZ_EXAMPLES", "150"))
#: Slower targets (a decoder, a file write, an event loop turn) get fewer examples.
SLOW = {"cover_upload": 0.5, "config": 0.6, "chat_requests": 0.6}


@st.composite
def mutated(draw, seeds: list[bytes]):
    """A real input with a few bytes replaced, inserted, deleted or copied, possibly cut."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(0, 6))):
        if not data:
            break
        i = draw(st.integers(0, len(data) - 1))
        op = draw(st.sampled_from(["set", "insert", "delete", "copy", "interesting"]))
        if op == "set":
            data[i] = draw(st.integers(0, 255))
        elif op == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=4))
        elif op == "delete":
            del data[i:i + draw(st.integers(1, 8))]
        elif op == "copy":
            j = draw(st.integers(0, len(data) - 1))
            data[i:i] = data[j:j + draw(st.integers(1, 16))]
        else:  # boundary values where length and count fields live
            data[i:i + 4] = draw(st.sampled_from([b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\x7f\xff\xff\xff",
                                                  b"\x80\x00\x00\x00", b"\x00\x00\x00\x01"]))
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return bytes(data)


def inputs(target: Target):
    seeds = target.seeds()
    raw = st.binary(max_size=target.max_size)
    return st.one_of(raw, mutated(seeds)) if seeds else raw


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_only_results_or_typed_errors(name):
    target = TARGETS[name]

    @settings(max_examples=max(20, int(EXAMPLES * SLOW.get(name, 1.0))), deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(inputs(target))
    def run(data):
        target.run(data)

    run()


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_seeds_are_accepted(name):
    """The seeds are valid inputs, so the mutations start from the parser's deep paths."""
    target = TARGETS[name]
    seeds = target.seeds()
    assert seeds
    for seed in seeds:
        target.run(seed)
