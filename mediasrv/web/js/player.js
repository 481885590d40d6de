// The video player: hls.js in low-latency mode, or the browser's own HLS (Safari, iOS)
// where hls.js cannot run (no MediaSource). Reports its renditions, the chosen one and
// the latency behind the live edge.

/**
 * Play `url` in `video`. Returns {levels(), setLevel(i), level(), latency(), liveEdge(), destroy(), hls}.
 * `events.onLevels(levels)` fires when the renditions are known; `events.onError(text)`
 * on a fatal error (after hls.js's own recovery attempts).
 */
export function createPlayer(video, url, { live = true, onLevels = () => {}, onError = () => {}, onLevel = () => {} } = {}) {
  const Hls = window.Hls;
  if (Hls && Hls.isSupported()) {
    const hls = new Hls({
      lowLatencyMode: live,       // LL-HLS parts + blocking playlist reloads (docs/low-latency.md)
      backBufferLength: 30,
      enableWorker: true,
    });
    let mediaRecoveries = 0;
    hls.on(Hls.Events.MANIFEST_PARSED, (_e, data) => {
      onLevels(data.levels.map((level, index) => describe(level, index)));
      video.play().catch(() => {});
    });
    hls.on(Hls.Events.LEVEL_SWITCHED, (_e, data) => onLevel(data.level));
    hls.on(Hls.Events.ERROR, (_e, data) => {
      if (!data.fatal) return;
      // hls.js's documented recovery: retry the network, or recover the media pipeline once.
      if (data.type === Hls.ErrorTypes.NETWORK_ERROR) {
        onError(`network: ${data.details}`);
        hls.startLoad();
      } else if (data.type === Hls.ErrorTypes.MEDIA_ERROR && mediaRecoveries++ < 2) {
        hls.recoverMediaError();
      } else {
        onError(`${data.type}: ${data.details}`);
      }
    });
    hls.loadSource(url);
    hls.attachMedia(video);
    return {
      hls,
      native: false,
      levels: () => hls.levels.map((level, index) => describe(level, index)),
      setLevel: (index) => { hls.currentLevel = index; },  // -1: automatic
      level: () => hls.currentLevel,
      autoLevel: () => hls.autoLevelEnabled,
      latency: () => (live && Number.isFinite(hls.latency) ? hls.latency : null),
      liveEdge: () => hls.liveSyncPosition,
      destroy: () => hls.destroy(),
    };
  }
  if (video.canPlayType('application/vnd.apple.mpegurl')) {
    video.src = url;
    video.addEventListener('loadedmetadata', () => { onLevels([]); video.play().catch(() => {}); }, { once: true });
    video.addEventListener('error', () => onError(video.error ? video.error.message || `media error ${video.error.code}` : 'media error'));
    const edge = () => (video.seekable.length ? video.seekable.end(video.seekable.length - 1) : null);
    return {
      hls: null,
      native: true,
      levels: () => [],
      setLevel: () => {},
      level: () => -1,
      autoLevel: () => true,
      latency: () => { const e = edge(); return live && e !== null ? Math.max(0, e - video.currentTime) : null; },
      liveEdge: edge,
      destroy: () => { video.removeAttribute('src'); video.load(); },
    };
  }
  onError('this browser cannot play HLS video');
  return null;
}

function describe(level, index) {
  const path = (level.url && (Array.isArray(level.url) ? level.url[0] : level.url)) || '';
  const parts = path.split('?')[0].split('/');
  // A live rendition is /live/NAME/RENDITION/index.m3u8. A saved broadcast is one media
  // playlist, /vod/ID/index.m3u8, of the source (docs/recording.md): its folder is the
  // recording's id, not a rendition's name.
  const vod = parts.length >= 3 && parts[parts.length - 3] === 'vod';
  const rendition = vod ? 'source' : parts.length >= 2 ? parts[parts.length - 2] : '';
  const size = level.height ? `${level.height}p` : (rendition || `#${index + 1}`);
  const kbps = level.bitrate ? ` · ${Math.round(level.bitrate / 1000)} kbps` : '';
  const source = level.height ? `Source (${size})` : 'Source';
  const label = rendition === 'source' ? `${source}${kbps}` : `${size}${kbps}`;
  return { index, rendition, height: level.height, bitrate: level.bitrate, label };
}
