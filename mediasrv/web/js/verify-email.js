// /verify-email?token=...: the page a verification mail's link opens. It uses the link
// (POST /api/verify-email) and says in words whether the address is verified now or the
// link is expired / used, and what to do next (settings sends a new link).
import { api, errorText } from './api.js';
import { initHeader } from './nav.js';

const $ = (id) => document.getElementById(id);

function say(title, text, settings) {
  $('ve-title').textContent = title;
  $('ve-text').textContent = text;
  $('ve-settings').hidden = !settings;
}

async function verify() {
  const tokenParam = new URLSearchParams(location.search).get('token') || '';
  // Once used (or refused), the token should not stay in the address bar or the history;
  // after a network error it stays, so a reload tries again.
  const forget = () => history.replaceState(null, '', '/verify-email');
  if (!tokenParam) {
    say('No verification link', 'This address needs the whole link from the mail. Open the link in the mail again, or ask for a new one in your settings.', true);
    return;
  }
  try {
    const result = await api(`/api/verify-email?token=${encodeURIComponent(tokenParam)}`, { method: 'POST' });
    forget();
    say('Email verified', `Thank you, @${result.handle}: your email is verified. When you follow a creator, you now count toward their live access.`, false);
  } catch (e) {
    if (e.status === 404 || e.status === 400) {
      forget();
      say('This link has expired', 'The link is too old, was already used, or belongs to an address you have since changed. Log in and ask for a new link in your settings.', true);
    } else {
      say('Could not verify right now', `${errorText(e)}. Reload this page in a moment to try again.`, false);
    }
  }
}

initHeader('');
verify();
