"""The on-disk form of one recording, and what is made from it (VOD playlist, MP4).

``recording.dir/<id>/`` holds:

- ``init_<tag>_<n>.mp4`` and ``seg_<tag>_<msn>.m4s``: the source rendition as CMAF
  (our own fMP4 writer, the same bytes live HLS serves);
- ``manifest.jsonl``: append-only JSON lines. The first is a header
  (``{"v": 1, "id", "stream", "started_at"}``), then one line per segment
  (``{"seg", "map", "dur", "disc", "ind", "bytes", "frames", "pdt"}``), and at a clean
  end ``{"end": unix seconds}``;
- ``download.mp4`` once saved: the progressive MP4 (remuxed, cached).

Crash safety: each file is written to ``.NAME.tmp``, fsynced, renamed over its name
(atomic), and the directory fsynced; only then is the segment's manifest line appended
and fsynced. So a listed segment is always complete on disk, and a crash (kill -9, power)
loses at most the segment in progress. :func:`load_manifest` with ``repair=True`` cuts a
half-written last line, drops ``.tmp`` files and segment files no line lists.

Everything here blocks (file I/O, fsync, PyAV): call it from a worker thread.
"""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path

from mediasrv.hls import names
from mediasrv.hls.playlist import format_date_time, round_half_up
from mediasrv.hls.segmenter import Segment

MANIFEST = "manifest.jsonl"
DOWNLOAD = "download.mp4"
FORMAT_VERSION = 1


class DiskFull(OSError):
    """Less than ``recording.min_free_bytes`` would be left after a write."""


@dataclass(slots=True)
class SegmentEntry:
    uri: str
    map_uri: str
    duration: float
    discontinuity: bool
    independent: bool
    bytes: int
    frames: int
    program_date_time: float | None

    def to_line(self) -> dict:
        return {
            "seg": self.uri, "map": self.map_uri, "dur": round(self.duration, 6), "disc": self.discontinuity,
            "ind": self.independent, "bytes": self.bytes, "frames": self.frames, "pdt": self.program_date_time,
        }

    @classmethod
    def from_line(cls, line: dict) -> "SegmentEntry":
        return cls(
            uri=str(line["seg"]), map_uri=str(line["map"]), duration=float(line["dur"]),
            discontinuity=bool(line.get("disc", False)), independent=bool(line.get("ind", True)),
            bytes=int(line.get("bytes", 0)), frames=int(line.get("frames", 0)),
            program_date_time=None if line.get("pdt") is None else float(line["pdt"]),
        )


@dataclass(slots=True)
class Manifest:
    header: dict
    segments: list[SegmentEntry] = field(default_factory=list)
    ended_at: float | None = None

    @property
    def duration(self) -> float:
        return sum(s.duration for s in self.segments)

    @property
    def video_frames(self) -> int:
        return sum(s.frames for s in self.segments)

    def inits(self) -> list[str]:
        seen: list[str] = []
        for s in self.segments:
            if s.map_uri not in seen:
                seen.append(s.map_uri)
        return seen

    def files(self) -> set[str]:
        return {s.uri for s in self.segments} | set(self.inits())


class RecordingFiles:
    """Writes one recording's directory (one writer at a time; calls come from threads)."""

    def __init__(self, path: Path, *, min_free_bytes: int = 0) -> None:
        self.path = Path(path)
        self.min_free_bytes = int(min_free_bytes)
        self.size = 0
        self._inits_written: set[str] = set()
        self._lock = threading.Lock()

    def create(self, header: dict) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        _fsync_dir(self.path.parent)
        self._append({"v": FORMAT_VERSION, **header})

    def add_segment(self, segment: Segment) -> SegmentEntry:
        """Write ``segment`` (and its init segment the first time), then list it.
        Raises ``OSError`` (``DiskFull`` or the system's ``ENOSPC``…) with nothing listed."""
        with self._lock:
            init = segment.init
            assert init.uri is not None, "recordings are fMP4"
            if init.uri not in self._inits_written:
                self._write_file(init.uri, init.data)
                self._inits_written.add(init.uri)
                self.size += len(init.data)
            self._write_file(segment.uri, segment.data)
            entry = SegmentEntry(
                uri=segment.uri, map_uri=init.uri, duration=segment.duration,
                discontinuity=segment.discontinuity, independent=segment.independent,
                bytes=len(segment.data), frames=segment.video_frames,
                program_date_time=segment.program_date_time,
            )
            self._append(entry.to_line())
            self.size += len(segment.data)
            return entry

    def finish(self, ended_at: float) -> None:
        with self._lock:
            self._append({"end": ended_at})

    def _write_file(self, name: str, data: bytes) -> None:
        # Three fsyncs per segment (file, directory, then the manifest line in _append)
        # are what makes "a listed segment is complete on disk" hold after a power cut,
        # and they are kept: measured (benchmarks/RESULTS.md, "Ingest CPU", 2026-12-07),
        # a 2 s segment of a 3 Mbit/s stream costs ~0.6 ms of CPU to write this way, on a
        # worker thread, never the event loop; a profiler shows more because it counts
        # the thread's wait in fsync. Writing without the temp file and the rename, or
        # with fdatasync, saved no CPU in that measurement (copying the bytes into the
        # page cache is the cost), only durability.
        self._check_space(len(data))
        tmp = self.path / f".{name}.tmp"
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path / name)
        except BaseException:
            _unlink(tmp)
            raise
        _fsync_dir(self.path)

    def _append(self, line: dict) -> None:
        data = (json.dumps(line, separators=(",", ":")) + "\n").encode()
        self._check_space(len(data))
        with open(self.path / MANIFEST, "ab") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())

    def _check_space(self, nbytes: int) -> None:
        if self.min_free_bytes <= 0:
            return
        st = os.statvfs(self.path)
        free = st.f_bavail * st.f_frsize
        if free - nbytes < self.min_free_bytes:
            raise DiskFull(
                errno.ENOSPC,
                f"disk almost full: {free // (1024 * 1024)} MiB free, "
                f"recording.min_free_bytes keeps {self.min_free_bytes // (1024 * 1024)} MiB",
            )


def load_manifest(path: Path, *, repair: bool = False) -> Manifest | None:
    """Read ``path/manifest.jsonl``; None when there is none (or no header).

    Only segments whose file is on disk with the listed size count; the segment after a
    missing one is marked as a discontinuity. With ``repair`` (start-up recovery of a
    recording that was being written): a half-written last line is cut off, ``.tmp``
    files and segment files that no line lists are deleted.
    """
    manifest_path = Path(path) / MANIFEST
    try:
        raw = manifest_path.read_bytes()
    except FileNotFoundError:
        return None
    if repair and raw and not raw.endswith(b"\n"):
        keep = raw.rfind(b"\n") + 1
        with open(manifest_path, "r+b") as f:
            f.truncate(keep)
            f.flush()
            os.fsync(f.fileno())
        raw = raw[:keep]
    manifest: Manifest | None = None
    lost = False
    for text in raw.split(b"\n"):
        if not text.strip():
            continue
        try:
            line = json.loads(text)
        except ValueError:
            continue  # a torn line (crash during an append)
        if not isinstance(line, dict):
            continue
        if manifest is None:
            if "v" in line and "id" in line:
                manifest = Manifest(header=line)
            continue
        if "end" in line:
            try:
                manifest.ended_at = float(line["end"])
            except (TypeError, ValueError):
                pass
            continue
        try:
            entry = SegmentEntry.from_line(line)
        except (KeyError, TypeError, ValueError):
            continue
        if not (names.is_file_name(entry.uri) and names.is_init_name(entry.map_uri)):
            continue
        if not _has_file(path, entry.uri, entry.bytes) or not _has_file(path, entry.map_uri, None):
            lost = True
            continue
        if lost:
            entry.discontinuity = True
            lost = False
        manifest.segments.append(entry)
    if repair and manifest is not None:
        listed = manifest.files() | {MANIFEST, DOWNLOAD}
        for child in Path(path).iterdir():
            if child.name not in listed and (child.name.endswith(".tmp") or names.is_file_name(child.name)):
                _unlink(child)
    return manifest


def delete_recording(path: Path) -> None:
    """Remove the directory: the manifest first (a half-deleted recording is never taken
    for a valid one), then everything else."""
    path = Path(path)
    _unlink(path / MANIFEST)
    shutil.rmtree(path, ignore_errors=True)
    if path.exists():  # something resisted ignore_errors: say what
        shutil.rmtree(path)
    _fsync_dir(path.parent)


def render_vod_playlist(manifest: Manifest) -> str:
    """An ``EXT-X-PLAYLIST-TYPE:VOD`` media playlist of every segment, with EXT-X-ENDLIST,
    EXT-X-MAP whenever the init segment changes and EXT-X-DISCONTINUITY kept."""
    segments = manifest.segments
    target = max([1] + [round_half_up(s.duration) for s in segments])
    lines = [
        "#EXTM3U",
        "#EXT-X-VERSION:7",
        "#EXT-X-PLAYLIST-TYPE:VOD",
        f"#EXT-X-TARGETDURATION:{target}",
        "#EXT-X-MEDIA-SEQUENCE:0",
    ]
    if all(s.independent for s in segments):
        lines.append("#EXT-X-INDEPENDENT-SEGMENTS")
    current_map = None
    for index, s in enumerate(segments):
        if s.discontinuity and index > 0:
            lines.append("#EXT-X-DISCONTINUITY")
        if s.map_uri != current_map:
            lines.append(f'#EXT-X-MAP:URI="{s.map_uri}"')
            current_map = s.map_uri
        if s.program_date_time is not None and (index == 0 or s.discontinuity):
            lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{format_date_time(s.program_date_time)}")
        lines.append(f"#EXTINF:{s.duration:.3f},")
        lines.append(s.uri)
    lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


# --- progressive MP4 ---------------------------------------------------------------------------

class RemuxError(Exception):
    """The recording cannot be made into one MP4 (the message says why)."""


class RemuxAborted(Exception):
    """The recording was discarded while its MP4 was being made."""


def remux_mp4(path: Path, manifest: Manifest, *, abort: threading.Event | None = None) -> Path:
    """Remux the recording (without re-encoding) into ``path/download.mp4`` with the index
    at the front (``movflags=faststart``); written as ``.download.mp4.tmp`` and renamed.

    Each run of segments sharing an init segment is demuxed as init + segments (read
    straight from the files, in order); packets keep their timestamps (the hub makes them
    continue across publisher reconnects). One MP4 track per media kind: a later init
    whose codec configuration differs (an encoder restarted with other settings) cannot
    go in the same track, and is refused with ``RemuxError``.
    """
    import av

    path = Path(path)
    if not manifest.segments:
        raise RemuxError("nothing was recorded")
    runs: list[tuple[str, list[str]]] = []
    for s in manifest.segments:
        if not runs or runs[-1][0] != s.map_uri:
            runs.append((s.map_uri, []))
        runs[-1][1].append(s.uri)
    # The output's tracks come from the first init that has each kind; every run must match.
    templates: dict[str, bytes | None] = {}
    for init_uri, _ in runs:
        with av.open(str(path / init_uri), format="mp4") as probe:
            for stream in probe.streams:
                extradata = bytes(stream.codec_context.extradata or b"")
                known = templates.get(stream.type)
                if known is None:
                    templates[stream.type] = extradata
                elif known != extradata:
                    raise RemuxError(
                        f"the {stream.type} codec configuration changed during the broadcast; "
                        "one MP4 track cannot hold both (the HLS VOD plays it)")
    tmp = path / f".{DOWNLOAD}.tmp"
    out = av.open(str(tmp), "w", format="mp4", options={"movflags": "faststart"})
    try:
        outputs: dict[str, object] = {}
        inputs = []
        for init_uri, segment_uris in runs:
            source = _ConcatFile([path / init_uri] + [path / uri for uri in segment_uris])
            container = av.open(source, format="mp4")
            inputs.append(container)
            for stream in container.streams:
                if stream.type not in outputs and stream.type in ("video", "audio"):
                    outputs[stream.type] = out.add_stream_from_template(stream)
        for container in inputs:
            try:
                for packet in container.demux():
                    if abort is not None and abort.is_set():
                        raise RemuxAborted()
                    if packet.dts is None or packet.size == 0:
                        continue
                    target = outputs.get(packet.stream.type)
                    if target is None:
                        continue
                    packet.stream = target
                    out.mux(packet)
            finally:
                container.close()
        out.close()
    except BaseException:
        try:
            out.close()
        except Exception:
            pass
        _unlink(tmp)
        raise
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    final = path / DOWNLOAD
    os.replace(tmp, final)
    return final


class _ConcatFile(io.RawIOBase):
    """Files read one after another as one seekable file (for the demuxer)."""

    def __init__(self, paths: list[Path]) -> None:
        self._paths = paths
        self._sizes = [p.stat().st_size for p in paths]
        self._starts = []
        total = 0
        for size in self._sizes:
            self._starts.append(total)
            total += size
        self._total = total
        self._pos = 0
        self._index = -1
        self._file = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence == 0:
            pos = offset
        elif whence == 1:
            pos = self._pos + offset
        elif whence == 2:
            pos = self._total + offset
        else:
            raise ValueError(whence)
        self._pos = max(0, pos)
        return self._pos

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = self._total - self._pos
        out = []
        while size > 0 and self._pos < self._total:
            index = self._locate(self._pos)
            if index != self._index:
                if self._file is not None:
                    self._file.close()
                self._file = open(self._paths[index], "rb")
                self._index = index
            offset = self._pos - self._starts[index]
            self._file.seek(offset)
            chunk = self._file.read(min(size, self._sizes[index] - offset))
            if not chunk:
                break
            out.append(chunk)
            self._pos += len(chunk)
            size -= len(chunk)
        return b"".join(out)

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def _locate(self, pos: int) -> int:
        import bisect

        return bisect.bisect_right(self._starts, pos) - 1

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        super().close()


# --- helpers ----------------------------------------------------------------------------------------

def _has_file(path: Path, name: str, size: int | None) -> bool:
    try:
        st = os.stat(Path(path) / name)
    except OSError:
        return False
    return size is None or st.st_size == size


def _unlink(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError:
        pass


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
