// The advisor console (docs/console.md). Plain JavaScript, no library: it
// calls the server's own endpoints and renders what they answer.
'use strict';

const $ = (id) => document.getElementById(id);
const state = {
  client: '',
  session: [],
  results: [],
  curation: null,
  titles: {}
};

function setStatus(text, isError) {
  $('status').textContent = text;
  $('status').className = isError ? 'error' : '';
}

function token() {
  return $('token').value.trim();
}

async function call(method, path, body) {
  const headers = {};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (token()) headers['Authorization'] = 'Bearer ' + token();
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch (e) {
    data = null;
  }
  if (!response.ok) {
    const why = data && data.error ? data.error : text || response.statusText;
    throw new Error(method + ' ' + path + ': ' + response.status + ' ' + why);
  }
  return data;
}

function el(tag, attrs, children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === 'class')
      node.className = value;
    else if (key === 'text')
      node.textContent = value;
    else
      node.setAttribute(key, value);
  }
  for (const child of children || []) node.appendChild(child);
  return node;
}

function image(item, title) {
  return el(
      'img',
      {src: '/items/' + encodeURIComponent(item) + '/image', alt: title || item, loading: 'lazy'});
}

function describe(attrs) {
  const parts = [];
  if (attrs.brand) parts.push(attrs.brand);
  if (attrs.category) parts.push(attrs.category);
  if (attrs.price) parts.push(attrs.price);
  return parts.join(' · ');
}

function rulesText() {
  return $('rules').value.split('\n').map((r) => r.trim()).filter((r) => r.length > 0);
}

// The answer for the chosen intent: hits with rank, item, score, reason and,
// explained, per-block scores and the item's attributes.
async function answer() {
  const k = Math.max(1, Math.min(100, parseInt($('k').value, 10) || 12));
  const intent = $('intent').value;
  const rules = rulesText();
  const anchor = state.session.length > 0 ?
      state.session[state.session.length - 1] :
      (state.history && state.history.length > 0 ? state.history[0].item : '');
  if (intent === 'similar' || intent === 'complete') {
    if (!anchor)
      throw new Error(intent + ' needs an item: start from items, or a client with a history');
    const query = new URLSearchParams({k: String(k), explain: '1'});
    for (const r of rules) query.append('rule', r);
    if (intent === 'similar') {
      const data = await call('GET', '/similar/' + encodeURIComponent(anchor) + '?' + query);
      return {title: 'Similar to ' + anchor, hits: data.results, request: data.request_id};
    }
    const data = await call('GET', '/complete/' + encodeURIComponent(anchor) + '?' + query);
    return {
      title: 'Completing the look of ' + anchor,
      hits: data.results,
      request: data.request_id
    };
  }
  const body = {k, explain: true, intent};
  if (state.client) body.user = state.client;
  if (state.session.length > 0) body.history = state.session;
  if (rules.length > 0) body.rules = rules;
  const data = await call('POST', '/recommend', body);
  const titles = {'for-you': 'For you', 'next-step': 'Next step', gift: 'Gift ideas'};
  return {
    title: titles[intent] + (data.variant ? ' (variant ' + data.variant + ')' : ''),
    hits: data.results,
    request: data.request_id
  };
}

function blockBars(blocks) {
  const grid = el('div', {class: 'blocks'});
  const top = Math.max(0.0001, ...Object.values(blocks).map((v) => Math.abs(v)));
  for (const [name, value] of Object.entries(blocks)) {
    const bar = el('div', {class: 'bar'});
    bar.style.width = Math.round((100 * Math.max(0, value)) / top) + '%';
    grid.append(el('span', {text: name}), bar, el('span', {text: value.toFixed(2)}));
  }
  return grid;
}

function card(hit) {
  const attrs = hit.attributes || {};
  const node =
      el('article', {class: 'card' + (hit.pinned ? ' pinned' : ''), 'data-item': hit.item}, [
        image(hit.item, attrs.title),
        el('div', {class: 'title', text: (attrs.title || hit.item)}),
        el('div',
           {class: 'meta', text: hit.item + (describe(attrs) ? ' · ' + describe(attrs) : '')}),
        el('div', {class: 'reason', text: hit.reason || ''}),
      ]);
  if (hit.pinned) node.insertBefore(el('span', {class: 'badge', text: 'pinned'}), node.children[1]);
  if (hit.blocks) node.appendChild(blockBars(hit.blocks));
  if (state.client) {
    const position = el(
        'input', {type: 'number', min: '1', value: String(hit.rank), 'aria-label': 'pin position'});
    const act = (action, extra) => () =>
        decide(Object.assign({item: hit.item, action}, extra || {}));
    const buttons = el('div', {class: 'actions'});
    const add = (label, cls, handler) => {
      const b = el('button', {type: 'button', class: cls, text: label});
      b.addEventListener('click', handler);
      buttons.appendChild(b);
    };
    add('Approve', 'approve', act('approve'));
    add('Reject', 'reject', act('reject'));
    add('Never', 'never', act('never'));
    add('Pin at', 'pin',
        () => decide({item: hit.item, action: 'pin', position: parseInt(position.value, 10)}));
    buttons.appendChild(position);
    node.appendChild(buttons);
  }
  state.titles[hit.item] = attrs.title || hit.item;
  return node;
}

function renderHistory() {
  const strip = $('history');
  strip.replaceChildren();
  const items = state.session.length > 0 ? state.session.map((item) => ({item, event: 'session'})) :
                                           (state.history || []).slice(0, 20);
  for (const h of items) {
    strip.appendChild(el('div', {class: 'card'}, [
      image(h.item, h.title),
      el('div', {class: 'title', text: h.title || h.item}),
      el('div', {class: 'meta', text: h.item + ' · ' + h.event}),
    ]));
  }
  $('history-section').hidden = items.length === 0;
}

function renderCuration() {
  const c = state.curation;
  $('curation-section').hidden = !c;
  if (!c) return;
  const list = $('decisions');
  list.replaceChildren();
  const rows = [];
  for (const item of c.approved) rows.push([item, 'approved']);
  for (const item of c.rejected) rows.push([item, 'rejected']);
  for (const item of c.never) rows.push([item, 'never for this client']);
  for (const [item, position] of Object.entries(c.pins)) rows.push([item, 'pinned at ' + position]);
  for (const [item, what] of rows) {
    const revoke = el('button', {type: 'button', class: 'revoke', text: 'Revoke'});
    revoke.addEventListener('click', () => decide({item, action: 'revoke'}));
    list.appendChild(
        el('li', {'data-item': item}, [el('span', {text: item + ': ' + what + ' '}), revoke]));
  }
  if (rows.length === 0) list.appendChild(el('li', {text: 'none yet'}));
  const shortlist = $('shortlist');
  shortlist.replaceChildren();
  for (const item of c.approved)
    shortlist.appendChild(el('li', {text: item + ' ' + (state.titles[item] || '')}));
}

async function loadClient() {
  state.history = [];
  state.curation = null;
  if (!state.client) return;
  const data = await call('GET', '/clients/' + encodeURIComponent(state.client));
  state.history = data.history || [];
  for (const h of state.history) state.titles[h.item] = h.title || h.item;
  state.curation = data.curation || null;
}

async function show() {
  state.client = $('client').value.trim();
  state.session = $('session').value.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  if (!state.client && state.session.length === 0) {
    setStatus('Give a client id or a few item ids.', true);
    return;
  }
  setStatus('Loading...');
  try {
    await loadClient();
    renderHistory();
    const a = await answer();
    state.results = a.hits;
    $('cards-title').textContent = a.title;
    $('cards').replaceChildren(...a.hits.map(card));
    renderCuration();
    setStatus(a.hits.length + ' items (request ' + a.request + ')');
  } catch (e) {
    setStatus(e.message, true);
  }
}

async function decide(decision) {
  try {
    await call(
        'POST', '/curation', Object.assign({user: state.client, advisor: 'console'}, decision));
    await show();
    setStatus(decision.action + ' ' + decision.item + ': recorded');
  } catch (e) {
    setStatus(e.message, true);
  }
}

function shortlistRows() {
  return (state.curation ? state.curation.approved : [])
      .map((item, i) => ({position: i + 1, item, title: state.titles[item] || ''}));
}

function download(name, type, text) {
  const link = el('a', {href: URL.createObjectURL(new Blob([text], {type})), download: name});
  document.body.appendChild(link);
  link.click();
  link.remove();
}

function csvField(s) {
  const text = String(s);
  return /[",\n]/.test(text) ? '"' + text.replace(/"/g, '""') + '"' : text;
}

$('lookup').addEventListener('submit', (event) => {
  event.preventDefault();
  sessionStorage.setItem('vitrine-token', token());
  show();
});
$('send').addEventListener('click', async () => {
  const items = shortlistRows().map((r) => r.item);
  if (items.length === 0) {
    setStatus('Approve items first: the shortlist is the approved items.', true);
    return;
  }
  try {
    const note = $('note').value.trim();
    const body = {user: state.client, action: 'shortlist', items, advisor: 'console'};
    if (note) body.note = note;
    await call('POST', '/curation', body);
    setStatus('Shortlist of ' + items.length + ' sent and recorded.');
  } catch (e) {
    setStatus(e.message, true);
  }
});
$('export-csv').addEventListener('click', () => {
  const lines = ['client,position,item_id,title'].concat(shortlistRows().map(
      (r) => [state.client, r.position, r.item, r.title].map(csvField).join(',')));
  download('shortlist-' + state.client + '.csv', 'text/csv', lines.join('\n') + '\n');
});
$('export-json').addEventListener('click', () => {
  download(
      'shortlist-' + state.client + '.json', 'application/json',
      JSON.stringify(
          {client: state.client, note: $('note').value.trim(), items: shortlistRows()}, null, 2));
});
$('token').value = sessionStorage.getItem('vitrine-token') || '';
const params = new URLSearchParams(window.location.search);
if (params.get('client')) {
  $('client').value = params.get('client');
  show();
}
