// A small live line chart on a <canvas> (no chart library): the last `size` samples,
// y from 0 to a rounded maximum, the newest value in the heading's <output>.

const DPR = () => Math.min(window.devicePixelRatio || 1, 2);

export class LiveChart {
  /**
   * @param {HTMLCanvasElement} canvas
   * @param {object} options {color, size (samples kept), format(v) for labels, output (element)}
   */
  constructor(canvas, { color = '#a78bfa', size = 120, format = (v) => String(Math.round(v)), output = null } = {}) {
    this.canvas = canvas;
    this.color = color;
    this.size = size;
    this.format = format;
    this.output = output;
    this.values = [];
    this.samples = 0;
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
    const top = niceMax(Math.max(1, ...this.values));
    // grid: 0, half, max
    ctx.strokeStyle = 'rgba(255,255,255,0.10)';
    ctx.lineWidth = 1;
    ctx.fillStyle = 'rgba(238,240,243,0.75)';
    ctx.font = `${11 * dpr}px system-ui, sans-serif`;
    for (const f of [0, 0.5, 1]) {
      const y = Math.round(height - pad - f * (height - 2 * pad)) + 0.5;
      ctx.beginPath(); ctx.moveTo(0, y); ctx.lineTo(width, y); ctx.stroke();
      if (f > 0) ctx.fillText(this.format(top * f), pad, y + 12 * dpr);
    }
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
