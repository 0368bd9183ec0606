/**
 * The web console's single page: plain HTML, CSS and browser JavaScript, no build step and no
 * framework, served by the console server at `/`. It reads `/api/events` (server-sent events),
 * posts hang-ups with the token the operator typed, and, when the server offers one, runs the
 * softphone over `/api/phone` (a WebSocket carrying 20 ms µ-law frames both ways).
 *
 * The script is kept free of backquotes and `${`, so that it can live in this template literal.
 */
export const CONSOLE_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>asteramisk console</title>
<style>
  :root { --bg:#0f1419; --panel:#171d24; --line:#263040; --text:#dde3ea; --dim:#8a96a3;
          --app:#7cc4ff; --caller:#ffd479; --agent:#b59cff; --system:#8fd9a8; --bad:#ff7b72; --ok:#56d364; }
  * { box-sizing: border-box; }
  body { margin:0; font:14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; background:var(--bg); color:var(--text); }
  header { display:flex; gap:12px; align-items:center; flex-wrap:wrap; padding:10px 16px; border-bottom:1px solid var(--line); background:var(--panel); }
  header h1 { font-size:16px; margin:0 12px 0 0; letter-spacing:.3px; }
  .pill { padding:2px 10px; border-radius:12px; background:#222c38; color:var(--dim); font-size:12px; }
  .pill.up { color:#0b1a0f; background:var(--ok); } .pill.down { color:#1a0b0b; background:var(--bad); }
  .stat b { color:var(--text); font-variant-numeric: tabular-nums; }
  main { display:grid; grid-template-columns: 1fr 340px; gap:16px; padding:16px; }
  main.nophone { grid-template-columns: 1fr; }
  h2 { font-size:13px; text-transform:uppercase; letter-spacing:1px; color:var(--dim); margin:0 0 8px; }
  .session { background:var(--panel); border:1px solid var(--line); border-radius:8px; margin-bottom:12px; }
  .session .head { display:flex; gap:10px; align-items:center; padding:8px 12px; border-bottom:1px solid var(--line); flex-wrap:wrap; }
  .session .kind { font-size:11px; padding:1px 7px; border-radius:4px; background:#25344a; }
  .session .who { font-weight:600; } .session .meta { color:var(--dim); font-size:12px; }
  .session .verb { font-size:12px; color:#0f1419; background:var(--app); border-radius:4px; padding:0 6px; }
  .session .spacer { flex:1; }
  .session button { font-size:12px; }
  .transcript { list-style:none; margin:0; padding:6px 12px 10px; max-height:320px; overflow:auto; }
  .transcript li { padding:2px 0; display:grid; grid-template-columns: 62px 64px 1fr; gap:8px; }
  .transcript .t { color:var(--dim); font-variant-numeric: tabular-nums; font-size:12px; }
  .transcript .w { font-size:12px; } .w.app { color:var(--app); } .w.caller { color:var(--caller); }
  .w.agent { color:var(--agent); } .w.system { color:var(--system); }
  .transcript .k { color:var(--dim); font-size:11px; margin-right:6px; }
  .empty { color:var(--dim); font-style:italic; padding:8px 0; }
  details.ended summary { cursor:pointer; color:var(--dim); margin:8px 0; }
  .session.isended { opacity:.75; }
  button { background:#25344a; color:var(--text); border:1px solid #34455c; border-radius:6px; padding:5px 10px; cursor:pointer; }
  button:hover { background:#2e4260; } button:disabled { opacity:.4; cursor:default; }
  button.danger { border-color:#6b2b2b; } button.go { background:#1d4d2b; border-color:#2f7a45; }
  input { background:#0f1419; color:var(--text); border:1px solid #34455c; border-radius:6px; padding:6px 8px; }
  aside .card { background:var(--panel); border:1px solid var(--line); border-radius:8px; padding:12px; margin-bottom:12px; }
  .dial { display:flex; gap:8px; } .dial input { flex:1; min-width:0; font-size:16px; }
  .dial button { white-space:nowrap; }
  .keypad { display:grid; grid-template-columns: repeat(3, 1fr); gap:6px; margin-top:10px; }
  .keypad button { font-size:18px; padding:10px 0; }
  #phone-status { margin-top:8px; color:var(--dim); min-height:20px; }
  .meter { height:8px; background:#0f1419; border-radius:4px; overflow:hidden; margin-top:8px; border:1px solid var(--line); }
  .meter div { height:100%; width:0; background:linear-gradient(90deg, var(--ok), var(--caller)); transition: width 80ms; }
  #chat-log { list-style:none; padding:0; margin:0 0 8px; max-height:220px; overflow:auto; }
  #chat-log li { padding:3px 8px; margin:3px 0; border-radius:6px; background:#202a36; }
  #chat-log li.me { background:#1d3a5a; margin-left:30px; } #chat-log li.them { margin-right:30px; }
  .chat { display:flex; gap:6px; } .chat input { flex:1; }
  .token { display:flex; gap:6px; align-items:center; margin-left:auto; }
  .token input { width:150px; font-size:12px; padding:3px 6px; }
</style>
</head>
<body>
<header>
  <h1>asteramisk console</h1>
  <span class="pill" id="h-ready">…</span>
  <span class="pill" id="h-ari">ARI</span>
  <span class="pill" id="h-ami">AMI</span>
  <span class="stat pill">calls <b id="s-calls">0</b></span>
  <span class="stat pill">conversations <b id="s-texts">0</b></span>
  <span class="stat pill">handled <b id="s-total">0</b></span>
  <span class="stat pill">errors <b id="s-errors">0</b></span>
  <span class="pill" id="h-numbers"></span>
  <a class="pill" id="h-metrics" hidden>metrics</a>
  <span class="token"><input id="token" type="password" placeholder="control token" autocomplete="off"></span>
</header>
<main id="main" class="nophone">
  <section>
    <h2>Live</h2>
    <div id="live"><div class="empty">No call or conversation right now.</div></div>
    <details class="ended" open><summary>Recently ended (<span id="ended-count">0</span>)</summary><div id="ended"></div></details>
  </section>
  <aside id="phone" hidden>
    <div class="card">
      <h2>Softphone <span class="meta" id="phone-identity"></span></h2>
      <div class="dial">
        <input id="dial-number" list="numbers" placeholder="number" inputmode="tel">
        <datalist id="numbers"></datalist>
        <button id="call" class="go">Call</button>
        <button id="hangup" class="danger" disabled>Hang up</button>
      </div>
      <div class="keypad" id="keypad"></div>
      <div id="phone-status">idle</div>
      <div class="meter" title="what you hear"><div id="level" data-peak="0"></div></div>
    </div>
    <div class="card">
      <h2>Texts</h2>
      <ul id="chat-log"></ul>
      <div class="chat"><input id="chat-input" placeholder="message to the number above"><button id="chat-send">Send</button></div>
    </div>
  </aside>
</main>
<script>
'use strict';
var state = { live: new Map(), ended: [], identity: null, controls: false };
var $ = function (id) { return document.getElementById(id); };
var tokenInput = $('token');
tokenInput.value = localStorage.getItem('asteramisk-token') || '';
tokenInput.addEventListener('change', function () { localStorage.setItem('asteramisk-token', tokenInput.value); });

function el(tag, cls, text) {
  var e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}
function clock(at) { return new Date(at).toLocaleTimeString([], { hour12: false }); }
function duration(s) {
  var ms = (s.endedAt || Date.now()) - s.startedAt, t = Math.floor(ms / 1000);
  return Math.floor(t / 60) + ':' + String(t % 60).padStart(2, '0');
}

function lineItem(line) {
  var li = el('li');
  li.dataset.seq = line.seq;
  li.dataset.kind = line.kind;
  li.appendChild(el('span', 't', clock(line.at)));
  li.appendChild(el('span', 'w ' + line.who, line.who));
  var body = el('span', 'x');
  body.appendChild(el('span', 'k', line.kind));
  body.appendChild(document.createTextNode(line.text));
  li.appendChild(body);
  return li;
}

function renderSession(s) {
  var card = el('div', 'session' + (s.state === 'ended' ? ' isended' : ''));
  card.dataset.id = s.id;
  card.dataset.state = s.state;
  var head = el('div', 'head');
  head.appendChild(el('span', 'kind', s.kind === 'call' ? 'call' : 'text'));
  head.appendChild(el('span', 'who', (s.peerName ? s.peerName + ' ' : '') + s.peer));
  head.appendChild(el('span', 'meta', '→ ' + s.number));
  head.appendChild(el('span', 'meta state', s.state + (s.endReason ? ' (' + s.endReason + ')' : '')));
  if (s.verb) head.appendChild(el('span', 'verb', s.verb));
  head.appendChild(el('span', 'spacer'));
  head.appendChild(el('span', 'meta dur', duration(s)));
  if (s.state !== 'ended' && state.controls) {
    var b = el('button', 'danger hangup', s.kind === 'call' ? 'Hang up' : 'End');
    b.addEventListener('click', function () { hangup(s.id, b); });
    head.appendChild(b);
  }
  card.appendChild(head);
  var ul = el('ul', 'transcript');
  (s.transcript || []).forEach(function (l) { ul.appendChild(lineItem(l)); });
  card.appendChild(ul);
  return card;
}

function render() {
  var live = $('live');
  live.textContent = '';
  if (state.live.size === 0) live.appendChild(el('div', 'empty', 'No call or conversation right now.'));
  state.live.forEach(function (s) { live.appendChild(renderSession(s)); });
  var ended = $('ended');
  ended.textContent = '';
  state.ended.forEach(function (s) { ended.appendChild(renderSession(s)); });
  $('ended-count').textContent = state.ended.length;
  var calls = 0, texts = 0;
  state.live.forEach(function (s) { if (s.kind === 'call') calls++; else texts++; });
  $('s-calls').textContent = calls;
  $('s-texts').textContent = texts;
}

function addLine(id, line) {
  var s = state.live.get(id);
  if (!s) return;
  var i = s.transcript.findIndex(function (l) { return l.seq === line.seq; });
  if (i >= 0) s.transcript[i] = line; else s.transcript.push(line);
  var card = document.querySelector('.session[data-id="' + CSS.escape(id) + '"] .transcript');
  if (!card) return render();
  var old = card.querySelector('li[data-seq="' + line.seq + '"]');
  var item = lineItem(line);
  if (old) card.replaceChild(item, old); else card.appendChild(item);
  card.scrollTop = card.scrollHeight;
}

function setHealth(h) {
  var pill = function (id, up, text) { var p = $(id); p.textContent = text; p.className = 'pill ' + (up ? 'up' : 'down'); };
  pill('h-ready', h.ready, h.ready ? 'ready' : (h.state === 'serving' ? 'degraded' : h.state));
  pill('h-ari', h.ari === 'up', 'ARI ' + h.ari);
  pill('h-ami', h.ami === 'up', 'AMI ' + h.ami);
  $('h-numbers').textContent = h.registered.length ? 'numbers ' + h.registered.join(', ') : 'no number registered';
  var list = $('numbers');
  list.textContent = '';
  h.registered.forEach(function (n) { var o = el('option'); o.value = n; list.appendChild(o); });
  if (!$('dial-number').value && h.registered.length) $('dial-number').value = h.registered[0];
}
function setTotals(t) {
  $('s-total').textContent = t.calls + t.texts;
  $('s-errors').textContent = t.errors;
}

function hangup(id, button) {
  button.disabled = true;
  fetch('api/sessions/' + encodeURIComponent(id) + '/hangup', {
    method: 'POST', headers: { authorization: 'Bearer ' + tokenInput.value },
  }).then(function (r) { return r.json().then(function (j) { if (!r.ok) { alert(j.error); button.disabled = false; } }); });
}

var events = new EventSource('api/events');
events.addEventListener('snapshot', function (e) {
  var snap = JSON.parse(e.data);
  state.live = new Map();
  snap.live.forEach(function (s) { state.live.set(s.id, s); });
  state.ended = snap.ended;
  setHealth(snap.health);
  setTotals(snap.totals);
  state.controls = snap.controls;
  $('token').hidden = !snap.controls;
  if (snap.metricsUrl) { var m = $('h-metrics'); m.href = snap.metricsUrl; m.hidden = false; }
  if (snap.softphone && !state.identity) startPhone(snap.softphone.identity);
  render();
});
events.addEventListener('update', function (e) {
  var u = JSON.parse(e.data);
  if (u.type === 'line') return addLine(u.id, u.line);
  if (u.type === 'session') {
    // An update carries every field but the transcript: a field it lacks (verb) is gone.
    var s = state.live.get(u.session.id);
    state.live.set(u.session.id, Object.assign({ transcript: s ? s.transcript : [] }, u.session));
  } else if (u.type === 'ended') {
    var was = state.live.get(u.session.id);
    state.live.delete(u.session.id);
    state.ended.unshift(Object.assign({ transcript: was ? was.transcript : [] }, u.session));
    state.ended.length = Math.min(state.ended.length, 20);
  }
  render();
});
events.addEventListener('health', function (e) { setHealth(JSON.parse(e.data)); });
events.addEventListener('totals', function (e) { setTotals(JSON.parse(e.data)); });
setInterval(function () {
  document.querySelectorAll('.session').forEach(function (card) {
    var s = state.live.get(card.dataset.id);
    if (s) card.querySelector('.dur').textContent = duration(s);
  });
}, 1000);

// ------------------------------------------------------------------ softphone

function ulawEncode(sample) {
  var s = Math.max(-32635, Math.min(32635, Math.round(sample * 32767)));
  var sign = s < 0 ? 0x80 : 0;
  if (s < 0) s = -s;
  s += 0x84;
  var exponent = 7;
  for (var mask = 0x4000; (s & mask) === 0 && exponent > 0; mask >>= 1) exponent--;
  var mantissa = (s >> (exponent + 3)) & 0x0f;
  return ~(sign | (exponent << 4) | mantissa) & 0xff;
}
var ULAW = new Float32Array(256);
for (var u = 0; u < 256; u++) {
  var v = ~u & 0xff, sign = v & 0x80, exp = (v >> 4) & 7, man = v & 0x0f;
  var mag = (((man << 3) + 0x84) << exp) - 0x84;
  ULAW[u] = (sign ? -mag : mag) / 32768;
}

var phone = { ws: null, ctx: null, node: null, mic: null, inCall: false, out: [], outPos: 0, buffered: 0,
  micAcc: [], micPos: 0, peak: 0 };

function status(text) { $('phone-status').textContent = text; }
function setInCall(on) {
  phone.inCall = on;
  $('call').disabled = on;
  $('hangup').disabled = !on;
}

function startPhone(identity) {
  state.identity = identity;
  $('main').classList.remove('nophone');
  $('phone').hidden = false;
  $('phone-identity').textContent = '(you are ' + identity + ')';
  var keys = '123456789*0#';
  for (var i = 0; i < keys.length; i++) (function (k) {
    var b = el('button', 'key', k);
    b.dataset.key = k;
    b.addEventListener('click', function () { if (phone.inCall) send({ type: 'keys', digits: k }); });
    $('keypad').appendChild(b);
  })(keys[i]);
  $('call').addEventListener('click', dial);
  $('hangup').addEventListener('click', function () { send({ type: 'hangup' }); });
  $('chat-send').addEventListener('click', sendChat);
  $('chat-input').addEventListener('keydown', function (e) { if (e.key === 'Enter') sendChat(); });
  connectPhone();
}

function connectPhone() {
  var url = location.href.replace(/^http/, 'ws').replace(/[^/]*$/, '') + 'api/phone';
  var ws = new WebSocket(url);
  ws.binaryType = 'arraybuffer';
  phone.ws = ws;
  ws.onmessage = function (e) {
    if (typeof e.data !== 'string') return heard(new Uint8Array(e.data));
    var m = JSON.parse(e.data);
    if (m.type === 'ringing') { setInCall(true); status('ringing ' + m.to + '…'); }
    else if (m.type === 'answered') status('in call');
    else if (m.type === 'media') status('playing ' + m.uri);
    else if (m.type === 'ended') { setInCall(false); status('call ended (cause ' + m.cause + ')'); }
    else if (m.type === 'error') { status(m.message); if (!m.inCall) setInCall(false); }
    else if (m.type === 'text') chat('them', m.from + ': ' + m.body);
  };
  ws.onclose = function () { setInCall(false); status('softphone disconnected'); };
}

function send(message) { if (phone.ws && phone.ws.readyState === 1) phone.ws.send(JSON.stringify(message)); }

function dial() {
  var to = $('dial-number').value.trim();
  if (!to) return status('type a number');
  startAudio().then(function () {
    phone.out = []; phone.outPos = 0; phone.buffered = 0; phone.micAcc = []; phone.micPos = 0;
    send({ type: 'dial', to: to });
  });
}

function startAudio() {
  if (phone.ctx) return phone.ctx.resume();
  var ctx = new AudioContext();
  phone.ctx = ctx;
  var node = ctx.createScriptProcessor(2048, 1, 1);
  phone.node = node;
  node.onaudioprocess = function (e) { pump(e.inputBuffer.getChannelData(0), e.outputBuffer.getChannelData(0)); };
  node.connect(ctx.destination);
  var mic = navigator.mediaDevices && navigator.mediaDevices.getUserMedia
    ? navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: true, noiseSuppression: false } })
    : Promise.reject(new Error('no microphone API'));
  return mic.then(function (stream) {
    phone.mic = stream;
    ctx.createMediaStreamSource(stream).connect(node);
  }, function () { status('no microphone: you can listen and press keys'); }).then(function () { return ctx.resume(); });
}

/** Microphone → 8 kHz µ-law frames out; queued 8 kHz audio → speaker, with a level meter. */
function pump(input, output) {
  var rate = phone.ctx.sampleRate, step = rate / 8000;
  if (phone.inCall && phone.mic) {
    for (var i = 0; i < input.length; i++) phone.micAcc.push(input[i]);
    var frame = [];
    while (phone.micPos + step <= phone.micAcc.length) {
      var from = Math.floor(phone.micPos), to = Math.floor(phone.micPos + step), sum = 0;
      for (var j = from; j < to; j++) sum += phone.micAcc[j];
      frame.push(ulawEncode(sum / Math.max(1, to - from)));
      phone.micPos += step;
      if (frame.length === 160) { phone.ws.send(new Uint8Array(frame).buffer); frame = []; }
    }
    if (frame.length) { phone.micPos -= frame.length * step; }
    var drop = Math.floor(phone.micPos);
    phone.micAcc = phone.micAcc.slice(drop);
    phone.micPos -= drop;
  }
  var energy = 0;
  for (var k = 0; k < output.length; k++) {
    var sample = 0;
    if (phone.out.length > 0 && phone.buffered > 0) {
      var pos = phone.outPos, idx = Math.floor(pos), buf = phone.out[0];
      sample = buf[idx];
      phone.outPos += 8000 / rate;
      if (phone.outPos >= buf.length) { phone.out.shift(); phone.outPos -= buf.length; if (phone.out.length === 0) phone.buffered = 0; }
    }
    output[k] = sample;
    energy += sample * sample;
  }
  var rms = Math.sqrt(energy / output.length);
  if (rms > phone.peak) { phone.peak = rms; $('level').dataset.peak = rms.toFixed(4); }
  $('level').style.width = Math.min(100, rms * 400) + '%';
}

function heard(bytes) {
  var pcm = new Float32Array(bytes.length);
  for (var i = 0; i < bytes.length; i++) pcm[i] = ULAW[bytes[i]];
  phone.out.push(pcm);
  // Start after 60 ms are queued, so network jitter does not starve the speaker.
  if (!phone.buffered && phone.out.length >= 3) phone.buffered = 1;
}

function chat(who, text) {
  var li = el('li', who, text);
  $('chat-log').appendChild(li);
  $('chat-log').scrollTop = $('chat-log').scrollHeight;
}
function sendChat() {
  var to = $('dial-number').value.trim(), body = $('chat-input').value;
  if (!to || !body) return;
  send({ type: 'text', to: to, body: body });
  chat('me', body);
  $('chat-input').value = '';
}
</script>
</body>
</html>
`;
