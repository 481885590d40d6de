// The go-live page's on-air panel: Live or Backstage, the viewers, how long, the server's
// figures and health warnings from the stats feed, and what this browser itself sends.
import { el, fmtCount, fmtDuration } from './api.js';
import { $, page, setPhase, state } from './golive-view.js';
import * as live from './live.js';

let events = null;        // the stats feed
let statsTimer = null;    // the look at what this browser sends
let publicTimer = null;
let liveSince = null;     // the server's start of this live (Unix seconds)
let localWarnings = [];
let endedElsewhere = () => {};

/** The server's start of the live on air (Unix seconds), null before one. */
export function liveStartedAt() {
  return liveSince;
}

/** The broadcast is on the server (`now`: GET /api/me/live): show it on air. */
export function onAir(now) {
  liveSince = now.started_at || Date.now() / 1000;
  $('live-title').textContent = page.settings.title || 'Untitled live';
  state.public = now.state === 'public';
  setPhase(state.public ? 'live' : 'backstage');
  followStats(now.preview && now.preview.grant);
  $('h-picture').parentElement.hidden = !page.session;  // what this browser sends: nothing when elsewhere
  watchSending();
  watchPublic();
}

/** Stop following the live (the stats feed, the look at what is sent). */
export function stopFollowing() {
  clearInterval(statsTimer);
  if (events) { events.close(); events = null; }
}

/** A backstage live made public elsewhere (the studio, another device) is public here too. */
function watchPublic() {
  clearTimeout(publicTimer);
  if (state.phase !== 'backstage') return;
  publicTimer = setTimeout(async () => {
    let now = null;
    try { now = await live.myLive(); } catch { /* asked again */ }
    if (state.phase !== 'backstage') return;
    if (now && now.state === 'public') {
      state.public = true;
      setPhase('live');
      return;
    }
    watchPublic();
  }, 3000);
}

/** The server's figures of the live, once a second; a private live's need its grant. */
function followStats(grant) {
  if (events) events.close();
  events = new EventSource(live.statsUrl(page.me.handle, grant));
  live.renewFeedGrant(events, grant, followStats);
  events.addEventListener('stats', (e) => onStats(JSON.parse(e.data)));
  events.addEventListener('ended', (e) => {
    if (events) events.close();
    events = null;
    if (state.phase !== 'live' && state.phase !== 'backstage') return;
    // Ended by someone else: an operator, or "End live" on another device.
    let reason = null;
    try { reason = JSON.parse(e.data).reason; } catch { /* no reason */ }
    endedElsewhere(reason, state.public);
  });
}

function onStats(stats) {
  const viewers = Number(stats.viewers) || 0;
  $('viewers').textContent = `${fmtCount(viewers)} watching`;
  $('h-viewers').textContent = fmtCount(viewers);
  $('h-bitrate').textContent = stats.bitrate_kbps ? `${fmtCount(Math.round(stats.bitrate_kbps))} kbps` : '–';
  $('h-fps').textContent = stats.fps ? `${Number(stats.fps).toFixed(0)} fps` : '–';
  $('h-time').textContent = liveSince ? fmtDuration(Date.now() / 1000 - liveSince) : '–';
  state.stats = { viewers, bitrate: stats.bitrate_kbps, fps: stats.fps };
  const warnings = [...(stats.warnings || []).map((w) => (typeof w === 'string' ? w : (w.message || JSON.stringify(w)))), ...localWarnings];
  $('h-warnings').replaceChildren(...warnings.map((w) => el('li', { text: w })));
  $('h-ok').hidden = warnings.length > 0 || !stats.bitrate_kbps;
}

/** What the browser itself sends: the picture's size, and whether it holds back. A
 *  connection starts low and climbs for its first seconds (the browser's bandwidth
 *  estimate): a limit is a warning once it lasted LIMIT_SAMPLES looks in a row. */
const LIMIT_SAMPLES = 4;

function watchSending() {
  clearInterval(statsTimer);
  const limited = { bandwidth: 0, cpu: 0 };
  statsTimer = setInterval(async () => {
    const { session } = page;
    if (!session) return;
    let report;
    try { report = await session.pc.getStats(session.videoSender ? session.videoSender.track : null); } catch { return; }
    report.forEach((s) => {
      if (s.type !== 'outbound-rtp' || s.kind !== 'video') return;
      if (s.frameWidth) $('h-picture').textContent = `${s.frameWidth}×${s.frameHeight}`;
      $('h-codec').textContent = state.codec || '';
      for (const reason of Object.keys(limited)) limited[reason] = s.qualityLimitationReason === reason ? limited[reason] + 1 : 0;
    });
    localWarnings = [];
    if (limited.bandwidth >= LIMIT_SAMPLES) localWarnings.push('your upload is too slow for full quality: the picture is reduced');
    if (limited.cpu >= LIMIT_SAMPLES) localWarnings.push('this device is too busy for full quality: the picture is reduced');
  }, 2000);
}

/** `onEnded(reason, wasPublic)`: the stats feed said the live on air ended, not from this
 *  page (an operator's stop, "End live" on another device). */
export function initOnAir({ onEnded }) {
  endedElsewhere = onEnded;
}
