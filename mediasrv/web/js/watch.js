// Watch page (/watch/NAME, or /watch/NAME?vod=ID for a saved broadcast): player with a
// quality selector and latency indicator, chat, gifts, follow and report.
// A private live (the creator's backstage) plays here for those who may watch it (the
// creator, their moderators, operators: the live status says `backstage` to them alone)
// with a signed playback grant, renewed before it expires or when the player is refused;
// anyone else sees the usual offline page.
import { api, el, errorText, fmtCount, fmtDuration, requestId, toast } from './api.js';
import { fmtDate, renderPast, savedBroadcasts, vodTitle } from './channel.js';
import { ChatPanel } from './chat.js';
import { currentUser, initHeader, openLogin } from './nav.js';
import { createPlayer } from './player.js';

const name = decodeURIComponent(location.pathname.split('/')[2] || '');
const vodId = new URLSearchParams(location.search).get('vod');
const $ = (id) => document.getElementById(id);
const video = $('video');

// Exposed for tests and debugging: what the page is doing.
const state = window.mediasrvWatch = { name, mode: 'loading', player: null, error: null, liveStartedAt: null, levelSwitches: [],
  backstage: false, restricted: false, grant: null, renewals: 0 };

let profile = null;
let following = false;
let pollTimer = null;

function setMode(mode) {
  state.mode = mode;
  document.body.dataset.mode = mode;
  fitShape();
}

// --- the picture's shape ------------------------------------------------------------------

// The phone layout of app.css (the same media query): the page as high as the screen.
const PHONE = window.matchMedia('(max-width: 959.98px) and (orientation: portrait), (max-width: 639.98px)');

/** Shape the player as the picture: a portrait stream (a phone held upright, 720x1280) gets
 *  a portrait player of its own proportions, so the video is never letterboxed. Known from
 *  the API before the video loads (GET /api/live/NAME/status), then from the video itself
 *  (a publisher may turn its phone). */
function setShape(width, height) {
  if (!(width > 0 && height > 0)) return;
  const portrait = height > width;
  const player = $('player');
  player.classList.toggle('vertical', portrait);
  player.style.setProperty('--video-aspect', `${width} / ${height}`);
  player.style.setProperty('--video-ratio', String(width / height));
  document.body.dataset.orientation = portrait ? 'portrait' : 'landscape';
  state.shape = { width, height, portrait };
  fitShape();
}

/** A portrait live on a phone fills the screen, the chat over its lower part (app.css):
 *  the video's own controls would sit under the chat, so they are off there (the Unmute
 *  button and the quality menu stay, over its top edge). */
function fitShape() {
  const immersive = Boolean(state.shape && state.shape.portrait) && state.mode === 'live' && PHONE.matches;
  document.body.classList.toggle('immersive', immersive);
  // Nor while an overlay is up: they would show through its dim backdrop (a play button
  // for a live nobody may play yet).
  video.controls = !immersive && $('overlay').hidden;
}

function overlay(title, text, actions = []) {
  $('overlay-title').textContent = title;
  $('overlay-text').textContent = text || '';
  $('overlay-actions').replaceChildren(...actions);
  $('overlay').hidden = !title;
  fitShape();
}

function stopPlayer() {
  if (state.player) { state.player.destroy(); state.player = null; }
  $('quality').disabled = true;
  $('quality').replaceChildren(el('option', { value: '-1', text: 'Auto' }));
  $('latency').hidden = true;
  $('go-live').hidden = true;
}

// extra: createPlayer's grant and renew options for a private live.
function play(url, live, extra = {}) {
  stopPlayer();
  state.error = null;
  const quality = $('quality');
  state.player = createPlayer(video, url, {
    ...extra,
    live,
    onLevels: (levels) => {
      if (state.mode === 'live') overlay('');
      quality.replaceChildren(el('option', { value: '-1', text: 'Auto' }),
        ...levels.map((level) => el('option', { value: String(level.index), text: level.label })));
      quality.disabled = levels.length < 2;
    },
    onLevel: (index) => {
      state.levelSwitches.push(index);
      const player = state.player;
      if (!player || !player.autoLevel()) return;
      const level = player.levels()[index];
      quality.options[0].textContent = level ? `Auto (${level.size || level.label})` : 'Auto';
    },
    onError: (text) => { state.error = text; console.warn('player:', text); },
    // The player asks again by itself (a live stream's first segment may take a whole
    // keyframe interval): say so rather than leave a black player.
    onRetry: () => {
      state.retries = (state.retries || 0) + 1;
      if (live && state.mode === 'live' && !video.currentTime) {
        overlay('Starting…', 'The stream is starting: the video appears as soon as its first seconds arrive.');
      }
    },
  });
}

async function loadTitle() {
  try {
    const data = await api('/api/live');
    const entry = (data.streams || []).find((s) => s.name === name);
    if (entry) {
      $('title').textContent = entry.title || name;
      document.title = `${entry.title || name} · mediasrv`;
    }
  } catch { /* the title is cosmetic */ }
}

// Whether the stream is live: 200 {live, started_at, creator} either way, so waiting for a
// stream logs no 404 (GET /api/streams/NAME answers 404 while it is offline).
async function liveStatus() {
  try { return await api(`/api/live/${encodeURIComponent(name)}/status`); } catch { return null; }
}

// A live that is not public (a backstage; followers, unlisted, private: issue 18) plays
// with a signed grant, for who may watch it (the live status says so to them alone).
function mayPlayRestricted(status) { return Boolean(status && (status.backstage || status.may_watch)); }

async function goLive(status) {
  const stream = status || await liveStatus();
  if (!stream) return false;
  if (!stream.live) {
    if (mayPlayRestricted(stream)) return ageGate(stream, () => goBackstage());
    if (stream.visibility === 'followers') { showFollowersOnly(); return true; }
    return false;
  }
  return ageGate(stream, () => goPublic(stream));
}

const AGE_KEY = 'mediasrv-age-confirmed';

/** An 18+ live asks the viewer to confirm their age once (this tab) before it plays. */
function ageGate(stream, go) {
  let confirmed = false;
  try { confirmed = sessionStorage.getItem(AGE_KEY) === 'yes'; } catch { /* storage off: ask */ }
  if (!stream.mature || confirmed) return go();
  setMode('gate');
  stopPlayer();
  const yes = el('button', { type: 'button', class: 'primary', text: 'I am 18 or older' });
  yes.addEventListener('click', () => {
    try { sessionStorage.setItem(AGE_KEY, 'yes'); } catch { /* asked again next time */ }
    go();
  });
  const leave = el('a', { href: '/', class: 'button', text: 'Leave' });
  overlay('18+ live', 'This live is for adults only. Confirm you are 18 or older to watch it.', [yes, leave]);
  return true;
}

/** A followers-only live this viewer may not watch (yet): say how to get in. */
function showFollowersOnly() {
  setMode('gate');
  stopPlayer();
  const me = currentUser();
  const action = el('button', { type: 'button', class: 'primary', text: me ? 'Follow to watch' : 'Sign in' });
  action.addEventListener('click', async () => {
    if (!currentUser()) { openLogin(); return; }
    if (!following) await toggleFollow();
    goLive();
  });
  overlay('This live is for followers', me ? `Follow ${name} to watch it.` : `Sign in and follow ${name} to watch it.`,
    [action]);
}

function goPublic(stream) {
  setBackstage(false);
  state.restricted = false;
  state.liveStartedAt = stream.started_at ? Date.parse(stream.started_at) / 1000 : Date.now() / 1000;
  setMode('live');
  overlay('');
  $('past').hidden = true;
  play(`/live/${encodeURIComponent(name)}/index.m3u8`, true);
  loadTitle();
  return true;
}

// --- a private live (backstage) -------------------------------------------------------

let renewTimer = null;

/** The banner, and whether the grant is kept fresh. */
function setBackstage(on) {
  state.backstage = on;
  document.body.dataset.backstage = on ? 'yes' : 'no';
  $('backstage-banner').hidden = !on;
  if (!on) { clearTimeout(renewTimer); renewTimer = null; }
}

/** Signed URLs of the private live, for someone who may watch it; null otherwise. */
async function backstagePlayback() {
  try { return await api(`/api/live/${encodeURIComponent(name)}/playback`); } catch { return null; }
}

/** Ask for a fresh grant at 80 % of this one's life (`expires_in`: server seconds, so a
 *  wrong clock here does not matter). */
function scheduleRenewal(expiresIn) {
  clearTimeout(renewTimer);
  const seconds = Math.max(5, Math.min(86400, (Number(expiresIn) || 60) * 0.8));
  renewTimer = setTimeout(async () => {
    if (!(await renewGrant())) backstageGone();
  }, seconds * 1000);
}

/** A fresh grant (true), or none to have (false: it ended, or this viewer may no longer
 *  watch it). A live that went public meanwhile needs none: anyone may play it. */
async function renewGrant() {
  const status = await liveStatus();
  if (status && status.live) { setBackstage(false); state.restricted = false; return true; }
  if (!mayPlayRestricted(status)) return false;
  const answer = await backstagePlayback();
  if (!answer) return false;
  if (!answer.grant) { setBackstage(false); state.restricted = false; return true; }
  setBackstage(answer.state === 'private');
  state.grant = answer.grant;
  state.renewals += 1;
  if (state.player) state.player.regrant();
  scheduleRenewal(answer.expires_in);
  return true;
}

async function goBackstage() {
  const answer = await backstagePlayback();
  if (!answer) return false;
  state.liveStartedAt = Date.now() / 1000;
  setMode('live');
  overlay('');
  $('past').hidden = true;
  $('title').textContent = profile ? profile.display_name || name : name;
  if (state.chatDeferred && state.chat) {
    state.chatDeferred = false;
    state.chat.reconnect();
  }
  if (answer.grant) {
    state.grant = answer.grant;
    state.restricted = true;
    setBackstage(answer.state === 'private');
    scheduleRenewal(answer.expires_in);
  }
  play(answer.playback_url, true, {
    grant: () => state.grant,
    renew: async () => {
      const renewed = await renewGrant();
      if (!renewed) backstageGone();
      return renewed;
    },
  });
  return true;
}

/** The private live can no longer be played here (it ended, or this viewer lost the
 *  right to watch it): the page is the channel's offline page, as for anyone. */
function backstageGone() {
  if (!(state.backstage || state.restricted) || state.mode !== 'live') return;
  setBackstage(false);
  state.restricted = false;
  showOffline();
}

async function showOffline() {
  setMode('offline');
  stopPlayer();
  // Without an account (auth.mode open: any name may go live) there is no channel to be
  // "offline": the page just waits for a stream of this name.
  $('title').textContent = profile ? `${profile.display_name || name} is offline` : `Nothing is live at ${name} yet`;
  overlay('Offline', 'This stream is not live right now. The page starts playing when it goes live.');
  await loadPast();
}

async function loadPast() {
  // Cards with title, cover, date and length (channel.js).
  const rows = await savedBroadcasts(name);
  renderPast($('past'), $('past-list'), rows, profile);
  return rows;
}

// reason: why an operator stopped it (chat stream-ended frame), else none.
function ended(reason) {
  if (state.mode !== 'live') return;
  setMode('ended');
  stopPlayer();
  if (state.backstage) {
    // It never went public: no recording to look for, nobody else saw it end.
    setBackstage(false);
    overlay('The backstage live has ended', 'It ended before going public, so it was not recorded.');
    return;
  }
  state.endReason = reason || null;
  const thanks = 'Thanks for watching! If the creator saves this broadcast, you can watch it here.';
  overlay(reason ? 'An operator stopped this stream' : 'The stream has ended', reason ? `Reason: “${reason}”. ${thanks}` : thanks);
  const started = state.liveStartedAt || 0;
  // The creator decides after the end (docs/recording.md): look for the saved recording a while.
  let tries = 0;
  clearInterval(pollTimer);
  const look = async () => {
    const rows = await loadPast();
    const mine = rows.find((r) => r.started_at >= started - 10);
    if (mine) {
      clearInterval(pollTimer);
      overlay(state.endReason ? 'An operator stopped this stream' : 'The stream has ended',
        state.endReason ? `Reason: “${state.endReason}”. The broadcast was saved.` : 'The broadcast was saved.', [
        el('a', { class: 'button primary', id: 'watch-vod', href: `/watch/${encodeURIComponent(name)}?vod=${encodeURIComponent(mine.id)}`,
          text: 'Watch the recording' })]);
    } else if (++tries > 360) clearInterval(pollTimer);
  };
  look();
  pollTimer = setInterval(look, 5000);
}

async function playVod() {
  setMode('vod');
  try {
    const recording = await api(`/api/recordings/${encodeURIComponent(vodId)}`);
    const title = vodTitle(recording, profile ? profile.display_name || profile.handle : name);
    $('title').textContent = title;
    document.title = `${title} · mediasrv`;
    $('creator-line').append(` · ${fmtDate(recording.started_at)} · ${fmtDuration(recording.duration)} · `,
      el('a', { id: 'channel-link', href: `/watch/${encodeURIComponent(name)}`, text: 'All broadcasts' }));
    $('latency').hidden = true;
    // An 18+ recording asks the viewer's age first, as its live did.
    ageGate(recording, () => {
      setMode('vod');
      overlay('');
      play(recording.playlist_url || `/vod/${encodeURIComponent(vodId)}/index.m3u8`, false);
      return true;
    });
  } catch (e) {
    overlay('Recording not available', errorText(e), [el('a', { class: 'button', href: `/watch/${encodeURIComponent(name)}`, text: 'Back to the channel' })]);
  }
}

function updateLatency() {
  const badge = $('latency');
  const player = state.player;
  const latency = player && state.mode === 'live' ? player.latency() : null;
  if (latency === null || latency === undefined) { badge.hidden = true; $('go-live').hidden = true; return; }
  badge.hidden = false;
  badge.textContent = `${latency.toFixed(1)} s behind live`;
  badge.className = `latency ${latency < 3 ? 'good' : latency < 6 ? 'fair' : 'poor'}`;
  $('go-live').hidden = latency < 5;
}

// --- follow, gifts, report ------------------------------------------------------------

/** The creator on her own channel: no gifts to herself, no report of her own stream. */
function ownChannel() {
  const me = currentUser();
  return Boolean(me && me.handle.toLowerCase() === name.toLowerCase()) || Boolean(state.chat && state.chat.isCreator());
}

/** The gift bar: for viewers who may send gifts (not the creator, not a banned viewer). */
function renderViewerActions() {
  const own = ownChannel();
  $('report').hidden = own;
  // Report, mute or block the creator: a channel with an account that is not one's own.
  $('creator-more').hidden = own || !profile;
  // Gifts go to a creator's account: none for a name without one (auth.mode open).
  $('gift-bar').hidden = own || !profile || gifts.length === 0 || Boolean(state.chat && state.chat.stopped);
}

function renderFollow() {
  renderViewerActions();
  const button = $('follow');
  const me = currentUser();
  button.hidden = !profile || (me && me.handle === name);
  button.textContent = following ? 'Following ✓' : 'Follow';
  button.setAttribute('aria-pressed', String(following));
  button.classList.toggle('primary', !following);
}

async function loadFollowing() {
  const me = currentUser();
  following = false;
  if (me && profile) {
    try {
      const data = await api(`/api/users/${encodeURIComponent(me.handle)}/following?limit=500`);
      following = (data.users || []).some((u) => u.handle === name);
    } catch { /* shown as not following */ }
  }
  renderFollow();
}

async function toggleFollow() {
  if (!currentUser()) { openLogin(); return; }
  const button = $('follow');
  button.disabled = true;
  try {
    await api(`/api/me/following/${encodeURIComponent(name)}`, { method: following ? 'DELETE' : 'PUT' });
    following = !following;
    if (profile) {
      profile.followers = Math.max(0, profile.followers + (following ? 1 : -1));
      const count = $('followers');
      if (count) count.textContent = `${fmtCount(profile.followers)} ${profile.followers === 1 ? 'follower' : 'followers'}`;
    }
    renderFollow();
  } catch (e) {
    toast(errorText(e), true);
  } finally {
    button.disabled = false;
  }
}

let gifts = [];

async function loadBalance() {
  const balance = $('balance');
  if (!currentUser()) { balance.textContent = 'Log in to send gifts'; return; }
  try {
    const wallet = await api('/api/me/wallet');
    balance.textContent = `${fmtCount(wallet.balance)} coins`;
    balance.dataset.balance = String(wallet.balance);
  } catch { balance.textContent = ''; }
}

async function loadGifts() {
  try {
    const data = await api('/api/gifts');
    gifts = data.gifts || [];
  } catch { gifts = []; }
  const bar = $('gift-bar');
  bar.replaceChildren($('balance'), ...gifts.map((gift) => el('button', {
    type: 'button', class: 'small gift-button', dataset: { gift: gift.id },
    'aria-label': `Send ${gift.name} for ${gift.price} coins`, onclick: () => sendGift(gift) },
  gift.image ? el('img', { src: gift.image, alt: '', width: 18, height: 18 }) : null, `${gift.name} · ${gift.price}`)));
  renderViewerActions();
}

async function sendGift(gift) {
  if (!currentUser()) { openLogin(); return; }
  try {
    const result = await api(`/api/streams/${encodeURIComponent(name)}/gifts`, { method: 'POST',
      body: { gift_id: gift.id, request_id: requestId() } });
    $('balance').textContent = `${fmtCount(result.balance)} coins`;
    $('balance').dataset.balance = String(result.balance);
  } catch (e) {
    if (e.status === 402) toast(`Not enough coins: ${gift.name} costs ${gift.price}, you have ${e.body.balance}.`, true);
    else toast(errorText(e), true);
  }
}

function giftBurst(frame) {
  const burst = el('div', { class: 'gift-burst', 'aria-hidden': 'true',
    text: `🎁 ${frame.display_name || frame.user}: ${(frame.gift && frame.gift.name) || 'gift'}` });
  $('player').append(burst);
  burst.addEventListener('animationend', () => burst.remove());
  setTimeout(() => burst.remove(), 3000);
}

let reportTarget = null;

// target: a chat message, {userReport: handle} (a user, not only a message), or null (the stream).
function openReport(message) {
  if (!currentUser()) { openLogin(); return; }
  reportTarget = message || null;
  $('report-what').textContent = message && message.userReport ? `The user @${message.userReport}`
    : message ? `Message from ${message.user}: “${message.text}”` : `The stream ${name}`;
  $('report-error').textContent = '';
  $('report-reason').value = '';
  $('report-dialog').showModal();
  $('report-reason').focus();
}

async function submitReport(event) {
  event.preventDefault();
  const reason = $('report-reason').value.trim();
  if (!reason) { $('report-error').textContent = 'Say what is wrong.'; return; }
  const body = reportTarget
    ? { kind: 'message', stream: name, message_id: reportTarget.id, reason }
    : { kind: 'stream', stream: name, reason };
  try {
    if (reportTarget && reportTarget.userReport) {
      await api(`/api/users/${encodeURIComponent(reportTarget.userReport)}/report`, { method: 'POST', body: { reason } });
    } else await api('/api/reports', { method: 'POST', body });
    $('report-dialog').close();
    toast('Thanks, the report was sent to the moderators.');
  } catch (e) {
    $('report-error').textContent = errorText(e);
  }
}

// --- blocks and mutes (a message's author, the creator) ------------------------------------

/** Whom I block and mute (handles), read when the user dialog opens. */
const relations = { block: new Set(), mute: new Set() };

async function loadRelations() {
  for (const kind of ['block', 'mute']) {
    try {
      const data = await api(`/api/me/${kind}s`);
      relations[kind] = new Set((data.users || []).map((row) => row.user.handle));
    } catch { relations[kind].clear(); }
  }
}

/** Block or mute `handle` (`on`), or undo it; their messages leave the chat log here too. */
async function setRelation(kind, handle, on) {
  await api(`/api/me/${kind}s/${encodeURIComponent(handle)}`, { method: on ? 'POST' : 'DELETE' });
  if (on) relations[kind].add(handle); else relations[kind].delete(handle);
  if (on && state.chat) state.chat.hideUser(handle);
  if (kind === 'block' && on && handle === name) { following = false; renderFollow(); }
}

let dialogUser = null;

function renderUserDialog() {
  const handle = dialogUser;
  $('user-title').textContent = `@${handle}`;
  $('user-mute').textContent = relations.mute.has(handle) ? 'Unmute' : 'Mute';
  $('user-block').textContent = relations.block.has(handle) ? 'Unblock' : 'Block';
  $('user-error').textContent = '';
}

async function openUserDialog(handle) {
  if (!currentUser()) { openLogin(); return; }
  dialogUser = handle;
  renderUserDialog();
  $('user-dialog').showModal();
  await loadRelations();
  renderUserDialog();
}

async function toggleRelation(kind) {
  const handle = dialogUser;
  const on = !relations[kind].has(handle);
  try {
    await setRelation(kind, handle, on);
    $('user-dialog').close();
    toast(kind === 'block'
      ? (on ? `You blocked @${handle}.` : `You unblocked @${handle}.`)
      : (on ? `You muted @${handle}: their messages are hidden from you.` : `You unmuted @${handle}.`));
  } catch (e) {
    $('user-error').textContent = errorText(e);
  }
}

/** A message's "⋯" menu: report, mute or block its author. */
async function onChatUser(action, handle) {
  if (!currentUser()) { openLogin(); return; }
  if (action === 'report') { openReport({ userReport: handle }); return; }
  if (action === 'block') { await openUserDialog(handle); return; }
  try {
    await setRelation('mute', handle, true);
    toast(`You muted @${handle}: their messages are hidden from you.`);
  } catch (e) { toast(errorText(e), true); }
}

// --- start ------------------------------------------------------------------------------

// hasAccount: false when the live status says no account has this name (open mode): no
// profile to ask for (its 404 would be a console error).
async function loadProfile(hasAccount = true) {
  try {
    profile = hasAccount ? await api(`/api/users/${encodeURIComponent(name)}`) : null;
  } catch { profile = null; }
  const line = $('creator-line');
  line.replaceChildren();
  if (profile) {
    line.append(el('strong', { text: profile.display_name || profile.handle }), ` @${profile.handle} · `,
      el('span', { id: 'followers', text: `${fmtCount(profile.followers)} ${profile.followers === 1 ? 'follower' : 'followers'}` }));
  } else {
    line.textContent = name;
  }
}

/** On a phone the page is as high as what is visible (app.css): follow the visual
 *  viewport, so an on-screen keyboard shrinks the chat instead of scrolling the video away
 *  (where the browser does not resize the layout for it; not while zoomed in). */
function fitViewport() {
  const vv = window.visualViewport;
  if (!vv) return;
  const fit = () => {
    if (Math.abs(vv.scale - 1) > 0.01) return;
    document.documentElement.style.setProperty('--visible-height', `${Math.round(vv.height)}px`);
  };
  vv.addEventListener('resize', fit);
  fit();
}

async function main() {
  initHeader('watch');
  fitViewport();
  if (!name) { overlay('No stream', 'The address names no stream.'); return; }
  $('title').textContent = name;
  video.addEventListener('loadedmetadata', () => setShape(video.videoWidth, video.videoHeight));
  video.addEventListener('resize', () => setShape(video.videoWidth, video.videoHeight));
  PHONE.addEventListener('change', fitShape);
  video.addEventListener('ended', () => { if (state.mode === 'live') ended(); });
  $('unmute').addEventListener('click', () => { video.muted = false; video.play().catch(() => {}); $('unmute').hidden = true; });
  video.addEventListener('volumechange', () => { $('unmute').hidden = !video.muted; });
  $('quality').addEventListener('change', (e) => {
    if (state.player) state.player.setLevel(Number(e.target.value));
    if (Number(e.target.value) === -1) e.target.options[0].textContent = 'Auto';
  });
  $('go-live').addEventListener('click', () => {
    const edge = state.player && state.player.liveEdge();
    if (edge) video.currentTime = edge;
  });
  $('follow').addEventListener('click', toggleFollow);
  $('report').addEventListener('click', () => openReport(null));
  $('report-form').addEventListener('submit', submitReport);
  $('report-cancel').addEventListener('click', () => $('report-dialog').close());
  $('creator-more').addEventListener('click', () => openUserDialog(profile ? profile.handle : name));
  $('user-report').addEventListener('click', () => { $('user-dialog').close(); openReport({ userReport: dialogUser }); });
  $('user-mute').addEventListener('click', () => toggleRelation('mute'));
  $('user-block').addEventListener('click', () => toggleRelation('block'));

  if (vodId) {
    // A saved broadcast: no live chat, no gifts (they go to a live), one column.
    document.querySelector('aside.chat').hidden = true;
    $('main').classList.add('no-chat');
    await loadProfile();
    loadFollowing();
    window.addEventListener('mediasrv:auth', () => loadFollowing());
    await playVod();
    return;
  }
  const chat = new ChatPanel(name, {
    log: $('chat-log'), pinned: $('pinned'), form: $('chat-form'), input: $('chat-input'), send: $('chat-send'),
    off: $('chat-off'),
  }, {
    // null: the creator hides the viewer count (nothing is shown then).
    onViewers: (n) => { $('viewer-count').textContent = n === null || n === undefined ? '' : `${fmtCount(n)} watching`; },
    onEnded: (reason) => ended(reason),
    // Also what a backstage viewer hears when the live is made public: the banner goes.
    onStarted: () => { if (state.mode === 'offline' || state.mode === 'ended') goLive(); else if (state.backstage) setBackstage(false); },
    onGift: (frame) => { giftBurst(frame); },
    onReport: (message) => openReport(message),
    onUser: (action, handle) => onChatUser(action, handle),
    onState: () => renderViewerActions(),
    onStopped: () => renderViewerActions(),
    needLogin: () => openLogin(),
  });
  state.chat = chat;

  const status = await liveStatus();
  // The chat of a live this viewer may not watch (followers-only, issue 18) is not theirs
  // either: it is joined once they may watch (goBackstage), not refused in the console.
  state.chatDeferred = Boolean(status && !status.live && status.visibility && !status.may_watch);
  if (!state.chatDeferred) chat.connect();
  else chat.stop('followers');
  window.addEventListener('mediasrv:auth', () => {
    if (!state.chatDeferred) chat.reconnect();
    loadBalance(); loadFollowing();
    if (state.mode === 'gate') goLive();  // signed in at "this live is for followers"
  });

  if (status) setShape(status.width, status.height);
  await loadProfile(!status || Boolean(status.creator));
  loadFollowing();
  loadGifts().then(loadBalance);
  setInterval(updateLatency, 1000);
  if (!(await goLive(status))) await showOffline();
  // A fallback to the chat's start and end frames: look every 10 s (quietly: 200 either way).
  setInterval(async () => {
    if (state.mode === 'offline') await goLive();
    else if (state.mode === 'live') {
      const now = await liveStatus();
      if (!now) return;
      if (!(state.backstage || state.restricted)) {
        // Not public any more: with a grant if this viewer may watch it, else ended for them.
        if (!now.live && (mayPlayRestricted(now) || now.visibility === 'followers')) goLive(now);
        else if (!now.live) ended();
      } else if (now.live) { setBackstage(false); state.restricted = false; }  // made public
      else if (!mayPlayRestricted(now)) backstageGone();  // ended, or no longer ours to watch
    }
  }, 10000);
}

main();
