// Go live from the browser (/studio/live): the page's flow. Pick a camera and a
// microphone and see yourself (golive-preview.js), set the title and cover
// (golive-details.js), publish over WHIP (whip.js) and follow the live on air
// (golive-onair.js): its health and viewers, "Go public" when it started backstage, and
// "End live", after which the recording is saved or discarded right here (golive-end.js).
// What the page shows for each phase is golive-view.js.
import { api, ApiError, errorText, toast } from './api.js';
import { initAudience } from './audience.js';
import { initDetails, saveTitle, showDetails } from './golive-details.js';
import { askDecision, initEnd } from './golive-end.js';
import { initOnAir, onAir, stopFollowing } from './golive-onair.js';
import { initPreview, showElsewhere, startCamera, stopMedia, stopRemotePlayer } from './golive-preview.js';
import { $, gate, note, page, refreshGoButton, setPhase, showProblem, state } from './golive-view.js';
import * as live from './live.js';
import { atLeast, currentUser, initHeader, refreshUser } from './nav.js';
import { explain, publish, WhipError } from './whip.js';

const WHIP_PATH = '/whip';
// Milliseconds the connection may take before the page calls it failed.
const CONNECT_TIMEOUT = 15000;
// Milliseconds the server may take to show the stream as live once connected.
const START_TIMEOUT = 30000;

// --- going live -------------------------------------------------------------------------

async function goLive() {
  if (!page.media || !page.key || state.phase !== 'setup') return;
  showProblem(null);
  state.public = false;
  state.recording = null;
  state.decision = null;
  state.elsewhere = false;
  setPhase('connecting');
  try {
    await saveTitle();
  } catch (e) {
    showProblem('The title was not saved', errorText(e));
    setPhase('setup');
    return;
  }
  state.backstage = !!page.settings.backstage;
  await connect();
}

/** One WHIP session (its ICE servers, TURN included, come with the OPTIONS answer). */
async function connect() {
  let mine;
  try {
    mine = await publish(WHIP_PATH, page.key, page.media.stream, { onstate: (c) => onConnectionState(mine, c) });
  } catch (e) {
    const [title, text] = explain(e instanceof WhipError ? e : new WhipError(0, String(e), 'network'));
    showProblem(title, text);
    setPhase('setup');
    return;
  }
  if (state.phase !== 'connecting') { mine.close(); return; }  // cancelled meanwhile
  page.session = mine;
  state.codec = mine.codec;
  state.iceServers = mine.iceServers.map((s) => s.urls);  // the URLs only: never a credential
  state.session = mine.location ? new URL(mine.location).pathname : null;
  setTimeout(() => {
    if (page.session === mine && state.phase === 'connecting' && !mine.connected) onConnectionState(mine, 'failed');
  }, CONNECT_TIMEOUT);
  if (mine.pc.connectionState === 'connected') onConnectionState(mine, 'connected');
}

function onConnectionState(mine, connection) {
  if (!mine || mine !== page.session) return;
  if (connection === 'connected') {
    note('connection', '');
    if (!mine.connected) { mine.connected = true; waitOnAir(mine); }
  } else if (connection === 'disconnected') {
    note('connection', 'The connection is unstable: reconnecting…');
  } else if (connection === 'failed') {
    const wasOnAir = state.phase === 'live' || state.phase === 'backstage';
    dropSession();
    note('connection', '');
    const [title, text] = explain(new WhipError(0, '', 'ice'));
    showProblem(wasOnAir ? 'The connection was lost' : title,
      wasOnAir ? 'Your live stopped reaching the server. Viewers keep the stream for a short while: tap “Go live” '
        + 'to carry on, or check your network.' : text);
    setPhase('setup');
  }
}

/** The peer connection is up: wait until the server has the broadcast (GET /api/me/live:
 *  private or public), then follow it. */
async function waitOnAir(mine) {
  const deadline = Date.now() + START_TIMEOUT;
  while (page.session === mine && state.phase === 'connecting') {
    let now = null;
    try { now = await live.myLive(); } catch { /* asked again */ }
    if (page.session !== mine || state.phase !== 'connecting') return;
    if (now && now.state !== 'offline') {
      onAir(now);
      return;
    }
    if (Date.now() > deadline) {
      await dropSession();
      showProblem('The server got no picture', 'The connection was made but no video arrived. Tap “Go live” to try '
        + 'again, or try another camera or browser.');
      setPhase('setup');
      return;
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** Stop following the live and close this page's session. `ended`: the server was just
 *  asked to end the live (or said it ended): it closes the session itself, the page waits
 *  a moment for that rather than DELETE a session that is gone. */
async function dropSession({ ended = false } = {}) {
  const old = page.session;
  page.session = null;
  stopRemotePlayer();
  stopFollowing();
  if (old) await old.close({ serverWaitMs: ended ? 3000 : 0 });
}

async function goPublic() {
  const button = $('go-public');
  button.disabled = true;
  try {
    await live.goPublic();
    state.public = true;
    setPhase('live');
    toast('You are public: your followers are told you are live.');
  } catch (e) {
    showProblem('Could not go public', errorText(e));
  } finally {
    button.disabled = false;
  }
}

/** End the live from the server (whatever publishes it: this page, OBS), close this
 *  page's WHIP session, then ask what to do with the recording. */
async function endLive() {
  if (state.phase === 'connecting') {
    // Cancel before anything is on air: the session goes (DELETE), the broadcast, if it
    // had started, ends like after a dropped encoder (no hold on going live again).
    await dropSession();
    note('connection', '');
    setPhase('setup');
    return;
  }
  setPhase('ending');
  let ended = null;
  try {
    ended = await live.endLive();
  } catch (e) {
    // 409: nothing is live any more (a cancelled connection, or an end elsewhere).
    if (!(e instanceof ApiError && e.status === 409)) showProblem('Could not end the live', errorText(e));
  }
  await dropSession({ ended: !!ended });
  // After an end from the studio the server refuses the same key for a short hold.
  if (ended && ended.hold_seconds) state.holdUntil = Date.now() + ended.hold_seconds * 1000;
  askDecision(ended ? ended.recording : undefined, ended ? ended.was === 'public' : state.public);
}

/** The live on air ended, not from this page: an operator's stop (with their reason), or
 *  "End live" on another device. */
function endedElsewhere(reason, wasPublic) {
  dropSession({ ended: true });
  if (live.endedByOperator(reason)) showProblem('An operator stopped your live', reason);
  askDecision(undefined, wasPublic);
}

// --- start -------------------------------------------------------------------------------

async function start() {
  page.me = currentUser();
  if (!page.me) { gate('Log in with a creator account to go live.', true); return; }
  page.me = (await refreshUser()) || page.me;
  if (!atLeast(page.me, 'creator')) {
    gate('Going live is for creators. Open Settings to make this a creator account.', false);
    return;
  }
  $('gate').hidden = true;
  $('golive').hidden = false;
  setPhase('setup');
  const [keyResult, settingsResult, accessResult] = await Promise.allSettled([
    api('/api/me/stream-key'), api('/api/me/settings'), api('/api/me/live-access')]);
  if (keyResult.status === 'fulfilled') page.key = keyResult.value.stream_key;
  else showProblem('Your stream key could not be read', errorText(keyResult.reason));
  if (settingsResult.status === 'fulfilled') {
    page.settings = settingsResult.value;
    showDetails(page.settings);
  }
  // Who may watch: its "this live, now" row follows the live (looked at every 10 s).
  initAudience($('audience')).then((refresh) => setInterval(refresh, 10000));
  if (accessResult.status === 'fulfilled') {
    page.access = accessResult.value;
    if (!page.access.allowed) {
      showProblem('You cannot go live yet', `${page.access.reason || 'You have no live access.'} The studio says how to get it.`);
    }
  }
  refreshGoButton();
  // Already live from OBS or another device: this page follows that live (its health,
  // Go public, End live) rather than open the camera.
  let now = null;
  try { now = await live.myLive(); } catch { /* asked again when going live */ }
  if (now && now.state !== 'offline') {
    followElsewhere(now);
    return;
  }
  await startCamera();
}

/** Follow a live published from elsewhere (OBS, another device): its preview plays what
 *  the server gets. */
function followElsewhere(now) {
  state.elsewhere = true;
  showElsewhere(now);
  onAir(now);
}

initHeader('studio');
initPreview();
initDetails();
initOnAir({ onEnded: endedElsewhere });
initEnd();
$('setup').addEventListener('submit', (e) => { e.preventDefault(); goLive(); });
$('go-live').addEventListener('click', goLive);
$('go-public').addEventListener('click', goPublic);
$('end-live').addEventListener('click', endLive);
$('again').addEventListener('click', () => {
  showProblem(null);
  state.elsewhere = false;
  setPhase('setup');
  if (!page.media) startCamera({});
});
// A closed tab ends the WHIP session (the stream waits for a reconnect, as after any drop).
window.addEventListener('pagehide', () => { if (page.session) page.session.close({ keepalive: true }); });
window.addEventListener('mediasrv:auth', () => {
  if (!currentUser()) { dropSession(); stopMedia(); gate('Logged out.', true); }
});
start();
