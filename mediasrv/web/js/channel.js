// Saved broadcasts (VODs) as cards: the channel page's "Past broadcasts" (/watch/NAME when
// offline) and the discovery page's "Recent videos" when nobody is live. Each card shows
// the broadcast's title, the creator's cover (when they have one: no request is made for a
// cover that does not exist, so no 404 reaches the console), the date and the length, and
// links to the video page (/watch/NAME?vod=ID). Everything is put in as text (el()).
import { api, el, fmtDuration } from './api.js';

/** "Mon 3 Jun 2024" style date of a Unix time, in the viewer's locale. */
export function fmtDate(unixSeconds) {
  if (!unixSeconds) return '';
  return new Date(unixSeconds * 1000).toLocaleDateString(undefined,
    { weekday: 'short', day: 'numeric', month: 'short', year: 'numeric' });
}

/** The title a saved broadcast is shown with: its go-live title, else "NAME's broadcast". */
export function vodTitle(recording, creatorName) {
  return recording.title || `${creatorName || recording.stream}'s broadcast`;
}

export function vodHref(recording) {
  return `/watch/${encodeURIComponent(recording.stream)}?vod=${encodeURIComponent(recording.id)}`;
}

/** One saved broadcast as a card. `cover`: an image URL or null; `creatorName`: shown
 *  under the title when `showCreator` (the discovery page; the channel page knows whose). */
export function vodCard(recording, { cover = null, creatorName = '', showCreator = false } = {}) {
  const title = vodTitle(recording, creatorName);
  const date = fmtDate(recording.started_at);
  const length = fmtDuration(recording.duration);
  return el('a', { class: 'stream-card vod-card', href: vodHref(recording), dataset: { vod: recording.id },
    'aria-label': `${title}, ${date}, ${length} long` },
  el('div', { class: 'thumb' },
    cover ? el('img', { src: cover, alt: '', loading: 'lazy' }) : el('span', { class: 'vod-play', 'aria-hidden': 'true', text: '▶' }),
    el('span', { class: 'viewers vod-length', text: length })),
  el('div', { class: 'meta' },
    el('div', { class: 'title', text: title }),
    el('div', { class: 'creator' }, showCreator && creatorName ? `${creatorName} · ` : '', el('time', {
      datetime: new Date((recording.started_at || 0) * 1000).toISOString(), text: date }))));
}

/** The saved broadcasts of stream `name`, newest first (`[]` when they cannot be read). */
export async function savedBroadcasts(name, limit = 12) {
  try {
    const data = await api(`/api/recordings?stream=${encodeURIComponent(name)}&state=saved&limit=${limit}`);
    return data.recordings || [];
  } catch {
    return [];
  }
}

/** Fill the channel page's past broadcasts (`section` holds `list`); hidden when none. */
export function renderPast(section, list, rows, profile) {
  const cover = profile && profile.cover_url ? profile.cover_url : null;
  const creatorName = profile ? profile.display_name || profile.handle : '';
  list.classList.add('stream-grid', 'vod-grid');
  list.replaceChildren(...rows.map((r) => el('li', {}, vodCard(r, { cover, creatorName }))));
  section.hidden = rows.length === 0;
}
