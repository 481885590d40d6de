// The chat panel: a WebSocket to /live/NAME/chat (docs/chat.md). Every field of every
// frame is plain text and is shown with textContent only.
import { clearSession, el, token } from './api.js';

const MAX_LINES = 300;
/** Reconnect back-off (ms) after a transient failure: doubled each time up to the cap. */
const RETRY_FIRST = 1000;
const RETRY_MAX = 30000;

export class ChatPanel {
  /**
   * @param {string} stream
   * @param {object} nodes  {log, pinned, form, input, send, off (the "chat is off" notice), viewers}
   * @param {object} hooks  {onState(state), onEnded(), onStarted(), onGift(frame), onViewers(n), onReport(msg), needLogin(),
   *                         onStopped(reason) ('banned', 'blocked', 'suspended' or 'unknown': the chat stopped for good),
   *                         onUser(action, handle) ('report', 'mute', 'block': a message's author)}
   */
  constructor(stream, nodes, hooks = {}) {
    this.stream = stream;
    this.nodes = nodes;
    this.hooks = hooks;
    this.you = null;
    /** False while the creator has the chat off: only they may write (docs/chat.md). */
    this.enabled = true;
    this.ws = null;
    this.closedByUs = false;
    this.retry = RETRY_FIRST;
    this.retryTimer = null;
    /** Why the chat stopped for good: 'banned' (403 / close 1008), 'unknown' (404: no such
     *  channel). No reconnect then, until reconnect() (a log in or out). */
    this.stopped = null;
    /** Connections opened (WebSocket objects made), for tests and debugging. */
    this.attempts = 0;
    this.byId = new Map();
    this.menu = null;
    // Follow the newest line while the reader is at the bottom, also when the log changes
    // size (the page's layout settling, an on-screen keyboard): scrolling up stops it.
    this.stick = true;
    const log = nodes.log;
    log.addEventListener('scroll', () => { this.stick = log.scrollHeight - log.scrollTop - log.clientHeight < 40; }, { passive: true });
    if (window.ResizeObserver) new ResizeObserver(() => { if (this.stick) log.scrollTop = log.scrollHeight; }).observe(log);
    nodes.form.addEventListener('submit', (event) => {
      event.preventDefault();
      if (!this.you) { (hooks.needLogin || (() => {}))(); return; }
      const text = nodes.input.value.trim();
      if (!text) return;
      if (this.send({ type: 'message', text })) nodes.input.value = '';
    });
  }

  path() {
    return `/live/${encodeURIComponent(this.stream)}/chat`;
  }

  connect() {
    if (this.stopped) return;
    this.closedByUs = false;
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    const t = token();
    // Browsers cannot set headers on a WebSocket: the token goes in the query (docs/chat.md).
    const query = t ? `?access_token=${encodeURIComponent(t)}` : '';
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const ws = new WebSocket(`${scheme}://${location.host}${this.path()}${query}`);
    this.attempts += 1;
    this.ws = ws;
    let opened = false;
    ws.addEventListener('message', (event) => {
      let frame;
      try { frame = JSON.parse(event.data); } catch { return; }
      this.handle(frame);
    });
    ws.addEventListener('open', () => { opened = true; });
    ws.addEventListener('close', (event) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (this.closedByUs || this.stopped) return;
      if (event.code === 1008) { this.stop('banned'); return; }  // the server's last word to a banned user
      this.setWritable(false, 'Reconnecting…');
      // Refused before the upgrade (or the server is away): a browser cannot see the
      // status, so ask the same URL without an upgrade why (docs/chat.md).
      if (opened) this.later(); else this.diagnose(t);
    });
  }

  /** After a refused handshake: stop on a ban (403) or an unknown channel (404); a
   *  revoked token logs out (the page then reconnects anonymously); anything else is
   *  transient and retried with back-off. */
  async diagnose(t) {
    let status = 0;
    let code = '';  // why a 403: banned, blocked (by the creator) or suspended (the account)
    try {
      const response = await fetch(this.path(), { headers: t ? { Authorization: `Bearer ${t}` } : {}, cache: 'no-store' });
      status = response.status;
      if (status === 403) code = (await response.json().catch(() => ({}))).code || '';
    } catch { /* the server is away: transient */ }
    if (this.ws || this.closedByUs || this.stopped) return;  // reconnected or closed meanwhile
    if (status === 403) this.stop(code === 'blocked' || code === 'suspended' ? code : 'banned');
    else if (status === 404) this.stop('unknown');
    else if (status === 401 && t) clearSession();
    else this.later();
  }

  /** Retry with exponential back-off (and some jitter, so a restarted server is not hit
   *  by every page at once). */
  later() {
    clearTimeout(this.retryTimer);
    const delay = this.retry * (0.8 + Math.random() * 0.4);
    this.retry = Math.min(this.retry * 2, RETRY_MAX);
    this.retryTimer = setTimeout(() => { this.retryTimer = null; if (!this.ws && !this.closedByUs) this.connect(); }, delay);
  }

  /** The chat stopped for good ('banned', 'unknown'; 'followers': until the viewer may
   *  watch, when the watch page reconnects it): a notice in place of the box. */
  stop(reason) {
    this.stopped = reason;
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.closeMenu(false);
    if (this.ws) { const ws = this.ws; this.ws = null; ws.close(1000); }
    for (const button of this.nodes.log.querySelectorAll('.msg-menu-button')) button.remove();
    this.updateWritable();
    if (this.hooks.onStopped) this.hooks.onStopped(reason);
  }

  /** Reconnect (e.g. after logging in: the state frame then says who we are). */
  reconnect() {
    this.close();
    this.stopped = null;
    this.retry = RETRY_FIRST;
    this.connect();
  }

  close() {
    this.closedByUs = true;
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    if (this.ws) { const ws = this.ws; this.ws = null; ws.close(1000); }
  }

  send(request) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) {
      this.system('Not connected to the chat yet.');
      return false;
    }
    this.ws.send(JSON.stringify(request));
    return true;
  }

  setWritable(writable, placeholder) {
    const { input, send } = this.nodes;
    input.disabled = !writable;
    send.disabled = !writable;
    send.textContent = 'Send';
    input.placeholder = placeholder || (writable ? 'Say something…' : '');
  }

  handle(frame) {
    switch (frame.type) {
      case 'state': {
        this.retry = RETRY_FIRST;  // a working connection (not just an open socket) resets the back-off
        this.enabled = frame.enabled !== false;
        this.you = frame.you;
        // The server's can_write is also false because the chat is off; the panel keeps
        // that in this.enabled, so a chat_enabled frame can reopen the box without a
        // reconnect. A timeout (timed_out_until) still closes it.
        if (this.you && !this.enabled && !this.you.timed_out_until) this.you.can_write = true;
        this.byId.clear();
        this.closeMenu(false);
        this.nodes.log.replaceChildren();
        this.stick = true;
        for (const message of frame.history || []) this.addMessage(message);
        this.setPinned(frame.pinned);
        this.updateWritable();
        if (this.hooks.onViewers) this.hooks.onViewers(frame.viewers);
        if (this.hooks.onState) this.hooks.onState(frame);
        break;
      }
      case 'message': this.addMessage(frame); break;
      case 'gift': this.addGift(frame); break;
      case 'system':
        this.system(frame.text || frame.event);
        if (frame.event === 'stream-started' && this.hooks.onStarted) this.hooks.onStarted();
        break;
      case 'pinned': this.setPinned(frame.message); break;
      case 'deleted': this.remove(frame.id); break;
      case 'moderation': this.moderation(frame); break;
      case 'viewer-count': if (this.hooks.onViewers) this.hooks.onViewers(frame.viewers); break;
      case 'stream-ended':
        // reason: set when an operator stopped the stream (POST /api/streams/NAME/stop).
        this.system(frame.reason ? `The stream was stopped by an operator: ${frame.reason}` : 'The stream has ended.');
        if (this.hooks.onEnded) this.hooks.onEnded(frame.reason || null);
        break;
      case 'reported': this.system('Thanks, your report was sent to the moderators.'); break;
      case 'error': this.error(frame); break;
      default: break;
    }
  }

  isCreator() {
    return Boolean(this.you && (this.you.badges || []).includes('creator'));
  }

  /** The notice in place of the message box (banned, no such channel, chat off); true
   *  if it replaces the box. */
  showOff() {
    const { off, form } = this.nodes;
    const creator = this.isCreator();
    let notice = null;
    if (this.stopped === 'banned') {
      notice = [el('strong', { text: 'You are banned from this chat' }),
        el('span', { class: 'muted', text: 'The creator or a moderator banned you: you cannot write here or send gifts.' })];
    } else if (this.stopped === 'blocked') {
      notice = [el('strong', { text: 'You cannot chat here' }),
        el('span', { class: 'muted', text: 'The creator blocked you: you cannot write here, follow them or send gifts.' })];
    } else if (this.stopped === 'suspended') {
      notice = [el('strong', { text: 'Your account is suspended' }),
        el('span', { class: 'muted', text: 'An operator suspended this account: log in again to see why and until when.' })];
    } else if (this.stopped === 'followers') {
      notice = [el('strong', { text: 'The chat is for followers' }),
        el('span', { class: 'muted', text: 'This live is for its followers: follow to watch and chat.' })];
    } else if (this.stopped === 'unknown') {
      notice = [el('strong', { text: 'No chat here' }),
        el('span', { class: 'muted', text: 'There is no channel with this name.' })];
    } else if (!this.enabled) {
      notice = [el('strong', { text: 'Chat is off for this live' }), creator
        ? el('span', { class: 'muted' }, 'Only you can write. Turn it on again in the ',
          el('a', { href: '/studio', text: 'studio' }), '.')
        : el('span', { class: 'muted', text: 'The creator has turned the chat off.' })];
    }
    // The creator keeps the box while the chat is off (she may still write).
    const replaces = Boolean(notice) && (Boolean(this.stopped) || !creator);
    if (off) {
      off.hidden = !notice;
      off.dataset.reason = this.stopped || (notice ? 'off' : '');
      if (notice) off.replaceChildren(...notice);
    }
    form.hidden = replaces;
    return replaces;
  }

  updateWritable() {
    const you = this.you;
    if (this.showOff()) {
      this.setWritable(false, this.stopped ? '' : 'Chat is off');
      return;
    }
    if (!you) {
      this.setWritable(false, 'Log in to chat');
      // The button logs in instead (the form's submit handler asks for it).
      this.nodes.send.disabled = false;
      this.nodes.send.textContent = 'Log in';
    }
    else if (!you.can_write) {
      const until = you.timed_out_until ? ` until ${new Date(you.timed_out_until * 1000).toLocaleTimeString()}` : '';
      this.setWritable(false, `You cannot write here${until}`);
    } else this.setWritable(true);
  }

  line(node) {
    const log = this.nodes.log;
    log.append(node);
    while (log.children.length > MAX_LINES) log.firstElementChild.remove();
    if (this.stick) log.scrollTop = log.scrollHeight;
    if (this.menu) this.placeMenu();
  }

  author(frame) {
    const badges = (frame.badges || []).map((b) => el('span', { class: `badge ${b}`, text: b }));
    return [...badges, el('span', { class: 'name', text: frame.display_name || frame.user }),
      frame.display_name && frame.display_name !== frame.user ? el('span', { class: 'sr-only', text: `(@${frame.user})` }) : null];
  }

  /** What the user may do with a message, for its "⋯" menu. */
  menuItems(frame) {
    const you = this.you;
    if (!you || this.stopped) return [];
    const own = frame.user === you.user;
    const items = [];
    if (you.can_pin) items.push({ action: 'pin', text: 'Pin', run: () => this.send({ type: 'pin', id: frame.id }) });
    if (you.can_moderate) {
      items.push({ action: 'delete', text: 'Delete message', run: () => this.send({ type: 'delete', id: frame.id }) });
      if (!own) {
        items.push({ action: 'timeout', text: 'Time out 10 min', run: () => this.send({ type: 'timeout', user: frame.user, minutes: 10 }) });
        items.push({ action: 'ban', text: 'Ban…', danger: true, run: () => this.confirmBan(frame) });
      }
    }
    if (!own) items.push({ action: 'report', text: 'Report message…', run: () => this.hooks.onReport && this.hooks.onReport(frame) });
    // The author: report them (not only this message), hide their messages (mute), or keep
    // them away from your own lives and chats too (block).
    if (!own && this.hooks.onUser) {
      items.push({ action: 'report-user', text: `Report @${frame.user}…`, run: () => this.hooks.onUser('report', frame.user) });
      items.push({ action: 'mute', text: `Mute @${frame.user}`, run: () => this.hooks.onUser('mute', frame.user) });
      items.push({ action: 'block', text: `Block @${frame.user}…`, danger: true, run: () => this.hooks.onUser('block', frame.user) });
    }
    return items;
  }

  /** The small "⋯" button that opens a message's menu (none when there is nothing to do). */
  menuButton(frame) {
    if (!this.menuItems(frame).length) return null;
    const button = el('button', { class: 'msg-menu-button', type: 'button', text: '⋯', 'aria-haspopup': 'menu',
      'aria-expanded': 'false', 'aria-label': `Actions for the message from ${frame.display_name || frame.user}` });
    button.addEventListener('click', () => {
      if (this.menu && this.menu.opener === button) this.closeMenu(true);
      else this.openMenu(frame, button);
    });
    // ArrowDown / ArrowUp on the button open the menu too (WAI-ARIA menu button).
    button.addEventListener('keydown', (event) => {
      if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
        event.preventDefault();
        this.openMenu(frame, button, event.key === 'ArrowUp' ? -1 : 0);
      }
    });
    return button;
  }

  /** One menu at a time, floating over the chat next to its button (it takes no room in
   *  the message). Keyboard: arrows, Home/End, Escape (back to the button), Tab closes. */
  openMenu(frame, opener, focus = 0) {
    this.closeMenu(false);
    const entries = this.menuItems(frame);
    if (!entries.length) return;
    const items = entries.map((item) => el('button', { type: 'button', role: 'menuitem', tabindex: '-1',
      class: item.danger ? 'danger' : null, text: item.text, dataset: { action: item.action },
      onclick: () => { this.closeMenu(!['ban', 'report', 'report-user', 'block'].includes(item.action)); item.run(); } }));
    const menu = el('div', { class: 'msg-menu', role: 'menu', id: 'msg-menu',
      'aria-label': `Message from ${frame.display_name || frame.user}` }, items);
    menu.opener = opener;
    menu.addEventListener('keydown', (event) => {
      const at = items.indexOf(document.activeElement);
      const go = (i) => { event.preventDefault(); items[(i + items.length) % items.length].focus(); };
      if (event.key === 'ArrowDown') go(at + 1);
      else if (event.key === 'ArrowUp') go(at - 1);
      else if (event.key === 'Home') go(0);
      else if (event.key === 'End') go(items.length - 1);
      else if (event.key === 'Escape') { event.preventDefault(); this.closeMenu(true); }
      else if (event.key === 'Tab') this.closeMenu(false);
    });
    document.body.append(menu);
    opener.setAttribute('aria-expanded', 'true');
    opener.setAttribute('aria-controls', 'msg-menu');
    opener.closest('li')?.classList.add('menu-open');
    this.menu = menu;
    this.placeMenu();
    items[focus < 0 ? items.length - 1 : focus].focus();
    // A click or tap elsewhere closes it; it follows its message when the chat scrolls
    // (new lines arrive while it is open) and closes once the message is out of sight.
    this.menuOutside = (event) => { if (!menu.contains(event.target) && !opener.contains(event.target)) this.closeMenu(false); };
    this.menuMoved = () => this.placeMenu();
    document.addEventListener('pointerdown', this.menuOutside, true);
    this.nodes.log.addEventListener('scroll', this.menuMoved, { passive: true });
    window.addEventListener('resize', this.menuMoved);
  }

  /** Under the button, right-aligned with it; above it when there is no room below. */
  placeMenu() {
    const menu = this.menu;
    if (!menu) return;
    const button = menu.opener.getBoundingClientRect();
    const log = this.nodes.log.getBoundingClientRect();
    if (!menu.opener.isConnected || button.bottom <= log.top || button.top >= log.bottom) { this.closeMenu(false); return; }
    const box = menu.getBoundingClientRect();
    const view = window.visualViewport ? window.visualViewport.height : window.innerHeight;
    const below = button.bottom + 4;
    const top = below + box.height <= view - 4 ? below : Math.max(4, button.top - 4 - box.height);
    const left = Math.min(Math.max(4, button.right - box.width), document.documentElement.clientWidth - box.width - 4);
    menu.style.top = `${Math.round(top)}px`;
    menu.style.left = `${Math.round(left)}px`;
  }

  closeMenu(refocus) {
    const menu = this.menu;
    if (!menu) return;
    this.menu = null;
    document.removeEventListener('pointerdown', this.menuOutside, true);
    this.nodes.log.removeEventListener('scroll', this.menuMoved);
    window.removeEventListener('resize', this.menuMoved);
    menu.opener.setAttribute('aria-expanded', 'false');
    menu.opener.removeAttribute('aria-controls');
    menu.opener.closest('li')?.classList.remove('menu-open');
    menu.remove();
    if (refocus && menu.opener.isConnected) menu.opener.focus();
  }

  /** Ban only after a confirmation in a dialog (Cancel is the default), with an optional
   *  reason for the moderators (docs/chat.md: not broadcast). */
  confirmBan(frame) {
    const dialog = this.banDialog();
    const who = frame.display_name && frame.display_name !== frame.user ? `${frame.display_name} (@${frame.user})` : `@${frame.user}`;
    dialog.querySelector('#ban-title').textContent = `Ban ${who}?`;
    dialog.querySelector('#ban-reason').value = '';
    dialog.target = frame;
    dialog.returnFocus = this.byId.get(frame.id)?.querySelector('.msg-menu-button') || null;
    dialog.showModal();
    dialog.querySelector('#ban-cancel').focus();
  }

  banDialog() {
    let dialog = document.getElementById('ban-dialog');
    if (dialog) return dialog;
    const reason = el('input', { id: 'ban-reason', maxlength: 500, autocomplete: 'off' });
    const form = el('form', { method: 'dialog', class: 'stack' },
      el('h2', { id: 'ban-title' }),
      el('p', { class: 'muted', text: 'They will no longer be able to write in or join this channel\u2019s chat while logged in, '
        + 'and their messages here are removed. A ban can be lifted in the studio.' }),
      el('div', {}, el('label', { for: 'ban-reason', text: 'Reason (optional, only moderators see it)' }), reason),
      el('div', { class: 'row' },
        el('button', { class: 'danger', type: 'submit', id: 'ban-confirm', text: 'Ban' }),
        el('button', { type: 'button', id: 'ban-cancel', text: 'Cancel', onclick: () => dialog.close() })));
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      const frame = dialog.target;
      const why = reason.value.trim();
      if (frame) this.send(why ? { type: 'ban', user: frame.user, reason: why } : { type: 'ban', user: frame.user });
      dialog.target = null;
      dialog.close();
    });
    dialog = el('dialog', { id: 'ban-dialog', 'aria-labelledby': 'ban-title' }, form);
    dialog.addEventListener('close', () => {
      dialog.target = null;
      if (dialog.returnFocus && dialog.returnFocus.isConnected) dialog.returnFocus.focus();
    });
    document.body.append(dialog);
    return dialog;
  }

  addMessage(frame) {
    const node = el('li', { class: 'message', dataset: { id: frame.id, user: frame.user } },
      this.author(frame), el('span', { class: 'text', text: frame.text }), this.menuButton(frame));
    this.byId.set(frame.id, node);
    this.line(node);
  }

  addGift(frame) {
    const gift = frame.gift || {};
    const name = frame.display_name || frame.user;
    const node = el('li', { class: 'gift', dataset: { id: frame.id, user: frame.user } },
      gift.image ? el('img', { src: gift.image, alt: '', width: 20, height: 20 }) : '🎁 ',
      el('span', { class: 'name', text: name }),
      el('span', { class: 'text', text: `sent ${gift.name || gift.id} (${frame.coins} coins)` }));
    this.line(node);
    if (this.hooks.onGift) this.hooks.onGift(frame);
  }

  /** Take a user's messages out of the log (after muting or blocking them: the server
   *  sends none of theirs from now on). */
  hideUser(handle) {
    for (const node of this.nodes.log.querySelectorAll('li.message')) {
      if (node.dataset.user === handle) node.remove();
    }
  }

  system(text) {
    this.line(el('li', { class: 'system', text }));
  }

  error(frame) {
    const wait = frame.retry_after ? ` (try again in ${Math.ceil(frame.retry_after)} s)` : '';
    this.system(`${frame.reason || frame.code}${wait}`);
    if (frame.code === 'banned') this.stop('banned');
    if (frame.code === 'blocked' || frame.code === 'suspended') this.stop(frame.code);
    if (frame.code === 'chat_off') { this.enabled = false; this.updateWritable(); }
  }

  setPinned(message) {
    const pinned = this.nodes.pinned;
    if (!message) { pinned.hidden = true; pinned.replaceChildren(); return; }
    const unpin = this.you && this.you.can_pin
      ? el('button', { class: 'small', type: 'button', text: 'Unpin', onclick: () => this.send({ type: 'unpin' }) }) : null;
    // el() drops the null parts (no unpin button, no handle note); replaceChildren would not.
    pinned.replaceChildren(el('span', {}, el('span', { class: 'sr-only', text: 'Pinned: ' }), '📌 ', this.author(message), ' ',
      el('span', { class: 'text', text: message.text }), ' ', unpin));
    pinned.hidden = false;
  }

  remove(id) {
    const node = this.byId.get(id);
    if (!node) return;
    if (this.menu && node.contains(this.menu.opener)) this.closeMenu(false);
    node.remove();
    this.byId.delete(id);
  }

  moderation(frame) {
    for (const id of frame.deleted || []) this.remove(id);
    const who = frame.user ? ` ${frame.user}` : '';
    const texts = {
      timeout: `${frame.by} timed out${who} for ${frame.minutes} min`,
      untimeout: `${frame.by} lifted the timeout of${who}`,
      ban: `${frame.by} banned${who}`,
      unban: `${frame.by} unbanned${who}`,
      slow_mode: frame.seconds ? `Slow mode: one message every ${frame.seconds} s` : 'Slow mode is off',
      followers_only: frame.on ? 'Followers-only chat is on' : 'Followers-only chat is off',
      chat_enabled: frame.on ? 'The chat is on again' : 'The creator turned the chat off',
      add_moderator: `${frame.user} is now a moderator`,
      remove_moderator: `${frame.user} is no longer a moderator`,
    };
    this.system(texts[frame.action] || `${frame.action}${who}`);
    if (frame.action === 'chat_enabled') {
      this.enabled = frame.on !== false;
      this.updateWritable();
    }
    if (this.you && frame.user === this.you.user && (frame.action === 'timeout' || frame.action === 'untimeout')) {
      this.you.can_write = frame.action === 'untimeout';
      this.you.timed_out_until = frame.until;
      this.updateWritable();
    }
  }
}
