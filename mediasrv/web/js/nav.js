// The site header (navigation, log in / sign up / log out) on every page.
import { api, clearSession, el, errorText, setSession, storedUser, toast, token } from './api.js';

const ROLE_ORDER = ['viewer', 'creator', 'moderator', 'admin'];

export function atLeast(user, role) {
  return !!user && ROLE_ORDER.indexOf(user.role) >= ROLE_ORDER.indexOf(role);
}

export function currentUser() {
  return token() ? storedUser() : null;
}

/** Refresh the stored user from /api/me (a revoked token logs out). */
export async function refreshUser() {
  if (!token()) return null;
  try {
    const me = await api('/api/me');
    const before = storedUser();
    if (!before || before.handle !== me.handle || before.role !== me.role) setSession(token(), me);
    else localStorage.setItem('mediasrv.user', JSON.stringify(me));
    return me;
  } catch {
    return currentUser();
  }
}

let dialog;
let registrationFacts;

/** What the sign-up form shows (GET /api/registration), asked once per page. */
function registration() {
  registrationFacts ??= api('/api/registration').catch(() => ({ open: true, email_verification: false }));
  return registrationFacts;
}

function authDialog() {
  if (dialog) return dialog;
  const error = el('p', { class: 'error-text', role: 'alert' });
  // The server's rule (HANDLE_PATTERN in community/accounts/models.py). Browsers compile a
  // pattern with the `v` flag, where a bare '-' in a class is a syntax error and the
  // pattern is then ignored: the '-' is escaped (tests/web/test_forms.py compiles them).
  const handle = el('input', { id: 'auth-handle', name: 'handle', autocomplete: 'username', required: true,
    minlength: 3, maxlength: 32, pattern: '[A-Za-z0-9][A-Za-z0-9_\\-]{2,31}', autocapitalize: 'none',
    title: '3-32 letters, digits, _ or -, starting with a letter or digit' });
  const password = el('input', { id: 'auth-password', name: 'password', type: 'password', required: true,
    minlength: 8, autocomplete: 'current-password' });
  const role = el('select', { id: 'auth-role', name: 'role' },
    el('option', { value: 'viewer', text: 'Viewer' }), el('option', { value: 'creator', text: 'Creator (I want to stream)' }));
  const roleRow = el('div', {}, el('label', { for: 'auth-role', text: 'Account type' }), role);
  // Only where the server verifies emails (GET /api/registration): optional, and why.
  const email = el('input', { id: 'auth-email', name: 'email', type: 'email', maxlength: 254, autocomplete: 'email',
    autocapitalize: 'none', 'aria-describedby': 'auth-email-why' });
  const emailRow = el('div', { id: 'auth-email-row', hidden: true },
    el('label', { for: 'auth-email', text: 'Email (optional)' }), email,
    el('p', { class: 'muted', id: 'auth-email-why',
      text: 'We mail you a link to confirm it. Once it is confirmed, your follows count toward a creator\'s live access.' }));
  const title = el('h2', { id: 'auth-title' });
  const submit = el('button', { class: 'primary', type: 'submit', id: 'auth-submit' });
  const switcher = el('button', { type: 'button', class: 'small', id: 'auth-switch' });
  let mode = 'login';
  const setMode = (m) => {
    mode = m;
    title.textContent = m === 'login' ? 'Log in' : 'Create an account';
    submit.textContent = m === 'login' ? 'Log in' : 'Sign up';
    switcher.textContent = m === 'login' ? 'No account? Sign up' : 'Have an account? Log in';
    roleRow.hidden = m === 'login';
    emailRow.hidden = true;
    if (m === 'signup') registration().then((r) => { emailRow.hidden = mode !== 'signup' || !r.email_verification; });
    password.autocomplete = m === 'login' ? 'current-password' : 'new-password';
    error.textContent = '';
  };
  switcher.addEventListener('click', () => setMode(mode === 'login' ? 'signup' : 'login'));
  const form = el('form', { method: 'dialog', class: 'stack' },
    title,
    el('div', {}, el('label', { for: 'auth-handle', text: 'Handle' }), handle),
    el('div', {}, el('label', { for: 'auth-password', text: 'Password (at least 8 characters)' }), password),
    roleRow, emailRow, error,
    el('div', { class: 'row' }, submit, switcher,
      el('button', { type: 'button', class: 'small', text: 'Cancel', onclick: () => dialog.close() })));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    error.textContent = '';
    submit.disabled = true;
    let mailed = false;
    try {
      if (mode === 'signup') {
        const body = { handle: handle.value.trim(), password: password.value, role: role.value };
        if (!emailRow.hidden && email.value.trim()) body.email = email.value.trim();
        await api('/api/users', { method: 'POST', body });
        mailed = !!body.email;
      }
      const result = await api('/api/login', { method: 'POST', body: { handle: handle.value.trim(), password: password.value } });
      setSession(result.token, result.user);
      password.value = '';
      dialog.close();
      if (mailed) toast('Account created. Check your inbox: open the link we mailed you to confirm your email.');
    } catch (e) {
      error.textContent = errorText(e);
    } finally {
      submit.disabled = false;
    }
  });
  dialog = el('dialog', { id: 'auth-dialog', 'aria-labelledby': 'auth-title' }, form);
  dialog.setMode = setMode;
  document.body.append(dialog);
  return dialog;
}

export function openLogin(mode = 'login') {
  const d = authDialog();
  d.setMode(mode);
  d.showModal();
  d.querySelector('#auth-handle').focus();
}

function renderHeader(active) {
  const header = document.getElementById('site-header');
  if (!header) return;
  const user = currentUser();
  const link = (href, text, key) => el('a', { href, text, 'aria-current': key === active ? 'page' : null });
  const nav = el('nav', { class: 'site-nav', 'aria-label': 'Main' }, link('/', 'Discover', 'discover'));
  if (atLeast(user, 'creator')) nav.append(link('/studio', 'Studio', 'studio'));
  if (atLeast(user, 'moderator')) nav.append(link('/admin', 'Admin', 'admin'));
  if (user) nav.append(link('/settings', 'Settings', 'settings'));
  const account = el('div', { class: 'account' });
  if (user) {
    account.append(el('span', { class: 'who', id: 'whoami', text: `@${user.handle}` }),
      el('button', { class: 'small', id: 'logout', text: 'Log out', onclick: async () => {
        try { await api('/api/logout', { method: 'POST' }); } catch { /* logged out anyway */ }
        clearSession();
      } }));
  } else {
    account.append(
      el('button', { class: 'small', id: 'login', text: 'Log in', onclick: () => openLogin('login') }),
      el('button', { class: 'small primary', id: 'signup', text: 'Sign up', onclick: () => openLogin('signup') }));
  }
  header.replaceChildren(
    el('a', { class: 'skip', href: '#main', text: 'Skip to content' }),
    el('a', { class: 'brand', href: '/' }, 'media', el('span', { text: 'srv' })),
    nav, account);
}

/** Draw the header for page `active` and keep it in step with log in / out. */
export function initHeader(active) {
  renderHeader(active);
  window.addEventListener('mediasrv:auth', () => renderHeader(active));
  window.addEventListener('storage', (e) => { if (e.key === 'mediasrv.token') renderHeader(active); });
  refreshUser();
}
