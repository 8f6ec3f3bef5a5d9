// The Steer view: a chat whose answer streams token by token, each token its own element. Clicking a token (or
// Enter on it) cuts the answer there and opens a box for the correction; Enter sends it as a steer before that
// token (`at`) and the continuation streams on after it, into the same answer. Removed text stays visible, struck
// through; corrections are highlighted. The view keeps the answer as the server has it: `tokens` are the elements
// that make up the output so far, each with the output token it starts at, which is what a steer's `at` counts
// (exact whatever the text's characters are; a correction is one element of `inserted_tokens` tokens).
import {request, json, readEvents, isStream} from './api.js';

const $ = id => document.getElementById(id);
const TOP_K = 5;

function percent(logprob) {
  const p = Math.exp(logprob) * 100;
  return (p >= 10 ? p.toFixed(0) : p.toFixed(1)) + '%';
}

function bytesText(bytes) {
  return new TextDecoder().decode(Uint8Array.from(bytes || []));
}

// How a token looks in a list of alternatives: whitespace made visible.
function shown(text) {
  return text.replace(/ /g, '␣').replace(/\n/g, '⏎').replace(/\t/g, '⇥') || '∅';
}

export class SteerView {
  constructor(showError) {
    this.showError = showError;
    this.answer = $('answer');
    this.status = $('answer-status');
    this.modelsLoaded = false;
    this.reset();
    $('chat-form').addEventListener('submit', e => { e.preventDefault(); this.send().catch(showError); });
    $('stop').addEventListener('click', () => this.abort && this.abort.abort());
    this.answer.addEventListener('click', e => {
      const el = e.target.closest('.tok');
      if (el && !el.classList.contains('removed')) this.openEditor(this.tokenOf(el));
    });
    this.answer.addEventListener('keydown', e => this.onKey(e));
  }

  async shown() {
    if (this.modelsLoaded) return;
    const list = await json('/v1/models');
    const select = $('model');
    select.replaceChildren(...list.data.map(m => new Option(m.id, m.id)));
    this.modelsLoaded = true;
  }

  reset() {
    this.id = null;          // the completion's id: what steers address
    this.count = 0;          // output tokens so far
    this.tokens = [];        // {el, index, top}: the elements that make up the output, in order
    this.decoder = new TextDecoder();  // a token may end inside a UTF-8 character: the next one completes it
    this.live = false;
    this.closeEditor();
    this.answer.replaceChildren();
  }

  async send() {
    this.reset();
    const messages = [];
    if ($('system').value.trim()) messages.push({role: 'system', content: $('system').value});
    messages.push({role: 'user', content: $('user').value});
    const body = {
      model: $('model').value, messages, stream: true, logprobs: true, top_logprobs: TOP_K,
      max_tokens: Number($('max-tokens').value) || undefined, temperature: Number($('temperature').value),
    };
    this.abort = new AbortController();
    await this.consume(request('/v1/chat/completions', {method: 'POST', body, signal: this.abort.signal}));
  }

  // Streams chunks into the answer until the stream ends (or Stop).
  async consume(responsePromise) {
    this.live = true;
    $('stop').disabled = false;
    $('send').disabled = true;
    this.status.textContent = 'streaming…';
    let finish = null;
    try {
      const r = await responsePromise;
      await readEvents(r, chunk => { finish = this.onChunk(chunk) || finish; });
      this.status.textContent = 'finished (' + (finish || 'ended') + '): click a token to steer from there';
    } catch (e) {
      if (e.name === 'AbortError') {
        this.status.textContent = 'stopped: click a token to steer from there';
      } else {
        this.status.textContent = 'failed';
        throw e;
      }
    } finally {
      this.live = false;
      $('stop').disabled = true;
      $('send').disabled = false;
    }
  }

  // One chunk of a chat completion stream; returns its finish_reason, if any.
  onChunk(chunk) {
    if (chunk.error) throw new Error(chunk.error.message || 'the stream failed');
    this.id = this.id || chunk.id;
    if (chunk.steer) this.applySteer(chunk.steer);
    const choice = (chunk.choices || [])[0];
    if (!choice) return null;
    const entries = choice.logprobs && choice.logprobs.content;
    if (entries && entries.length) {
      for (const t of entries) this.addToken(this.decoder.decode(Uint8Array.from(t.bytes || []), {stream: true}), t.top_logprobs);
    } else if (choice.delta && choice.delta.content) {
      this.addToken(choice.delta.content, null);
    }
    return choice.finish_reason;
  }

  addToken(text, top, kind = 'model', tokens = 1) {
    const el = document.createElement('span');
    el.className = 'tok ' + kind;
    el.tabIndex = -1;
    el.textContent = text;
    if (top && top.length) {
      el.title = top.map(a => percent(a.logprob) + '  ' + shown(bytesText(a.bytes))).join('\n');
    }
    this.answer.append(el);
    el.dataset.at = this.count;  // what a steer before this token sends as `at`
    const token = {el, index: this.count, top};
    this.tokens.push(token);
    this.count += tokens;
    return token;
  }

  tokenOf(el) {
    return this.tokens.find(t => t.el === el);
  }

  // The server cut the output and put the correction in: the tokens past the cut are struck through, the
  // correction follows them, and the continuation's tokens come after it.
  applySteer(s) {
    this.closeEditor();
    this.cutAt(s.at);
    this.decoder = new TextDecoder();
    const inserted = this.addToken(s.inserted, null, 'inserted', s.inserted_tokens);
    inserted.el.dataset.steer = s.id;
    const tags = $('chat-tags').value.split(',').map(t => t.trim()).filter(Boolean);
    if (tags.length && s.id) {
      json('/v1/steers/' + s.id + '/tags', {method: 'POST', body: {tags}}).catch(this.showError);
    }
  }

  // Everything from output token `at` on is gone: struck through, no longer clickable.
  cutAt(at) {
    this.tokens = this.tokens.filter(t => {
      if (t.index < at) return true;
      t.el.classList.add('removed');
      t.el.removeAttribute('title');
      return false;
    });
    this.count = at;
  }

  // The correction box, placed where the answer would be cut.
  openEditor(token) {
    if (!this.id || !token) return;
    this.closeEditor();
    const box = document.createElement('span');
    box.className = 'editor';
    const input = document.createElement('input');
    input.placeholder = 'your correction, then Enter';
    input.setAttribute('aria-label', 'correction');
    const reject = document.createElement('button');
    reject.type = 'button';
    reject.textContent = 'Reject from here';
    reject.title = 'stop and record the text from here on as rejected, without a correction';
    box.append(input, reject);
    if (token.top && token.top.length) {
      const alts = document.createElement('span');
      alts.className = 'alts';
      for (const a of token.top) {
        const text = bytesText(a.bytes);
        const b = document.createElement('button');
        b.type = 'button';
        b.className = 'alt';
        b.textContent = shown(text) + ' ' + percent(a.logprob);
        b.title = 'steer with this token instead';
        b.addEventListener('click', () => this.steer(token, text));
        alts.append(b);
      }
      box.append(alts);
    }
    token.el.before(box);
    for (const t of this.tokens) t.el.classList.toggle('cut', t.index >= token.index);
    input.addEventListener('keydown', e => {
      if (e.key === 'Enter' && input.value) { e.preventDefault(); this.steer(token, input.value); }
      if (e.key === 'Escape') { e.preventDefault(); this.closeEditor(); token.el.focus(); }
    });
    reject.addEventListener('click', () => this.reject(token));
    this.editor = box;
    input.focus();
  }

  closeEditor() {
    if (this.editor) this.editor.remove();
    this.editor = null;
    for (const t of this.tokens || []) t.el.classList.remove('cut');
  }

  // A steer before the token. A live answer takes it in its own stream (this request answers with
  // the record); a finished one answers with a stream of the continuation, read here like the first.
  async steer(token, text) {
    try {
      this.status.textContent = 'steering…';
      this.abort = new AbortController();
      const r = await request('/v1/chat/completions/' + this.id + '/steer',
          {method: 'POST', body: {at: token.index, text}, signal: this.abort.signal});
      if (isStream(r)) {
        await this.consume(Promise.resolve(r));
      } else if (this.live) {
        this.status.textContent = 'streaming…';
      }
    } catch (e) {
      this.status.textContent = 'the steer was not applied';
      this.showError(e);
    }
  }

  async reject(token) {
    try {
      const record = await json('/v1/chat/completions/' + this.id + '/stop', {method: 'POST', body: {at: token.index}});
      this.closeEditor();
      this.cutAt(token.index);
      this.status.textContent = 'rejected from there (' + record.id + ')';
    } catch (e) {
      this.showError(e);
    }
  }

  // Keyboard path: arrows move between tokens, Enter (or Space) opens the correction box.
  onKey(e) {
    if (e.target.tagName === 'INPUT' || e.target.tagName === 'BUTTON') return;
    const live = this.tokens.map(t => t.el);
    let i = live.indexOf(e.target);
    if (e.key === 'ArrowRight' || e.key === 'ArrowLeft') {
      e.preventDefault();
      i = i < 0 ? 0 : Math.max(0, Math.min(live.length - 1, i + (e.key === 'ArrowRight' ? 1 : -1)));
      if (live[i]) live[i].focus();
    } else if ((e.key === 'Enter' || e.key === ' ') && i >= 0) {
      e.preventDefault();
      this.openEditor(this.tokens[i]);
    }
  }
}
