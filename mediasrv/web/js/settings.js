// Settings (/settings): the logged-in user's display name, password (changing it ends
// every other session, docs/api.md), email (where the server verifies emails) and, where the server lets anyone sign up as a
// creator, turning a viewer account into a creator account. Every state says what to do
// next: log in, fix the field named in the error, or open the studio.
import { api, el, errorText, setSession, toast, token } from './api.js';
import { atLeast, currentUser, initHeader, openLogin, refreshUser } from './nav.js';

const $ = (id) => document.getElementById(id);

function say(okId, errorId, ok, error = '') {
  $(okId).textContent = ok;
  $(errorId).textContent = error;
}

function renderGate() {
  $('gate-text').textContent = 'Log in to change your display name, your password or your account type. No account yet? Sign up from the log-in window.';
  $('gate').hidden = false;
  $('settings').hidden = true;
}

function renderCreator(me) {
  const creator = atLeast(me, 'creator');
  $('creator-text').textContent = creator
    ? 'Your account can stream. Your stream key, what to type into OBS and your go-live settings are in the studio.'
    : 'Want to stream? Make this a creator account: you get a stream key in the studio. (Going live may also need enough followers; the studio says where you stand.)';
  $('become-creator').hidden = creator;
  $('studio-link').hidden = !creator;
}

function render(me) {
  $('gate').hidden = true;
  $('settings').hidden = false;
  $('account-line').textContent = `Logged in as @${me.handle} · ${me.role} account`;
  $('password-user').value = me.handle;
  if (document.activeElement !== $('display-name')) $('display-name').value = me.display_name || me.handle;
  renderCreator(me);
}

async function load() {
  if (!token()) { renderGate(); return; }
  const me = await refreshUser();
  if (!me || !token()) { renderGate(); return; }
  render(me);
  loadRelations();
  loadEmail();
}

/** The account's email and whether it is verified: shown only where the server verifies
 *  emails (GET /api/me/email says so). */
function renderEmail(status) {
  $('email-card').hidden = !status.verification;
  if (!status.verification) return;
  const text = !status.email
    ? 'No email yet. Give one below: we mail you a link to confirm it.'
    : status.verified
      ? `${status.email} · verified.`
      : `${status.email} · not verified yet. Open the link we mailed you, or send a new one.`;
  $('email-status').textContent = text;
  $('email-submit').textContent = status.email ? 'Change and send a new link' : 'Send me a link';
  if (document.activeElement !== $('email-input') && !$('email-input').value) $('email-input').value = status.email;
}

async function loadEmail() {
  try {
    renderEmail(await api('/api/me/email'));
  } catch (e) {
    $('email-card').hidden = true;  // the rest of the page still works
    console.warn(e);
  }
}

async function changeEmail(event) {
  event.preventDefault();
  say('email-ok', 'email-error', '');
  const value = $('email-input').value.trim();
  const button = $('email-submit');
  button.disabled = true;
  try {
    const status = await api('/api/me/email', { method: 'PUT', body: { email: value } });
    renderEmail(status);
    if (status.sent) say('email-ok', 'email-error', `Check your inbox: open the link we mailed to ${value}.`);
    else say('email-ok', 'email-error', '', 'The mail could not be sent right now. Try again in a few minutes.');
  } catch (e) {
    say('email-ok', 'email-error', '', e.status === 429 ? `${errorText(e)}: wait a while before asking for another link.` : errorText(e));
  } finally {
    button.disabled = false;
  }
}

async function saveName(event) {
  event.preventDefault();
  say('name-ok', 'name-error', '');
  const value = $('display-name').value.trim();
  if (!value) { say('name-ok', 'name-error', '', 'Type the name viewers should see.'); return; }
  try {
    const me = await api('/api/me', { method: 'PATCH', body: { display_name: value } });
    setSession(token(), me);
    say('name-ok', 'name-error', 'Saved. Viewers see the new name from now on.');
  } catch (e) {
    say('name-ok', 'name-error', '', errorText(e));
  }
}

async function changePassword(event) {
  event.preventDefault();
  say('password-ok', 'password-error', '');
  const current = $('current-password').value;
  const fresh = $('new-password').value;
  if (fresh !== $('repeat-password').value) {
    say('password-ok', 'password-error', '', 'The two new passwords differ: type the same one twice.');
    $('repeat-password').focus();
    return;
  }
  try {
    await api('/api/me', { method: 'PATCH', body: { current_password: current, new_password: fresh } });
    for (const id of ['current-password', 'new-password', 'repeat-password']) $(id).value = '';
    say('password-ok', 'password-error', 'Password changed. You were logged out everywhere else; log in there with the new password.');
  } catch (e) {
    const text = e.status === 403 ? 'The current password is wrong: type the one you log in with now.' : errorText(e);
    say('password-ok', 'password-error', '', text);
    $('current-password').focus();
  }
}

/** The users I block and mute, each with a button to undo it. */
async function loadRelations() {
  for (const [kind, listId, verb] of [['block', 'blocked-list', 'Unblock'], ['mute', 'muted-list', 'Unmute']]) {
    const list = $(listId);
    try {
      const data = await api(`/api/me/${kind}s`);
      list.replaceChildren(...(data.users || []).map((row) => el('li', { dataset: { user: row.user.handle } },
        `${row.user.display_name} (@${row.user.handle}) `,
        el('button', { class: 'small', type: 'button', text: verb, 'aria-label': `${verb} @${row.user.handle}`, onclick: async () => {
          try { await api(`/api/me/${kind}s/${encodeURIComponent(row.user.handle)}`, { method: 'DELETE' }); toast(`${verb}ed @${row.user.handle}.`); }
          catch (e) { toast(errorText(e), true); }
          loadRelations();
        } }))));
      if (!data.users || !data.users.length) {
        list.replaceChildren(el('li', { class: 'muted', text: kind === 'block' ? 'Nobody. Block someone from a chat message’s ⋯ menu.' : 'Nobody. Mute someone from a chat message’s ⋯ menu.' }));
      }
    } catch (e) {
      list.replaceChildren(el('li', { class: 'error-text', text: errorText(e) }));
    }
  }
}

async function becomeCreator() {
  $('creator-error').textContent = '';
  const button = $('become-creator');
  button.disabled = true;
  try {
    const me = await api('/api/me/become-creator', { method: 'POST' });
    setSession(token(), me);  // the header shows the studio from now on
    renderCreator(me);
    $('creator-text').textContent = 'This is a creator account now. Open the studio for your stream key and what to type into OBS.';
    $('studio-link').focus();
  } catch (e) {
    $('creator-error').textContent = e.status === 403
      ? `${errorText(e)}.` : `${errorText(e)}. Try again in a moment.`;
    if (e.status === 403) button.hidden = true;
  } finally {
    button.disabled = false;
  }
}

initHeader('settings');
$('gate-login').addEventListener('click', () => openLogin('login'));
$('name-form').addEventListener('submit', saveName);
$('password-form').addEventListener('submit', changePassword);
$('email-form').addEventListener('submit', changeEmail);
$('become-creator').addEventListener('click', becomeCreator);
// Logging in or out (here or in another tab) redraws the page.
window.addEventListener('mediasrv:auth', () => { const me = currentUser(); if (me) render(me); else renderGate(); load(); });
load();
