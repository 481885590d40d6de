// After a live on the go-live page: "save or discard" its recording (or say why there is
// nothing to decide), then Watch it / Go live again.
import { api, errorText } from './api.js';
import { liveStartedAt } from './golive-onair.js';
import { $, page, setPhase, showProblem, state } from './golive-view.js';
import * as live from './live.js';

/** Ask to save or discard the live's recording. `recording`: what the end answered
 *  ({id, state, duration}, null: nothing was recorded); undefined when the live ended
 *  elsewhere, then the recording is looked up. */
export async function askDecision(recording, wasPublic) {
  setPhase('decide');
  $('decide-title').textContent = 'Your live has ended';
  $('decide-actions').hidden = true;
  $('after-actions').hidden = true;
  $('watch-video').hidden = true;
  const text = $('decide-text');
  text.textContent = 'Finishing the recording…';
  if (recording === undefined) recording = await findRecording(wasPublic);
  if (state.phase !== 'decide') return;
  state.recording = recording || null;
  const question = live.recordingQuestion(recording, wasPublic);
  text.textContent = question.text;
  if (question.save) {
    $('save').textContent = question.save;
    $('decide-actions').hidden = false;
    return;
  }
  $('after-actions').hidden = false;
  setPhase('done');
}

/** This live's recording, once finished (it is listed from its start and takes a few
 *  seconds after the end); null when there is none 5 s after the end. */
async function findRecording(wasPublic) {
  const since = (liveStartedAt() || Date.now() / 1000) - 5;
  const now = Date.now();
  const appearBy = now + (wasPublic ? 5000 : 0);
  const finishBy = now + 30000;
  for (;;) {
    let rows = [];
    try {
      rows = (await api(`/api/recordings?stream=${encodeURIComponent(page.me.handle)}&limit=5`)).recordings || [];
    } catch { /* asked again */ }
    const recording = rows.find((r) => r.started_at >= since && r.state !== 'discarded') || null;
    if (recording && recording.state !== 'recording') return recording;
    if (Date.now() >= (recording ? finishBy : appearBy) || state.phase !== 'decide') return recording;
    await new Promise((r) => setTimeout(r, 1000));
  }
}

function decided(action) {
  state.decision = action;
  $('decide-actions').hidden = true;
  $('after-actions').hidden = false;
  const link = $('watch-video');
  link.hidden = action !== 'save';
  link.href = `/watch/${encodeURIComponent(page.me.handle)}?vod=${encodeURIComponent(state.recording.id)}`;
  $('decide-text').textContent = action === 'save' ? 'Saved: it is a video on your channel.' : 'Discarded: the recording is deleted.';
  setPhase('done');
}

async function decide(action) {
  $('save').disabled = $('discard').disabled = true;
  try {
    await live.decideRecording(state.recording, action);
    decided(action);
  } catch (e) {
    showProblem(action === 'save' ? 'Could not save' : 'Could not discard', errorText(e));
  } finally {
    $('save').disabled = $('discard').disabled = false;
  }
}

/** Wire Save and Discard. */
export function initEnd() {
  $('save').addEventListener('click', () => decide('save'));
  $('discard').addEventListener('click', () => decide('discard'));
}
