// Learn: start a job on the steers (defaults unless the person opens "Advanced"), follow it live over the job's
// events (loss per step, speed, ETA), read the gate's report with its before/after examples, and choose which
// adapter version serves (activate, roll back, serve the base model, delete).
import {request, json, readEvents} from './api.js';
import {drawLoss} from './plot.js';

const $ = id => document.getElementById(id);

function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

function cell(text) {
  return el('td', null, text === undefined || text === null ? '' : String(text));
}

function button(text, onClick) {
  const b = el('button', null, text);
  b.type = 'button';
  b.addEventListener('click', onClick);
  return b;
}

function when(seconds) {
  return seconds ? new Date(seconds * 1000).toLocaleString() : '';
}

function num(v, digits = 3) {
  return typeof v === 'number' ? Number(v.toFixed(digits)) : v;
}

export class LearnView {
  constructor(showError, refreshServing) {
    this.showError = showError;
    this.refreshServing = refreshServing;
    this.following = null;
    this.followAbort = null;  // one job's events at a time: each open stream holds one of the browser's connections
    $('job-form').addEventListener('submit', e => { e.preventDefault(); this.start().catch(showError); });
    $('job-cancel').addEventListener('click', () => this.cancel().catch(showError));
    $('rollback').addEventListener('click', () => this.serve('/v1/adapters/rollback').catch(showError));
    $('serve-base').addEventListener('click', () => this.serve('/v1/adapters/base/activate').catch(showError));
  }

  async shown() {
    const jobs = await this.loadJobs();
    await this.loadAdapters();
    const running = jobs.find(j => j.status === 'running' || j.status === 'queued');
    if (running && this.following !== running.id) this.follow(running).catch(this.showError);
  }

  async start() {
    const filters = {};
    if ($('job-tag').value.trim()) filters.tag = $('job-tag').value.trim();
    if ($('job-session').value.trim()) filters.session_id = $('job-session').value.trim();
    const hyperparameters = {};
    if ($('job-epochs').value) hyperparameters.n_epochs = Number($('job-epochs').value);
    if ($('job-lr').value) hyperparameters.learning_rate = Number($('job-lr').value);
    if ($('job-rank').value) hyperparameters.lora_rank = Number($('job-rank').value);
    const body = {filters, hyperparameters, eval: {auto_activate: $('job-activate').checked}};
    if ($('job-method').value) body.method = $('job-method').value;
    const job = await json('/v1/fine_tuning/jobs', {method: 'POST', body});
    await this.loadJobs();
    await this.follow(job);
  }

  // The job's events as they come (a finished job's are replayed), then its final state and the gate's report.
  async follow(job) {
    if (this.followAbort) this.followAbort.abort();
    const abort = this.followAbort = new AbortController();
    this.following = job.id;
    $('job').hidden = false;
    $('job-cancel').disabled = !(job.status === 'running' || job.status === 'queued');
    $('job-id').textContent = job.id;
    $('job-status').textContent = job.status;
    $('job-report').replaceChildren();
    const points = [];
    drawLoss($('loss-plot'), points);
    try {
      const r = await request('/v1/fine_tuning/jobs/' + job.id + '/events?stream=true', {accept: 'text/event-stream', signal: abort.signal});
      await readEvents(r, e => this.onEvent(e, points));
    } catch (e) {
      if (e.name === 'AbortError') return;  // another job is followed now
      throw e;
    }
    if (abort.signal.aborted) return;
    const done = await json('/v1/fine_tuning/jobs/' + job.id);
    $('job-cancel').disabled = true;
    $('job-status').textContent = done.status + (done.adapter_version ? ': adapter ' + done.adapter_version : '')
        + (done.error ? ': ' + (done.error.message || JSON.stringify(done.error)) : '');
    if (done.adapter_version) await this.report(done.adapter_version);
    await this.loadJobs();
    await this.loadAdapters();
    await this.refreshServing();
  }

  // One event of the followed job: its message, and for a step its loss, place, speed and ETA.
  onEvent(e, points) {
    $('job-message').textContent = e.message || '';
    $('job-status').textContent = 'running';
    const d = e.data;
    if (e.type === 'metrics' && d) {
      points.push({step: d.step, loss: d.train_loss});
      drawLoss($('loss-plot'), points);
      $('job-step').textContent = 'step ' + d.step + ' of ' + d.total_steps + ', epoch ' + d.epoch;
      $('job-speed').textContent = num(d.tokens_per_second, 1) + ' tokens/s';
      $('job-eta').textContent = 'ETA ' + Math.round(d.eta_seconds) + ' s';
    }
  }

  async cancel() {
    if (this.following) await json('/v1/fine_tuning/jobs/' + this.following + '/cancel', {method: 'POST'});
  }

  // The gate's measures, base against adapter, and its before/after examples.
  async report(version) {
    const a = await json('/v1/adapters/' + version);
    const ev = (a.metrics || {}).eval;
    const out = $('job-report');
    out.replaceChildren(el('h3', null, 'Gate: ' + a.gate));
    if (!ev) return;
    if (ev.reason) out.append(el('p', 'muted', ev.reason));
    const rows = [
      ['held-out correction NLL per token', ev.base_nll, ev.adapter_nll],
      ['held-out correction rate', ev.base_correction_rate, ev.adapter_correction_rate],
      // Counted only when the held-out forks are too few to judge learning on (then this is what is judged).
      ...(ev.trained_forks > 0 ? [['correction rate where trained (teacher-forced)', ev.trained_base_correction_rate,
          ev.trained_adapter_correction_rate]] : []),
      ['preference accuracy', ev.base_preference_accuracy, ev.adapter_preference_accuracy],
      ['degenerate answers', ev.base_degenerate, ev.adapter_degenerate],
      ['canary perplexity', ev.canary_base_perplexity, ev.canary_adapter_perplexity],
      ['probe answers changed (beyond near-ties)', '', ev.probes_changed],
    ].filter(r => r[1] !== undefined || r[2] !== undefined);
    const table = el('table', 'report');
    const head = el('tr');
    head.append(el('th', null, 'measure'), el('th', null, 'base'), el('th', null, 'adapter'));
    table.createTHead().append(head);
    const body = el('tbody');
    for (const [name, base, adapter] of rows) {
      const tr = el('tr');
      tr.append(cell(name), cell(num(base)), cell(num(adapter)));
      body.append(tr);
    }
    table.append(body);
    out.append(table);
    for (const x of ev.examples || []) {
      const ex = el('div', 'example');
      ex.append(el('div', 'muted', x.kind), el('div', 'context', x.prompt),
          el('div', null, 'base: '), el('div', 'before', x.base), el('div', null, 'adapter: '), el('div', 'after', x.adapter));
      out.append(ex);
    }
  }

  async loadJobs() {
    const page = await json('/v1/fine_tuning/jobs');
    const body = $('jobs').tBodies[0];
    body.replaceChildren(...page.data.slice(0, 10).map(j => {
      const tr = el('tr');
      const id = el('td');
      id.append(button(j.id, () => this.follow(j).catch(this.showError)));
      tr.append(id, cell(when(j.created_at)), cell(j.status), cell(j.adapter_version),
          cell(j.error ? (j.error.message || JSON.stringify(j.error)) : ''));
      return tr;
    }));
    return page.data;
  }

  async loadAdapters() {
    const list = await json('/v1/adapters');
    const body = $('adapters').tBodies[0];
    body.replaceChildren(...list.data.slice().reverse().map(a => {
      const tr = el('tr');
      tr.dataset.version = a.id;
      if (a.active) tr.className = 'active';
      const actions = el('td');
      if (a.active) {
        actions.append(el('strong', null, 'serving'));
      } else {
        actions.append(button('Activate', () => this.serve('/v1/adapters/' + a.id + '/activate').catch(this.showError)),
            button('Delete', () => this.remove(a).catch(this.showError)));
      }
      const version = el('td');
      version.append(button(a.id, () => this.report(a.id).then(() => { $('job').hidden = false; }).catch(this.showError)));
      tr.append(version, cell(when(a.created_at)), cell(a.gate), cell((a.steer_ids || []).length),
          cell((a.held_out_ids || []).length), cell(a.job_id), actions);
      return tr;
    }));
  }

  async serve(path) {
    await json(path, {method: 'POST'});
    await this.loadAdapters();
    await this.refreshServing();
  }

  async remove(a) {
    if (!confirm('Delete adapter ' + a.id + '?')) return;
    await json('/v1/adapters/' + a.id, {method: 'DELETE'});
    await this.loadAdapters();
  }
}
