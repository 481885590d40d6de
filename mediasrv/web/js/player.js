// The video player: hls.js in low-latency mode, or the browser's own HLS (Safari, iOS)
// where hls.js cannot run (no MediaSource). Reports its renditions, the chosen one and
// the latency behind the live edge.

// A playlist or segment that cannot be loaded is asked for again after this long,
// doubling up to the maximum (or after the server's Retry-After): a live stream's
// playlist answers 503 + Retry-After while its first segment is being made, which can
// take a whole keyframe interval (8 s with OBS's "auto"), and hls.js gives up after one
// retry of a manifest.
const RETRY_FIRST_MS = 1000;
const RETRY_MAX_MS = 8000;
// A recording (not live) is retried this many times before the error is shown.
const VOD_RETRIES = 3;

/** `url` with its signed playback grant (`pt=`, a private live's: docs/api.md) replaced
 *  by `grant`; as it is without either. */
export function withGrant(url, grant) {
  return grant ? url.replace(/([?&]pt=)[^&#]*/, `$1${encodeURIComponent(grant)}`) : url;
}

/**
 * Play `url` in `video`. Returns {levels(), setLevel(i), level(), latency(), liveEdge(), regrant(), destroy(), hls}.
 * `events.onLevels(levels)` fires when the renditions are known; `events.onRetry(text, ms)`
 * when a network error is retried by the player itself (live: for as long as the player
 * exists, so a viewer is never left on a black player); `events.onError(text)` on an
 * error it gives up on.
 * A private live (backstage): `grant()` gives the current playback grant, which every
 * request carries (the page renews it before it expires, so a running player never
 * restarts); `renew()` is asked for a fresh one when the server answers 403 or 404 (the
 * grant expired or was revoked) and resolves false when there is none to have (then the
 * player stops retrying: the page shows why).
 */
export function createPlayer(video, url, { live = true, onLevels = () => {}, onError = () => {}, onLevel = () => {},
  onRetry = () => {}, grant = null, renew = null } = {}) {
  const Hls = window.Hls;
  if (Hls && Hls.isSupported()) {
    const config = {
      lowLatencyMode: live,       // LL-HLS parts + blocking playlist reloads (docs/low-latency.md)
      backBufferLength: 30,
      enableWorker: true,
    };
    if (grant) {
      // Every playlist, part and segment request with the grant of now (hls.js opens the
      // request itself when this does not).
      config.xhrSetup = (xhr, requestUrl) => { xhr.open('GET', withGrant(requestUrl, grant()), true); };
    }
    const hls = new Hls(config);
    let mediaRecoveries = 0;
    let retries = 0;
    let retryTimer = null;
    let destroyed = false;
    const manifestErrors = new Set([Hls.ErrorDetails.MANIFEST_LOAD_ERROR, Hls.ErrorDetails.MANIFEST_LOAD_TIMEOUT,
      Hls.ErrorDetails.MANIFEST_PARSING_ERROR]);
    const retry = async (data) => {
      const code = data.response && data.response.code;
      if (renew && (code === 403 || code === 404)) {
        // The grant expired or was revoked: a fresh one, or nothing more to play.
        const renewed = await renew();
        if (destroyed) return;
        if (!renewed) { onError(`network: ${data.details} (HTTP ${code}): no playback grant`); return; }
      }
      const hinted = retryAfterMs(data);
      const delay = hinted !== null ? hinted : Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** retries);
      retries += 1;
      const what = `network: ${data.details}${data.response && data.response.code ? ` (HTTP ${data.response.code})` : ''}`;
      onRetry(what, delay);
      clearTimeout(retryTimer);
      retryTimer = setTimeout(() => {
        if (destroyed) return;
        // hls.js's documented recovery: after a fatal manifest error load the source again
        // (startLoad alone never asks for the manifest again); otherwise resume loading.
        if (manifestErrors.has(data.details) || !hls.levels || !hls.levels.length) hls.loadSource(url);
        else hls.startLoad();
      }, delay);
    };
    hls.on(Hls.Events.MANIFEST_PARSED, (_e, data) => {
      retries = 0;
      onLevels(data.levels.map((level, index) => describe(level, index)));
      video.play().catch(() => {});
    });
    hls.on(Hls.Events.FRAG_LOADED, () => { retries = 0; });
    hls.on(Hls.Events.LEVEL_SWITCHED, (_e, data) => onLevel(data.level));
    hls.on(Hls.Events.ERROR, (_e, data) => {
      if (!data.fatal) return;
      if (data.type === Hls.ErrorTypes.NETWORK_ERROR) {
        if (live || retries < VOD_RETRIES) retry(data);
        else onError(`network: ${data.details}`);
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
      // Nothing to say before the first frame is shown (hls.js reports 0 until then).
      latency: () => (live && video.readyState >= HTMLMediaElement.HAVE_CURRENT_DATA && Number.isFinite(hls.latency)
        ? hls.latency : null),
      liveEdge: () => hls.liveSyncPosition,
      regrant: () => {},  // the next request carries the new grant already (xhrSetup)
      destroy: () => { destroyed = true; clearTimeout(retryTimer); hls.destroy(); },
    };
  }
  if (video.canPlayType('application/vnd.apple.mpegurl')) {
    // The browser's own HLS sends no request through this page: a new grant means loading
    // the playlist again with it.
    const load = () => { video.src = withGrant(url, grant ? grant() : null); };
    load();
    video.addEventListener('loadedmetadata', () => { onLevels([]); video.play().catch(() => {}); }, { once: true });
    let renewals = 0;  // in a row, without playing in between: a broken stream is not retried for ever
    video.addEventListener('playing', () => { renewals = 0; });
    video.addEventListener('error', async () => {
      if (renew && renewals++ < 3 && await renew()) { load(); video.play().catch(() => {}); return; }
      onError(video.error ? video.error.message || `media error ${video.error.code}` : 'media error');
    });
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
      regrant: () => { if (grant) { load(); video.play().catch(() => {}); } },
      destroy: () => { video.removeAttribute('src'); video.load(); },
    };
  }
  onError('this browser cannot play HLS video');
  return null;
}

// The server's Retry-After (seconds) on the failed response, in ms; null without one.
function retryAfterMs(data) {
  const details = data.networkDetails;
  let value = null;
  try {
    if (details && typeof details.getResponseHeader === 'function') value = details.getResponseHeader('Retry-After');
    else if (details && details.headers && typeof details.headers.get === 'function') value = details.headers.get('Retry-After');
  } catch { value = null; }
  const seconds = Number(value);
  return value !== null && value !== '' && Number.isFinite(seconds) && seconds >= 0 ? Math.min(RETRY_MAX_MS, seconds * 1000) : null;
}

// A picture's "p" name is its short side: a phone held upright, 720x1280, is 720p (the
// transcoder names its rungs the same way, mediasrv/transcode/ladder.py), not "1280p".
function shortSide(level) {
  return level.width && level.height ? Math.min(level.width, level.height) : level.height;
}

function describe(level, index) {
  const path = (level.url && (Array.isArray(level.url) ? level.url[0] : level.url)) || '';
  const parts = path.split('?')[0].split('/');
  // A live rendition is /live/NAME/RENDITION/index.m3u8. A saved broadcast is one media
  // playlist, /vod/ID/index.m3u8, of the source (docs/recording.md): its folder is the
  // recording's id, not a rendition's name.
  const vod = parts.length >= 3 && parts[parts.length - 3] === 'vod';
  const rendition = vod ? 'source' : parts.length >= 2 ? parts[parts.length - 2] : '';
  const size = level.height ? `${shortSide(level)}p` : (rendition || `#${index + 1}`);
  const kbps = level.bitrate ? ` · ${Math.round(level.bitrate / 1000)} kbps` : '';
  const source = level.height ? `Source (${size})` : 'Source';
  const label = rendition === 'source' ? `${source}${kbps}` : `${size}${kbps}`;
  return { index, rendition, width: level.width, height: level.height, size: level.height ? size : '', bitrate: level.bitrate, label };
}
