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
    body.replaceChildren(...rows.map((s) => el('tr', { dataset: { stream: s.name } },
      el('td', {}, el('a', { href: `/watch/${encodeURIComponent(s.name)}`, text: s.name })),
      el('td', { text: s.title || '' }),
      el('td', { text: fmtCount(s.viewers) }),
      el('td', { text: fmtDuration(Date.now() / 1000 - Date.parse(s.started_at) / 1000) }),
      el('td', {}, atLeast(me, 'admin') ? el('button', { class: 'small danger', type: 'button', text: 'Stop',
        'aria-label': `Stop the stream ${s.name}`, dataset: { stop: s.name }, onclick: () => stop(s.name) }) : ''))));
    if (!rows.length) body.replaceChildren(el('tr', {}, el('td', { colspan: 5, class: 'muted', text: 'Nobody is live.' })));
  } catch (e) {
    body.replaceChildren(el('tr', {}, el('td', { colspan: 5, text: errorText(e) })));
  }
}

async function stop(name) {
  if (!confirm(`Stop ${name}'s stream now? Their encoder is disconnected.`)) return;
  try { await api(`/api/streams/${encodeURIComponent(name)}/stop`, { method: 'POST' }); toast(`${name} stopped.`); } catch (e) { toast(errorText(e), true); }
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
      return el('tr', { dataset: { report: String(r.id) } },
        el('td', { text: String(r.id) }), el('td', { text: fmtTime(r.created_at) }), el('td', { text: r.reporter }),
        el('td', {}, describeReport(r), ' ', el('a', { href: `/watch/${encodeURIComponent(r.stream)}`, text: 'open' })),
        el('td', { text: r.reason }),
        el('td', { text: r.status === 'open' ? 'open' : `${r.status} by ${r.resolved_by || '?'}${r.resolution ? `: ${r.resolution}` : ''}` }),
        el('td', {}, r.status === 'open' ? el('div', { class: 'row' }, close('resolved'), close('dismissed')) : ''));
    }));
    if (!data.reports.length) body.replaceChildren(el('tr', {}, el('td', { colspan: 7, class: 'muted', text: 'No reports here.' })));
  } catch (e) {
    body.replaceChildren(el('tr', {}, el('td', { colspan: 7, text: errorText(e) })));
  }
}

async function resolve(report, how) {
  const resolution = prompt(how === 'resolved' ? 'What was done?' : 'Why dismiss it?', '');
  if (resolution === null) return;
  try {
    await api(`/api/reports/${report.id}/resolve`, { method: 'POST', body: { status: how, resolution: resolution || how } });
  } catch (e) { toast(errorText(e), true); }
  loadReports();
}

async function lookUp(event) {
  if (event) event.preventDefault();
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
    card.replaceChildren(el('div', { class: 'stack' },
      el('h3', { text: `${user.display_name} (@${user.handle})` }),
      el('p', { class: 'muted', text: `${fmtCount(user.followers)} followers · ${user.live ? 'live now' : 'offline'}` }),
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
$('user-form').addEventListener('submit', lookUp);
$('threshold-form').addEventListener('submit', (e) => { e.preventDefault(); saveThreshold(Number($('min-followers').value)); });
$('threshold-reset').addEventListener('click', () => saveThreshold(null));
window.addEventListener('mediasrv:auth', () => { if (!currentUser()) { started = false; gate('Logged out.', true); } else start(); });
start();
