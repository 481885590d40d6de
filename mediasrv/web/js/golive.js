// Go live from the browser (/studio/live): pick a camera and a microphone, see yourself,
// set the title and cover, and publish over WHIP (js/whip.js). While on air: the live's
// health and viewers from the stats feed, "Go public" when it started backstage, and
// "End live", after which the recording is saved or discarded right here.
import { api, ApiError, el, errorText, fmtCount, fmtDuration, toast } from './api.js';
import * as camera from './camera.js';
import { atLeast, currentUser, initHeader, openLogin, refreshUser } from './nav.js';
import * as live from './live.js';
import { createPlayer } from './player.js';
import { explain, publish, WhipError } from './whip.js';

const $ = (id) => document.getElementById(id);
const WHIP_PATH = '/whip';
// Milliseconds the connection may take before the page calls it failed.
const CONNECT_TIMEOUT = 15000;
// Milliseconds the server may take to show the stream as live once connected.
const START_TIMEOUT = 30000;

// Exposed for tests and debugging (never the key).
const state = window.mediasrvGoLive = {
  phase: 'loading', problem: null, codec: null, backstage: false, public: false, recording: null, decision: null,
  elsewhere: false, session: null, holdUntil: 0, iceServers: [],
};
let me = null;
let key = null;
let settings = {};
let access = null;
let media = null;         // {stream, noAudio}
let session = null;       // the WHIP session while on air
let events = null;        // the stats feed
let facing = 'user';
let levelStop = null;
let statsTimer = null;
let liveSince = null;     // the server's start of this live (Unix seconds)
let holdTimer = null;
let publicTimer = null;
let remotePlayer = null;  // the preview of a live from elsewhere (hls.js)

// --- what the page shows ----------------------------------------------------------------

/** Move to `phase` and show what belongs to it (body[data-phase] drives the CSS too). */
function setPhase(phase) {
  state.phase = phase;
  document.body.dataset.phase = phase;
  const onAir = phase === 'live' || phase === 'backstage';
  const pill = $('onair');
  const pills = {
    setup: ['Preview', 'off'], connecting: ['Connecting…', 'off'], backstage: ['Backstage', 'backstage'],
    live: ['Live', 'live'], ending: ['Ending…', 'off'], decide: ['Ended', 'off'], done: ['Ended', 'off'],
  };
  const [text, cls] = pills[phase] || ['Preview', 'off'];
  pill.textContent = text;
  pill.className = `status-pill ${cls}`;
  $('viewers').hidden = !onAir;
  $('backstage-banner').hidden = phase !== 'backstage';
  $('health').hidden = !onAir;
  $('setup').hidden = !['setup', 'connecting'].includes(phase);
  $('decide').hidden = !['decide', 'done'].includes(phase);
  $('go-live').hidden = !['setup', 'connecting'].includes(phase);
  $('go-public').hidden = phase !== 'backstage';
  $('end-live').hidden = !(onAir || phase === 'connecting');
  $('end-live').textContent = phase === 'connecting' ? 'Cancel' : 'End live';
  $('setup').querySelectorAll('input, select, button').forEach((c) => { c.disabled = phase !== 'setup' || c.dataset.off === '1'; });
  // After the live the question has its own buttons: no empty bar at the bottom.
  $('actions').hidden = ['decide', 'done', 'ending', 'gate', 'loading'].includes(phase);
  refreshGoButton();
}

/** "Go live" is offered when everything it needs is there; otherwise a line under it
 *  says what is missing. */
function refreshGoButton() {
  const button = $('go-live');
  button.textContent = state.phase === 'connecting' ? 'Connecting…' : 'Go live';
  let missing = '';
  const hold = Math.ceil((state.holdUntil - Date.now()) / 1000);
  if (access && !access.allowed) missing = 'You need live access first: the studio says how to get it.';
  else if (!key) missing = 'Your stream key could not be read: reload the page.';
  else if (!media) missing = 'Turn on your camera (above) to go live.';
  else if (hold > 0) missing = `You just ended a live: you can go live again in ${hold} s.`;
  button.disabled = state.phase !== 'setup' || !!missing;
  const hint = $('go-hint');
  hint.textContent = state.phase === 'setup' ? missing : '';
  hint.hidden = !hint.textContent;
  $('cover-snap').disabled = state.phase !== 'setup' || !media;
  // Count the hold down (the server refuses a new live until then).
  clearTimeout(holdTimer);
  if (hold > 0) holdTimer = setTimeout(refreshGoButton, 1000);
}

function showProblem(title, text) {
  state.problem = title ? { title, text } : null;
  $('problem').hidden = !title;
  $('problem-title').textContent = title || '';
  $('problem-text').textContent = text || '';
}

// Notes that stay while their cause does: the connection, a missing microphone.
const notes = { connection: '', microphone: '' };

function note(which, text) {
  notes[which] = text || '';
  const all = Object.values(notes).filter(Boolean).join(' ');
  $('info').hidden = !all;
  $('info').textContent = all;
}

function gate(text, withLogin) {
  $('golive').hidden = true;
  const box = $('gate');
  box.replaceChildren(el('p', { text }));
  if (withLogin) box.append(el('button', { class: 'primary', text: 'Log in', onclick: () => openLogin() }));
  box.hidden = false;
  setPhase('gate');
}

// --- camera and microphone ------------------------------------------------------------

function showCameraEmpty(problem) {
  $('camera-empty').hidden = !problem;
  $('preview-box').classList.toggle('no-camera', !!problem);
  $('preview-box').classList.toggle('remote', !!(problem && problem.remote));
  if (!problem) return;
  $('camera-empty-title').textContent = problem.title;
  $('camera-empty-text').textContent = problem.text;
  $('camera-retry').hidden = !problem.retry;
  // The pickers say why they are empty.
  for (const id of ['camera', 'mic']) {
    $(id).replaceChildren(el('option', { value: '', text: problem.short || 'Off' }));
    $(id).dataset.off = '1';
    $(id).disabled = true;
  }
}

function stopMedia() {
  if (levelStop) { levelStop(); levelStop = null; }
  if (media) media.stream.getTracks().forEach((t) => t.stop());
  media = null;
}

function attachPreview() {
  const video = $('preview');
  video.srcObject = media.stream;
  video.play().catch(() => { /* autoplay of a muted preview: allowed; a refusal leaves the poster */ });
  const track = media.stream.getVideoTracks()[0];
  const settingsNow = track ? track.getSettings() : {};
  // A mirror for the front camera (and a desktop webcam, which has no facing mode), as
  // people expect to see themselves; the picture sent is never mirrored.
  $('preview-box').classList.toggle('mirrored', settingsNow.facingMode !== 'environment');
  $('preview-box').classList.toggle('portrait', (settingsNow.height || 0) > (settingsNow.width || 0));
  if (track) track.addEventListener('ended', () => {
    if (media && media.stream.getVideoTracks()[0] === track) {
      showCameraEmpty({ title: 'The camera stopped', text: 'It was unplugged or another app took it. Tap “Try again”.', retry: true });
    }
  });
  $('mic-level').value = 0;
  levelStop = camera.levelMeter(media.stream, (level) => { $('mic-level').value = level; });
}

/** Open the chosen (or default) camera and microphone and show the preview; while on
 *  air, the live carries on with them. */
async function startCamera({ videoId, audioId } = {}) {
  if (!camera.cameraAvailable()) {
    showCameraEmpty({
      title: 'The camera needs a secure page',
      text: 'Browsers give a camera only to pages opened over https:// (or on this computer). Ask the '
        + 'operator for the https address of this server, or go live with OBS (see the studio).',
      retry: false,
    });
    refreshGoButton();
    return;
  }
  // A phone opens one camera at a time: the old one is released first.
  stopMedia();
  try {
    media = await camera.open({ videoId, audioId, facing });
  } catch (e) {
    showCameraEmpty({ ...camera.cameraProblem(e), retry: true });
    refreshGoButton();
    return;
  }
  showCameraEmpty(null);
  attachPreview();
  if (session) {
    for (const track of media.stream.getTracks()) await session.replace(track);
  }
  note('microphone', media.noAudio ? 'No microphone found: your live will have no sound. Connect one, then pick it above.' : '');
  await fillDevices();
  refreshGoButton();
}

async function fillDevices() {
  let list;
  try { list = await camera.devices(); } catch { return; }
  const current = (kind) => { const t = media && media.stream.getTracks().find((x) => x.kind === kind); return t ? t.getSettings().deviceId : ''; };
  const fill = (select, items, selected, none) => {
    select.replaceChildren(...(items.length ? items.map((d) => el('option', { value: d.id, text: d.label, selected: d.id === selected }))
      : [el('option', { value: '', text: none })]));
    select.dataset.off = items.length ? '0' : '1';
    select.disabled = state.phase !== 'setup' || !items.length;
  };
  fill($('camera'), list.video, current('video'), 'No camera found');
  fill($('mic'), list.audio, current('audio'), 'No microphone found');
  // Phones have a front and a back camera: one tap switches.
  $('flip').hidden = list.video.length < 2;
}

async function flipCamera() {
  facing = facing === 'user' ? 'environment' : 'user';
  await startCamera({ audioId: $('mic').value || undefined });
}

// --- title, cover, backstage ------------------------------------------------------------

function showCover(url) {
  const img = $('cover');
  img.hidden = !url;
  if (url) img.src = url;  // versioned by the server: a new cover is a new URL
  $('cover-remove').hidden = !url;
  $('cover-state').textContent = url ? 'shown on your card in discovery' : 'none yet: discovery shows a frame of your live';
}

async function uploadCover(blob) {
  try {
    const result = await api('/api/me/cover', { method: 'PUT', raw: blob, headers: { 'Content-Type': blob.type || 'image/jpeg' } });
    showCover(result && result.cover_url);
    toast('Cover updated.');
  } catch (e) { toast(errorText(e), true); }
}

/** The preview's current frame as the cover (as viewers see it: not mirrored). */
function snapCover() {
  const video = $('preview');
  if (!media || !video.videoWidth) { toast('Turn on the camera first.', true); return; }
  const canvas = el('canvas', { width: video.videoWidth, height: video.videoHeight });
  canvas.getContext('2d').drawImage(video, 0, 0);
  canvas.toBlob((blob) => { if (blob) uploadCover(blob); }, 'image/jpeg', 0.85);
}

async function saveBackstage() {
  const wanted = $('backstage').checked;
  try {
    settings = await api('/api/me/settings', { method: 'PATCH', body: { backstage: wanted } });
    toast(wanted ? 'Your next live starts backstage.' : 'Your next live is public at once.');
  } catch (e) {
    $('backstage').checked = !wanted;
    toast(errorText(e), true);
  }
}

// --- going live -------------------------------------------------------------------------

async function goLive() {
  if (!media || !key || state.phase !== 'setup') return;
  showProblem(null);
  state.public = false;
  state.recording = null;
  state.decision = null;
  state.elsewhere = false;
  setPhase('connecting');
  try {
    const title = $('title').value.trim();
    if (title !== (settings.title || '')) settings = await api('/api/me/settings', { method: 'PATCH', body: { title } });
  } catch (e) {
    showProblem('The title was not saved', errorText(e));
    setPhase('setup');
    return;
  }
  state.backstage = !!settings.backstage;
  await connect();
}

/** One WHIP session (its ICE servers, TURN included, come with the OPTIONS answer). */
async function connect() {
  let mine;
  try {
    mine = await publish(WHIP_PATH, key, media.stream, { onstate: (c) => onConnectionState(mine, c) });
  } catch (e) {
    const [title, text] = explain(e instanceof WhipError ? e : new WhipError(0, String(e), 'network'));
    showProblem(title, text);
    setPhase('setup');
    return;
  }
  if (state.phase !== 'connecting') { mine.close(); return; }  // cancelled meanwhile
  session = mine;
  state.codec = mine.codec;
  state.iceServers = mine.iceServers.map((s) => s.urls);  // the URLs only: never a credential
  state.session = mine.location ? new URL(mine.location).pathname : null;
  setTimeout(() => {
    if (session === mine && state.phase === 'connecting' && !mine.connected) onConnectionState(mine, 'failed');
  }, CONNECT_TIMEOUT);
  if (mine.pc.connectionState === 'connected') onConnectionState(mine, 'connected');
}

function onConnectionState(mine, connection) {
  if (!mine || mine !== session) return;
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
  while (session === mine && state.phase === 'connecting') {
    let now = null;
    try { now = await live.myLive(); } catch { /* asked again */ }
    if (session !== mine || state.phase !== 'connecting') return;
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

/** The broadcast is on the server (`now`: GET /api/me/live). */
function onAir(now) {
  liveSince = now.started_at || Date.now() / 1000;
  $('live-title').textContent = settings.title || 'Untitled live';
  state.public = now.state === 'public';
  setPhase(state.public ? 'live' : 'backstage');
  followStats(now.preview && now.preview.grant);
  $('h-picture').parentElement.hidden = !session;  // what this browser sends: nothing when elsewhere
  watchSending();
  watchPublic();
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

/** Stop following the live and close this page's session. `ended`: the server was just
 *  asked to end the live (or said it ended): it closes the session itself, the page waits
 *  a moment for that rather than DELETE a session that is gone. */
async function dropSession({ ended = false } = {}) {
  const old = session;
  session = null;
  stopRemotePlayer();
  clearInterval(statsTimer);
  if (events) { events.close(); events = null; }
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

// --- while on air ------------------------------------------------------------------------

/** The server's figures of the live, once a second; a private live's need its grant. */
function followStats(grant) {
  if (events) events.close();
  events = new EventSource(live.statsUrl(me.handle, grant));
  events.addEventListener('stats', (e) => onStats(JSON.parse(e.data)));
  events.addEventListener('ended', (e) => {
    if (events) events.close();
    events = null;
    if (state.phase !== 'live' && state.phase !== 'backstage') return;
    // Ended by someone else: an operator, or "End live" on another device.
    let reason = null;
    try { reason = JSON.parse(e.data).reason; } catch { /* no reason */ }
    const wasPublic = state.public;
    dropSession({ ended: true });
    if (live.endedByOperator(reason)) showProblem('An operator stopped your live', reason);
    askDecision(undefined, wasPublic);
  });
}

let localWarnings = [];

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

// --- after the live: save or discard -----------------------------------------------------

/** Ask to save or discard the live's recording. `recording`: what the end answered
 *  ({id, state, duration}, null: nothing was recorded); undefined when the live ended
 *  elsewhere, then the recording is looked up. */
async function askDecision(recording, wasPublic) {
  setPhase('decide');
  $('decide-title').textContent = 'Your live has ended';
  $('decide-actions').hidden = true;
  $('after-actions').hidden = true;
  $('watch-video').hidden = true;
  const text = $('decide-text');
  text.textContent = 'Finishing the recording…';
  if (recording === undefined) recording = await findRecording(wasPublic);
  if (state.phase !== 'decide') return;
  state.recording = recording || null;
  const question = live.recordingQuestion(recording, wasPublic);
  text.textContent = question.text;
  if (question.save) {
    $('save').textContent = question.save;
    $('decide-actions').hidden = false;
    return;
  }
  $('after-actions').hidden = false;
  setPhase('done');
}

/** This live's recording, once finished (it is listed from its start and takes a few
 *  seconds after the end); null when there is none 5 s after the end. */
async function findRecording(wasPublic) {
  const since = (liveSince || Date.now() / 1000) - 5;
  const now = Date.now();
  const appearBy = now + (wasPublic ? 5000 : 0);
  const finishBy = now + 30000;
  for (;;) {
    let rows = [];
    try {
      rows = (await api(`/api/recordings?stream=${encodeURIComponent(me.handle)}&limit=5`)).recordings || [];
    } catch { /* asked again */ }
    const recording = rows.find((r) => r.started_at >= since && r.state !== 'discarded') || null;
    if (recording && recording.state !== 'recording') return recording;
    if (Date.now() >= (recording ? finishBy : appearBy) || state.phase !== 'decide') return recording;
    await new Promise((r) => setTimeout(r, 1000));
  }
}

function decided(action) {
  state.decision = action;
  $('decide-actions').hidden = true;
  $('after-actions').hidden = false;
  const link = $('watch-video');
  link.hidden = action !== 'save';
  link.href = `/watch/${encodeURIComponent(me.handle)}?vod=${encodeURIComponent(state.recording.id)}`;
  $('decide-text').textContent = action === 'save' ? 'Saved: it is a video on your channel.' : 'Discarded: the recording is deleted.';
  setPhase('done');
}

async function decide(action) {
  $('save').disabled = $('discard').disabled = true;
  try {
    await live.decideRecording(state.recording, action);
    decided(action);
  } catch (e) {
    showProblem(action === 'save' ? 'Could not save' : 'Could not discard', errorText(e));
  } finally {
    $('save').disabled = $('discard').disabled = false;
  }
}

// --- start -------------------------------------------------------------------------------

async function start() {
  me = currentUser();
  if (!me) { gate('Log in with a creator account to go live.', true); return; }
  me = (await refreshUser()) || me;
  if (!atLeast(me, 'creator')) {
    gate('Going live is for creators. Open Settings to make this a creator account.', false);
    return;
  }
  $('gate').hidden = true;
  $('golive').hidden = false;
  setPhase('setup');
  const [keyResult, settingsResult, accessResult] = await Promise.allSettled([
    api('/api/me/stream-key'), api('/api/me/settings'), api('/api/me/live-access')]);
  if (keyResult.status === 'fulfilled') key = keyResult.value.stream_key;
  else showProblem('Your stream key could not be read', errorText(keyResult.reason));
  if (settingsResult.status === 'fulfilled') {
    settings = settingsResult.value;
    $('title').value = settings.title || '';
    showCover(settings.cover_url);
    // Backstage is offered where the server knows it.
    $('backstage-row').hidden = !('backstage' in settings);
    $('backstage').checked = !!settings.backstage;
  }
  if (accessResult.status === 'fulfilled') {
    access = accessResult.value;
    if (!access.allowed) {
      showProblem('You cannot go live yet', `${access.reason || 'You have no live access.'} The studio says how to get it.`);
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

/** Follow a live published from elsewhere (OBS, another device): no camera here; the
 *  preview plays what the server gets (the creator's own playback URL, which works for a
 *  private live too). */
function followElsewhere(now) {
  state.elsewhere = true;
  stopMedia();
  const elsewhere = {
    title: 'You are live from another app or device',
    text: 'This page shows that live’s health and viewers, and can make it public or end it. To go live from '
      + 'this browser, end it first.',
    retry: false, short: 'Off', remote: true,
  };
  const url = now.preview && now.preview.playback_url;
  if (url && window.Hls) {
    showCameraEmpty(null);
    $('preview-box').classList.remove('mirrored');
    note('connection', `${elsewhere.title}: the preview shows what the server gets. Make it public or end it `
      + 'here; to go live from this browser, end it first.');
    remotePlayer = createPlayer($('preview'), live.here(url), { live: true, onError: (text) => showCameraEmpty({ ...elsewhere, text: `${elsewhere.text} (The preview cannot play: ${text}.)` }) });
  } else {
    showCameraEmpty(elsewhere);
  }
  onAir(now);
}

function stopRemotePlayer() {
  if (!remotePlayer) return;
  remotePlayer.destroy();
  remotePlayer = null;
  note('connection', '');
}

initHeader('studio');
// The picture's shape follows the camera (a phone turned round, another camera).
$('preview').addEventListener('resize', () => {
  const video = $('preview');
  if (video.videoWidth) $('preview-box').classList.toggle('portrait', video.videoHeight > video.videoWidth);
});
$('camera-retry').addEventListener('click', () => startCamera({}));
$('camera').addEventListener('change', () => startCamera({ videoId: $('camera').value || undefined, audioId: $('mic').value || undefined }));
$('mic').addEventListener('change', () => startCamera({ videoId: $('camera').value || undefined, audioId: $('mic').value || undefined }));
$('flip').addEventListener('click', flipCamera);
$('cover-snap').addEventListener('click', snapCover);
$('cover-file').addEventListener('change', () => { const f = $('cover-file').files[0]; if (f) uploadCover(f); $('cover-file').value = ''; });
$('cover-remove').addEventListener('click', async () => {
  try { await api('/api/me/cover', { method: 'DELETE' }); showCover(null); toast('Cover removed.'); } catch (e) { toast(errorText(e), true); }
});
$('backstage').addEventListener('change', saveBackstage);
$('setup').addEventListener('submit', (e) => { e.preventDefault(); goLive(); });
$('go-live').addEventListener('click', goLive);
$('go-public').addEventListener('click', goPublic);
$('end-live').addEventListener('click', endLive);
$('save').addEventListener('click', () => decide('save'));
$('discard').addEventListener('click', () => decide('discard'));
$('again').addEventListener('click', () => {
  showProblem(null);
  state.elsewhere = false;
  setPhase('setup');
  if (!media) startCamera({});
});
// A closed tab ends the WHIP session (the stream waits for a reconnect, as after any drop).
window.addEventListener('pagehide', () => { if (session) session.close({ keepalive: true }); });
window.addEventListener('mediasrv:auth', () => { if (!currentUser()) { dropSession(); stopMedia(); gate('Logged out.', true); } });
start();
