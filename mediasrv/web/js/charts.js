// A small live line chart on a <canvas> (no chart library): the last `size` samples,
// y from 0 to a rounded maximum, the newest value in the heading's <output>. Without
// samples it says so (`empty`) instead of drawing an axis with nothing to measure, and an
// axis label is drawn only where it names a value of its own: a chart of whole numbers
// whose maximum is 1 used to label its half-way line "1" too ("1 / 1").

const DPR = () => Math.min(window.devicePixelRatio || 1, 2);

export class LiveChart {
  /**
   * @param {HTMLCanvasElement} canvas
   * @param {object} options {color, size (samples kept), format(v) for labels, output (element),
   *   integer (whole numbers only: no fractional axis lines), empty (what an empty chart says)}
   */
  constructor(canvas, { color = '#a78bfa', size = 120, format = (v) => String(Math.round(v)), output = null,
    integer = false, empty = 'No data yet' } = {}) {
    this.canvas = canvas;
    this.color = color;
    this.size = size;
    this.format = format;
    this.output = output;
    this.integer = integer;
    this.empty = empty;
    this.values = [];
    this.samples = 0;
    /** The axis labels drawn last, bottom to top (read by tests). */
    this.axis = [];
    new ResizeObserver(() => this.draw()).observe(canvas);
  }

  push(value) {
    const v = Number(value);
    this.values.push(Number.isFinite(v) ? v : 0);
    if (this.values.length > this.size) this.values.shift();
    this.samples += 1;
    this.canvas.dataset.samples = String(this.samples);
    if (this.output) this.output.textContent = this.format(this.values[this.values.length - 1]);
    this.draw();
  }

  reset() {
    this.values = [];
    if (this.output) this.output.textContent = '–';
    this.draw();
  }

  draw() {
    const canvas = this.canvas;
    const dpr = DPR();
    const width = Math.max(1, Math.round(canvas.clientWidth * dpr));
    const height = Math.max(1, Math.round(canvas.clientHeight * dpr));
    if (canvas.width !== width || canvas.height !== height) { canvas.width = width; canvas.height = height; }
    const ctx = canvas.getContext('2d');
    ctx.clearRect(0, 0, width, height);
    const pad = 4 * dpr;
    ctx.strokeStyle = 'rgba(255,255,255,0.10)';
    ctx.lineWidth = 1;
    ctx.fillStyle = 'rgba(238,240,243,0.75)';
    ctx.font = `${11 * dpr}px system-ui, sans-serif`;
    const baseline = Math.round(height - pad) + 0.5;
    if (!this.values.length) {
      // Nothing measured yet: a baseline and a sentence, no scale.
      this.axis = [];
      canvas.dataset.empty = 'true';
      canvas.dataset.axis = '';
      ctx.beginPath(); ctx.moveTo(0, baseline); ctx.lineTo(width, baseline); ctx.stroke();
      ctx.textAlign = 'center';
      ctx.textBaseline = 'middle';
      ctx.fillText(this.empty, width / 2, height / 2);
      ctx.textAlign = 'start';
      ctx.textBaseline = 'alphabetic';
      return;
    }
    canvas.dataset.empty = 'false';
    const top = niceMax(Math.max(this.integer ? 2 : 1, ...this.values));
    // Grid lines at 0, half and the top; a label on the upper two when it says something
    // the other does not (a whole-number chart has no line at 2.5).
    const labels = [];
    for (const f of [0, 0.5, 1]) {
      const value = top * f;
      if (f === 0.5 && this.integer && !Number.isInteger(value)) continue;
      const y = Math.round(height - pad - f * (height - 2 * pad)) + 0.5;
      ctx.beginPath(); ctx.moveTo(0, y); ctx.lineTo(width, y); ctx.stroke();
      if (f === 0) continue;
      const text = this.format(value);
      if (labels.includes(text)) continue;
      labels.push(text);
      ctx.fillText(text, pad, y + 12 * dpr);
    }
    this.axis = labels;
    canvas.dataset.axis = labels.join(' / ');
    if (this.values.length < 2) return;
    // Until the window is full the line spans the whole width (at least 10 samples wide).
    const span = Math.min(this.size, Math.max(this.values.length, 10)) - 1;
    const step = (width - 2 * pad) / span;
    const x0 = width - pad - (this.values.length - 1) * step;
    const yOf = (v) => height - pad - (v / top) * (height - 2 * pad);
    ctx.beginPath();
    this.values.forEach((v, i) => { const x = x0 + i * step; if (i) ctx.lineTo(x, yOf(v)); else ctx.moveTo(x, yOf(v)); });
    ctx.strokeStyle = this.color;
    ctx.lineWidth = 2 * dpr;
    ctx.lineJoin = 'round';
    ctx.stroke();
    ctx.lineTo(x0 + (this.values.length - 1) * step, height - pad);
    ctx.lineTo(x0, height - pad);
    ctx.closePath();
    ctx.globalAlpha = 0.18;
    ctx.fillStyle = this.color;
    ctx.fill();
    ctx.globalAlpha = 1;
  }
}

function niceMax(value) {
  const exp = Math.pow(10, Math.floor(Math.log10(value)));
  for (const m of [1, 2, 2.5, 5, 10]) if (value <= m * exp) return m * exp;
  return 10 * exp;
}
