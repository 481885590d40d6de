// The chat panel: a WebSocket to /live/NAME/chat (docs/chat.md). Every field of every
// frame is plain text and is shown with textContent only.
import { el, token } from './api.js';

const MAX_LINES = 300;

export class ChatPanel {
  /**
   * @param {string} stream
   * @param {object} nodes  {log, pinned, form, input, send, off (the "chat is off" notice), viewers}
   * @param {object} hooks  {onState(state), onEnded(), onStarted(), onGift(frame), onViewers(n), onReport(msg), needLogin()}
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
    this.retry = 1000;
    this.byId = new Map();
    nodes.form.addEventListener('submit', (event) => {
      event.preventDefault();
      if (!this.you) { (hooks.needLogin || (() => {}))(); return; }
      const text = nodes.input.value.trim();
      if (!text) return;
      if (this.send({ type: 'message', text })) nodes.input.value = '';
    });
  }

  connect() {
    this.closedByUs = false;
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const t = token();
    // Browsers cannot set headers on a WebSocket: the token goes in the query (docs/chat.md).
    const query = t ? `?access_token=${encodeURIComponent(t)}` : '';
    const ws = new WebSocket(`${scheme}://${location.host}/live/${encodeURIComponent(this.stream)}/chat${query}`);
    this.ws = ws;
    ws.addEventListener('message', (event) => {
      let frame;
      try { frame = JSON.parse(event.data); } catch { return; }
      this.handle(frame);
    });
    ws.addEventListener('open', () => { this.retry = 1000; });
    ws.addEventListener('close', (event) => {
      if (this.ws !== ws) return;
      this.setWritable(false, 'Chat disconnected');
      if (this.closedByUs || event.code === 1008) return;  // 1008: banned
      setTimeout(() => { if (this.ws === ws) this.connect(); }, this.retry);
      this.retry = Math.min(this.retry * 2, 15000);
    });
  }

  /** Reconnect (e.g. after logging in: the state frame then says who we are). */
  reconnect() {
    this.close();
    this.connect();
  }

  close() {
    this.closedByUs = true;
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
        this.enabled = frame.enabled !== false;
        this.you = frame.you;
        // The server's can_write is also false because the chat is off; the panel keeps
        // that in this.enabled, so a chat_enabled frame can reopen the box without a
        // reconnect. A timeout (timed_out_until) still closes it.
        if (this.you && !this.enabled && !this.you.timed_out_until) this.you.can_write = true;
        this.byId.clear();
        this.nodes.log.replaceChildren();
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

  /** The notice in place of the message box while the chat is off; true if it is shown. */
  showOff() {
    const { off, form } = this.nodes;
    const creator = this.isCreator();
    const shown = !this.enabled;
    if (off) {
      off.hidden = !shown;
      if (shown) {
        const why = creator
          ? el('span', { class: 'muted' }, 'Only you can write. Turn it on again in the ',
            el('a', { href: '/studio', text: 'studio' }), '.')
          : el('span', { class: 'muted', text: 'The creator has turned the chat off.' });
        off.replaceChildren(el('strong', { text: 'Chat is off for this live' }), why);
      }
    }
    // The creator keeps the box (they may still write); everyone else loses it.
    form.hidden = shown && !creator;
    return shown && !creator;
  }

  updateWritable() {
    const you = this.you;
    if (this.showOff()) {
      this.setWritable(false, 'Chat is off');
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
    const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
    log.append(node);
    while (log.children.length > MAX_LINES) log.firstElementChild.remove();
    if (atBottom) log.scrollTop = log.scrollHeight;
  }

  author(frame) {
    const badges = (frame.badges || []).map((b) => el('span', { class: `badge ${b}`, text: b }));
    return [...badges, el('span', { class: 'name', text: frame.display_name || frame.user }),
      frame.display_name && frame.display_name !== frame.user ? el('span', { class: 'sr-only', text: `(@${frame.user})` }) : null];
  }

  actions(frame) {
    const you = this.you;
    if (!you || frame.user === you.user) return null;
    const buttons = [];
    const button = (text, label, fn) => el('button', { class: 'small', type: 'button', text, 'aria-label': label, onclick: fn });
    if (you.can_pin) buttons.push(button('Pin', `Pin message from ${frame.user}`, () => this.send({ type: 'pin', id: frame.id })));
    if (you.can_moderate) {
      buttons.push(button('Delete', `Delete message from ${frame.user}`, () => this.send({ type: 'delete', id: frame.id })));
      buttons.push(button('Timeout', `Time out ${frame.user} for 10 minutes`, () => this.send({ type: 'timeout', user: frame.user, minutes: 10 })));
      buttons.push(button('Ban', `Ban ${frame.user}`, () => this.send({ type: 'ban', user: frame.user })));
    }
    buttons.push(button('Report', `Report message from ${frame.user}`, () => this.hooks.onReport && this.hooks.onReport(frame)));
    return el('span', { class: 'msg-actions' }, buttons);
  }

  addMessage(frame) {
    const node = el('li', { class: 'message', dataset: { id: frame.id, user: frame.user } },
      this.actions(frame), this.author(frame), el('span', { class: 'text', text: frame.text }));
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

  system(text) {
    this.line(el('li', { class: 'system', text }));
  }

  error(frame) {
    const wait = frame.retry_after ? ` (try again in ${Math.ceil(frame.retry_after)} s)` : '';
    this.system(`${frame.reason || frame.code}${wait}`);
    if (frame.code === 'banned') this.setWritable(false, 'You are banned from this chat');
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
    if (node) { node.remove(); this.byId.delete(id); }
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
