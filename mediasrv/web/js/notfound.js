// The 404 page of /watch/NAME when NAME is no channel (served with status 404 by
// pages/routes.py). The name comes from the address and goes in as text only.
import { initHeader } from './nav.js';

const parts = location.pathname.split('/');
let name = '';
try { name = parts[1] === 'watch' ? decodeURIComponent(parts[2] || '') : ''; } catch { name = ''; }
if (name) {
  document.getElementById('nf-title').textContent = `No channel called ${name}`;
  document.getElementById('nf-text').textContent = `Nobody on this server has the handle ${name}, and no stream of that name is live.`;
}
initHeader('');
