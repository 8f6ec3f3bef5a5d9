// Records: the steers this server has stored, newest first, each as the person made it: the context they accepted,
// the model's text they rejected (struck through), their correction, and what they then let run. Tag, exclude
// from training, delete; download the exports (the same filters).
import {request, json} from './api.js';

const $ = id => document.getElementById(id);
const CONTEXT_CHARS = 160;
const CONTINUATION_CHARS = 240;

function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

function button(text, onClick, title) {
  const b = el('button', null, text);
  b.type = 'button';
  if (title) b.title = title;
  b.addEventListener('click', onClick);
  return b;
}

export class RecordsView {
  constructor(showError) {
    this.showError = showError;
    $('records-filter').addEventListener('submit', e => { e.preventDefault(); this.load().catch(showError); });
    for (const b of document.querySelectorAll('.export')) {
      b.addEventListener('click', () => this.download(b.dataset.format).catch(showError));
    }
  }

  shown() {
    return this.load();
  }

  query(extra) {
    const q = new URLSearchParams(extra);
    const put = (name, value) => { if (value) q.set(name, value); };
    put('session_id', $('f-session').value.trim());
    put('tag', $('f-tag').value.trim());
    put('model', $('f-model').value.trim());
    if ($('f-since').value) q.set('since', String(new Date($('f-since').value).getTime()));
    return q.toString();
  }

  async load() {
    const page = await json('/v1/steers?' + this.query({include_excluded: 'true'}));
    const list = $('records');
    list.replaceChildren(...page.data.slice().reverse().map(r => this.card(r)));  // the API lists oldest first
    if (!page.data.length) list.replaceChildren(el('p', 'muted', 'No steers yet: steer an answer in the Steer view.'));
  }

  card(r) {
    const card = el('article', 'record' + (r.excluded ? ' excluded' : ''));
    card.dataset.id = r.id;
    const head = el('div', 'row');
    head.append(el('strong', null, r.kind), el('span', 'muted', new Date(r.created_at).toLocaleString()),
        el('span', 'muted', r.model + (r.adapter_version ? '@' + r.adapter_version : '')));
    const session = el('a', 'muted', r.session_id);
    session.href = '#records';
    session.title = 'only this answer\'s steers';
    session.addEventListener('click', () => { $('f-session').value = r.session_id; this.load().catch(this.showError); });
    head.append(session);
    for (const t of r.tags) head.append(el('span', 'chip', t));
    if (r.excluded) head.append(el('span', 'chip warn', 'excluded'));

    const text = el('div', 'steer-text');
    const context = r.accepted.length > CONTEXT_CHARS ? '…' + r.accepted.slice(-CONTEXT_CHARS) : r.accepted;
    text.append(el('span', 'context', context), el('span', 'removed rejected', r.rejected));
    if (r.correction) text.append(el('span', 'inserted correction', r.correction));
    if (r.continuation) {
      // What ran after the correction can be a whole answer: its start is what the steer shows; all of it on hover.
      const more = r.continuation.length > CONTINUATION_CHARS;
      const shown = el('span', 'continuation', more ? r.continuation.slice(0, CONTINUATION_CHARS) + '…' : r.continuation);
      if (more) shown.title = r.continuation;
      text.append(shown);
    }

    const actions = el('div', 'row');
    const tag = el('input');
    tag.placeholder = 'tag';
    tag.setAttribute('aria-label', 'tag');
    const addTag = async () => {
      if (!tag.value.trim()) return;
      await json('/v1/steers/' + r.id + '/tags', {method: 'POST', body: {tags: [tag.value.trim()]}});
      await this.load();
    };
    tag.addEventListener('keydown', e => { if (e.key === 'Enter') { e.preventDefault(); addTag().catch(this.showError); } });
    actions.append(tag, button('Add tag', () => addTag().catch(this.showError)),
        button(r.excluded ? 'Include' : 'Exclude', () => this.exclude(r, !r.excluded).catch(this.showError),
            'keep out of (or back into) training and exports'),
        button('Delete', () => this.remove(r).catch(this.showError)));
    card.append(head, text, actions);
    return card;
  }

  async exclude(r, excluded) {
    await json('/v1/steers/' + r.id + '/exclude', {method: 'POST', body: {excluded}});
    await this.load();
  }

  async remove(r) {
    if (!confirm('Delete this steer for good?')) return;
    await json('/v1/steers/' + r.id, {method: 'DELETE'});
    await this.load();
  }

  // The export through fetch (it carries the key), saved as a file.
  async download(format) {
    const r = await request('/v1/steers/export?' + this.query({format}));
    const url = URL.createObjectURL(await r.blob());
    const a = el('a');
    a.href = url;
    a.download = 'steers-' + format + '.jsonl';
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }
}
