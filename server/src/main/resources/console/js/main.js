// The console's frame: three views behind tabs (the URL's #hash), one error banner, what serves now.
import {json} from './api.js';
import {SteerView} from './steer.js';
import {RecordsView} from './records.js';
import {LearnView} from './learn.js';

const banner = document.getElementById('error');

// Nothing fails silently: every unexpected error lands in the banner, never a blank page.
export function showError(e) {
  document.getElementById('error-text').textContent = (e && e.message) ? e.message : String(e);
  banner.hidden = false;
}
document.getElementById('error-close').addEventListener('click', () => { banner.hidden = true; });
window.addEventListener('error', e => showError(e.error || e.message));
window.addEventListener('unhandledrejection', e => showError(e.reason));

export async function refreshServing() {
  const el = document.getElementById('serving');
  const list = await json('/v1/adapters');
  el.textContent = 'serving: ' + (list.active ? list.active : 'base model');
}

const views = {
  steer: new SteerView(showError),
  records: new RecordsView(showError),
  learn: new LearnView(showError, refreshServing),
};

function show() {
  const name = (location.hash || '#steer').slice(1);
  const current = views[name] ? name : 'steer';
  for (const v of Object.keys(views)) {
    document.getElementById('view-' + v).hidden = v !== current;
    document.getElementById('tab-' + v).classList.toggle('current', v === current);
  }
  views[current].shown().catch(showError);
}

window.addEventListener('hashchange', show);
show();
refreshServing().catch(showError);
