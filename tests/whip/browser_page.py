"""A tiny WHIP publishing page for headless Chromium, served from its own origin (another
port on 127.0.0.1: a real loopback origin, so Chromium's local-network checks let it
fetch the server's loopback address, and CORS is exercised for real).

``publish(url, key, codec)`` does what a WHIP client in a browser does: getUserMedia
(the fake camera and microphone), a sendonly transceiver per track (``codec`` first with
setCodecPreferences when given), the offer once ICE gathering is complete, POST, the
answer. ``unpublish()`` DELETEs the session's Location; ``drop()`` closes the peer
connection without a DELETE (a tab closed, a phone gone).
"""

from __future__ import annotations

import contextlib
from typing import AsyncIterator

from aiohttp import web

PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>WHIP test publisher</title></head>
<body><video id="self" muted playsinline autoplay width="320"></video><script>
window.whip = {state: 'new', location: null, links: null, error: null};
let pc = null, media = null, token = null;
window.publish = async (url, key, codec) => {
  token = key;
  media = await navigator.mediaDevices.getUserMedia({video: {width: 640, height: 480}, audio: true});
  document.getElementById('self').srcObject = media;
  pc = new RTCPeerConnection();
  pc.addEventListener('connectionstatechange', () => { window.whip.state = pc.connectionState; });
  for (const track of media.getTracks()) {
    const transceiver = pc.addTransceiver(track, {direction: 'sendonly'});
    if (track.kind === 'video' && codec) {
      const all = RTCRtpSender.getCapabilities('video').codecs;
      const first = all.filter(c => c.mimeType.toLowerCase() === 'video/' + codec.toLowerCase());
      transceiver.setCodecPreferences([...first, ...all.filter(c => !first.includes(c))]);
    }
  }
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise(resolve => {
    if (pc.iceGatheringState === 'complete') return resolve();
    pc.addEventListener('icegatheringstatechange', () => { if (pc.iceGatheringState === 'complete') resolve(); });
  });
  const response = await fetch(url, {method: 'POST', body: pc.localDescription.sdp,
    headers: {'Authorization': 'Bearer ' + key, 'Content-Type': 'application/sdp'}});
  if (response.status !== 201) throw new Error('POST ' + response.status + ': ' + await response.text());
  window.whip.location = new URL(response.headers.get('Location'), url).href;
  window.whip.links = response.headers.get('Link');
  await pc.setRemoteDescription({type: 'answer', sdp: await response.text()});
  return window.whip.location;
};
window.sentCodec = async () => {
  const stats = await pc.getStats();
  let codec = null;
  stats.forEach(s => {
    if (s.type === 'outbound-rtp' && s.kind === 'video' && s.codecId) codec = stats.get(s.codecId).mimeType;
  });
  return codec;
};
window.unpublish = async () => {
  const response = await fetch(window.whip.location, {method: 'DELETE', headers: {'Authorization': 'Bearer ' + token}});
  window.drop();
  return response.status;
};
window.drop = () => {
  pc.close();
  window.whip.state = 'closed';
  media.getTracks().forEach(t => t.stop());
};
</script></body></html>"""


@contextlib.asynccontextmanager
async def page_origin() -> AsyncIterator[str]:
    """Serve the page at http://127.0.0.1:PORT/ (another origin than the server's)."""
    app = web.Application()

    async def page(request: web.Request) -> web.Response:
        return web.Response(text=PAGE, content_type="text/html")

    app.router.add_get("/", page)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/"
    finally:
        await runner.cleanup()
