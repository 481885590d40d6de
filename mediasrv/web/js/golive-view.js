// The go-live page's state and what it shows for it: the phase (body[data-phase] drives
// the CSS too), the buttons, the problem box and the notes. Every other golive-*.js
// module reads and changes the page through here.
import { el } from './api.js';
import { openLogin } from './nav.js';

export const $ = (id) => document.getElementById(id);

/** What the page shows, exposed for tests and debugging (never the key). */
export const state = window.mediasrvGoLive = {
  phase: 'loading', problem: null, codec: null, backstage: false, public: false, recording: null, decision: null,
  elsewhere: false, session: null, holdUntil: 0, iceServers: [],
};

/** What the page works with and keeps to itself: the creator, their stream key and
 *  settings, their live access, the camera's media ({stream, noAudio}) and the WHIP
 *  session while on air. */
export const page = { me: null, key: null, settings: {}, access: null, media: null, session: null };

let holdTimer = null;

/** Move to `phase` and show what belongs to it. */
export function setPhase(phase) {
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
export function refreshGoButton() {
  const button = $('go-live');
  button.textContent = state.phase === 'connecting' ? 'Connecting…' : 'Go live';
  let missing = '';
  const hold = Math.ceil((state.holdUntil - Date.now()) / 1000);
  if (page.access && !page.access.allowed) missing = 'You need live access first: the studio says how to get it.';
  else if (!page.key) missing = 'Your stream key could not be read: reload the page.';
  else if (!page.media) missing = 'Turn on your camera (above) to go live.';
  else if (hold > 0) missing = `You just ended a live: you can go live again in ${hold} s.`;
  button.disabled = state.phase !== 'setup' || !!missing;
  const hint = $('go-hint');
  hint.textContent = state.phase === 'setup' ? missing : '';
  hint.hidden = !hint.textContent;
  $('cover-snap').disabled = state.phase !== 'setup' || !page.media;
  // Count the hold down (the server refuses a new live until then).
  clearTimeout(holdTimer);
  if (hold > 0) holdTimer = setTimeout(refreshGoButton, 1000);
}

/** Show a problem (a title and what to do), or clear it (no title). */
export function showProblem(title, text) {
  state.problem = title ? { title, text } : null;
  $('problem').hidden = !title;
  $('problem-title').textContent = title || '';
  $('problem-text').textContent = text || '';
}

// Notes that stay while their cause does: the connection, a missing microphone.
const notes = { connection: '', microphone: '' };

/** Set (or clear, with no text) the note about `which`: 'connection' or 'microphone'. */
export function note(which, text) {
  notes[which] = text || '';
  const all = Object.values(notes).filter(Boolean).join(' ');
  $('info').hidden = !all;
  $('info').textContent = all;
}

/** Show only `text` (and a login button) instead of the page: not logged in, not a creator. */
export function gate(text, withLogin) {
  $('golive').hidden = true;
  const box = $('gate');
  box.replaceChildren(el('p', { text }));
  if (withLogin) box.append(el('button', { class: 'primary', text: 'Log in', onclick: () => openLogin() }));
  box.hidden = false;
  setPhase('gate');
}
