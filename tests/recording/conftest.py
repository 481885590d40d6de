"""Helpers of the recording tests: a hub and a recorder without the HTTP app, publishers
that push MediaUnits straight into the hub, a tiny file system, and decoding of what was
written."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import subprocess
import time
from pathlib import Path

import av
import pytest

from mediasrv.config import load_config
from mediasrv.hub import Hub
from mediasrv.media.types import MediaUnit, TrackKind
from mediasrv.recording import files as rf
from mediasrv.recording.recorder import Recorder, RecordingHooks
from mediasrv.store.recordings import Recording, RecordingState


class Publisher:
    """What the hub needs from a publisher."""

    def __init__(self) -> None:
        self.kicked: str | None = None

    def kick(self, reason: str) -> None:
        self.kicked = reason


def make_recorder(tmp_path, *overrides: str, hub: Hub | None = None, **hooks) -> Recorder:
    """A recorder on ``tmp_path``; ``hooks``: fields of its ``RecordingHooks``."""
    config = load_config(None, [f"data_dir={tmp_path}", "recording.min_free_bytes=0", *overrides])
    return Recorder(config.recording, hub or Hub(reconnect_grace=5.0), data_dir=config.data_dir,
                    segment_duration=config.hls.segment_duration, hooks=RecordingHooks(**hooks))


async def push(publication, units, *, batch: int = 40) -> None:
    """Push units into the hub, yielding to the loop now and then (as ingest would)."""
    for index, unit in enumerate(units):
        publication.push(unit)
        if index % batch == batch - 1:
            await asyncio.sleep(0)
    await asyncio.sleep(0)


async def until(predicate, timeout: float = 15.0, interval: float = 0.02):
    """Wait until ``await predicate()`` (or ``predicate()``) is truthy; return it."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(interval)


async def only_recording(recorder: Recorder, stream: str) -> Recording:
    rows = await until(lambda: recorder.list(stream=stream))
    assert len(rows) == 1, rows
    return rows[0]


async def wait_state(recorder: Recorder, recording_id: str, *states: RecordingState, timeout: float = 15.0) -> Recording:
    async def check():
        recording = await recorder.get(recording_id)
        return recording if recording is not None and recording.state in states else None

    return await until(check, timeout)


def decode_recording(path: Path) -> tuple[list[float], int]:
    """PyAV-decode the recording's init + segments (per init run): (video pts in ms, audio frames)."""
    manifest = rf.load_manifest(path)
    assert manifest is not None
    runs: list[tuple[str, list[str]]] = []
    for s in manifest.segments:
        if not runs or runs[-1][0] != s.map_uri:
            runs.append((s.map_uri, []))
        runs[-1][1].append(s.uri)
    video: list[float] = []
    audio = 0
    for init, segments in runs:
        blob = (path / init).read_bytes() + b"".join((path / uri).read_bytes() for uri in segments)
        with av.open(io.BytesIO(blob), format="mp4") as container:
            for frame in container.decode(*container.streams):
                if isinstance(frame, av.VideoFrame):
                    video.append(float(frame.pts * frame.time_base * 1000))
                else:
                    audio += 1
    return video, audio


def decode_file(path) -> tuple[list[float], int]:
    """PyAV-decode a whole media file: (video pts in ms, audio frames)."""
    video: list[float] = []
    audio = 0
    with av.open(str(path)) as container:
        for frame in container.decode(*container.streams):
            if isinstance(frame, av.VideoFrame):
                video.append(float(frame.pts * frame.time_base * 1000))
            else:
                audio += 1
    return video, audio


def counts(units: list[MediaUnit]) -> tuple[int, int]:
    video = sum(1 for u in units if u.kind is TrackKind.VIDEO)
    return video, len(units) - video


@contextlib.contextmanager
def tiny_filesystem(path: Path, size: str):
    """A tmpfs of ``size`` mounted at ``path`` (unmounted after); skips if mounting is not
    permitted here (the tests then inject ENOSPC instead, see ``full_disk``)."""
    path.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        yield None
        return
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


@pytest.fixture
def full_disk(tmp_path, monkeypatch):
    """A recording directory on a 1 MiB tmpfs, or (where mounting is not permitted) one
    whose writes fail with ENOSPC after 1 MiB (through the writer's one file-writing seam).
    Yields (directory, how: "tmpfs" or "injected")."""
    small = tmp_path / "small"
    with tiny_filesystem(small, "1m") as mounted:
        if mounted is not None:
            yield mounted, "tmpfs"
            return
        import errno

        written = [0]
        original = rf.RecordingFiles._write_file

        def write_file(self, name, data):
            if written[0] + len(data) > 1024 * 1024:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            written[0] += len(data)
            return original(self, name, data)

        monkeypatch.setattr(rf.RecordingFiles, "_write_file", write_file)
        yield small, "injected"
