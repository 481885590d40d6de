// The camera and microphone of the go-live page: asking for them (portrait when the
// screen is), listing them once the browser allows it, and saying what went wrong.

/** Whether the screen is held upright: the camera is then asked for a portrait picture. */
export function portrait() {
  return window.matchMedia('(orientation: portrait)').matches;
}

/** getUserMedia constraints for a camera (`deviceId`, or `facing` 'user' / 'environment'
 *  when no device was picked) and a microphone. 720p either way round. */
export function constraints({ videoId, audioId, facing = 'user', audio = true } = {}) {
  const upright = portrait();
  const video = {
    width: { ideal: upright ? 720 : 1280 },
    height: { ideal: upright ? 1280 : 720 },
    frameRate: { ideal: 30, max: 30 },
  };
  if (videoId) video.deviceId = { exact: videoId };
  else video.facingMode = { ideal: facing };
  let mic = false;
  if (audio) mic = audioId ? { deviceId: { exact: audioId } } : true;
  if (mic) mic = { ...(mic === true ? {} : mic), echoCancellation: true, noiseSuppression: true };
  return { video, audio: mic };
}

/** Cameras and microphones ({video: [{id, label}], audio: [...]}). Labels are empty
 *  until the page was allowed a device: call it after getUserMedia. */
export async function devices() {
  const all = await navigator.mediaDevices.enumerateDevices();
  const pick = (kind, word) => all.filter((d) => d.kind === kind && d.deviceId)
    .map((d, i) => ({ id: d.deviceId, label: d.label || `${word} ${i + 1}` }));
  return { video: pick('videoinput', 'Camera'), audio: pick('audioinput', 'Microphone') };
}

/** Whether this page may use a camera at all (browsers offer one only to https pages and
 *  localhost). */
export function cameraAvailable() {
  return !!(window.isSecureContext && navigator.mediaDevices && navigator.mediaDevices.getUserMedia);
}

/**
 * Open the camera and the microphone. A missing microphone is not fatal (the result's
 * `noAudio` says so: the live is then silent); a refused or missing camera throws the
 * browser's DOMException for {@link cameraProblem} to explain.
 */
export async function open(options = {}) {
  try {
    return { stream: await navigator.mediaDevices.getUserMedia(constraints(options)), noAudio: false };
  } catch (e) {
    // A camera without a microphone (or a microphone the browser cannot open): the
    // camera alone, and the page says the live will have no sound.
    if (!['NotFoundError', 'NotReadableError', 'OverconstrainedError'].includes(e.name) || options.audio === false) throw e;
    const stream = await navigator.mediaDevices.getUserMedia(constraints({ ...options, audio: false }));
    return { stream, noAudio: true };
  }
}

/**
 * Follow the microphone's level (0-1, the peak of each animation frame) so a creator sees
 * it hears them: `onLevel(level)`. Returns the function that stops it (null without a
 * microphone or Web Audio).
 */
export function levelMeter(stream, onLevel) {
  const track = stream.getAudioTracks()[0];
  const Context = window.AudioContext || window.webkitAudioContext;
  if (!track || !Context) return null;
  const context = new Context();
  const analyser = context.createAnalyser();
  analyser.fftSize = 512;
  context.createMediaStreamSource(new MediaStream([track])).connect(analyser);
  const data = new Float32Array(analyser.fftSize);
  let frame = 0;
  const tick = () => {
    analyser.getFloatTimeDomainData(data);
    let peak = 0;
    for (const v of data) peak = Math.max(peak, Math.abs(v));
    onLevel(Math.min(1, peak));
    frame = requestAnimationFrame(tick);
  };
  tick();
  // A phone starts audio only after a tap.
  const resume = () => context.resume().catch(() => {});
  document.addEventListener('pointerdown', resume, { once: true });
  return () => { cancelAnimationFrame(frame); document.removeEventListener('pointerdown', resume); context.close().catch(() => {}); };
}

/** What to tell the creator when the camera could not be opened: {title, text, short}
 *  (`short`: a word for the camera picker). */
export function cameraProblem(error) {
  const name = error && error.name;
  if (name === 'NotAllowedError' || name === 'SecurityError') {
    return {
      title: 'Camera and microphone blocked',
      short: 'Blocked',
      text: 'This page was not allowed to use your camera or microphone. Allow them for this site '
        + '(the camera icon in the address bar, or your browser’s site settings), then tap “Try again”.',
    };
  }
  if (name === 'NotFoundError' || name === 'OverconstrainedError') {
    return {
      title: 'No camera found',
      short: 'None found',
      text: 'Connect a camera (or pick another one), then tap “Try again”. You can also go live with OBS: '
        + 'the studio shows the server and stream key to use.',
    };
  }
  if (name === 'NotReadableError' || name === 'AbortError') {
    return {
      title: 'The camera is busy',
      short: 'Busy',
      text: 'Another app or tab is using your camera. Close it, then tap “Try again”.',
    };
  }
  return { title: 'The camera could not start', short: 'Off', text: `${(error && error.message) || error}. Tap “Try again”.` };
}
