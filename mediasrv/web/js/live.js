// The creator's live on the server, whatever publishes it (OBS over RTMP, this browser
// over WHIP): docs/api.md, "Backstage and ending a live". Shared by the studio and the
// go-live page.
import { api, fmtDuration, token } from './api.js';

/** What the stats feed's `ended` says after an end from the studio (the server's
 *  ENDED_BY_CREATOR, community/live/service.py): not an operator's stop. */
export const ENDED_BY_CREATOR = 'The creator ended the live.';

/** {state: offline | private | public, started_at (Unix s), preview: {grant, …}, …} */
export const myLive = () => api('/api/me/live');

/** Make the private (backstage) live public: listed, alerts, recording from now. */
export const goPublic = () => api('/api/me/live/public', { method: 'POST' });

/** End the live from the server: {was, hold_seconds, recording: {id, state, duration} | null}. */
export const endLive = () => api('/api/me/live/end', { method: 'POST' });

/** The live's stats feed (Server-Sent Events); a private live's needs its grant. The
 *  creator's own figures (health, gifts, chat rate) are theirs alone: the token goes in the
 *  query (an EventSource cannot send headers), else only the viewer count comes. */
export function statsUrl(handle, grant) {
  const query = new URLSearchParams();
  if (grant) query.set('pt', grant);
  if (token()) query.set('access_token', token());
  const text = query.toString();
  return `/api/streams/${encodeURIComponent(handle)}/events${text ? `?${text}` : ''}`;
}

/** Keep a private live's stats feed open past its grant: a grant expires
 *  (`live.grant_seconds`) or is voided (the creator removed a moderator, which voids every
 *  grant of the live: docs/security.md), and the feed then answers 404, which closes an
 *  EventSource for good. When `source` (opened with `grant`) is closed so, ask for the
 *  live again and call `reconnect(freshGrant)` while it is still private; nothing for a
 *  public live (no grant) or one that ended. At most one look a second. */
export function renewFeedGrant(source, grant, reconnect) {
  if (!grant) return;
  source.addEventListener('error', () => {
    if (source.readyState !== EventSource.CLOSED) return; // a dropped connection: the browser retries
    setTimeout(async () => {
      let now = null;
      try { now = await myLive(); } catch { return; }
      const fresh = now && now.state !== 'offline' && now.preview && now.preview.grant;
      if (fresh) reconnect(fresh);
    }, 1000);
  });
}

/** `url` (an absolute URL the API gave, built on the server's public address) as a path
 *  on this page's own server: the pages may load only from their own origin (CSP), and
 *  the public address may name another (a proxy, a LAN address). */
export function here(url) {
  const parsed = new URL(url, location.href);
  return parsed.pathname + parsed.search;
}

/** Whether an `ended` reason is an operator's (shown to the creator as such). */
export function endedByOperator(reason) {
  return !!reason && reason !== ENDED_BY_CREATOR;
}

/** What to ask about an ended live's recording ({id, state, duration} or null), as
 *  {text, save, discard}: the question, the save button's label (null: none) and whether
 *  to offer Discard. `wasPublic`: whether it was ever public (else nothing is recorded). */
export function recordingQuestion(recording, wasPublic) {
  const length = recording ? `${fmtDuration(recording.duration)} recorded` : '';
  if (recording && (recording.state === 'pending_decision' || recording.state === 'failed')) {
    return { text: `Save it as a video on your channel, or discard it? (${length})`, save: 'Save video', discard: true };
  }
  if (recording && recording.state === 'saved') {
    // Saved already (the creator saves by default): keep it, or discard it after all.
    return { text: `Saved as a video on your channel, as you save broadcasts by default (${length}). Keep it, or discard it?`,
      save: 'Keep video', discard: true };
  }
  if (recording && recording.state === 'recording') {
    return { text: 'The recording is still being finished: save or discard it in the studio’s past broadcasts.', save: null, discard: false };
  }
  return { text: wasPublic ? 'This live was not recorded (recording is off on this server).'
    : 'Nothing was recorded: you ended the live before going public.', save: null, discard: false };
}

/** Carry out the choice about a recording: `save` of one saved already asks nothing. */
export async function decideRecording(recording, action) {
  if (action === 'save' && recording.state === 'saved') return;
  await api(`/api/recordings/${encodeURIComponent(recording.id)}/${action}`, { method: 'POST' });
}
