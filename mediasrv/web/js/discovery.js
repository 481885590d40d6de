// Discovery (/): the live streams as a grid, refreshed every few seconds; a "Following"
// tab for logged-in viewers; an alert when someone they follow goes live (SSE).
import { api, el, errorText, fmtCount, fmtDuration, token } from './api.js';
import { currentUser, initHeader, openLogin } from './nav.js';

const REFRESH_MS = 5000;
let tab = 'all';
let timer = null;
let events = null;

function card(stream) {
  const title = stream.title || `${stream.creator ? stream.creator.display_name || stream.name : stream.name} is live`;
  const creator = stream.creator ? (stream.creator.display_name || stream.creator.handle) : stream.name;
  const image = stream.image_url || stream.thumbnail_url;
  const live = Math.max(0, Date.now() / 1000 - Date.parse(stream.started_at) / 1000 || 0);
  return el('a', { class: 'stream-card', href: `/watch/${encodeURIComponent(stream.name)}`,
    dataset: { stream: stream.name }, 'aria-label': `${title} by ${creator}, ${stream.viewers} watching` },
  el('div', { class: 'thumb' },
    image ? el('img', { src: image, alt: '', loading: 'lazy' }) : null,
    el('span', { class: 'badge live', text: 'Live' }),
    el('span', { class: 'viewers', text: `${fmtCount(stream.viewers)} watching` })),
  el('div', { class: 'meta' },
    el('div', { class: 'title', text: title }),
    el('div', { class: 'creator' }, creator, stream.followed ? ' · following' : '',
      Number.isFinite(live) && live > 0 ? ` · ${fmtDuration(live)}` : '')));
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
    node.setAttribute('aria-label', fresh.getAttribute('aria-label'));
    return node;
  });
  nodes.forEach((node, i) => {
    if (grid.children[i] !== node) grid.insertBefore(node, grid.children[i] || null);
  });
  while (grid.children.length > nodes.length) grid.lastElementChild.remove();
}

async function refresh() {
  const grid = document.getElementById('grid');
  const empty = document.getElementById('empty');
  const section = document.getElementById('streams');
  if (tab === 'following' && !currentUser()) {
    grid.replaceChildren();
    empty.replaceChildren('Log in to see the creators you follow. ',
      el('button', { class: 'small primary', text: 'Log in', onclick: () => openLogin() }));
    empty.hidden = false;
    section.setAttribute('aria-busy', 'false');
    return;
  }
  try {
    const data = await api(tab === 'following' ? '/api/live/following' : '/api/live');
    const streams = data.streams || data.live || [];
    update(grid, streams.map(card));
    empty.textContent = tab === 'following' ? 'Nobody you follow is live right now.' : 'Nobody is live right now. Check back soon!';
    empty.hidden = streams.length > 0;
  } catch (e) {
    empty.textContent = `Could not load the streams: ${errorText(e)}`;
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
