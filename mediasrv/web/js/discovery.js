// Discovery (/): the live streams as a grid, refreshed every few seconds; a "Following"
// tab for logged-in viewers; an alert when someone they follow goes live (SSE). When
// nobody is live: recent videos and the channels, and an empty state that says what to
// do next (watch a video, follow a channel, or go live yourself).
import { api, el, errorText, fmtCount, fmtDuration, token } from './api.js';
import { vodCard } from './channel.js';
import { atLeast, currentUser, initHeader, openLogin } from './nav.js';

const REFRESH_MS = 5000;
// Channels and videos change slowly: read again at most this often while nobody is live.
const BROWSE_MS = 30000;
let browsedAt = 0;
let browse = { channels: [], videos: [] };
let tab = 'all';
let timer = null;
let events = null;

function card(stream) {
  const title = stream.title || `${stream.creator ? stream.creator.display_name || stream.name : stream.name} is live`;
  const creator = stream.creator ? (stream.creator.display_name || stream.creator.handle) : stream.name;
  // A portrait stream (a phone held upright) gets a portrait card of its own proportions,
  // showing its live picture (a cover is usually landscape: it would be cropped to a strip).
  const portrait = stream.orientation === 'portrait';
  const image = portrait ? stream.thumbnail_url || stream.image_url : stream.image_url || stream.thumbnail_url;
  const live = Math.max(0, Date.now() / 1000 - Date.parse(stream.started_at) / 1000 || 0);
  const node = el('a', { class: portrait ? 'stream-card portrait' : 'stream-card', href: `/watch/${encodeURIComponent(stream.name)}`,
    dataset: { stream: stream.name }, 'aria-label': stream.viewers === null ? `${title} by ${creator}` : `${title} by ${creator}, ${stream.viewers} watching` },
  el('div', { class: 'thumb' },
    image ? el('img', { src: image, alt: '', loading: 'lazy' }) : null,
    el('span', { class: 'badge live', text: 'Live' }),
    // null: the creator hides the viewer count.
    el('span', { class: 'viewers', text: stream.viewers === null ? 'Live' : `${fmtCount(stream.viewers)} watching` })),
  el('div', { class: 'meta' },
    el('div', { class: 'title', text: title }),
    // A followers-only live is listed to followers only: say so (it is not public).
    el('div', { class: 'creator' }, creator, stream.followed ? ' · following' : '',
      stream.visibility === 'followers' ? ' · for followers' : '',
      Number.isFinite(live) && live > 0 ? ` · ${fmtDuration(live)}` : '')));
  // (CSSOM, not a style attribute: the pages' Content-Security-Policy has no inline styles.)
  if (portrait) node.style.setProperty('--thumb-aspect', `${stream.width} / ${stream.height}`);
  return node;
}

/** Put `cards` in `grid`, keeping the element of a stream already shown and moving
 *  nothing that is already in place (keyboard focus stays where it was; a thumbnail
 *  keeps showing until its new image has loaded). */
function update(grid, cards) {
  const old = new Map([...grid.children].map((node) => [node.dataset.stream, node]));
  const nodes = cards.map((fresh) => {
    const node = old.get(fresh.dataset.stream);
    if (!node) return fresh;
    const oldImg = node.querySelector('.thumb img');
    const newImg = fresh.querySelector('.thumb img');
    const thumb = node.querySelector('.thumb');
    if (oldImg && newImg) {
      if (oldImg.getAttribute('src') !== newImg.getAttribute('src')) oldImg.src = newImg.getAttribute('src');
      newImg.remove();
      thumb.replaceChildren(oldImg, ...fresh.querySelector('.thumb').children);
    } else {
      thumb.replaceWith(fresh.querySelector('.thumb'));
    }
    node.querySelector('.meta').replaceWith(fresh.querySelector('.meta'));
    // Its shape too: the size is known once its video arrives, and a phone may turn.
    node.className = fresh.className;
    node.style.setProperty('--thumb-aspect', fresh.style.getPropertyValue('--thumb-aspect'));
    node.setAttribute('aria-label', fresh.getAttribute('aria-label'));
    return node;
  });
  nodes.forEach((node, i) => {
    if (grid.children[i] !== node) grid.insertBefore(node, grid.children[i] || null);
  });
  while (grid.children.length > nodes.length) grid.lastElementChild.remove();
}

function channelCard(channel) {
  const name = channel.display_name || channel.handle;
  const followers = `${fmtCount(channel.followers)} ${channel.followers === 1 ? 'follower' : 'followers'}`;
  return el('a', { class: 'stream-card channel-card', href: `/watch/${encodeURIComponent(channel.handle)}`,
    dataset: { channel: channel.handle }, 'aria-label': `${name}, ${followers}${channel.live ? ', live now' : ''}` },
  el('div', { class: 'thumb' },
    channel.cover_url ? el('img', { src: channel.cover_url, alt: '', loading: 'lazy' })
      : el('span', { class: 'initial', 'aria-hidden': 'true', text: name.slice(0, 1) }),
    channel.live ? el('span', { class: 'badge live', text: 'Live' }) : null),
  el('div', { class: 'meta' },
    el('div', { class: 'title', text: name }),
    el('div', { class: 'creator', text: `@${channel.handle} · ${followers}` })));
}

/** Recent videos and channels (read at most every BROWSE_MS); shown while nobody is live. */
async function loadBrowse() {
  if (Date.now() - browsedAt < BROWSE_MS) return browse;
  const [channels, videos] = await Promise.all([
    api('/api/channels?limit=12').then((d) => d.channels || [], () => browse.channels),
    api('/api/recordings?state=saved&limit=8').then((d) => d.recordings || [], () => browse.videos),
  ]);
  browse = { channels, videos };
  browsedAt = Date.now();
  return browse;
}

function showBrowse(visible) {
  const { channels, videos } = browse;
  const byHandle = new Map(channels.map((c) => [c.handle, c]));
  document.getElementById('videos').replaceChildren(...videos.map((r) => {
    const channel = byHandle.get(r.stream);
    return el('li', {}, vodCard(r, { cover: channel ? channel.cover_url : null,
      creatorName: channel ? channel.display_name || channel.handle : r.stream, showCreator: true }));
  }));
  document.getElementById('channels').replaceChildren(...channels.map((c) => el('li', {}, channelCard(c))));
  document.getElementById('videos-section').hidden = !visible || videos.length === 0;
  document.getElementById('channels-section').hidden = !visible || channels.length === 0;
}

/** What a visitor can do when nobody is live, from who they are and what there is. */
function emptyState() {
  const user = currentUser();
  const { channels, videos } = browse;
  const lines = [el('p', { text: 'Nobody is live right now.' })];
  if (videos.length) lines.push(el('p', { text: 'Watch a recent video below, or follow a channel to hear when it goes live.' }));
  else if (channels.length) lines.push(el('p', { text: 'Follow a channel below to hear when it goes live.' }));
  else lines.push(el('p', { text: 'Nobody has gone live on this server yet.' }));
  const actions = el('div', { class: 'row' });
  if (atLeast(user, 'creator')) {
    lines.push(el('p', { text: 'Ready to stream? Your stream key and what to type into OBS are in the studio.' }));
    actions.append(el('a', { class: 'button primary', href: '/studio', text: 'Go live from the studio' }));
  } else if (user) {
    lines.push(el('p', { text: 'Want to stream? Make your account a creator account in your settings.' }));
    actions.append(el('a', { class: 'button', href: '/settings', text: 'Open settings' }));
  } else {
    lines.push(el('p', { text: 'Sign up to follow channels, or as a creator to go live yourself.' }));
    actions.append(el('button', { class: 'primary', type: 'button', id: 'empty-signup', text: 'Sign up',
      onclick: () => openLogin('signup') }));
  }
  return [...lines, actions];
}

async function refresh() {
  const grid = document.getElementById('grid');
  const empty = document.getElementById('empty');
  const section = document.getElementById('streams');
  if (tab === 'following' && !currentUser()) {
    grid.replaceChildren();
    empty.replaceChildren('Log in to see the creators you follow. ',
      el('button', { class: 'small primary', text: 'Log in', onclick: () => openLogin() }));
    empty.dataset.state = 'login';
    empty.hidden = false;
    showBrowse(false);
    section.setAttribute('aria-busy', 'false');
    return;
  }
  try {
    const data = await api(tab === 'following' ? '/api/live/following' : '/api/live');
    const streams = data.streams || data.live || [];
    update(grid, streams.map(card));
    const nobody = streams.length === 0 && tab === 'all';
    if (nobody) await loadBrowse();
    // Drawn again only when what it says changes (a focused button keeps its focus).
    const user = currentUser();
    const key = nobody ? `all:${user ? user.role : ''}:${browse.channels.length > 0}:${browse.videos.length > 0}` : 'following';
    if (empty.dataset.state !== key) {
      if (nobody) empty.replaceChildren(...emptyState());
      else empty.textContent = 'Nobody you follow is live right now.';
      empty.dataset.state = key;
    }
    empty.hidden = streams.length > 0;
    showBrowse(nobody);
  } catch (e) {
    empty.textContent = `Could not load the streams: ${errorText(e)}. The page tries again in a few seconds.`;
    empty.dataset.state = 'error';
    empty.hidden = false;
  }
  section.setAttribute('aria-busy', 'false');
}

function schedule() {
  clearTimeout(timer);
  refresh().finally(() => { timer = setTimeout(schedule, REFRESH_MS); });
}

function selectTab(name) {
  tab = name;
  for (const id of ['all', 'following']) {
    document.getElementById(`tab-${id}`).setAttribute('aria-selected', String(id === name));
  }
  schedule();
}

function listenForAlerts() {
  if (events) { events.close(); events = null; }
  if (!token()) return;
  // EventSource cannot send headers: the token goes in the query (docs/api.md, Alerts).
  events = new EventSource(`/api/me/events?access_token=${encodeURIComponent(token())}`);
  events.addEventListener('stream.started', (e) => {
    const data = JSON.parse(e.data);
    const alert = document.getElementById('alert');
    alert.replaceChildren(`${data.creator ? data.creator.display_name || data.creator.handle || data.stream : data.stream} just went live: `,
      el('a', { href: `/watch/${encodeURIComponent(data.stream)}`, text: data.title || 'watch now' }));
    alert.hidden = false;
    schedule();
  });
  events.onerror = () => { if (!token()) events.close(); };
}

initHeader('discover');
document.getElementById('tab-all').addEventListener('click', () => selectTab('all'));
document.getElementById('tab-following').addEventListener('click', () => selectTab('following'));
window.addEventListener('mediasrv:auth', () => { schedule(); listenForAlerts(); });
schedule();
listenForAlerts();
