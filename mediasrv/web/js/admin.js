// Operator pages (/admin): live streams with a stop button, the report queue, users'
// roles and live-access grants. Moderators see reports and live access; admins change them.
import { api, el, errorText, fmtCount, fmtDuration, fmtTime, toast } from './api.js';
import { atLeast, currentUser, initHeader, openLogin, refreshUser } from './nav.js';

const $ = (id) => document.getElementById(id);
let me = null;

function gate(text, withLogin) {
  $('admin').hidden = true;
  $('gate').replaceChildren(el('p', { text }));
  if (withLogin) $('gate').append(el('button', { class: 'primary', text: 'Log in', onclick: () => openLogin() }));
  $('gate').hidden = false;
}

async function loadLive() {
  const body = $('live-streams');
  try {
    const data = await api('/api/live');
    const rows = data.streams || [];
    // data-label: the column's name, shown beside each value when a phone lays rows out as cards.
    body.replaceChildren(...rows.map((s) => el('tr', { dataset: { stream: s.name } },
      el('td', { dataset: { label: 'Stream' } }, el('a', { href: `/watch/${encodeURIComponent(s.name)}`, text: s.name })),
      el('td', { dataset: { label: 'Title' }, text: s.title || '' }),
      el('td', { dataset: { label: 'Viewers' }, text: s.viewers === null ? 'hidden' : fmtCount(s.viewers) }),
      // How long it has been live (h:mm:ss), its start time on hover and for screen readers.
      el('td', { dataset: { label: 'Live for' } }, el('time', { datetime: s.started_at, title: `since ${fmtTime(Date.parse(s.started_at) / 1000)}`,
        text: fmtDuration(Date.now() / 1000 - Date.parse(s.started_at) / 1000) })),
      el('td', { dataset: { label: 'Actions' } }, atLeast(me, 'admin') ? el('button', { class: 'small danger', type: 'button', text: 'Stop',
        'aria-label': `Stop the stream ${s.name}`, dataset: { stop: s.name }, onclick: () => stop(s.name) }) : ''))));
    if (!rows.length) body.replaceChildren(el('tr', {}, el('td', { colspan: 5, class: 'muted', text: 'Nobody is live.' })));
  } catch (e) {
    body.replaceChildren(el('tr', {}, el('td', { colspan: 5, text: errorText(e) })));
  }
}

// Stopping asks in a dialog, with a reason the viewers and the creator are shown.
let stopTarget = null;

function stop(name) {
  stopTarget = name;
  $('stop-what').textContent = `Stop ${name}'s stream now? Their encoder is disconnected; they can go live again unless you revoke their live access.`;
  $('stop-reason').value = '';
  $('stop-error').textContent = '';
  $('stop-dialog').showModal();
  $('stop-reason').focus();
}

async function submitStop(event) {
  event.preventDefault();
  const name = stopTarget;
  try {
    await api(`/api/streams/${encodeURIComponent(name)}/stop`, { method: 'POST', body: { reason: $('stop-reason').value.trim() } });
    $('stop-dialog').close();
    toast(`${name} stopped.`);
  } catch (e) {
    $('stop-error').textContent = errorText(e);
  }
  loadLive();
}

function describeReport(r) {
  if (r.kind === 'message') return `message by ${r.target_user || '?'} in ${r.stream}: “${r.excerpt || ''}”`;
  if (r.kind === 'user') return `user ${r.target_user || r.target}`;
  return `stream ${r.stream}`;
}

async function loadReports() {
  const body = $('reports');
  const status = $('report-status').value;
  try {
    const data = await api(`/api/reports?status=${encodeURIComponent(status)}&limit=100`);
    $('report-count').textContent = `${data.total} ${status === 'all' ? 'in total' : status}`;
    body.replaceChildren(...data.reports.map((r) => {
      const close = (how) => el('button', { class: `small ${how === 'resolved' ? 'primary' : ''}`, type: 'button',
        text: how === 'resolved' ? 'Resolve' : 'Dismiss', dataset: { report: String(r.id), how }, onclick: () => resolve(r, how) });
      const cell = (label, attrs, ...children) => el('td', { ...attrs, dataset: { label } }, ...children);
      return el('tr', { dataset: { report: String(r.id) } },
        cell('#', { text: String(r.id) }), cell('When', { text: fmtTime(r.created_at) }), cell('By', { text: r.reporter }),
        cell('What', {}, describeReport(r), ' ', el('a', { href: `/watch/${encodeURIComponent(r.stream)}`, text: 'open' })),
        cell('Reason', { text: r.reason }),
        cell('Status', { text: r.status === 'open' ? 'open' : `${r.status} by ${r.resolved_by || '?'}${r.resolution ? `: ${r.resolution}` : ''}` }),
        cell('Actions', {}, r.status === 'open' ? el('div', { class: 'row' }, close('resolved'), close('dismissed'),
          r.target_user ? el('button', { class: 'small danger', type: 'button', text: 'Suspend…', dataset: { suspend: r.target_user },
            'aria-label': `Suspend ${r.target_user}`, onclick: () => openSuspend(r.target_user) }) : null) : ''));
    }));
    if (!data.reports.length) body.replaceChildren(el('tr', {}, el('td', { colspan: 7, class: 'muted', text: 'No reports here.' })));
  } catch (e) {
    body.replaceChildren(el('tr', {}, el('td', { colspan: 7, text: errorText(e) })));
  }
}

// Resolving or dismissing a report: an in-page form (a native <dialog>), not window.prompt.
let resolving = null;

function resolve(report, how) {
  resolving = { report, how };
  const resolved = how === 'resolved';
  $('resolve-title').textContent = `${resolved ? 'Resolve' : 'Dismiss'} report #${report.id}`;
  $('resolve-what').textContent = `${describeReport(report)} — reported by ${report.reporter}: “${report.reason}”`;
  $('resolve-label').textContent = resolved ? 'What was done?' : 'Why dismiss it?';
  $('resolve-submit').textContent = resolved ? 'Resolve' : 'Dismiss';
  $('resolve-text').value = '';
  $('resolve-error').textContent = '';
  $('resolve-dialog').showModal();
  $('resolve-text').focus();
}

async function submitResolve(event) {
  event.preventDefault();
  const { report, how } = resolving;
  const resolution = $('resolve-text').value.trim();
  try {
    await api(`/api/reports/${report.id}/resolve`, { method: 'POST', body: { status: how, resolution: resolution || how } });
    $('resolve-dialog').close();
    toast(how === 'resolved' ? `Report #${report.id} resolved.` : `Report #${report.id} dismissed.`);
  } catch (e) {
    $('resolve-error').textContent = errorText(e);
  }
  loadReports();
}

// --- suspensions (issue 18): who cannot sign in, go live, chat or gift now ------------------

let suspended = [];

async function loadSuspensions() {
  const body = $('suspensions');
  try {
    suspended = (await api('/api/admin/suspensions')).suspensions || [];
    body.replaceChildren(...suspended.map((s) => el('tr', { dataset: { suspended: s.handle } },
      el('td', { dataset: { label: 'Account' } }, el('a', { href: `/watch/${encodeURIComponent(s.handle)}`, text: `@${s.handle}` })),
      el('td', { dataset: { label: 'Reason' }, text: s.reason }),
      el('td', { dataset: { label: 'Until' }, text: s.until ? fmtTime(s.until) : 'until lifted' }),
      el('td', { dataset: { label: 'By' }, text: s.by || '?' }),
      el('td', { dataset: { label: 'Actions' } }, el('button', { class: 'small', type: 'button', text: 'Lift',
        'aria-label': `Lift ${s.handle}'s suspension`, dataset: { lift: s.handle }, onclick: () => lift(s.handle) })))));
    if (!suspended.length) body.replaceChildren(el('tr', {}, el('td', { colspan: 5, class: 'muted',
      text: 'No account is suspended. To suspend one, search its handle under Users, or use Suspend on a report.' })));
  } catch (e) {
    body.replaceChildren(el('tr', {}, el('td', { colspan: 5, text: errorText(e) })));
  }
}

async function lift(handle) {
  try {
    await api(`/api/admin/users/${encodeURIComponent(handle)}/suspension`, { method: 'DELETE' });
    toast(`@${handle} can sign in again.`);
  } catch (e) { toast(errorText(e), true); }
  loadSuspensions();
  if ($('user-handle').value.trim().toLowerCase() === handle) lookUp();
}

let suspending = null;

function openSuspend(handle) {
  suspending = handle;
  $('suspend-title').textContent = `Suspend @${handle}`;
  $('suspend-what').textContent = `@${handle} is signed out everywhere, their live (if any) ends now, and they cannot sign in, go live, chat or send gifts until the suspension ends.`;
  $('suspend-reason').value = '';
  $('suspend-error').textContent = '';
  $('suspend-dialog').showModal();
  $('suspend-reason').focus();
}

async function submitSuspend(event) {
  event.preventDefault();
  const handle = suspending;
  const reason = $('suspend-reason').value.trim();
  if (!reason) { $('suspend-error').textContent = 'Give a reason: they are shown it.'; return; }
  const seconds = Number($('suspend-for').value);
  const body = seconds ? { reason, until: Date.now() / 1000 + seconds } : { reason };
  try {
    const answer = await api(`/api/admin/users/${encodeURIComponent(handle)}/suspension`, { method: 'POST', body });
    $('suspend-dialog').close();
    toast(answer.ended_live ? `@${handle} is suspended; their live was ended.` : `@${handle} is suspended.`);
  } catch (e) {
    $('suspend-error').textContent = errorText(e);
  }
  loadSuspensions();
  if ($('user-handle').value.trim().toLowerCase() === handle) lookUp();
}

// --- users: search by the start of a handle, or those waiting for live access ---------

let userQuery = null;

async function searchUsers(query, more = false) {
  userQuery = query;
  const list = $('user-results');
  const params = new URLSearchParams({ prefix: query.prefix, only: query.only, limit: '20', offset: String(more ? query.offset : 0) });
  try {
    const data = await api(`/api/users?${params}`);
    if (!more) list.replaceChildren();
    list.append(...data.users.map((u) => el('li', { dataset: { user: u.handle } },
      el('button', { type: 'button', class: 'small', text: `@${u.handle}`, 'aria-label': `Open ${u.handle}`,
        onclick: () => { $('user-handle').value = u.handle; lookUp(); } }),
      ` ${u.display_name} · ${u.role} · ${fmtCount(u.followers)} ${u.followers === 1 ? 'follower' : 'followers'}`,
      u.waiting_for_access ? el('span', { class: 'status-pill no', text: 'waiting for live access' }) : null,
      u.waiting_for_access && atLeast(me, 'admin')
        ? el('a', { href: '#access-requests-card', text: 'decide' }) : null)));
    // The exact handle typed: open that user's card at once.
    if (!more && query.prefix && data.users.some((u) => u.handle === query.prefix)) {
      $('user-handle').value = query.prefix;
      lookUp();
    }
    query.offset = data.next_offset || 0;
    $('user-more').hidden = data.next_offset === null;
    const what = query.only === 'waiting' ? 'waiting for live access' : (query.prefix ? `starting with “${query.prefix}”` : 'in all');
    $('user-results-status').textContent = data.total
      ? `${data.total} ${data.total === 1 ? 'user' : 'users'} ${what}.`
      : (query.only === 'waiting' ? 'Nobody is waiting for live access.' : `No user ${what}.`);
  } catch (e) {
    $('user-results-status').textContent = errorText(e);
  }
}

async function lookUp() {
  const handle = $('user-handle').value.trim().toLowerCase();
  const card = $('user-card');
  if (!handle) return;
  try {
    const [user, access] = await Promise.all([
      api(`/api/users/${encodeURIComponent(handle)}`),
      api(`/api/users/${encodeURIComponent(handle)}/live-access`)]);
    const isAdmin = atLeast(me, 'admin');
    const role = el('select', { id: 'user-role', disabled: !isAdmin },
      ...['viewer', 'creator', 'moderator', 'admin'].map((r) => el('option', { value: r, text: r, selected: r === user.role })));
    const accessButton = (value, text) => el('button', { class: 'small', type: 'button', text, disabled: !isAdmin,
      'aria-pressed': String((access.override || 'rule') === value), dataset: { access: value }, onclick: async () => {
        try { const r = await api(`/api/users/${encodeURIComponent(handle)}/live-access`, { method: 'PUT', body: { access: value } });
          toast(r.stopped_live_stream ? 'Access revoked; their live stream was stopped.' : 'Live access updated.'); lookUp(); } catch (e) { toast(errorText(e), true); }
      } });
    await loadSuspensions();
    const suspension = suspended.find((s) => s.handle === user.handle);
    const mayAct = user.handle !== me.handle && (atLeast(me, 'admin') || !atLeast(user, 'moderator'));
    card.replaceChildren(el('div', { class: 'stack' },
      el('h3', { text: `${user.display_name} (@${user.handle})` }),
      el('p', { class: 'muted', text: `${fmtCount(user.followers)} followers · ${user.live ? 'live now' : 'offline'}` }),
      el('div', { class: 'row' }, el('span', { id: 'user-suspension', text: suspension
        ? `Suspended ${suspension.until ? `until ${fmtTime(suspension.until)}` : 'until lifted'}: ${suspension.reason}` : 'Not suspended.' }),
      suspension
        ? el('button', { class: 'small', type: 'button', text: 'Lift suspension', id: 'user-lift', onclick: () => lift(user.handle) })
        : el('button', { class: 'small danger', type: 'button', text: 'Suspend…', id: 'user-suspend', disabled: !mayAct,
          onclick: () => openSuspend(user.handle) })),
      el('div', { class: 'row' }, el('label', { class: 'inline', for: 'user-role', text: 'Role' }), role,
        el('button', { class: 'small', type: 'button', text: 'Change role', disabled: !isAdmin, onclick: async () => {
          try { await api(`/api/users/${encodeURIComponent(handle)}/role`, { method: 'PUT', body: { role: role.value } }); toast('Role changed.'); lookUp(); } catch (e) { toast(errorText(e), true); }
        } })),
      el('p', {}, `Live access: ${access.allowed ? 'allowed' : 'not allowed'}`, access.reason ? ` — ${access.reason}` : '',
        ` (override: ${access.override || 'none, the follower rule applies'})`),
      el('div', { class: 'row' }, accessButton('granted', 'Grant'), accessButton('revoked', 'Revoke'), accessButton('rule', 'Follow the rule'))));
    card.hidden = false;
  } catch (e) {
    card.replaceChildren(el('p', { class: 'error-text', text: errorText(e) }));
    card.hidden = false;
  }
}

// --- live-access requests and the community's threshold (admins; issue 16, item 3) ---------

async function loadAccessRequests() {
  const body = $('access-requests');
  try {
    const { requests } = await api('/api/live-access/requests?status=pending');
    const followers = await Promise.all(requests.map((r) =>
      api(`/api/users/${encodeURIComponent(r.user.handle)}`).then((u) => u.followers, () => null)));
    body.replaceChildren(...requests.map((r, i) => {
      const reason = el('input', { type: 'text', maxlength: 500, placeholder: 'Reason (needed to refuse)',
        'aria-label': `Reason for ${r.user.handle}` });
      const decide = async (grant) => {
        try {
          await api(`/api/live-access/requests/${r.id}/${grant ? 'grant' : 'refuse'}`, { method: 'POST', body: { reason: reason.value } });
          toast(grant ? `${r.user.handle} can go live now.` : `${r.user.handle}'s request was refused.`);
        } catch (e) { toast(errorText(e), true); }
        loadAccessRequests();
      };
      return el('tr', { dataset: { request: String(r.id) } },
        el('td', { text: fmtTime(r.created_at) }),
        el('td', {}, el('a', { href: `/watch/${encodeURIComponent(r.user.handle)}`, text: `${r.user.display_name} (@${r.user.handle})` })),
        el('td', { text: followers[i] === null ? '?' : fmtCount(followers[i]) }),
        el('td', { text: r.message }),
        el('td', {}, el('div', { class: 'stack' }, reason, el('div', { class: 'row' },
          el('button', { class: 'small primary', type: 'button', text: 'Grant', dataset: { grant: r.user.handle }, onclick: () => decide(true) }),
          el('button', { class: 'small danger', type: 'button', text: 'Refuse', dataset: { refuse: r.user.handle }, onclick: () => decide(false) })))));
    }));
    if (!requests.length) body.replaceChildren(el('tr', {}, el('td', { colspan: 5, class: 'muted',
      text: 'No requests waiting. Creators below the threshold can ask from their studio.' })));
  } catch (e) {
    body.replaceChildren(el('tr', {}, el('td', { colspan: 5, text: errorText(e) })));
  }
}

function showThreshold(settings) {
  $('min-followers').value = String(settings.live_access_min_followers);
  $('threshold-source').textContent = settings.source === 'admin'
    ? `Set here (the configuration says ${fmtCount(settings.configured_min_followers)}). Following a creator counts; an admin's grant skips the threshold.`
    : 'From the configuration (live_access.min_followers). Saving here overrides it for this server.';
}

async function loadThreshold() {
  try { showThreshold(await api('/api/admin/settings')); } catch (e) { $('threshold-source').textContent = errorText(e); }
}

async function saveThreshold(value) {
  try {
    showThreshold(await api('/api/admin/settings', { method: 'PATCH', body: { live_access_min_followers: value } }));
    toast('Threshold saved.');
  } catch (e) { toast(errorText(e), true); }
}

let started = false;

async function start() {
  me = currentUser();
  if (!me) { gate('Log in with a moderator or admin account.', true); return; }
  me = (await refreshUser()) || me;
  if (!atLeast(me, 'moderator')) { gate('These pages are for the site’s moderators and admins.', false); return; }
  $('gate').hidden = true;
  $('admin').hidden = false;
  if (started) return;
  started = true;
  loadLive();
  loadReports();
  loadSuspensions();
  setInterval(loadLive, 5000);
  setInterval(loadReports, 15000);
  if (atLeast(me, 'admin')) {
    $('access-requests-card').hidden = false;
    $('community-card').hidden = false;
    loadAccessRequests();
    loadThreshold();
    setInterval(loadAccessRequests, 15000);
  }
}

initHeader('admin');
$('report-status').addEventListener('change', loadReports);
$('user-form').addEventListener('submit', (e) => {
  e.preventDefault();
  $('user-card').hidden = true;
  searchUsers({ prefix: $('user-handle').value.trim().toLowerCase(), only: 'all', offset: 0 });
});
$('user-waiting').addEventListener('click', () => { $('user-card').hidden = true; searchUsers({ prefix: '', only: 'waiting', offset: 0 }); });
$('user-more').addEventListener('click', () => searchUsers(userQuery, true));
$('resolve-form').addEventListener('submit', submitResolve);
$('resolve-cancel').addEventListener('click', () => $('resolve-dialog').close());
$('stop-form').addEventListener('submit', submitStop);
$('suspend-form').addEventListener('submit', submitSuspend);
$('suspend-cancel').addEventListener('click', () => $('suspend-dialog').close());
$('stop-cancel').addEventListener('click', () => $('stop-dialog').close());
$('threshold-form').addEventListener('submit', (e) => { e.preventDefault(); saveThreshold(Number($('min-followers').value)); });
$('threshold-reset').addEventListener('click', () => saveThreshold(null));
window.addEventListener('mediasrv:auth', () => { if (!currentUser()) { started = false; gate('Logged out.', true); } else start(); });
start();
