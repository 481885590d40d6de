// Creator studio (/studio): going live (this browser: /studio/live; OBS settings and
// stream key), live access, title/cover, a live dashboard fed by the stats SSE feed with
// Go public (backstage) and End live, moderation, past broadcasts, earnings.
import { api, el, errorText, fmtBytes, fmtCount, fmtDuration, fmtTime, toast, token } from './api.js';
import { initAudience } from './audience.js';
import { LiveChart } from './charts.js';
import * as live from './live.js';
import { atLeast, currentUser, initHeader, openLogin, refreshUser } from './nav.js';

const $ = (id) => document.getElementById(id);
let me = null;
let events = null;
let liveTimer = null;

// Exposed for tests and debugging.
const state = window.mediasrvStudio = { live: false, charts: {} };

function gate(text, withLogin) {
  $('studio').hidden = true;
  const box = $('gate');
  box.replaceChildren(el('p', { text }));
  if (withLogin) box.append(el('button', { class: 'primary', text: 'Log in', onclick: () => openLogin() }));
  box.hidden = false;
}

// --- go live --------------------------------------------------------------------------

async function loadKey(rotate = false) {
  const key = await api('/api/me/stream-key', { method: rotate ? 'POST' : 'GET' });
  $('server-url').value = key.server;
  $('stream-key').value = key.stream_key;
  // Viewers get the first picture at the encoder's second keyframe: with OBS's "auto"
  // (250 frames, 8 s at 30 fps) they would wait that long at every go-live.
  const hint = $('keyframe-hint');
  hint.textContent = `Keyframe interval: ${key.keyframe_interval} s (OBS: Settings → Output, Output Mode “Advanced”,`
    + ` Keyframe Interval ${key.keyframe_interval}; not 0/auto). Viewers then see you within seconds of going live.`;
  hint.hidden = false;
}

async function loadAccess() {
  const access = await api('/api/me/live-access');
  const pill = $('access-status');
  pill.textContent = access.allowed ? 'Live access: yes' : 'Live access: no';
  pill.className = `status-pill ${access.allowed ? 'ok' : 'no'}`;
  $('access-reason').textContent = access.allowed ? '' : (access.reason || '');
  await showAccessRequest(access);
}

// Below the threshold: what counts, and a way to ask the operators (issue 16, item 3).
async function showAccessRequest(access) {
  const box = $('access-request');
  const belowRule = !access.allowed && !access.override && atLeast(me, 'creator');
  box.hidden = !belowRule;
  $('access-reason').hidden = belowRule;  // the explanation below says it, with what to do
  if (!belowRule) return;
  $('access-explain').textContent = `Creators with ${fmtCount(access.min_followers)} followers can go live ` +
    `(you have ${fmtCount(access.followers)}). Followers are accounts that follow your channel; share your ` +
    'watch page to grow them, or ask the operators for access now.';
  const { requests } = await api('/api/me/live-access/requests');
  const last = requests[0];
  const status = $('access-request-status');
  if (last && last.status === 'pending') {
    status.textContent = `Your request of ${fmtTime(last.created_at)} is waiting for an operator.`;
  } else if (last && last.status === 'refused') {
    status.textContent = `Your last request was refused: ${last.reason}. You can ask again.`;
  } else {
    status.textContent = '';
  }
  $('access-request-form').hidden = !!(last && last.status === 'pending');
}

async function sendAccessRequest(event) {
  event.preventDefault();
  try {
    await api('/api/me/live-access/requests', { method: 'POST', body: { message: $('access-message').value } });
    $('access-message').value = '';
    toast('Request sent. You will see the answer here.');
  } catch (e) { toast(errorText(e), true); }
  loadAccess();
}

// An operator's decision reaches the open studio at once (the alerts feed).
let alerts = null;
function listenForDecisions() {
  if (alerts || !token()) return;
  alerts = new EventSource(`/api/me/events?access_token=${encodeURIComponent(token())}`);
  alerts.addEventListener('live-access.decided', (e) => {
    const decision = JSON.parse(e.data);
    toast(decision.status === 'granted' ? 'Live access granted: you can go live.' : 'Your live-access request was refused.');
    loadAccess();
  });
}

// --- settings and cover ---------------------------------------------------------------

/** "Who may watch": its "this live, now" row follows the live (looked at every 10 s). */
async function startAudience() {
  const refresh = await initAudience($('audience'));
  setInterval(refresh, 10000);
}

async function loadSettings() {
  const settings = await api('/api/me/settings');
  $('title').value = settings.title || '';
  $('save-default').checked = !!settings.save_by_default;
  const chat = settings.chat || {};
  $('chat-enabled').checked = chat.enabled !== false;
  $('followers-only').checked = !!chat.followers_only;
  $('slow-mode').value = String(chat.slow_mode_seconds || 0);
  // Backstage is offered where the server has it.
  state.hasBackstage = 'backstage' in settings;
  $('backstage-label').hidden = !state.hasBackstage;
  $('backstage-default').checked = !!settings.backstage;
  state.hasHideViewers = 'hide_viewer_count' in settings;
  $('hide-viewers-label').hidden = !state.hasHideViewers;
  $('hide-viewers').checked = !!settings.hide_viewer_count;
  showCover(settings.cover_url);
}

function showCover(url) {
  const img = $('cover-preview');
  img.hidden = !url;
  if (url) img.src = url;
}

async function saveSettings(event) {
  event.preventDefault();
  const msg = $('settings-msg');
  msg.textContent = 'Saving…';
  try {
    await api('/api/me/settings', { method: 'PATCH', body: {
      title: $('title').value.trim(),
      save_by_default: $('save-default').checked,
      ...(state.hasBackstage ? { backstage: $('backstage-default').checked } : {}),
      ...(state.hasHideViewers ? { hide_viewer_count: $('hide-viewers').checked } : {}),
      chat: {
        enabled: $('chat-enabled').checked,
        followers_only: $('followers-only').checked,
        slow_mode_seconds: Number($('slow-mode').value) || 0,
      },
    } });
    msg.textContent = 'Saved.';
  } catch (e) {
    msg.textContent = errorText(e);
  }
}

async function uploadCover() {
  const file = $('cover-file').files[0];
  if (!file) { toast('Choose an image first.', true); return; }
  try {
    const result = await api('/api/me/cover', { method: 'PUT', raw: file, headers: { 'Content-Type': file.type || 'application/octet-stream' } });
    showCover(result && result.cover_url);
    toast('Cover updated.');
  } catch (e) { toast(errorText(e), true); }
}

async function removeCover() {
  try { await api('/api/me/cover', { method: 'DELETE' }); showCover(null); toast('Cover removed.'); } catch (e) { toast(errorText(e), true); }
}

// --- live dashboard -------------------------------------------------------------------

function makeCharts() {
  const empty = 'No data yet: this fills in while you are live';
  const chart = (id, color, format, integer) => new LiveChart($(`chart-${id}`), { color, output: $(`out-${id}`), format, integer, empty });
  const whole = (v) => fmtCount(Math.round(v));
  state.charts = {
    viewers: chart('viewers', '#a78bfa', whole, true),
    chat: chart('chat', '#60a5fa', whole, true),  // messages in the last minute: a count
    gifts: chart('gifts', '#f472b6', whole, true),
    bitrate: chart('bitrate', '#34d399', whole, true),
    fps: chart('fps', '#fbbf24', (v) => v.toFixed(1), false),
  };
}

// A figure and what it counts: the hint is on the page (a phone has no hover) and in the
// term's title.
function figure(label, value, hint) {
  const term = el('dt', { title: hint || '' }, el('span', { text: label }));
  if (hint) term.append(el('small', { class: 'hint', text: hint }));
  return [el('div', { class: 'figure' }, term, el('dd', { text: value }))];
}

const share = (fraction) => `${Math.round(Number(fraction) * 1000) / 10} %`;
const coins = (n) => `${fmtCount(n)} ${n === 1 ? 'coin' : 'coins'}`;

function onStats(stats) {
  const a = stats.analytics || {};
  const c = state.charts;
  c.viewers.push(stats.viewers);
  c.chat.push(a.chat_messages_per_minute || 0);
  c.gifts.push(a.gift_coins || 0);
  c.bitrate.push(stats.bitrate_kbps);
  c.fps.push(stats.fps);
  const since = stats.started_at || state.startedAt;
  const live = since ? Date.now() / 1000 - since : null;
  const sent = a.gift_coins || 0;
  const yours = a.gift_creator_coins ?? sent;
  $('figures-empty').hidden = true;
  $('live-figures').replaceChildren(
    ...figure('Live for', live ? fmtDuration(live) : '–', 'since this broadcast started'),
    ...figure('Peak viewers', fmtCount(stats.peak_viewers), 'most watching at once'),
    ...figure('Unique viewers', fmtCount(stats.unique_viewers),
      'different viewers this broadcast; a viewer is one browser or app, however many tabs'),
    ...figure('Messages', fmtCount(a.chat_messages || 0), 'chat messages this broadcast'),
    ...figure('Gifts', `${fmtCount(a.gifts || 0)} · ${coins(sent)} · ${fmtCount(yours)} yours`,
      'gifts this broadcast; coins sent before the platform’s share, then your part'),
    ...figure('New followers', fmtCount(a.new_followers || 0), 'followed you since this broadcast started'),
    ...figure('Keyframe interval', stats.keyframe_interval_ms ? `${(stats.keyframe_interval_ms / 1000).toFixed(1)} s` : '–',
      'time between the keyframes your encoder sends'));
  const warnings = stats.warnings || [];
  $('warnings').replaceChildren(...warnings.map((w) => el('li', { text: typeof w === 'string' ? w : (w.message || w.text || JSON.stringify(w)) })));
}

function setLive(isLive) {
  state.live = isLive;
  const backstage = isLive && state.liveState === 'private';
  const pill = $('live-status');
  pill.textContent = backstage ? 'Backstage' : (isLive ? 'Live' : 'Offline');
  pill.className = `status-pill ${backstage ? 'backstage' : (isLive ? 'live' : 'off')}`;
  $('backstage-notice').hidden = !backstage;
  $('live-actions').hidden = !isLive;
  $('studio-go-public').hidden = !backstage;
  $('dash-status').textContent = isLive ? (backstage ? 'Backstage: only you see these figures until you go public.'
    : 'Live now: figures update every second.')
    : 'Waiting for your stream… Go live from this browser (above) or start streaming in OBS, and this fills in.';
}

function watchLive() {
  // The stats feed answers 404 until the stream is live: look every 3 s until it is, with
  // the creator's own live (200 {state: offline} meanwhile; GET /api/streams/NAME would log
  // a 404 each time). A private (backstage) live is live here: its feed takes the grant.
  clearTimeout(liveTimer);
  const check = async () => {
    let now = null;
    try { now = await live.myLive(); } catch { /* asked again */ }
    if (!now || now.state === 'offline') {
      setLive(false);
      liveTimer = setTimeout(check, 3000);
      return;
    }
    state.startedAt = now.started_at || Date.now() / 1000;
    state.liveState = now.state;
    connectEvents(now.preview && now.preview.grant);
  };
  check();
}

// Why the last live ended, when an operator stopped it (the stats feed's `ended` data);
// kept on screen until the next live starts.
function showStopNotice(reason) {
  const notice = $('stop-notice');
  notice.textContent = reason ? `An operator stopped your stream: ${reason}` : '';
  notice.hidden = !reason;
}

function connectEvents(grant, renewed = false) {
  if (events) events.close();
  events = new EventSource(live.statsUrl(me.handle, grant));
  live.renewFeedGrant(events, grant, (fresh) => {
    state.feedRenewals = (state.feedRenewals || 0) + 1;
    connectEvents(fresh, true);
  });
  let first = !renewed;
  events.addEventListener('stats', (e) => {
    state.statsReceived = (state.statsReceived || 0) + 1;
    if (first) {
      first = false;
      setLive(true);
      showStopNotice(null);
      $('end-prompt').hidden = true;
      Object.values(state.charts).forEach((c) => c.reset());
      loadRecordings();
    }
    onStats(JSON.parse(e.data));
  });
  events.addEventListener('ended', (e) => {
    events.close();
    events = null;
    setLive(false);
    let reason = null;
    try { reason = JSON.parse(e.data).reason; } catch { /* an end without a reason */ }
    // An end from the studio (here: the prompt says the rest) is not an operator's stop.
    const operator = live.endedByOperator(reason);
    showStopNotice(operator ? reason : null);
    if (!state.ending) {
      toast(operator ? 'An operator stopped your stream. Save or discard the recording below.'
        : 'Your stream ended. Save or discard the recording below.');
    }
    loadRecordings();
    watchLive();
  });
  events.onerror = () => {
    if (events && events.readyState === EventSource.CLOSED) { events = null; watchLive(); }
  };
}

// Go public (a backstage live) and End live (whatever publishes it: OBS or a browser).
async function goPublicNow() {
  try {
    await live.goPublic();
    state.liveState = 'public';
    setLive(true);
    toast('You are public: your followers are told you are live.');
  } catch (e) { toast(errorText(e), true); }
}

async function endLiveNow() {
  state.ending = true;
  $('studio-end-live').disabled = true;
  try {
    const ended = await live.endLive();
    askAboutRecording(ended.recording, ended.was === 'public');
  } catch (e) {
    toast(errorText(e), true);
  } finally {
    state.ending = false;
    $('studio-end-live').disabled = false;
  }
}

/** "Save or discard" right after an end from here (the past broadcasts list has it too). */
function askAboutRecording(recording, wasPublic) {
  const question = live.recordingQuestion(recording, wasPublic);
  $('end-prompt').hidden = false;
  $('end-prompt-text').textContent = `Your live has ended. ${question.text}`;
  $('end-prompt-actions').hidden = !question.save;
  if (!question.save) return;
  $('end-save').textContent = question.save;
  const choose = (action) => async () => {
    try {
      await live.decideRecording(recording, action);
      $('end-prompt-actions').hidden = true;
      $('end-prompt-text').textContent = action === 'save' ? 'Saved: it is a video on your channel.' : 'Discarded: the recording is deleted.';
    } catch (e) { toast(errorText(e), true); }
    loadRecordings();
  };
  $('end-save').onclick = choose('save');
  $('end-discard').onclick = choose('discard');
}

// --- moderation -----------------------------------------------------------------------

const base = () => `/api/users/${encodeURIComponent(me.handle)}/chat`;

async function loadModeration() {
  try {
    const [bans, mods, words, log] = await Promise.all([
      api(`${base()}/bans`), api(`${base()}/moderators`), api(`${base()}/banned-words`), api(`${base()}/moderation-log?limit=20`)]);
    const removeButton = (text, path) => el('button', { class: 'small', type: 'button', text, onclick: async () => {
      try { await api(path, { method: 'DELETE' }); loadModeration(); } catch (e) { toast(errorText(e), true); }
    } });
    $('bans').replaceChildren(
      ...bans.bans.map((b) => el('li', {}, `${b.user} — banned${b.reason ? `: ${b.reason}` : ''} `, removeButton('Unban', `${base()}/bans/${encodeURIComponent(b.user)}`))),
      ...bans.timeouts.map((t) => el('li', {}, `${t.user} — timed out until ${new Date(t.until * 1000).toLocaleTimeString()} `,
        removeButton('Lift', `${base()}/timeouts/${encodeURIComponent(t.user)}`))));
    if (!bans.bans.length && !bans.timeouts.length) $('bans').replaceChildren(el('li', { class: 'muted', text: 'Nobody.' }));
    $('moderators').replaceChildren(...mods.moderators.map((m) => el('li', {}, `${m.display_name || m.handle} (@${m.handle}) `,
      removeButton('Remove', `${base()}/moderators/${encodeURIComponent(m.handle)}`))));
    if (!mods.moderators.length) $('moderators').replaceChildren(el('li', { class: 'muted', text: 'None yet.' }));
    $('banned-words').value = (words.words || []).join('\n');
    $('mod-log').replaceChildren(...log.entries.map((e) => el('tr', {},
      el('td', { text: fmtTime(e.at) }), el('td', { text: e.by || '' }), el('td', { text: e.action }), el('td', { text: e.target || '' }))));
  } catch (e) {
    $('bans').replaceChildren(el('li', { class: 'error-text', text: errorText(e) }));
  }
}

async function moderate(action) {
  const user = $('mod-user').value.trim().toLowerCase();
  if (!user) { toast('Type a handle first.', true); return; }
  const u = encodeURIComponent(user);
  try {
    if (action === 'timeout') await api(`${base()}/timeouts/${u}`, { method: 'PUT', body: { minutes: Number($('mod-minutes').value) || 10 } });
    else if (action === 'ban') await api(`${base()}/bans/${u}`, { method: 'PUT' });
    else await api(`${base()}/moderators/${u}`, { method: 'PUT' });
    $('mod-user').value = '';
    toast('Done.');
    loadModeration();
  } catch (e) { toast(errorText(e), true); }
}

async function saveWords() {
  const words = $('banned-words').value.split('\n').map((w) => w.trim()).filter(Boolean);
  try { await api(`${base()}/banned-words`, { method: 'PUT', body: { words } }); toast('Banned words saved.'); loadModeration(); } catch (e) { toast(errorText(e), true); }
}

// --- recordings and earnings ------------------------------------------------------------

let recordingsTimer = null;

async function loadRecordings() {
  clearTimeout(recordingsTimer);
  const body = $('recordings');
  let data;
  try { data = await api(`/api/recordings?stream=${encodeURIComponent(me.handle)}&limit=50`); } catch (e) {
    body.replaceChildren(el('tr', {}, el('td', { colspan: 5, text: errorText(e) })));
    return;
  }
  const rows = (data.recordings || []).filter((r) => r.state !== 'discarded');
  // A recording is still being finished after the stream ended: look again soon. While
  // live, refresh now and then (its length grows).
  const finishing = rows.some((r) => r.state === 'recording') && !state.live;
  if (finishing || state.live) recordingsTimer = setTimeout(loadRecordings, finishing ? 2000 : 15000);
  const act = (r, action, text, cls) => el('button', { class: `small ${cls || ''}`, type: 'button', text,
    dataset: { action, id: r.id }, 'aria-label': `${text} the broadcast of ${fmtTime(r.started_at)}`, onclick: async () => {
      if (action === 'discard' && !confirm('Delete this recording for good?')) return;
      try { await api(`/api/recordings/${encodeURIComponent(r.id)}/${action}`, { method: 'POST' }); toast(action === 'save' ? 'Saved: it is now a video on your channel.' : 'Discarded.'); } catch (e) { toast(errorText(e), true); }
      loadRecordings();
    } });
  body.replaceChildren(...rows.map((r) => {
    const actions = [];
    if (r.state === 'pending_decision' || r.state === 'failed') actions.push(act(r, 'save', 'Save', 'primary'));
    if (r.state === 'saved') {
      actions.push(el('a', { class: 'button small', href: `/watch/${encodeURIComponent(me.handle)}?vod=${encodeURIComponent(r.id)}`, text: 'Watch' }));
      actions.push(el('a', { class: 'button small', href: r.download_url || `/vod/${encodeURIComponent(r.id)}/download.mp4`, text: 'Download', download: '' }));
    }
    if (r.state !== 'recording') actions.push(act(r, 'discard', 'Discard', 'danger'));
    const stateText = { recording: 'recording now', pending_decision: 'waiting for you', saved: 'saved', failed: `failed: ${r.error || ''}` }[r.state] || r.state;
    return el('tr', { dataset: { recording: r.id, state: r.state } },
      el('td', { text: fmtTime(r.started_at) }), el('td', { text: fmtDuration(r.duration) }), el('td', { text: fmtBytes(r.size) }),
      el('td', { text: stateText }), el('td', {}, el('div', { class: 'row' }, actions)));
  }));
  if (!rows.length) body.replaceChildren(el('tr', {}, el('td', { colspan: 5, class: 'muted', text: 'No broadcasts yet.' })));
}

async function loadEarnings() {
  try {
    const [earnings, board] = await Promise.all([
      api(`/api/users/${encodeURIComponent(me.handle)}/earnings`),
      api(`/api/streams/${encodeURIComponent(me.handle)}/leaderboard`)]);
    // Gross, the platform's share and the creator's part, all from the ledger: they add up
    // (the creator's part of each gift is rounded down, so the share of a total can differ
    // from the configured fraction by a coin per gift).
    $('earnings').replaceChildren(
      ...figure('Gifts received', fmtCount(earnings.gifts), 'all time'),
      ...figure('Gift coins sent to you', coins(earnings.gross_coins), 'what viewers paid for their gifts'),
      ...figure(`Platform share (${share(earnings.platform_share)})`, `− ${coins(earnings.platform_coins)}`,
        'kept by this server from each gift'),
      ...figure('Your earnings', `${coins(earnings.coins)} · ${earnings.money} ${earnings.currency}`,
        'gift coins minus the platform share, and their value'));
    const gifters = board.gifters || [];
    $('leaderboard').replaceChildren(...gifters.map((g) => el('li', { text: `${g.display_name || g.user} — ${coins(g.coins)}` })));
    // An empty list is a sentence, not a numbered item.
    $('leaderboard').hidden = !gifters.length;
    $('leaderboard-empty').hidden = !!gifters.length;
  } catch (e) {
    $('earnings').replaceChildren(el('div', { class: 'figure' }, el('dd', { class: 'error-text', text: errorText(e) })));
  }
}

// --- start ------------------------------------------------------------------------------

let started = false;

async function start() {
  me = currentUser();
  if (!me) { gate('Log in with a creator account to open your studio.', true); return; }
  me = (await refreshUser()) || me;
  if (!atLeast(me, 'creator')) { gate('The studio is for creators. This account is a viewer account.', false); return; }
  $('gate').hidden = true;
  $('studio').hidden = false;
  $('watch-link').href = `/watch/${encodeURIComponent(me.handle)}`;
  $('reports-link').hidden = !atLeast(me, 'moderator');
  if (started) return;
  started = true;
  makeCharts();
  const results = await Promise.allSettled([loadKey(), loadAccess(), loadSettings(), startAudience()]);
  for (const r of results) if (r.status === 'rejected') toast(errorText(r.reason), true);
  loadModeration();
  loadRecordings();
  loadEarnings();
  watchLive();
  setInterval(() => { if (state.live) loadEarnings(); }, 15000);
  setInterval(loadAccess, 30000);
  listenForDecisions();
}

initHeader('studio');
document.querySelectorAll('[data-copy]').forEach((button) => button.addEventListener('click', async () => {
  const input = $(button.dataset.copy);
  try { await navigator.clipboard.writeText(input.value); toast('Copied.'); } catch {
    input.type = 'text'; input.select(); toast('Press Ctrl+C to copy.');
  }
}));
$('reveal-key').addEventListener('click', () => {
  const input = $('stream-key');
  const show = input.type === 'password';
  input.type = show ? 'text' : 'password';
  $('reveal-key').textContent = show ? 'Hide' : 'Show';
  $('reveal-key').setAttribute('aria-pressed', String(show));
});
$('rotate-key').addEventListener('click', async () => {
  if (!confirm('Make a new stream key? The old one stops working for new broadcasts; update OBS afterwards.')) return;
  try { await loadKey(true); toast('New stream key made. Paste it into OBS.'); } catch (e) { toast(errorText(e), true); }
});
$('settings-form').addEventListener('submit', saveSettings);
$('studio-go-public').addEventListener('click', goPublicNow);
$('studio-end-live').addEventListener('click', endLiveNow);
$('access-request-form').addEventListener('submit', sendAccessRequest);
$('cover-upload').addEventListener('click', uploadCover);
$('cover-remove').addEventListener('click', removeCover);
document.querySelectorAll('[data-mod]').forEach((b) => b.addEventListener('click', () => moderate(b.dataset.mod)));
$('save-words').addEventListener('click', saveWords);
window.addEventListener('mediasrv:auth', () => { if (!currentUser()) { started = false; gate('Logged out.', true); } else start(); });
start();
