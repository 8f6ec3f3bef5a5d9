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
  return p < 0.1 ? '<0.1%' : (p >= 10 ? p.toFixed(0) : p.toFixed(1)) + '%';
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
    this.stream = 0;         // which stream may write into the answer: the latest one started
    this.streamAbort = null; // closes the latest stream (Stop, a new question, a rejection)
    this.reset();
    $('chat-form').addEventListener('submit', e => { e.preventDefault(); this.send().catch(showError); });
    $('stop').addEventListener('click', () => this.streamAbort && this.streamAbort.abort());
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
    if (this.streamAbort) this.streamAbort.abort();
    this.stream++;           // whatever the previous stream still delivers is dropped
    this.id = null;          // the completion's id: what steers address
    this.count = 0;          // output tokens so far
    this.pending = 0;        // of those, tokens holding part of a UTF-8 character not yet shown
    this.tokens = [];        // {el, index, top}: the elements that make up the output, in order
    this.decoder = new TextDecoder();  // a token may end inside a UTF-8 character: the next one completes it
    this.closeEditor();
    this.answer.replaceChildren();
    delete this.answer.dataset.lastSteer;
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
    const abort = new AbortController();
    await this.consume(request('/v1/chat/completions', {method: 'POST', body, signal: abort.signal}), abort);
  }

  // Streams chunks into the answer until the stream ends (or Stop). Only the latest stream writes: an older one
  // that still delivers (a steer turned into a continuation just as the answer ended) is read and dropped.
  async consume(responsePromise, abort) {
    const mine = ++this.stream;
    this.streamAbort = abort;
    const current = () => mine === this.stream;
    $('stop').disabled = false;
    $('send').disabled = true;
    this.status.textContent = 'streaming…';
    let finish = null;
    try {
      const r = await responsePromise;
      await readEvents(r, chunk => { if (current()) finish = this.onChunk(chunk) || finish; });
      if (current()) this.status.textContent = 'finished (' + (finish || 'ended') + '): click a token to steer from there';
    } catch (e) {
      if (!current()) return;
      if (e.name === 'AbortError') {
        this.status.textContent = 'stopped: click a token to steer from there';
      } else {
        this.status.textContent = 'failed';
        throw e;
      }
    } finally {
      if (current()) {
        $('stop').disabled = true;
        $('send').disabled = false;
      }
    }
  }

  // One chunk of a chat completion stream; returns its finish_reason, if any. The answer is built from the
  // tokens' bytes (the console always asks for logprobs), so a chunk with text but no tokens (text held back
  // for a stop sequence, released at the end) is already shown.
  onChunk(chunk) {
    if (chunk.error) throw new Error(chunk.error.message || 'the stream failed');
    this.id = this.id || chunk.id;
    if (chunk.steer) this.applySteer(chunk.steer);
    const choice = (chunk.choices || [])[0];
    if (!choice) return null;
    for (const t of (choice.logprobs && choice.logprobs.content) || []) {
      const text = this.decoder.decode(Uint8Array.from(t.bytes || []), {stream: true});
      this.count++;
      this.pending++;
      if (!text) continue;  // part of a character (or no text at all): shown with the token that completes it
      this.addToken(text, t.top_logprobs, 'model', this.count - this.pending);
      this.pending = 0;
    }
    return choice.finish_reason;
  }

  // One element of the answer, starting at output token `index` (what a steer before it sends as `at`).
  addToken(text, top, kind, index) {
    const el = document.createElement('span');
    el.className = 'tok ' + kind;
    el.tabIndex = -1;
    el.textContent = text;
    if (top && top.length) {
      el.title = top.map(a => percent(a.logprob) + '  ' + shown(bytesText(a.bytes))).join('\n');
    }
    el.dataset.at = index;
    this.answer.append(el);
    const token = {el, index, top};
    this.tokens.push(token);
    return token;
  }

  tokenOf(el) {
    return this.tokens.find(t => t.el === el);
  }

  // The server cut the output and put the correction in: the tokens past the cut are struck through, the
  // correction follows them, and the continuation's tokens come after it.
  applySteer(s) {
    const hadFocus = this.editor && this.editor.contains(document.activeElement);
    this.closeEditor();
    this.cutAt(s.at);
    const inserted = this.addToken(s.inserted, null, 'inserted', s.at);
    inserted.el.dataset.steer = s.id;
    this.count = s.at + s.inserted_tokens;
    if (hadFocus) inserted.el.focus();
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
    this.pending = 0;
    this.decoder = new TextDecoder();
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
    const controls = [input, reject];
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
        b.addEventListener('click', () => this.steer(token, text, controls));
        alts.append(b);
        controls.push(b);
      }
      box.append(alts);
    }
    token.el.before(box);
    for (const t of this.tokens) t.el.classList.toggle('cut', t.index >= token.index);
    input.addEventListener('keydown', e => {
      if (e.key === 'Enter' && input.value && !input.disabled) { e.preventDefault(); this.steer(token, input.value, controls); }
      if (e.key === 'Escape') { e.preventDefault(); this.closeEditor(); token.el.focus(); }
    });
    reject.addEventListener('click', () => this.reject(token, controls));
    this.editor = box;
    input.focus();
  }

  closeEditor() {
    if (this.editor) this.editor.remove();
    this.editor = null;
    for (const t of this.tokens || []) t.el.classList.remove('cut');
  }

  // A steer before the token, sent once (the box is disabled until it is applied or refused). A live answer takes
  // it in its own stream (this request answers with the record); a finished one answers with a stream of the
  // continuation, read here like the first. `data-last-steer` on the answer says which it was.
  async steer(token, text, controls) {
    for (const c of controls) c.disabled = true;
    try {
      this.status.textContent = 'steering…';
      // Its own controller: Stop meanwhile closes the running stream, not this request (the steer may be applied);
      // it closes the continuation once that is what streams.
      const abort = new AbortController();
      const r = await request('/v1/chat/completions/' + this.id + '/steer', {method: 'POST', body: {at: token.index, text}, signal: abort.signal});
      if (isStream(r)) {
        this.answer.dataset.lastSteer = 'continued';
        await this.consume(Promise.resolve(r), abort);
      } else {
        this.answer.dataset.lastSteer = 'live';
      }
    } catch (e) {
      for (const c of controls) c.disabled = false;
      this.status.textContent = 'the steer was not applied';
      this.showError(e);
    }
  }

  // Stop here without a correction: what follows is recorded as rejected. The stream (if still running) is closed
  // and dropped, so no token arriving after the cut is shown as kept.
  async reject(token, controls) {
    for (const c of controls) c.disabled = true;
    try {
      const record = await json('/v1/chat/completions/' + this.id + '/stop', {method: 'POST', body: {at: token.index}});
      if (this.streamAbort) this.streamAbort.abort();
      this.stream++;
      this.closeEditor();
      this.cutAt(token.index);
      $('stop').disabled = true;
      $('send').disabled = false;
      this.status.textContent = 'rejected from there (' + record.id + ')';
    } catch (e) {
      for (const c of controls) c.disabled = false;
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
