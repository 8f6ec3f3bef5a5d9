// Every call the console makes goes through here: the same /v1 API any client uses, with the key when the server
// wants one (asked once, kept in this browser's localStorage), errors as readable messages, SSE read from fetch.

const KEY = 'steer.apiKey';

export class ApiError extends Error {
  constructor(status, message, code) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function headers(extra) {
  const h = {...extra};
  const key = localStorage.getItem(KEY);
  if (key) h['Authorization'] = 'Bearer ' + key;
  return h;
}

// Shows the key dialog and resolves once a key was entered.
function askForKey() {
  const dialog = document.getElementById('key-dialog');
  const input = document.getElementById('key-input');
  return new Promise(resolve => {
    dialog.addEventListener('close', () => {
      localStorage.setItem(KEY, input.value.trim());
      resolve();
    }, {once: true});
    if (!dialog.open) dialog.showModal();
    input.focus();
  });
}

// fetch with the key; a 401 asks for the key and tries once more.
export async function request(path, {method = 'GET', body, signal, accept} = {}) {
  for (let attempt = 0; ; attempt++) {
    const init = {method, signal, headers: headers(body === undefined ? {} : {'Content-Type': 'application/json'})};
    if (accept) init.headers['Accept'] = accept;
    if (body !== undefined) init.body = JSON.stringify(body);
    const r = await fetch(path, init);
    if (r.status === 401 && attempt === 0) {
      await askForKey();
      continue;
    }
    if (!r.ok) throw await errorOf(r);
    return r;
  }
}

async function errorOf(r) {
  let message = r.status + ' ' + r.statusText, code;
  try {
    const e = (await r.json()).error;
    if (e && e.message) { message = e.message; code = e.code; }
  } catch (ignored) { /* not OpenAI's error shape: keep the status line */ }
  return new ApiError(r.status, message, code);
}

export async function json(path, options) {
  return (await request(path, options)).json();
}

// Reads a text/event-stream body, calling onData with each event's parsed JSON ("[DONE]" ends it).
export async function readEvents(response, onData) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const {value, done} = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, {stream: true}).replace(/\r\n?/g, '\n');
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = event.split('\n').filter(l => l.startsWith('data:')).map(l => l.slice(5).trimStart()).join('\n');
      if (!data) continue;          // a comment (keep-alive)
      if (data === '[DONE]') return;
      onData(JSON.parse(data));
    }
  }
}

export function isStream(response) {
  return (response.headers.get('Content-Type') || '').startsWith('text/event-stream');
}
