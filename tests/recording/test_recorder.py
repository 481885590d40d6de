"""The recorder against a real hub (no HTTP): what reaches the disk, when, and what the
decisions do. Units are real H.264 + AAC (PyAV-encoded, as ingest makes them), pushed
straight into the hub by a publisher."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os

import pytest

from mediasrv.hub import Hub
from mediasrv.media.types import TrackKind
from mediasrv.recording import files as rf
from mediasrv.recording.recorder import DecisionRefused, RecordingNotFound
from mediasrv.store.recordings import RecordingState as S
from tests.hls.conftest import encode, synthetic
from tests.recording.conftest import (
    Publisher, counts, decode_file, decode_recording, make_recorder, only_recording, push, until, wait_state,
)


@pytest.fixture(scope="module")
def media():
    return encode(seconds=4.0)  # 100 frames at 25 fps, GOP 1 s, B-frames; AAC 48 kHz


def shifted(units, offset_ms):
    return [dataclasses.replace(u, dts=u.dts + offset_ms, pts=u.pts + offset_ms) for u in units]


async def test_records_segment_by_segment_then_awaits_a_decision(tmp_path, media):
    ended = []
    recorder = make_recorder(tmp_path, on_ended=ended.append)
    hub = recorder.hub
    await recorder.start()
    try:
        publication = hub.publish("alice", Publisher())
        await push(publication, media.units[: len(media.units) // 2])
        recording = await only_recording(recorder, "alice")
        assert recording.state is S.RECORDING and recording.ended_at is None
        path = recorder.path_of(recording.id)
        # A segment is on disk (and listed) while the stream is still live.
        await until(lambda: (rf.load_manifest(path) or rf.Manifest({})).segments)
        await push(publication, media.units[len(media.units) // 2:])
        publication.detach(clean=True)
        recording = await wait_state(recorder, recording.id, S.PENDING)
    finally:
        await recorder.stop()
    video, audio = counts(media.units)
    assert recording.segments == 2 and recording.video_frames == video == 100
    assert recording.duration == pytest.approx(4.0, abs=0.05)
    assert recording.ended_at is not None and recording.error is None
    assert [r.id for r in ended] == [recording.id]
    files = sorted(os.listdir(path))
    assert not [f for f in files if f.endswith(".tmp")]
    manifest = rf.load_manifest(path)
    assert files == sorted(manifest.files() | {rf.MANIFEST})
    assert recording.size == sum(os.path.getsize(path / f) for f in manifest.files())
    lines = [json.loads(line) for line in (path / rf.MANIFEST).read_text().splitlines()]
    assert lines[0]["id"] == recording.id and lines[0]["stream"] == "alice"
    assert "end" in lines[-1]
    decoded, audio_frames = decode_recording(path)
    pushed = sorted(u.pts for u in media.units if u.kind is TrackKind.VIDEO)
    assert sorted(decoded) == pytest.approx(pushed, abs=1.0)
    assert audio_frames == audio
    # The row outlives the recorder.
    again = make_recorder(tmp_path)
    await again.start()
    try:
        assert (await again.get(recording.id)).state is S.PENDING
    finally:
        await again.stop()


async def test_reconnect_within_grace_continues_the_recording_with_a_discontinuity(tmp_path, media):
    recorder = make_recorder(tmp_path)
    hub = recorder.hub
    await recorder.start()
    try:
        first = hub.publish("bob", Publisher())
        await push(first, media.units)
        first.detach(clean=False)  # dropped: the stream waits for the publisher
        second = hub.publish("bob", Publisher())  # back within the grace, clock from 0 again
        await push(second, media.units)
        second.detach(clean=True)
        recording = await only_recording(recorder, "bob")
        recording = await wait_state(recorder, recording.id, S.PENDING)
        assert recording.video_frames == 200
        saved = await recorder.save(recording.id)
        assert saved.state is S.SAVED
        vod = await recorder.vod(recording.id)
        playlist = vod.playlist.decode()
        assert playlist.count("#EXT-X-DISCONTINUITY\n") == 1
        assert playlist.count("#EXT-X-MAP:") == 1  # same codec configuration: one init
        mp4 = await recorder.mp4(recording.id)
    finally:
        await recorder.stop()
    video_ms, audio = decode_file(mp4)
    assert len(video_ms) == 200 and audio == 2 * counts(media.units)[1]
    # One timeline: the second part follows the first (presentation order = time order).
    assert all(a < b for a, b in zip(video_ms, video_ms[1:])), video_ms


async def test_save_gives_a_vod_playlist_and_a_progressive_mp4_made_once(tmp_path, media):
    saved_hook = []

    async def on_saved(recording):  # hooks may be coroutines
        saved_hook.append(recording)

    recorder = make_recorder(tmp_path, on_saved=on_saved)
    hub = recorder.hub
    await recorder.start()
    try:
        publication = hub.publish("carol", Publisher())
        with pytest.raises(DecisionRefused, match="still live"):
            recording = await only_recording(recorder, "carol")
            await recorder.save(recording.id)
        await push(publication, media.units)
        publication.detach(clean=True)
        recording = await wait_state(recorder, recording.id, S.PENDING)
        assert await recorder.vod(recording.id) is None  # not served before it is saved
        saved = await recorder.save(recording.id)
        assert saved.decided_by == "creator" and saved.decided_at is not None
        assert (await recorder.save(recording.id)).state is S.SAVED  # idempotent
        assert [r.id for r in saved_hook] == [recording.id]
        vod = await recorder.vod(recording.id)
        lines = vod.playlist.decode().splitlines()
        assert lines[:3] == ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-PLAYLIST-TYPE:VOD"]
        assert lines[-1] == "#EXT-X-ENDLIST"
        assert sum(float(l[8:].rstrip(",")) for l in lines if l.startswith("#EXTINF:")) == pytest.approx(4.0, abs=0.05)
        assert vod.files == rf.load_manifest(recorder.path_of(recording.id)).files()
        mp4 = await recorder.mp4(recording.id)
        stamp = mp4.stat().st_mtime_ns
        assert await recorder.mp4(recording.id) == mp4 and mp4.stat().st_mtime_ns == stamp  # cached
    finally:
        await recorder.stop()
    data = mp4.read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")  # faststart: index first
    video_ms, audio = decode_file(mp4)
    assert len(video_ms) == 100 and audio == counts(media.units)[1]
    pushed = sorted(u.pts for u in media.units if u.kind is TrackKind.VIDEO)
    assert sorted(video_ms) == pytest.approx(pushed, abs=1.0)


async def test_discard_deletes_every_file(tmp_path, media):
    recorder = make_recorder(tmp_path)
    hub = recorder.hub
    await recorder.start()
    try:
        publication = hub.publish("dave", Publisher())
        await push(publication, media.units)
        publication.detach(clean=True)
        recording = await only_recording(recorder, "dave")
        recording = await wait_state(recorder, recording.id, S.PENDING)
        # Saved first (its MP4 is being made in the background), then discarded after all.
        await recorder.save(recording.id)
        discarded = await recorder.discard(recording.id)
        assert discarded.state is S.DISCARDED
        assert not recorder.path_of(recording.id).exists()
        assert os.listdir(recorder.root) == []
        assert (await recorder.discard(recording.id)).state is S.DISCARDED  # idempotent
        with pytest.raises(DecisionRefused, match="files are gone"):
            await recorder.save(recording.id)
        assert await recorder.vod(recording.id) is None
        with pytest.raises(RecordingNotFound):
            await recorder.mp4(recording.id)
        with pytest.raises(RecordingNotFound):
            await recorder.save("A" * 16)
    finally:
        await recorder.stop()


async def test_save_by_default_saves_as_soon_as_the_broadcast_ends(tmp_path, media):
    """Issue 16, item 6: a creator who saves by default gets the VOD when the broadcast
    ends, not after ``decide_within`` (24 h here, the default); the others' recordings wait
    for them as before."""
    ended, saved = [], []
    recorder = make_recorder(tmp_path, default_save=lambda stream_name: stream_name == "keeper",
                             on_ended=ended.append, on_saved=saved.append)
    assert recorder.decide_within == 86400
    hub = recorder.hub
    await recorder.start()
    try:
        ids = {}
        for name in ("keeper", "waiter"):
            publication = hub.publish(name, Publisher())
            await push(publication, media.units[:150])
            publication.detach(clean=True)
            ids[name] = (await only_recording(recorder, name)).id
        kept = await wait_state(recorder, ids["keeper"], S.SAVED)
        waiting = await wait_state(recorder, ids["waiter"], S.PENDING)
        listed = await recorder.list(stream="keeper", states=(S.SAVED,))
        vod = await recorder.vod(kept.id)
    finally:
        await recorder.stop()
    assert kept.decided_by == "default" and kept.decided_at >= kept.ended_at
    assert recorder.decide_by(kept) is None
    assert [r.id for r in listed] == [kept.id] and vod is not None and b"#EXT-X-ENDLIST" in vod.playlist
    assert [r.id for r in saved] == [kept.id]
    # Nobody is asked to decide about a recording that was saved for them.
    assert [r.id for r in ended] == [ids["waiter"]]
    assert waiting.decided_by is None and recorder.decide_by(waiting) == waiting.ended_at + 86400


async def test_a_failed_recording_is_saved_by_default_when_its_broadcast_ends(tmp_path, full_disk):
    """What a recording kept before the disk filled up is saved when the broadcast ends,
    for a creator who saves by default (the recording stopped; the broadcast went on)."""
    directory, _ = full_disk
    recorder = make_recorder(tmp_path, f"recording.dir={directory}", default_save=lambda stream_name: True)
    hub = recorder.hub
    await recorder.start()
    units = synthetic(6.0)
    big = [dataclasses.replace(u, data=u.data + bytes(12_000)) if u.kind is TrackKind.VIDEO else u for u in units]
    try:
        publication = hub.publish("heidi", Publisher())
        await push(publication, big[: len(big) * 7 // 10])
        recording = await wait_state(recorder, (await only_recording(recorder, "heidi")).id, S.FAILED)
        assert recording.ended_at is None  # live on: nothing is decided yet
        await push(publication, big[len(big) * 7 // 10:])
        publication.detach(clean=True)
        recording = await wait_state(recorder, recording.id, S.SAVED)
    finally:
        await recorder.stop()
    assert recording.decided_by == "default" and recording.segments == 1 and recording.ended_at is not None


async def test_undecided_recordings_follow_the_default_after_decide_within(tmp_path, media):
    """The creator did not save by default when the broadcast ended; after
    ``decide_within`` the default they have then decides (here the keeper's creator turned
    it on meanwhile)."""
    asked = {"keeper": 0, "dropper": 0}

    async def default_save(stream_name):
        # Asked once when the broadcast ends (no), then when decide_within has passed: by
        # then the keeper's creator has turned "save by default" on.
        asked[stream_name] += 1
        return stream_name == "keeper" and asked[stream_name] > 1

    recorder = make_recorder(tmp_path, "recording.decide_within=0.5", default_save=default_save)
    hub = recorder.hub
    await recorder.start()
    try:
        ids = {}
        for name in ("keeper", "dropper"):
            publication = hub.publish(name, Publisher())
            await push(publication, media.units[:150])
            publication.detach(clean=True)
            ids[name] = (await only_recording(recorder, name)).id
        kept = await wait_state(recorder, ids["keeper"], S.SAVED)
        dropped = await wait_state(recorder, ids["dropper"], S.DISCARDED)
        # The row turns discarded first (crash safety), the files go right after.
        await until(lambda: not recorder.path_of(dropped.id).exists())
    finally:
        await recorder.stop()
    assert kept.decided_by == dropped.decided_by == "default"
    assert kept.decided_at >= kept.ended_at + 0.5
    assert recorder.path_of(kept.id).exists() and not recorder.path_of(dropped.id).exists()


async def test_a_restart_applies_the_default_to_recordings_left_undecided(tmp_path, media):
    recorder = make_recorder(tmp_path)
    await recorder.start()
    publication = recorder.hub.publish("erin", Publisher())
    await push(publication, media.units[:150])
    publication.detach(clean=True)
    recording = await wait_state(recorder, (await only_recording(recorder, "erin")).id, S.PENDING)
    await recorder.stop()
    # Later, with a shorter decision window: the timer picks the old recording up.
    again = make_recorder(tmp_path, "recording.decide_within=0", default_save=lambda stream_name: True)
    await again.start()
    try:
        saved = await wait_state(again, recording.id, S.SAVED)
        assert saved.decided_by == "default"
    finally:
        await again.stop()


async def test_kill_mid_stream_recovers_every_complete_segment(tmp_path, media):
    """A crash is simulated: the recorder's task dies mid-stream without any clean-up of
    its own (as with kill -9), leaving a torn manifest line, a half-written temp file and a
    segment that was renamed but never listed. A new recorder on the same directory makes
    it pending_decision with every complete, listed segment; it can be saved and plays."""
    recorder = make_recorder(tmp_path)
    hub = recorder.hub
    await recorder.start()
    publication = hub.publish("frank", Publisher())
    await push(publication, list(media.units) + shifted(media.units[:60], 4000))  # ~5 s: 2 whole segments
    recording = await only_recording(recorder, "frank")
    path = recorder.path_of(recording.id)
    await until(lambda: len((rf.load_manifest(path) or rf.Manifest({})).segments) >= 2)
    # "kill -9": the task stops where it is; nothing is finalised, the row says recording.
    tasks = [active.task for active in recorder._active.values()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    recorder.store.close()
    listed = rf.load_manifest(path)
    frames = listed.video_frames
    with open(path / rf.MANIFEST, "ab") as f:
        f.write(b'{"seg":"seg_x_9.m4s","map":"ini')  # torn append
    (path / ".seg_x_10.m4s.tmp").write_bytes(b"half")
    (path / "seg_zz_11.m4s").write_bytes(b"renamed, never listed")

    again = make_recorder(tmp_path, hub=Hub())
    await again.start()
    try:
        recovered = await again.get(recording.id)
        assert recovered.state is S.PENDING
        assert recovered.segments == len(listed.segments) >= 2
        assert recovered.video_frames == frames and recovered.ended_at is not None
        assert sorted(os.listdir(path)) == sorted(listed.files() | {rf.MANIFEST})
        assert (path / rf.MANIFEST).read_bytes().endswith(b"\n")
        await again.save(recording.id)
        mp4 = await again.mp4(recording.id)
    finally:
        await again.stop()
    video_ms, _ = decode_file(mp4)
    assert len(video_ms) == frames
    assert decode_recording(path)[0] and len(decode_recording(path)[0]) == frames


async def test_a_lost_database_is_rebuilt_from_the_manifests(tmp_path, media):
    recorder = make_recorder(tmp_path)
    await recorder.start()
    publication = recorder.hub.publish("gina", Publisher())
    await push(publication, media.units)
    publication.detach(clean=True)
    recording = await wait_state(recorder, (await only_recording(recorder, "gina")).id, S.PENDING)
    await recorder.stop()
    for name in os.listdir(tmp_path):
        if name.startswith("mediasrv.db"):
            os.unlink(tmp_path / name)
    (tmp_path / "recordings" / "not-a-recording").mkdir()
    again = make_recorder(tmp_path)
    await again.start()
    try:
        rebuilt = await again.get(recording.id)
        assert rebuilt.state is S.PENDING and rebuilt.stream == "gina"
        assert rebuilt.segments == recording.segments and rebuilt.size == recording.size
        assert (tmp_path / "recordings" / "not-a-recording").exists()  # not ours: left alone
    finally:
        await again.stop()


async def test_disk_full_fails_the_recording_and_the_stream_goes_on(tmp_path, full_disk):
    """1 MiB of disk (a real tmpfs where mounting is permitted), 2.6 Mbit/s of media: the
    first segment (~650 kB) fits, the second does not. The recording fails with the
    reason, on_failed is told, the publisher is not disturbed and every other reader gets
    every unit; the segment written before stays listed."""
    directory, how = full_disk
    failed = []
    recorder = make_recorder(tmp_path, f"recording.dir={directory}", on_failed=failed.append)
    hub = recorder.hub
    await recorder.start()
    units = synthetic(6.0)
    big = [dataclasses.replace(u, data=u.data + bytes(12_000)) if u.kind is TrackKind.VIDEO else u for u in units]
    try:
        publisher = Publisher()
        publication = hub.publish("heidi", publisher)
        viewer = hub.get("heidi").subscribe(max_units=100_000, name="viewer")
        await push(publication, big[: len(big) * 7 // 10])  # to 4.2 s: the second segment is cut
        recording = await only_recording(recorder, "heidi")
        recording = await wait_state(recorder, recording.id, S.FAILED)
        assert hub.get("heidi") is not None and publication.active  # live on
        await push(publication, big[len(big) * 7 // 10:])
        publication.detach(clean=True)
        got = []
        while (unit := await viewer.read()) is not None:
            got.append(unit)
        assert len(got) == len(big) and publisher.kicked is None
        recording = await until(lambda: _ended(recorder, recording.id))
    finally:
        await recorder.stop()
    assert recording.state is S.FAILED and recording.ended_at is not None
    assert "disk full" in recording.error and "No space left on device" in recording.error, recording.error
    assert [r.id for r in failed] == [recording.id] and failed[0].error == recording.error
    path = recorder.path_of(recording.id)
    assert not [f for f in os.listdir(path) if f.endswith(".tmp")]  # no half-written file left
    # What was written before the disk filled up is listed, complete, and can still be kept.
    assert len(rf.load_manifest(path).segments) == recording.segments == 1
    assert "1 segments (2.0 s) were kept" in recording.error
    print("disk full through", how)


async def _ended(recorder, recording_id):
    recording = await recorder.get(recording_id)
    return recording if recording.ended_at is not None else None


async def test_min_free_bytes_stops_before_the_disk_is_full(tmp_path, media):
    recorder = make_recorder(tmp_path, f"recording.min_free_bytes={1 << 50}")
    hub = recorder.hub
    await recorder.start()
    try:
        publication = hub.publish("ivan", Publisher())
        await push(publication, media.units)
        recording = await wait_state(recorder, (await only_recording(recorder, "ivan")).id, S.FAILED)
        assert "disk almost full" in recording.error and "min_free_bytes" in recording.error
        publication.detach(clean=True)
        recording = await until(lambda: _ended(recorder, recording.id))
        with pytest.raises(DecisionRefused, match="nothing was recorded"):
            await recorder.save(recording.id)
        assert (await recorder.discard(recording.id)).state is S.DISCARDED
        assert not recorder.path_of(recording.id).exists()
    finally:
        await recorder.stop()


async def test_recording_disabled_records_nothing(tmp_path, media):
    recorder = make_recorder(tmp_path, "recording.enabled=false")
    await recorder.start()
    try:
        publication = recorder.hub.publish("judy", Publisher())
        await push(publication, media.units[:50])
        # A recording would begin synchronously on StreamStarted (it subscribes at once).
        assert recorder._active == {} and recorder.stats.recordings_started == 0
        publication.detach(clean=True)
        assert await recorder.list() == []
    finally:
        await recorder.stop()


async def test_shutdown_finalises_live_recordings(tmp_path, media):
    """The server's shutdown order: the hub ends every stream, then the recorder stops —
    the segment in progress is written and the recording awaits a decision."""
    recorder = make_recorder(tmp_path)
    hub = recorder.hub
    await recorder.start()
    publication = hub.publish("kim", Publisher())
    await push(publication, media.units[:130])  # 2 segments and a bit
    recording = await only_recording(recorder, "kim")
    hub.close()
    await recorder.stop()
    again = make_recorder(tmp_path)
    await again.start()
    try:
        final = await again.get(recording.id)
    finally:
        await again.stop()
    assert final.state is S.PENDING
    assert final.video_frames == sum(1 for u in media.units[:130] if u.kind is TrackKind.VIDEO)
