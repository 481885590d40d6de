// The go-live page's details of the next live: the title, the cover (this frame or an
// image file) and the creator's "Start backstage" setting.
import { api, el, errorText, toast } from './api.js';
import { $, page } from './golive-view.js';

/** Show the creator's cover (its URL, or none). */
export function showCover(url) {
  const img = $('cover');
  img.hidden = !url;
  if (url) img.src = url;  // versioned by the server: a new cover is a new URL
  $('cover-remove').hidden = !url;
  $('cover-state').textContent = url ? 'shown on your card in discovery' : 'none yet: discovery shows a frame of your live';
}

async function uploadCover(blob) {
  try {
    const result = await api('/api/me/cover', { method: 'PUT', raw: blob, headers: { 'Content-Type': blob.type || 'image/jpeg' } });
    showCover(result && result.cover_url);
    toast('Cover updated.');
  } catch (e) { toast(errorText(e), true); }
}

/** The preview's current frame as the cover (as viewers see it: not mirrored). */
function snapCover() {
  const video = $('preview');
  if (!page.media || !video.videoWidth) { toast('Turn on the camera first.', true); return; }
  const canvas = el('canvas', { width: video.videoWidth, height: video.videoHeight });
  canvas.getContext('2d').drawImage(video, 0, 0);
  canvas.toBlob((blob) => { if (blob) uploadCover(blob); }, 'image/jpeg', 0.85);
}

async function removeCover() {
  try {
    await api('/api/me/cover', { method: 'DELETE' });
    showCover(null);
    toast('Cover removed.');
  } catch (e) { toast(errorText(e), true); }
}

async function saveBackstage() {
  const wanted = $('backstage').checked;
  try {
    page.settings = await api('/api/me/settings', { method: 'PATCH', body: { backstage: wanted } });
    toast(wanted ? 'Your next live starts backstage.' : 'Your next live is public at once.');
  } catch (e) {
    $('backstage').checked = !wanted;
    toast(errorText(e), true);
  }
}

/** Show the creator's settings (title, cover, backstage where the server has it). */
export function showDetails(settings) {
  $('title').value = settings.title || '';
  showCover(settings.cover_url);
  $('backstage-row').hidden = !('backstage' in settings);
  $('backstage').checked = !!settings.backstage;
}

/** Save the title typed, if it changed (before going live). Throws the API's error. */
export async function saveTitle() {
  const title = $('title').value.trim();
  if (title !== (page.settings.title || '')) page.settings = await api('/api/me/settings', { method: 'PATCH', body: { title } });
}

/** Wire the cover and backstage controls. */
export function initDetails() {
  $('cover-snap').addEventListener('click', snapCover);
  $('cover-file').addEventListener('change', () => {
    const file = $('cover-file').files[0];
    if (file) uploadCover(file);
    $('cover-file').value = '';
  });
  $('cover-remove').addEventListener('click', removeCover);
  $('backstage').addEventListener('change', saveBackstage);
}
