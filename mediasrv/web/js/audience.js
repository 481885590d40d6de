// "Who may watch" (issue 18), in the studio and on /studio/live: the visibility of the
// creator's next lives and of the live now, the 18+ flag, and the people invited to
// private lives. Built into an empty container; hidden where the server has no visibility.
import { api, el, errorText, toast } from './api.js';

const LABELS = {
  public: 'Public — anyone, listed',
  followers: 'Followers — your signed-in followers',
  unlisted: 'Unlisted — anyone with the link',
  private: 'Private — only people you invite',
};

function select(id, allowed, value) {
  const box = el('select', { id });
  box.replaceChildren(...allowed.map((v) => el('option', { value: v, text: LABELS[v] || v })));
  box.value = value;
  return box;
}

/** The list of invited people, each with a Remove button; an empty state that says what to do. */
async function renderInvites(list, empty) {
  let invites = [];
  try { invites = (await api('/api/me/invites')).invites || []; } catch (e) { toast(errorText(e), true); }
  list.replaceChildren(...invites.map((invite) => {
    const remove = el('button', { type: 'button', class: 'small', text: 'Remove' });
    remove.setAttribute('aria-label', `Remove ${invite.handle}'s invitation`);
    remove.addEventListener('click', async () => {
      try {
        await api(`/api/me/invites/${encodeURIComponent(invite.handle)}`, { method: 'DELETE' });
        toast(`${invite.handle} is no longer invited.`);
        await renderInvites(list, empty);
      } catch (e) { toast(errorText(e), true); }
    });
    return el('li', { class: 'row' }, [el('span', { text: `${invite.display_name || invite.handle} (@${invite.handle})` }), remove]);
  }));
  empty.hidden = invites.length > 0;
}

/** Build the controls into ``root`` (a section); returns a function that refreshes the
 *  "this live now" row (call it when the live starts or ends). */
export async function initAudience(root) {
  let settings;
  try { settings = await api('/api/me/settings'); } catch { root.hidden = true; return () => {}; }
  if (!('visibility' in settings)) { root.hidden = true; return () => {}; }
  const allowed = settings.visibility_allowed || Object.keys(LABELS);

  const next = select('visibility-default', allowed, settings.visibility);
  const mature = el('input', { type: 'checkbox', id: 'mature-default' });
  mature.checked = !!settings.mature;
  const now = select('visibility-now', allowed, settings.visibility);
  const nowRow = el('div', { id: 'visibility-now-row', hidden: true }, [
    el('label', { for: 'visibility-now', text: 'This live, now' }), now,
    el('p', { class: 'hint flush', text: 'Applies at once: whoever may no longer watch loses the live within seconds.' }),
  ]);
  nowRow.hidden = true;
  const handle = el('input', { id: 'invite-handle', placeholder: 'handle', maxlength: '32', autocomplete: 'off' });
  const list = el("ul", { id: "invites" });
  const empty = el('p', { id: 'invites-empty', class: 'hint flush',
    text: 'No one is invited yet: type a handle and tap Invite. Invited people may watch your private lives.' });
  const form = el('form', { class: 'row', id: 'invite-form' }, [
    el('label', { for: 'invite-handle', class: 'sr-only', text: 'Handle to invite' }), handle,
    el('button', { type: 'submit', class: 'small', text: 'Invite' }),
  ]);

  root.replaceChildren(
    el('h3', { text: 'Who may watch' }),
    el('div', {}, [el('label', { for: 'visibility-default', text: 'Your lives' }), next]),
    el('label', { class: 'inline' }, [mature, ' 18+ (viewers confirm their age; hidden from signed-out visitors)']),
    nowRow,
    el('h4', { text: 'Invited to your private lives' }),
    form, list, empty,
  );

  next.addEventListener('change', async () => {
    try {
      await api('/api/me/settings', { method: 'PATCH', body: { visibility: next.value } });
      toast(`Your next lives: ${LABELS[next.value]}.`);
    } catch (e) { toast(errorText(e), true); }
  });
  mature.addEventListener('change', async () => {
    try {
      await api('/api/me/settings', { method: 'PATCH', body: { mature: mature.checked } });
      if (!nowRow.hidden) await api('/api/me/live', { method: 'PATCH', body: { mature: mature.checked } });
      toast(mature.checked ? 'Marked 18+.' : 'No longer marked 18+.');
    } catch (e) { toast(errorText(e), true); }
  });
  now.addEventListener('change', async () => {
    try {
      await api('/api/me/live', { method: 'PATCH', body: { visibility: now.value } });
      toast(`This live: ${LABELS[now.value]}.`);
    } catch (e) { toast(errorText(e), true); refresh(); }
  });
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const who = handle.value.trim();
    if (!who) { toast('Type the handle of the person to invite.', true); return; }
    try {
      await api(`/api/me/invites/${encodeURIComponent(who)}`, { method: 'POST' });
      handle.value = '';
      toast(`${who} may watch your private lives.`);
      await renderInvites(list, empty);
    } catch (e) { toast(errorText(e), true); }
  });

  async function refresh() {
    try {
      const live = await api('/api/me/live');
      nowRow.hidden = live.state === 'offline' || !live.visibility;
      if (live.visibility) now.value = live.visibility;
    } catch { nowRow.hidden = true; }
  }
  root.dataset.ready = 'yes';
  await Promise.all([renderInvites(list, empty), refresh()]);
  return refresh;
}
