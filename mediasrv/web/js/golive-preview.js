// The go-live page's camera and microphone: opening them, the preview of yourself, the
// pickers and the Flip button, what the preview says when there is no camera, and the
// preview of a live published from elsewhere.
import { el } from './api.js';
import * as camera from './camera.js';
import { $, note, page, refreshGoButton, state } from './golive-view.js';
import * as live from './live.js';
import { createPlayer } from './player.js';

let facing = 'user';
let levelStop = null;
let remotePlayer = null;  // the preview of a live from elsewhere (hls.js)

/** Say why there is no camera (`problem`: {title, text, retry, short, remote}), or
 *  show the preview again (null). */
export function showCameraEmpty(problem) {
  $('camera-empty').hidden = !problem;
  $('preview-box').classList.toggle('no-camera', !!problem);
  $('preview-box').classList.toggle('remote', !!(problem && problem.remote));
  if (!problem) return;
  $('camera-empty-title').textContent = problem.title;
  $('camera-empty-text').textContent = problem.text;
  $('camera-retry').hidden = !problem.retry;
  // The pickers say why they are empty.
  for (const id of ['camera', 'mic']) {
    $(id).replaceChildren(el('option', { value: '', text: problem.short || 'Off' }));
    $(id).dataset.off = '1';
    $(id).disabled = true;
  }
}

/** Release the camera and the microphone. */
export function stopMedia() {
  if (levelStop) { levelStop(); levelStop = null; }
  if (page.media) page.media.stream.getTracks().forEach((t) => t.stop());
  page.media = null;
}

function attachPreview() {
  const { media } = page;
  const video = $('preview');
  video.srcObject = media.stream;
  video.play().catch(() => { /* autoplay of a muted preview: allowed; a refusal leaves the poster */ });
  const track = media.stream.getVideoTracks()[0];
  const settingsNow = track ? track.getSettings() : {};
  // A mirror for the front camera (and a desktop webcam, which has no facing mode), as
  // people expect to see themselves; the picture sent is never mirrored.
  $('preview-box').classList.toggle('mirrored', settingsNow.facingMode !== 'environment');
  $('preview-box').classList.toggle('portrait', (settingsNow.height || 0) > (settingsNow.width || 0));
  if (track) track.addEventListener('ended', () => {
    if (page.media && page.media.stream.getVideoTracks()[0] === track) {
      showCameraEmpty({ title: 'The camera stopped', text: 'It was unplugged or another app took it. Tap “Try again”.', retry: true });
    }
  });
  $('mic-level').value = 0;
  levelStop = camera.levelMeter(media.stream, (level) => { $('mic-level').value = level; });
}

/** Open the chosen (or default) camera and microphone and show the preview; while on
 *  air, the live carries on with them. */
export async function startCamera({ videoId, audioId } = {}) {
  if (!camera.cameraAvailable()) {
    showCameraEmpty({
      title: 'The camera needs a secure page',
      text: 'Browsers give a camera only to pages opened over https:// (or on this computer). Ask the '
        + 'operator for the https address of this server, or go live with OBS (see the studio).',
      retry: false,
    });
    refreshGoButton();
    return;
  }
  // A phone opens one camera at a time: the old one is released first.
  stopMedia();
  try {
    page.media = await camera.open({ videoId, audioId, facing });
  } catch (e) {
    showCameraEmpty({ ...camera.cameraProblem(e), retry: true });
    refreshGoButton();
    return;
  }
  showCameraEmpty(null);
  attachPreview();
  if (page.session) {
    for (const track of page.media.stream.getTracks()) await page.session.replace(track);
  }
  note('microphone', page.media.noAudio ? 'No microphone found: your live will have no sound. Connect one, then pick it above.' : '');
  await fillDevices();
  refreshGoButton();
}

async function fillDevices() {
  let list;
  try { list = await camera.devices(); } catch { return; }
  const current = (kind) => {
    const t = page.media && page.media.stream.getTracks().find((x) => x.kind === kind);
    return t ? t.getSettings().deviceId : '';
  };
  const fill = (select, items, selected, none) => {
    select.replaceChildren(...(items.length ? items.map((d) => el('option', { value: d.id, text: d.label, selected: d.id === selected }))
      : [el('option', { value: '', text: none })]));
    select.dataset.off = items.length ? '0' : '1';
    select.disabled = state.phase !== 'setup' || !items.length;
  };
  fill($('camera'), list.video, current('video'), 'No camera found');
  fill($('mic'), list.audio, current('audio'), 'No microphone found');
  // Phones have a front and a back camera: one tap switches.
  $('flip').hidden = list.video.length < 2;
}

async function flipCamera() {
  facing = facing === 'user' ? 'environment' : 'user';
  await startCamera({ audioId: $('mic').value || undefined });
}

/** Show a live published from elsewhere (OBS, another device): no camera here; the
 *  preview plays what the server gets (`now.preview`: the creator's own playback URL,
 *  which works for a private live too). */
export function showElsewhere(now) {
  stopMedia();
  const elsewhere = {
    title: 'You are live from another app or device',
    text: 'This page shows that live’s health and viewers, and can make it public or end it. To go live from '
      + 'this browser, end it first.',
    retry: false, short: 'Off', remote: true,
  };
  const url = now.preview && now.preview.playback_url;
  if (url && window.Hls) {
    showCameraEmpty(null);
    $('preview-box').classList.remove('mirrored');
    $('preview-box').classList.add('elsewhere');
    note('connection', `${elsewhere.title}: the preview shows what the server gets. Make it public or end it `
      + 'here; to go live from this browser, end it first.');
    remotePlayer = createPlayer($('preview'), live.here(url), { live: true, onError: (text) => showCameraEmpty({ ...elsewhere, text: `${elsewhere.text} (The preview cannot play: ${text}.)` }) });
  } else {
    showCameraEmpty(elsewhere);
  }
}

/** Stop playing a live from elsewhere in the preview. */
export function stopRemotePlayer() {
  if (!remotePlayer) return;
  remotePlayer.destroy();
  remotePlayer = null;
  $('preview-box').classList.remove('elsewhere');
  note('connection', '');
}

/** Wire the preview and the device controls. */
export function initPreview() {
  // The picture's shape follows the camera (a phone turned round, another camera).
  $('preview').addEventListener('resize', () => {
    const video = $('preview');
    if (video.videoWidth) $('preview-box').classList.toggle('portrait', video.videoHeight > video.videoWidth);
  });
  const picked = () => startCamera({ videoId: $('camera').value || undefined, audioId: $('mic').value || undefined });
  $('camera-retry').addEventListener('click', () => startCamera({}));
  $('camera').addEventListener('change', picked);
  $('mic').addEventListener('change', picked);
  $('flip').addEventListener('click', flipCamera);
}
