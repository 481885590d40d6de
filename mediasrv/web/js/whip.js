// A WHIP client (RFC 9725): publish a camera and microphone from the browser.
//
// One offer with every candidate in it (no trickle ICE): the page waits for ICE gathering
// to complete, POSTs the offer as application/sdp with the stream key as a bearer token,
// sets the answer and keeps the session's Location to DELETE it at the end. STUN/TURN
// servers the endpoint gives in Link headers are asked for first, with an OPTIONS request
// bearing the stream key (RFC 9725 §4.6): without trickle ICE a server learnt from the
// answer comes too late for this session, and mediasrv gives a TURN server's credentials
// to an OPTIONS only with a key it takes.

/** A refusal or failure of the WHIP exchange: `status` (0 when no HTTP answer) and the
 *  server's `reason` (its JSON `error` or its text), for the page to explain. */
export class WhipError extends Error {
  constructor(status, reason, kind = 'http') {
    super(reason || `WHIP answered ${status}`);
    this.status = status;
    this.reason = reason || '';
    this.kind = kind;  // 'http' | 'network' | 'ice'
  }
}

/** The ICE servers of `Link: <stun:…>; rel="ice-server"` headers (RFC 9725 §4.6). */
export function iceServersFromLinks(header) {
  if (!header) return [];
  const servers = [];
  // Split on commas that start a new <…> link (a URL's query may hold commas itself).
  for (const link of header.split(/,\s*(?=<)/)) {
    const match = /^\s*<([^>]+)>(.*)$/.exec(link);
    if (!match) continue;
    const params = {};
    for (const part of match[2].split(';')) {
      const kv = /^\s*([\w-]+)\s*=\s*(?:"([^"]*)"|([^\s;]*))\s*$/.exec(part);
      if (kv) params[kv[1].toLowerCase()] = kv[2] !== undefined ? kv[2] : kv[3];
    }
    if (params.rel !== 'ice-server') continue;
    const server = { urls: match[1] };
    if (params.username !== undefined) server.username = params.username;
    if (params.credential !== undefined) server.credential = params.credential;
    servers.push(server);
  }
  return servers;
}

/** What to tell the creator when the WHIP exchange failed: [title, text]. The server's
 *  reason is shown as it said it. */
export function explain(error) {
  const reason = error.reason || '';
  if (error.kind === 'ice') {
    return ['Connection failed', 'Your camera could not reach the server: the network blocks the video connection (UDP). '
      + 'Try another network (Wi-Fi or mobile data), or ask the operator to set up a TURN server. Then tap “Go live” again.'];
  }
  if (error.kind === 'network') {
    return ['Could not reach the server', `Check your connection and tap “Go live” again.${reason ? ` (${reason})` : ''}`];
  }
  switch (error.status) {
    case 401:
      if (!reason || /stream key/i.test(reason)) {
        return ['Stream key refused', `${reason ? `The server said: “${reason}”. ` : ''}Your key was probably replaced `
          + 'with “New key” in another tab. Reload this page to use the current key.'];
      }
      // Refusals of the publish itself (live access, a live just ended): the server's words.
      return ['You cannot go live now', `${reason}.`];
    case 403: return ['You cannot go live now', `${reason || 'Live access was refused'}. The studio says how to get live access.`];
    case 409: return ['The server refused this live', `${reason || 'Another broadcast is in the way'}. Wait a moment and tap “Go live” again.`];
    case 400: return ['The server could not use your camera', `${reason || 'It refused the offer'}. Try another camera or browser.`];
    case 503: return ['The server is full', `${reason ? `${reason}. ` : ''}Try again in a minute.`];
    case 404: return ['Going live from the browser is off here', 'This server does not take WHIP. Go live with OBS: the studio shows the server and key.'];
    default: return [`The server answered ${error.status}`, `${reason || 'Going live failed'}. Tap “Go live” to try again.`];
  }
}

// H.264 first (every WHIP server and HLS player takes it without transcoding), the
// constrained-baseline packetization-mode=1 flavour before the others; VP8 next; the
// rest (rtx, red, ulpfec…) after them, as the browser listed them.
function videoCodecOrder(codecs) {
  const rank = (c) => {
    const type = c.mimeType.toLowerCase();
    const fmtp = c.sdpFmtpLine || '';
    if (type === 'video/h264') {
      return (fmtp.includes('packetization-mode=1') ? 0 : 2) + (fmtp.includes('profile-level-id=42e01f') ? 0 : 1);
    }
    if (type === 'video/vp8') return 4;
    return 5;
  };
  return codecs.map((c, i) => [rank(c), i, c]).sort((a, b) => a[0] - b[0] || a[1] - b[1]).map((x) => x[2]);
}

/** Ask the browser to prefer H.264, else VP8. Returns the preferred codec's name, or
 *  null when the browser cannot be told (it then offers its own order). */
function preferCodecs(transceiver) {
  if (typeof transceiver.setCodecPreferences !== 'function' || !window.RTCRtpReceiver?.getCapabilities) return null;
  const caps = RTCRtpReceiver.getCapabilities('video');
  if (!caps) return null;
  const ordered = videoCodecOrder(caps.codecs);
  try {
    transceiver.setCodecPreferences(ordered);
  } catch {
    return null;  // an older browser that refuses the list: its default order (VP8) is fine
  }
  return ordered[0] ? ordered[0].mimeType.split('/')[1] : null;
}

function gatheringComplete(pc, timeoutMs) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    // An unreachable STUN server can hold gathering for many seconds: after the timeout,
    // the candidates gathered so far (host ones at least) are sent.
    const timer = setTimeout(done, timeoutMs);
    function done() {
      clearTimeout(timer);
      pc.removeEventListener('icegatheringstatechange', check);
      resolve();
    }
    function check() { if (pc.iceGatheringState === 'complete') done(); }
    pc.addEventListener('icegatheringstatechange', check);
  });
}

async function reasonOf(response) {
  const text = await response.text().catch(() => '');
  try {
    const data = JSON.parse(text);
    if (data && typeof data.error === 'string') return data.error;
  } catch { /* not JSON: the text itself */ }
  return text.trim().slice(0, 300);
}

/** The servers a browser can use: a TURN server needs its credentials (the browser
 *  refuses the whole configuration otherwise). */
export function usableIceServers(servers) {
  return servers.filter((s) => !/^turns?:/i.test(s.urls) || (s.username !== undefined && s.credential !== undefined));
}

/** The endpoint's ICE servers, TURN credentials included (the key authorises them). */
async function askIceServers(url, key) {
  try {
    const response = await fetch(url, { method: 'OPTIONS', headers: { Authorization: `Bearer ${key}` } });
    return response.ok ? usableIceServers(iceServersFromLinks(response.headers.get('Link'))) : [];
  } catch {
    return [];  // no ICE servers: host candidates reach a server with a public address
  }
}

/**
 * Publish `stream` (its first video and audio track) to the WHIP endpoint `url` with the
 * stream key `key`. Resolves to a {@link WhipSession} once the server answered; the
 * session's `pc` then connects (watch `onstate`). Throws {@link WhipError}.
 */
export async function publish(url, key, stream, { onstate = () => {}, gatherTimeoutMs = 4000 } = {}) {
  const servers = await askIceServers(url, key);
  const pc = new RTCPeerConnection({ iceServers: servers, bundlePolicy: 'max-bundle' });
  const session = new WhipSession(pc, key);
  session.iceServers = servers;
  pc.addEventListener('connectionstatechange', () => onstate(pc.connectionState));
  try {
    const video = stream.getVideoTracks()[0];
    const audio = stream.getAudioTracks()[0];
    if (video) {
      const transceiver = pc.addTransceiver(video, { direction: 'sendonly', streams: [stream] });
      session.codec = preferCodecs(transceiver);
      session.videoSender = transceiver.sender;
    }
    if (audio) session.audioSender = pc.addTransceiver(audio, { direction: 'sendonly', streams: [stream] }).sender;
    await pc.setLocalDescription(await pc.createOffer());
    await gatheringComplete(pc, gatherTimeoutMs);
    let response;
    try {
      response = await fetch(url, {
        method: 'POST',
        headers: { 'Content-Type': 'application/sdp', Authorization: `Bearer ${key}` },
        body: pc.localDescription.sdp,
      });
    } catch (e) {
      throw new WhipError(0, String(e.message || e), 'network');
    }
    if (response.status !== 201) throw new WhipError(response.status, await reasonOf(response));
    const location = response.headers.get('Location');
    if (location) session.location = new URL(location, response.url).href;
    const answer = await response.text();
    await pc.setRemoteDescription({ type: 'answer', sdp: answer });
    const negotiated = /a=rtpmap:\d+ (H264|VP8|VP9|AV1)\//i.exec(answer.split('m=video')[1] || '');
    if (negotiated) session.codec = negotiated[1].toUpperCase();
    return session;
  } catch (e) {
    pc.close();
    if (e instanceof WhipError) throw e;
    throw new WhipError(0, String(e.message || e), 'network');
  }
}

/** One published session: its peer connection, the Location to DELETE, the codec used. */
export class WhipSession {
  constructor(pc, key) {
    this.pc = pc;
    this.key = key;
    this.location = null;
    this.codec = null;
    this.videoSender = null;
    this.audioSender = null;
    this.iceServers = [];  // what this session gathered with (from the OPTIONS answer)
  }

  /** Send another camera or microphone without a new session. */
  async replace(track) {
    const sender = track.kind === 'video' ? this.videoSender : this.audioSender;
    if (sender) await sender.replaceTrack(track);
  }

  /** Whether the server closed the session itself (its DTLS close_notify arrived: an
   *  end from the studio, an operator's stop), waiting up to `ms` for it. */
  async closedByServer(ms) {
    const transport = (this.videoSender || this.audioSender || {}).transport;
    if (!transport) return false;
    if (transport.state === 'closed') return true;
    if (!ms) return false;
    return new Promise((resolve) => {
      const timer = setTimeout(() => { transport.removeEventListener('statechange', check); resolve(false); }, ms);
      function check() {
        if (transport.state !== 'closed') return;
        clearTimeout(timer);
        transport.removeEventListener('statechange', check);
        resolve(true);
      }
      transport.addEventListener('statechange', check);
    });
  }

  /** End the session: DELETE its Location (`keepalive` lets it outlive a closing tab),
   *  unless the server already closed it (`serverWaitMs`: how long to wait for that, when
   *  the server was just asked to end the live: a DELETE would then find nothing, 404),
   *  then close the peer connection. Never throws: the server reaps a session whose
   *  client disappeared anyway. */
  async close({ keepalive = false, serverWaitMs = 0 } = {}) {
    const location = this.location;
    this.location = null;
    if (location && !(await this.closedByServer(serverWaitMs))) {
      try {
        await fetch(location, { method: 'DELETE', keepalive, headers: { Authorization: `Bearer ${this.key}` } });
      } catch { /* the server ends it on ICE timeout */ }
    }
    this.pc.close();
  }
}
