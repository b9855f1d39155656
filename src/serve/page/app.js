'use strict';
/* audience serve: the segment workbench.
 *
 * A dependency-free script for the page `audience serve` embeds. It talks to the JSON API under
 * /api/v1 (described at /api/openapi.json). Sections: helpers, api, editor/highlight, completion,
 * diagnostics, live refresh and counts, preview, trend, explain, export, saved segments, dialogs and
 * toasts, keyboard, start-up.
 */

/* ---------------------------------------------------------------- helpers */

const $ = (selector, root = document) => root.querySelector(selector);
const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];

/** h('li', {class, dataset, onclick, …attributes}, …children): strings become text nodes. */
function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value == null || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? '' : value);
  }
  node.append(...children.flat().filter((c) => c != null && c !== false));
  return node;
}

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  node.append(...children);
  return node;
}

const numberFormat = new Intl.NumberFormat('en-US');
const fmtInt = (n) => numberFormat.format(n);
const fmtPct = (part, whole) => (whole > 0 ? `${((100 * part) / whole).toFixed(part < whole / 10 ? 1 : 0)}%` : '');
const dayFormat = new Intl.DateTimeFormat('en-US', { dateStyle: 'medium', timeZone: 'UTC' });
const fmtDay = (iso) => dayFormat.format(new Date(iso));
const isoDay = (date) => date.toISOString().slice(0, 10);
const relativeFormat = new Intl.RelativeTimeFormat('en', { numeric: 'auto' });

function fmtAgo(iso) {
  const seconds = (new Date(iso) - Date.now()) / 1000;
  for (const [unit, size] of [['day', 86400], ['hour', 3600], ['minute', 60]]) {
    if (Math.abs(seconds) >= size) return relativeFormat.format(Math.round(seconds / size), unit);
  }
  return 'just now';
}

function fmtBytes(n) {
  const units = ['B', 'KB', 'MB', 'GB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${i ? n.toFixed(1) : n} ${units[i]}`;
}

/** Sets a number element: thousands separators for people, the raw integer in data-value for tests. */
function setNumber(node, value) {
  node.textContent = value == null ? '—' : fmtInt(value);
  node.dataset.value = value == null ? '' : String(value);
}

/** Names match ignoring case, spaces, underscores and hyphens, like the checker's. */
const norm = (name) => name.replace(/[\s_-]/g, '').toLowerCase();

const state = {
  token: null,
  snapshots: [],
  snapshot: null,
  catalog: null,          // indexCatalog(GET /catalog)
  target: 'installations',
  marks: [],              // diagnostics in string indices: {from, to, severity}
  checked: null,          // {text, ok, diagnostics} of the last /check
  doc: { name: null, etag: null, savedText: '' },   // the saved segment in the editor
  saved: [],
  jobs: new Map(),        // export id → job
  currentJob: null,       // the export started from this page, shown with its progress
  tab: 'preview',
  panelKeys: {},          // tab → the query its contents answer, to know when they are out of date
};

/* ---------------------------------------------------------------- api */

class ApiError extends Error {
  constructor(status, body, retryAfter) {
    const error = (body && body.error) || {};
    super(error.message || `The server answered HTTP ${status}.`);
    this.status = status;
    this.code = error.code || String(status);
    this.diagnostics = error.diagnostics || [];
    this.current = error.current;
    this.retryAfter = retryAfter;
  }

  /** A 422 about the segment text: shown in the diagnostics list, not as a toast. */
  get isSegmentError() {
    return this.status === 422 && this.diagnostics.length > 0;
  }
}

/**
 * Every call to the API goes through here: it adds the token, parses JSON errors into ApiError, and
 * reports errors in a toast unless they are about the segment (the diagnostics list shows those) or the
 * caller handles that status itself (`handles`). A 401 shows the token banner instead.
 */
async function api(path, { method = 'GET', body, headers = {}, signal, handles = [] } = {}) {
  const init = { method, signal, headers: { Authorization: `Bearer ${state.token}`, ...headers } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(`/api/v1${path}`, init);
  } catch (err) {
    if (err.name !== 'AbortError') toast('network', 'The server did not answer. Is audience serve still running?');
    throw err;
  }
  const data = res.status === 204 ? null : await res.json().catch(() => null);
  if (res.ok) return { data, res };
  const error = new ApiError(res.status, data, Number(res.headers.get('Retry-After')) || 0);
  if (res.status === 401) $('#auth-banner').hidden = false;
  else if (!error.isSegmentError && !handles.includes(res.status)) toast(error.code, error.message);
  throw error;
}

/** For .catch(): errors api() has already shown, and cancelled requests, need nothing more. */
function reported(err) {
  if (!(err instanceof ApiError) && err.name !== 'AbortError') throw err;
}

/** One AbortController per kind of request: starting one cancels the previous one of its kind. */
const inflight = new Map();
function begin(kind) {
  inflight.get(kind)?.abort();
  const controller = new AbortController();
  inflight.set(kind, controller);
  return controller.signal;
}
const cancel = (...kinds) => kinds.forEach((kind) => inflight.get(kind)?.abort());

/** The token arrives once in the URL fragment (#token=…) and lives in sessionStorage after that. */
function readToken() {
  const match = /(?:^#|&)token=([^&]*)/.exec(location.hash);
  if (match) {
    sessionStorage.setItem('audience.token', decodeURIComponent(match[1]));
    history.replaceState(null, '', location.pathname + location.search);
  }
  return sessionStorage.getItem('audience.token');
}

/** The as-of date picked in the header, when it is not the snapshot's own (a backtest). */
function asOfOverride() {
  const day = $('#as-of').value;
  return day && state.snapshot && day !== isoDay(new Date(state.snapshot.as_of)) ? day : null;
}

/** What every segment request sends besides the text. */
function queryScope() {
  const scope = { snapshot: state.snapshot?.id };
  if (asOfOverride()) scope.as_of = asOfOverride();
  return scope;
}

/* ---------------------------------------------------------------- editor/highlight */

const textarea = $('#segment');
const highlight = $('#highlight');

const KEYWORDS = new Set(('and or not in between is set where within since before after has any all '
  + 'contains starts ends with matches ago true false then next per of the last anniversary for').split(' '));
/** Words the parser reserves: a name spelled like one must be quoted with backticks. */
const RESERVED = new Set('and or not in between is where within since before after true false has contains matches then'.split(' '));
const SCOPES = new Set(['person', 'installation', 'custom']);
let functions = new Set(['count', 'did', 'sum', 'avg', 'min', 'max', 'first', 'last', 'distinct',
  'stopped', 'restarted']);
/** The functions as completion offers them (`count distinct`). */
let functionNames = ['count', 'count distinct', 'did', 'sum', 'avg', 'min', 'max', 'first', 'last',
  'stopped', 'restarted'];

// One alternative per token kind, in KINDS order; the last one takes any character so tokens tile
// the text with no gaps, which the highlighter relies on.
const TOKEN = new RegExp([
  /(#[^\n]*)/, /("(?:[^"\\\n]|\\.)*"?)/, /(`(?:[^`\n]|``)*`?)/,
  /(\d{4}-\d\d-\d\d(?:T\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?:Z|[+-]\d\d:\d\d)?)?)/,
  /((?:\d+[wdhms])+(?![\w.]))/, /(\d+(?:\.\d+)?)/, /([a-z_]\w*)/, /(!=|<=|>=|==|<>|[=<>(),.])/,
  /(\s+)/, /([^])/,
].map((re) => re.source).join('|'), 'giy');
const KINDS = ['comment', 'string', 'quoted', 'date', 'duration', 'number', 'word', 'punct', 'space', 'other'];

function tokenize(text) {
  const tokens = [];
  for (const m of text.matchAll(TOKEN)) {
    const group = m.findIndex((g, i) => i > 0 && g !== undefined);
    tokens.push({ kind: KINDS[group - 1], start: m.index, end: m.index + m[0].length, text: m[0] });
  }
  return tokens;
}

const significant = (tokens) => tokens.filter((t) => t.kind !== 'space' && t.kind !== 'comment');
const identText = (t) => (t.kind === 'quoted' ? t.text.slice(1, -1).replace(/``/g, '`') : t.text);
const isName = (t) => t && (t.kind === 'word' || t.kind === 'quoted');
const lower = (t) => (t ? t.text.toLowerCase() : '');

const TOKEN_CLASS = { comment: 'tok-comment', string: 'tok-string', quoted: 'tok-name', date: 'tok-literal',
  duration: 'tok-literal', number: 'tok-literal', punct: 'tok-punct' };

function tokenClass(t, next) {
  if (t.kind !== 'word') return TOKEN_CLASS[t.kind] || '';
  const word = t.text.toLowerCase();
  if (next?.text === '(' && (functions.has(word) || word === 'segment')) return 'tok-fn';
  if (KEYWORDS.has(word)) return 'tok-kw';
  if (next?.text === '.' && SCOPES.has(word)) return 'tok-scope';
  if (state.catalog?.events.has(norm(t.text))) return 'tok-event';
  return 'tok-name';
}

const escapeHtml = (s) => s.replace(/[&<>]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;' })[c]);

/**
 * Redraws the <pre> behind the transparent textarea: token colours, and wavy underlines at the
 * diagnostics' spans. The text is cut at every token and mark boundary so each piece has one token
 * class and one severity. A zero-width mark (say, "expected `)`" at the end) is drawn on a virtual space.
 */
function renderHighlight() {
  const text = textarea.value;
  const tokens = tokenize(text);
  const cuts = new Set([0, text.length]);
  tokens.forEach((t) => cuts.add(t.start));
  state.marks.forEach((m) => { cuts.add(m.from); cuts.add(m.to); });
  const points = [...cuts].filter((p) => p <= text.length).sort((a, b) => a - b);
  const sevAt = (a, b) => {
    const over = state.marks.filter((m) => m.from <= a && m.to >= b && m.to > m.from);
    return over.some((m) => m.severity === 'error') ? 'error' : over.length ? 'warning' : null;
  };
  const gapsAt = (p) => state.marks.filter((m) => m.from === p && m.to === p)
    .map((m) => `<span class="diag-${m.severity} diag-gap"> </span>`).join('');
  const next = significant(tokens);
  const classes = new Map(next.map((t, i) => [t, tokenClass(t, next[i + 1])]));
  let html = '';
  let ti = 0;
  for (let k = 0; k < points.length - 1; k++) {
    const [a, b] = [points[k], points[k + 1]];
    while (tokens[ti].end <= a) ti++;
    const sev = sevAt(a, b);
    const cls = [classes.get(tokens[ti]), sev && `diag-${sev}`].filter(Boolean).join(' ');
    html += gapsAt(a) + (cls ? `<span class="${cls}">${escapeHtml(text.slice(a, b))}</span>` : escapeHtml(text.slice(a, b)));
  }
  html += gapsAt(text.length);
  // A final newline makes an empty last line in the textarea, but not in a <pre> unless it has content.
  highlight.innerHTML = text.endsWith('\n') ? `${html} ` : html;
  syncScroll();
}

/** Keeps the overlay exactly under the textarea's text area (minus its scrollbar) and scroll offset. */
function syncScroll() {
  highlight.style.width = `${textarea.clientWidth}px`;
  highlight.style.height = `${textarea.clientHeight}px`;
  highlight.scrollTop = textarea.scrollTop;
  highlight.scrollLeft = textarea.scrollLeft;
}

/** Grows the textarea with its text, between the CSS min-height and a third of the window. */
function autosize() {
  textarea.style.height = 'auto';
  textarea.style.height = `${Math.min(textarea.scrollHeight + 2, Math.max(160, innerHeight / 3))}px`;
}

/**
 * Replaces text[from, to) as if typed, so Ctrl+Z undoes it: execCommand('insertText') is the only way
 * to keep the textarea's native undo history. setRangeText is the fallback where it is unsupported.
 */
function replaceRange(from, to, insert) {
  textarea.focus();
  textarea.setSelectionRange(from, to);
  if (!document.execCommand('insertText', false, insert)) {
    textarea.setRangeText(insert, from, to, 'end');
    textarea.dispatchEvent(new Event('input'));
  }
}

let lastText = '';     // the text before the latest input event, to see what an edit changed

/** Loads another document's text: its own undo history, and no diagnostics until it is checked. */
function setText(text) {
  textarea.value = lastText = text;
  renderDiagnostics([], text);
  onTextChanged();
  scheduleRefresh(0);
}

/**
 * Marks after an edit move with the text; marks the edit touches are dropped (the user is fixing that
 * spot) until the next check answers.
 */
function shiftMarks(before, after) {
  let p = 0;
  while (p < before.length && p < after.length && before[p] === after[p]) p++;
  let s = 0;
  while (s < before.length - p && s < after.length - p && before[before.length - 1 - s] === after[after.length - 1 - s]) s++;
  const oldEnd = before.length - s;
  const delta = after.length - before.length;
  state.marks = state.marks.filter((m) => m.to < p || m.from > oldEnd)
    .map((m) => (m.from > oldEnd ? { ...m, from: m.from + delta, to: m.to + delta } : m));
}

function onTextChanged() {
  autosize();
  renderHighlight();
  updateDirty();
  saveDraft();
}

textarea.addEventListener('input', (e) => {
  shiftMarks(lastText, textarea.value);
  lastText = textarea.value;
  $('#diagnostics').classList.add('stale');
  onTextChanged();
  scheduleRefresh();
  if (e.inputType?.startsWith('insert') || completion.open) updateCompletion(false);
});
textarea.addEventListener('scroll', syncScroll);
new ResizeObserver(syncScroll).observe(textarea);

/* ---------------------------------------------------------------- completion */

const completionList = $('#completion');
const completion = { open: false, items: [], active: 0, from: 0, to: 0 };
const KIND_ORDER = { value: 0, property: 1, attribute: 2, derived: 3, event: 4, function: 5, scope: 6, keyword: 7 };
const KIND_BADGE = { value: 'V', property: 'P', attribute: 'A', derived: 'D', event: 'E', function: 'ƒ', scope: '.', keyword: 'K' };

/** Indexes GET /catalog for completion and highlighting. */
function indexCatalog(catalog) {
  const attributes = catalog.attributes.map((a) => ({ ...a, values: a.values || [] }));
  const names = new Map();
  for (const a of attributes) names.set(norm(a.name), [...(names.get(norm(a.name)) || []), a]);
  return {
    attributes,
    // A name both entities have must be written person.x or installation.x.
    ambiguous: (a) => names.get(norm(a.name)).length > 1,
    events: new Map(catalog.events.map((e) => [norm(e.name), e])),
    derived: catalog.derived || [],
  };
}

const quoteName = (name) => (/^[A-Za-z_]\w*$/.test(name) && !RESERVED.has(name.toLowerCase()) ? name : `\`${name.replace(/`/g, '``')}\``);
const quoteString = (s) => `"${s.replace(/[\\"]/g, '\\$&').replace(/\n/g, '\\n').replace(/\t/g, '\\t').replace(/\r/g, '\\r')}"`;
const item = (kind, label, detail, insert = label, weight = 0) => ({ kind, label, detail, insert, weight });

function attributeItems(filter = () => true, qualified = false) {
  return state.catalog.attributes.filter(filter).map((a) => {
    const path = a.custom ? `custom.${quoteName(a.name)}` : quoteName(a.name);
    const insert = qualified ? quoteName(a.name) : state.catalog.ambiguous(a) ? `${a.entity}.${path}` : path;
    return item('attribute', a.name, `${a.entity}${a.custom ? ' custom' : ''} · ${a.type}`, insert);
  });
}

const eventItems = () => [...state.catalog.events.values()]
  .map((e) => item('event', e.name, e.standard ? 'event' : `event · ${e.properties.length} properties`, quoteName(e.name)));

const propertyItems = (event, numbersOnly) => event.properties.filter((p) => !numbersOnly || p.type === 'number')
  .map((p) => item('property', p.name, `${event.name} · ${p.type}`, quoteName(p.name)));

const keywordItems = (words) => words.map((w) => item('keyword', w, 'keyword'));

/**
 * The innermost event function call the position is in, looking back over `tokens` (significant, before
 * the position): {fn, event, where} or null. Grouping parentheses are looked through.
 */
function enclosingCall(tokens) {
  let depth = 0;
  for (let i = tokens.length - 1; i >= 0; i--) {
    if (tokens[i].text === ')') depth++;
    else if (tokens[i].text === '(' && depth > 0) depth--;
    else if (tokens[i].text === '(' && functions.has(lower(tokens[i - 1]))) {
      const inner = tokens.slice(i + 1);
      const event = isName(inner[0]) ? state.catalog.events.get(norm(identText(inner[0]))) : null;
      return { fn: lower(tokens[i - 1]), inner, event, where: inner.some((t) => lower(t) === 'where') };
    }
  }
  return null;
}

/** The dotted name that ends at tokens[end]: its parts and the index where it starts. */
function dottedName(tokens, end) {
  const parts = [];
  let i = end;
  while (isName(tokens[i])) {
    parts.unshift(identText(tokens[i]));
    if (tokens[i - 1]?.text !== '.') break;
    i -= 2;
  }
  return { parts, start: i };
}

/**
 * The field whose string values belong at a position after `before` (significant tokens): after
 * `name =`, `name !=`, `name in (…,`, `name has`, `name has any (…,`; or `segment(` for saved names.
 */
function valueField(before) {
  if (before.at(-1)?.kind === 'string') return null;      // the value is there already
  let i = before.length - 1;
  while (i >= 0 && (before[i].kind === 'string' || before[i].text === ',')) i--;
  if (before[i]?.text === '(') {
    i--;
    if (lower(before[i]) === 'segment') return { saved: true };
    if (!['in', 'any', 'all'].includes(lower(before[i]))) return null;
    if (lower(before[i]) !== 'in') i--;                 // has any ( / has all (
  } else if (!['=', '!=', '==', '<>', 'has'].includes(lower(before[i]))) return null;
  i--;
  if (lower(before[i]) === 'not') i--;                 // not in (
  const { parts, start } = dottedName(before, i);
  if (!parts.length) return null;
  const call = enclosingCall(before.slice(0, start + 1));
  if (call?.event && call.where) return call.event.properties.find((p) => norm(p.name) === norm(parts.at(-1)));
  const entity = ['person', 'installation'].includes(parts[0].toLowerCase()) ? parts[0].toLowerCase() : null;
  return state.catalog.attributes.find((a) => norm(a.name) === norm(parts.at(-1)) && (!entity || a.entity === entity));
}

function valueItems(field) {
  if (field.saved) return state.saved.map((s) => item('value', s.name, 'saved segment', quoteString(s.name)));
  return (field.values || []).map((v) => item('value', v.value, fmtInt(v.count), quoteString(v.value), v.count));
}

/** Suggestions for a name typed after `before`, qualified by `parts` (`person.` → ['person']). */
function nameItems(before, parts) {
  const call = enclosingCall(before);
  const q = parts.map((p) => p.toLowerCase());
  const qualifierEvent = q.length === 1 && state.catalog.events.get(norm(q[0]));
  if (call) {
    const numbers = !['count', 'did', 'first', 'last'].includes(call.fn);
    if (qualifierEvent) return propertyItems(qualifierEvent, numbers);
    if (!call.inner.length) return eventItems();
    if (call.where && call.event) return [...propertyItems(call.event, false), ...keywordItems(['and', 'or', 'not', 'within', 'since', 'between'])];
    return keywordItems(['where', 'within', 'since', 'between']);
  }
  const scope = item('scope', 'custom', 'custom attributes', 'custom.');
  if (q.join('.') === 'person') return [...attributeItems((a) => a.entity === 'person' && !a.custom, true), scope];
  if (q.join('.') === 'installation') {
    return [...attributeItems((a) => a.entity === 'installation' && !a.custom, true), scope,
      ...functionNames.map((f) => item('function', f, 'this device\'s events', `${f}(`))];
  }
  if (q.at(-1) === 'custom') {
    const entity = q.length === 2 ? q[0] : null;
    return attributeItems((a) => a.custom && (!entity || a.entity === entity), true);
  }
  if (q.length) return [];
  return [
    ...attributeItems(),
    ...state.catalog.derived.map((d) => item('derived', d.name, `derived · ${d.type}`)),
    ...eventItems(),
    ...functionNames.map((f) => item('function', f, 'event function', `${f}(`)),
    item('function', 'segment', 'a saved segment', 'segment("'),
    ...keywordItems([...KEYWORDS]),
    item('scope', 'person', 'person attributes', 'person.'),
    item('scope', 'installation', 'installation attributes and events', 'installation.'),
  ];
}

/** What to suggest at the caret: {from, to, prefix, items}, or null for nothing. */
function completionAt(text, caret, explicit) {
  const tokens = tokenize(text);
  const at = tokens.find((t) => t.start < caret && caret <= t.end && t.kind !== 'space' && t.kind !== 'punct');
  const before = significant(tokens.filter((t) => t.end <= (at ? at.start : caret)));
  if (at?.kind === 'string') {
    const closed = at.text.length > 1 && /[^\\]"$|^""$/.test(at.text);
    if (closed && caret === at.end) return null;
    const field = valueField(before);
    return field && { from: at.start, to: closed ? at.end : caret, prefix: text.slice(at.start + 1, caret), items: valueItems(field) };
  }
  if (at && at.kind !== 'word' && at.kind !== 'quoted') return null;
  if (!at) {
    const field = valueField(before);
    if (field) return { from: caret, to: caret, prefix: '', items: valueItems(field) };
    if (!explicit && before.at(-1)?.text !== '.') return null;
  }
  // Qualifiers before the word: `person.custom.fav` → ['person', 'custom'].
  let end = before.length - 1;
  const parts = [];
  if (before[end]?.text === '.') {
    const name = dottedName(before, end - 1);
    parts.push(...name.parts);
    end = name.start - 1;
  }
  const from = at ? at.start : caret;
  const to = at ? at.end : caret;
  return { from, to, prefix: at ? text.slice(at.start, caret) : '', items: nameItems(before.slice(0, end + 1), parts) };
}

function rankItems(items, prefix) {
  const p = norm(prefix.replace(/^["`]/, ''));
  return items
    .map((it) => {
      const n = norm(it.label);
      return { it, rank: !p || n.startsWith(p) ? 0 : n.includes(p) ? 1 : -1 };
    })
    .filter((x) => x.rank >= 0)
    .sort((a, b) => a.rank - b.rank || KIND_ORDER[a.it.kind] - KIND_ORDER[b.it.kind] || b.it.weight - a.it.weight
      || a.it.label.localeCompare(b.it.label))
    .map((x) => x.it)
    .slice(0, 60);
}

function updateCompletion(explicit) {
  const caret = textarea.selectionStart;
  const found = state.catalog && caret === textarea.selectionEnd ? completionAt(textarea.value, caret, explicit) : null;
  const items = found ? rankItems(found.items, found.prefix) : [];
  // Nothing to add when the one match is what is typed already.
  const done = items.length === 1 && norm(items[0].insert) === norm(found.prefix) && items[0].kind !== 'function';
  if (!items.length || done) {
    closeCompletion();
    return;
  }
  Object.assign(completion, { open: true, items, active: 0, from: found.from, to: found.to });
  renderCompletion();
}

function renderCompletion() {
  completionList.replaceChildren(...completion.items.map((it, i) => h('li', {
    id: `completion-${i}`, role: 'option', class: `completion-item kind-${it.kind}`, 'aria-selected': String(i === completion.active),
    onmousedown: (e) => { e.preventDefault(); acceptCompletion(i); },
  }, h('span', { class: 'badge', 'aria-hidden': 'true' }, KIND_BADGE[it.kind]), h('span', { class: 'label' }, it.label), h('span', { class: 'detail' }, it.detail))));
  const { left, top } = caretCoords(completion.from);
  completionList.hidden = false;
  completionList.style.left = `${Math.max(0, Math.min(left, textarea.clientWidth - completionList.offsetWidth))}px`;
  completionList.style.top = `${top}px`;
  textarea.setAttribute('aria-expanded', 'true');
  textarea.setAttribute('aria-activedescendant', `completion-${completion.active}`);
  $(`#completion-${completion.active}`).scrollIntoView({ block: 'nearest' });
}

function closeCompletion() {
  completion.open = false;
  completionList.hidden = true;
  textarea.setAttribute('aria-expanded', 'false');
  textarea.removeAttribute('aria-activedescendant');
}

function acceptCompletion(i) {
  const chosen = completion.items[i];
  closeCompletion();
  replaceRange(completion.from, completion.to, chosen.insert);
  // After `count(`, `segment("` or `person.` the next thing to pick is known: offer it at once.
  if (/[(."]$/.test(chosen.insert)) updateCompletion(true);
}

/** Where a text index is drawn, relative to the editor box: measured in a hidden copy of the text. */
function caretCoords(index) {
  const mirror = $('#mirror');
  mirror.style.width = `${textarea.clientWidth}px`;
  mirror.textContent = textarea.value.slice(0, index);
  const marker = mirror.appendChild(h('span', {}, '\u200b'));
  return { left: marker.offsetLeft, top: marker.offsetTop + marker.offsetHeight - textarea.scrollTop + 4 };
}

textarea.addEventListener('keydown', (e) => {
  if ((e.ctrlKey || e.metaKey) && e.key === ' ') {
    e.preventDefault();
    updateCompletion(true);
    return;
  }
  if (!completion.open) return;
  const n = completion.items.length;
  if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
    completion.active = (completion.active + (e.key === 'ArrowDown' ? 1 : n - 1)) % n;
    renderCompletion();
  } else if ((e.key === 'Enter' || e.key === 'Tab') && !e.ctrlKey && !e.metaKey) {
    acceptCompletion(completion.active);
  } else if (e.key === 'Escape') {
    closeCompletion();
  } else {
    return;
  }
  e.preventDefault();
  e.stopPropagation();
});
textarea.addEventListener('blur', closeCompletion);
textarea.addEventListener('click', closeCompletion);

/* ---------------------------------------------------------------- diagnostics */

/**
 * Maps a UTF-8 byte offset (what the server's spans count) to a string index (UTF-16 code units,
 * what the textarea counts), rounding into a character up to its end. Counting each code point's
 * UTF-8 length gives what TextEncoder would, without encoding the text.
 */
function byteToIndex(text, byte) {
  let bytes = 0;
  let index = 0;
  for (const ch of text) {
    if (bytes >= byte) break;
    const cp = ch.codePointAt(0);
    bytes += cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    index += ch.length;
  }
  return index;
}

function spanToRange(text, span) {
  const from = byteToIndex(text, span.start);
  let to = Math.max(from, byteToIndex(text, span.end));
  // An empty span inside a line underlines the character it points at.
  if (to === from && from < text.length && text[from] !== '\n') to = from + 1;
  return { from, to };
}

function selectRange({ from, to }) {
  textarea.focus();
  textarea.setSelectionRange(from, to);
}

const SUGGESTION = /did you mean `([^`]+)`\?/;

/**
 * Text with `code` spans. Given the diagnostic's range, a "did you mean `x`?" becomes a button that
 * writes x over the span.
 */
function codeNodes(hint, range = null) {
  const nodes = [];
  const suggestion = range && SUGGESTION.exec(hint);
  hint.split(/(`[^`]+`)/).forEach((part) => {
    if (!part.startsWith('`')) nodes.push(part);
    else if (suggestion && part === `\`${suggestion[1]}\``) {
      nodes.push(h('button', { type: 'button', class: 'suggestion', title: 'Apply this fix',
        onclick: () => replaceRange(range.from, range.to, suggestion[1]) }, suggestion[1]));
    } else nodes.push(h('code', {}, part.slice(1, -1)));
  });
  return nodes;
}

/** Shows the diagnostics of `text` (the text they were computed for) if the editor still holds it. */
function renderDiagnostics(diagnostics, text) {
  if (text !== textarea.value) return;
  const items = diagnostics.map((d) => ({ ...d, range: spanToRange(text, d.span) }));
  state.marks = items.map((d) => ({ ...d.range, severity: d.severity === 'warning' ? 'warning' : 'error' }));
  const list = $('#diagnostics');
  list.classList.remove('stale');
  list.replaceChildren(...items.map((d) => h('li', { class: `diagnostic ${d.severity}`, dataset: { code: d.code, severity: d.severity } },
    h('button', { type: 'button', class: 'diagnostic-main', title: 'Select in the editor', onclick: () => selectRange(d.range) },
      h('span', { class: 'severity-icon', 'aria-hidden': 'true' }), h('span', { class: 'visually-hidden' }, `${d.severity}:`),
      h('code', { class: 'diagnostic-code' }, d.code),
      h('span', { class: 'diagnostic-message' }, ...codeNodes(d.message)),
      h('span', { class: 'diagnostic-where muted' }, `${d.line}:${d.column}`)),
    d.hint && h('div', { class: 'diagnostic-hint' }, ...codeNodes(d.hint, d.range)))));
  const errors = items.filter((d) => d.severity !== 'warning').length;
  const warnings = items.length - errors;
  const parts = [errors && `${errors} error${errors > 1 ? 's' : ''}`, warnings && `${warnings} warning${warnings > 1 ? 's' : ''}`].filter(Boolean);
  setCheckStatus(errors ? 'error' : warnings ? 'warning' : 'ok', parts.join(', ') || 'No problems');
  renderHighlight();
}

function setCheckStatus(kind, message) {
  const status = $('#check-status');
  status.className = `check-status ${kind}`;
  status.textContent = message;
}

/** A 422 about the segment puts its diagnostics in the list; any other error was reported already. */
function segmentError(err, text) {
  if (err instanceof ApiError && err.isSegmentError) renderDiagnostics(err.diagnostics, text);
  else reported(err);
}

/* ---------------------------------------------------------------- live refresh and counts */

let refreshTimer = 0;

/** Typing cancels what is in flight at once and refreshes after a pause. */
function scheduleRefresh(delay = 250) {
  clearTimeout(refreshTimer);
  cancel('check', 'count', 'preview', 'trend');
  setCountState('stale');
  refreshTimer = setTimeout(refresh, delay);
}

const hasSegment = (text) => significant(tokenize(text)).length > 0;
const panelKey = (...extra) => JSON.stringify([textarea.value, queryScope(), state.target, ...extra]);

/** check → count, and the open tab's query when it is one that follows the text (preview, trend). */
async function refresh() {
  clearTimeout(refreshTimer);
  const segment = textarea.value;
  if (!state.snapshot) return;
  if (!hasSegment(segment)) {
    cancel('check', 'count', 'preview', 'trend');
    renderDiagnostics([], segment);
    setCheckStatus('', '');
    renderCounts(null);
    setCountState('');
    return;
  }
  setCountState('busy');
  const signal = begin('check');
  let check;
  try {
    ({ data: check } = await api('/check', { method: 'POST', body: { segment, snapshot: state.snapshot.id }, signal }));
  } catch (err) {
    if (err.name !== 'AbortError') setCountState('failed');
    if (err.status === 503 && err.retryAfter) scheduleRefresh(err.retryAfter * 1000);
    return reported(err);
  }
  state.checked = { text: segment, ok: check.ok, diagnostics: check.diagnostics };
  renderDiagnostics(check.diagnostics, segment);
  if (!check.ok) {
    setCountState('blocked');
    return;
  }
  await Promise.all([refreshCounts(segment), refreshPanel(state.tab)]);
}

async function refreshCounts(segment) {
  const signal = begin('count');
  try {
    const { data } = await api('/count', { method: 'POST', body: { segment, ...queryScope() }, signal });
    // Warnings only the count can tell (say, a window reaching before the history) join the check's.
    const key = (d) => `${d.code}:${d.span.start}:${d.span.end}`;
    const known = new Set(state.checked.diagnostics.map(key));
    const extra = (data.diagnostics || []).filter((d) => !known.has(key(d)));
    if (extra.length) renderDiagnostics([...state.checked.diagnostics, ...extra], segment);
    renderCounts(data, segment);
    setCountState('');
  } catch (err) {
    if (err.name === 'AbortError') return;
    setCountState(err.isSegmentError ? 'blocked' : 'failed');
    if (err.status === 503 && err.retryAfter) scheduleRefresh(err.retryAfter * 1000);
    segmentError(err, segment);
  }
}

function setCountState(kind) {
  const label = { busy: 'Updating…', stale: 'Updating…', blocked: 'Fix the errors to update', failed: 'Out of date' }[kind] || '';
  const node = $('#count-state');
  node.className = `count-state ${kind}`;
  node.textContent = label;
  $('#audience-body').classList.toggle('is-stale', kind !== '');
  $('.tabs-card').classList.toggle('is-stale', kind === 'blocked');
}

function renderCounts(data, segment) {
  const snap = state.snapshot;
  setNumber($('#count-installations'), data?.counts.installations);
  setNumber($('#count-persons'), data?.counts.persons);
  $('#share-installations').textContent = data ? `${fmtPct(data.counts.installations, snap.installations)} of ${fmtInt(snap.installations)}` : '';
  $('#share-persons').textContent = data ? `${fmtPct(data.counts.persons, snap.persons)} of ${fmtInt(snap.persons)}` : '';
  for (const [channel, base] of [['push', 'installations'], ['email', 'persons'], ['sms', 'persons']]) {
    const value = data?.reachable[channel];
    setNumber($(`#reach-${channel}`), value);
    $(`#reach-${channel}-bar`).style.width = data && data.counts[base] ? `${(100 * value) / data.counts[base]}%` : '0';
    $(`#reach-${channel}`).title = data ? `${fmtPct(value, data.counts[base])} of the ${base}` : '';
  }
  renderConditions(data?.conditions || [], segment);
  $('#count-meta').textContent = data ? `Counted in ${data.elapsed_ms.toFixed(1)} ms · as of ${fmtDay(data.as_of)}` : '';
}

/**
 * Each top-level `and` condition counted alone, with a bar against the snapshot's installations: the
 * shortest bar is the condition that narrows the audience most.
 */
function renderConditions(conditions, segment) {
  const list = $('#conditions');
  const total = state.snapshot?.installations || 0;
  const narrowest = conditions.length > 1 ? Math.min(...conditions.map((c) => c.installations)) : -1;
  list.replaceChildren(...conditions.map((c) => {
    const range = spanToRange(segment, c.span);
    return h('li', { class: `condition${c.installations === narrowest ? ' narrowest' : ''}` },
      h('button', { type: 'button', class: 'condition-main', title: `${c.text}\nSelect in the editor`, onclick: () => selectRange(range) },
        h('code', { class: 'condition-text' }, c.text),
        h('span', { class: 'condition-counts' }, h('strong', {}, fmtInt(c.installations)), h('span', { class: 'muted' }, ` · ${fmtInt(c.persons)} persons`),
          c.installations === narrowest && h('span', { class: 'narrowest-tag' }, 'narrowest')),
        h('span', { class: 'bar' }, h('span', { style: `width: ${total ? (100 * c.installations) / total : 0}%` }))));
  }));
  if (!conditions.length) list.append(h('li', { class: 'empty muted small' }, 'Write a segment to see how each condition narrows it.'));
}

/* ---------------------------------------------------------------- preview */

const preview = { columns: [], rows: [], limit: 50 };

function columnName(a) {
  return state.catalog.ambiguous(a) ? `${a.entity}.${a.name}` : a.name;
}

/** The checkbox list of columns: for persons only person attributes make sense. */
function renderColumnChooser() {
  const attrs = state.catalog.attributes.filter((a) => state.target === 'installations' || a.entity === 'person');
  const available = new Set(attrs.map(columnName));
  preview.columns = preview.columns.filter((c) => available.has(c));
  const groups = ['installation', 'person'].map((entity) => attrs.filter((a) => a.entity === entity)).filter((g) => g.length);
  $('#columns-list').replaceChildren(...groups.map((group) => h('fieldset', { class: 'columns-group' },
    h('legend', {}, `${group[0].entity} attributes`),
    ...group.map((a) => h('label', { class: 'check small' },
      h('input', { type: 'checkbox', value: columnName(a), checked: preview.columns.includes(columnName(a)) }), ` ${a.name}`)))));
  updateColumnsSummary();
}

function updateColumnsSummary() {
  const label = preview.columns.length ? `${preview.columns.length} chosen` : 'default';
  $('#columns-summary').textContent = `Columns: ${label}`;
  $('#export-columns').textContent = preview.columns.length ? preview.columns.join(', ') : 'default (choose in Preview)';
}

$('#columns-list').addEventListener('change', () => {
  preview.columns = $$('#columns-list input:checked').map((input) => input.value);
  updateColumnsSummary();
  refreshPanel('preview');
});
$('#columns-reset').addEventListener('click', () => {
  preview.columns = [];
  renderColumnChooser();
  refreshPanel('preview');
});

async function refreshPreview({ more = false } = {}) {
  const segment = textarea.value;
  const signal = begin('preview');
  const offset = more ? preview.rows.length : 0;
  const body = { segment, target: state.target, limit: preview.limit, offset, ...queryScope() };
  if (preview.columns.length) body.columns = preview.columns;
  $('#panel-preview').classList.add('is-loading');
  try {
    const { data } = await api('/preview', { method: 'POST', body, signal });
    preview.rows = more ? [...preview.rows, ...data.rows] : data.rows;
    state.panelKeys.preview = panelKey(preview.columns);
    renderPreview(data.columns, data.has_more);
  } catch (err) {
    segmentError(err, segment);
  } finally {
    if (!signal.aborted) $('#panel-preview').classList.remove('is-loading');
  }
}

function cell(value) {
  if (value == null) return h('td', { class: 'null' }, '—');
  if (Array.isArray(value)) return h('td', {}, ...value.map((v) => h('span', { class: 'chip' }, String(v))));
  if (typeof value === 'number') return h('td', { class: 'num' }, String(value));
  if (typeof value === 'boolean') return h('td', { class: value ? 'bool-true' : 'bool-false' }, String(value));
  return h('td', {}, String(value));
}

function renderPreview(columns, hasMore) {
  $('#preview-table').replaceChildren(
    h('thead', {}, h('tr', {}, ...columns.map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, ...preview.rows.map((row) => h('tr', {}, ...row.map(cell)))));
  $('#preview-info').textContent = `${fmtInt(preview.rows.length)} ${state.target} shown${hasMore ? ', more match' : ''}`;
  $('#preview-more').hidden = !hasMore;
}

$('#preview-more').addEventListener('click', () => refreshPreview({ more: true }));

/* ---------------------------------------------------------------- trend */

let trend = null;   // the last answer, kept to redraw on resize

async function refreshTrend() {
  const segment = textarea.value;
  const signal = begin('trend');
  const asOf = new Date(asOfOverride() || state.snapshot.as_of);
  const from = isoDay(new Date(asOf - 30 * 86400e3));
  const body = { segment, target: state.target, from, to: isoDay(asOf), every: $('#trend-every').value, snapshot: state.snapshot.id };
  $('#panel-trend').classList.add('is-loading');
  try {
    const { data } = await api('/trend', { method: 'POST', body, signal });
    trend = data;
    state.panelKeys.trend = panelKey($('#trend-every').value);
    renderTrend();
  } catch (err) {
    segmentError(err, segment);
  } finally {
    if (!signal.aborted) $('#panel-trend').classList.remove('is-loading');
  }
}

/** A step of 1, 2, 2.5 or 5 × 10^k that covers `max` in about four ticks. */
function niceStep(max) {
  const rough = max / 4;
  const base = 10 ** Math.floor(Math.log10(rough));
  return base * ([1, 2, 2.5, 5, 10].find((m) => m * base >= rough));
}

function renderTrend() {
  const chart = $('#trend-chart');
  const points = trend.points.map((p) => ({ date: p.as_of, count: p.count }));
  const width = Math.max(480, $('#trend-wrap').clientWidth);
  const height = 260;
  const m = { top: 16, right: 20, bottom: 30, left: 60 };
  const [iw, ih] = [width - m.left - m.right, height - m.top - m.bottom];
  const step = niceStep(Math.max(1, ...points.map((p) => p.count)));
  const top = step * Math.ceil(Math.max(1, ...points.map((p) => p.count)) / step);
  const x = (i) => m.left + (points.length > 1 ? (i * iw) / (points.length - 1) : iw / 2);
  const y = (v) => m.top + ih - (v / top) * ih;
  chart.setAttribute('viewBox', `0 0 ${width} ${height}`);
  chart.setAttribute('height', height);
  const grid = [];
  for (let v = 0; v <= top; v += step) {
    grid.push(svg('line', { class: 'grid', x1: m.left, x2: width - m.right, y1: y(v), y2: y(v) }),
      svg('text', { class: 'axis', x: m.left - 8, y: y(v) + 4, 'text-anchor': 'end' }, fmtInt(v)));
  }
  const labels = [];
  for (let i = points.length - 1; i >= 0; i -= Math.max(1, Math.ceil(points.length / 7))) {
    labels.push(svg('text', { class: 'axis', x: x(i), y: height - 8, 'text-anchor': 'middle' }, fmtDay(points[i].date).replace(/, \d{4}$/, '')));
  }
  const line = points.map((p, i) => `${i ? 'L' : 'M'}${x(i).toFixed(1)},${y(p.count).toFixed(1)}`).join('');
  const area = points.length ? `${line}L${x(points.length - 1)},${y(0)}L${x(0)},${y(0)}Z` : '';
  const guide = svg('line', { class: 'guide', y1: m.top, y2: m.top + ih, visibility: 'hidden' });
  const dot = svg('circle', { class: 'dot', r: 4, visibility: 'hidden' });
  const overlay = svg('rect', { class: 'overlay', x: m.left, y: m.top, width: iw, height: ih });
  chart.replaceChildren(...grid, svg('line', { class: 'baseline', x1: m.left, x2: width - m.right, y1: y(0), y2: y(0) }),
    ...labels, svg('path', { class: 'area', d: area }), svg('path', { class: 'line', d: line }), guide, dot, overlay);

  const tooltip = $('#trend-tooltip');
  let focused = points.length - 1;
  const show = (i) => {
    focused = i;
    const p = points[i];
    for (const node of [guide, dot]) node.setAttribute('visibility', 'visible');
    guide.setAttribute('x1', x(i));
    guide.setAttribute('x2', x(i));
    dot.setAttribute('cx', x(i));
    dot.setAttribute('cy', y(p.count));
    tooltip.replaceChildren(h('span', { class: 'muted' }, fmtDay(p.date)), h('strong', {}, `${fmtInt(p.count)} ${trend.target}`));
    tooltip.hidden = false;
    const scale = chart.getBoundingClientRect().width / width;
    tooltip.style.left = `${Math.min(x(i) * scale + 12, $('#trend-wrap').clientWidth - tooltip.offsetWidth - 4)}px`;
    tooltip.style.top = `${Math.max(0, y(p.count) * scale - 48)}px`;
  };
  const hide = () => {
    for (const node of [guide, dot]) node.setAttribute('visibility', 'hidden');
    tooltip.hidden = true;
  };
  overlay.addEventListener('mousemove', (e) => {
    const scale = chart.getBoundingClientRect().width / width;
    const px = (e.clientX - chart.getBoundingClientRect().left) / scale;
    show(Math.max(0, Math.min(points.length - 1, Math.round(((px - m.left) / iw) * (points.length - 1)))));
  });
  overlay.addEventListener('mouseleave', hide);
  chart.onkeydown = (e) => {
    if (e.key !== 'ArrowLeft' && e.key !== 'ArrowRight') return;
    e.preventDefault();
    show(Math.max(0, Math.min(points.length - 1, focused + (e.key === 'ArrowLeft' ? -1 : 1))));
  };
  chart.onblur = hide;

  const [first, last] = [points[0], points.at(-1)];
  chart.setAttribute('aria-label', first ? `${trend.target} from ${fmtDay(first.date)} to ${fmtDay(last.date)}: ${fmtInt(first.count)} to ${fmtInt(last.count)}. Arrow keys step through the points.` : 'No points');
  const change = first && first.count ? ` (${last.count >= first.count ? '+' : ''}${(((last.count - first.count) / first.count) * 100).toFixed(1)}%)` : '';
  $('#trend-info').textContent = first ? `${fmtInt(first.count)} → ${fmtInt(last.count)} ${trend.target}${change} · ${trend.elapsed_ms.toFixed(0)} ms` : '';
}

$('#trend-every').addEventListener('change', () => refreshPanel('trend'));
let resizeTimer = 0;
addEventListener('resize', () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => { if (trend && state.tab === 'trend') renderTrend(); autosize(); }, 150);
});

/* ---------------------------------------------------------------- explain */

async function runExplain() {
  selectTab('explain');
  const segment = textarea.value;
  if (!hasSegment(segment)) return;
  const signal = begin('explain');
  const output = $('#explain-output');
  $('#panel-explain').classList.add('is-loading');
  $('#explain-info').textContent = $('#explain-analyze').checked ? 'Running the query…' : 'Planning…';
  try {
    const body = { segment, target: state.target, analyze: $('#explain-analyze').checked, ...queryScope() };
    const { data } = await api('/explain', { method: 'POST', body, signal });
    state.panelKeys.explain = panelKey();
    output.classList.remove('is-stale');
    output.replaceChildren(...[['Resolved segment', data.resolved], ['Logical plan', data.logical], ['Physical plan', data.physical]]
      .map(([title, text]) => h('section', { class: 'plan' }, h('h4', {}, title), h('pre', {}, text))));
    $('#explain-info').textContent = '';
  } catch (err) {
    $('#explain-info').textContent = err.isSegmentError ? 'The segment has errors.' : '';
    segmentError(err, segment);
  } finally {
    if (!signal.aborted) $('#panel-explain').classList.remove('is-loading');
  }
}

$('#explain').addEventListener('click', runExplain);

/* ---------------------------------------------------------------- export */

let pollTimer = 0;

$('#export-form').addEventListener('change', (e) => {
  if (e.target.name === 'export-source') $('#export-saved').hidden = e.target.value !== 'saved';
});

function renderExportSaved() {
  const chosen = new Set($$('#export-saved input:checked').map((i) => i.value));
  $('#export-saved').replaceChildren(...(state.saved.length ? state.saved.map((s) => h('label', { class: 'check small' },
    h('input', { type: 'checkbox', value: s.name, checked: chosen.has(s.name) }), ` ${s.name}`)) : [h('span', { class: 'muted small' }, 'No saved segments yet.')]));
}

$('#export-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const body = { target: state.target, format: $('#export-format').value, ...queryScope() };
  if ($('#export-channel').value) body.channel = $('#export-channel').value;
  if (preview.columns.length) body.columns = preview.columns;
  if ($('#export-form').elements['export-source'].value === 'saved') {
    body.segments = $$('#export-saved input:checked').map((i) => i.value);
    if (!body.segments.length) return toast(null, 'Choose at least one saved segment to export.', 'info');
  } else {
    if (!hasSegment(textarea.value)) return toast(null, 'Write a segment to export first.', 'info');
    body.segment = textarea.value;
  }
  $('#export-start').disabled = true;
  try {
    const { data } = await api('/exports', { method: 'POST', body });
    state.jobs.set(data.id, data);
    state.currentJob = data.id;
    renderJobs();
    pollJobs();
  } catch (err) {
    // Diagnostics of a saved segment have spans in its text, not the editor's: say it in a toast.
    if (err.isSegmentError && body.segments) toast(err.code, `A saved segment has errors: ${err.diagnostics[0].message}`);
    else segmentError(err, body.segment);
  } finally {
    $('#export-start').disabled = false;
  }
});

async function loadExports() {
  const { data } = await api('/exports');
  state.jobs = new Map(data.exports.map((job) => [job.id, job]));
  renderJobs();
  pollJobs();
}

/** One timer for all running jobs, every second while any is running. */
function pollJobs() {
  clearTimeout(pollTimer);
  const running = [...state.jobs.values()].filter((job) => job.status === 'running');
  if (!running.length) return;
  pollTimer = setTimeout(async () => {
    await Promise.all(running.map((job) => api(`/exports/${encodeURIComponent(job.id)}`, { handles: [404] })
      .then(({ data }) => state.jobs.set(data.id, data))
      .catch((err) => (err.status === 404 ? state.jobs.delete(job.id) : reported(err)))));
    renderJobs();
    pollJobs();
  }, 1000);
}

/** A plain link cannot send the Authorization header, so file downloads take the token as ?token=. */
function fileLink(job, file) {
  const href = `/api/v1/exports/${encodeURIComponent(job.id)}/files/${encodeURIComponent(file.name)}?token=${encodeURIComponent(state.token)}`;
  return h('a', { class: 'download', href, download: file.name }, file.name, h('span', { class: 'muted' }, ` ${fmtInt(file.rows)} rows · ${fmtBytes(file.bytes)}`));
}

function jobSummary(job) {
  const rows = job.status === 'running' ? job.progress?.rows ?? job.rows ?? 0 : job.rows;
  const dropped = job.dropped ? `, ${fmtInt(job.dropped)} not reachable on ${job.channel || 'the channel'} left out` : '';
  if (job.status === 'running') return `Exporting… ${fmtInt(rows)} rows so far`;
  if (job.status === 'done') return `Done: ${fmtInt(rows)} rows in ${job.files.length} file${job.files.length === 1 ? '' : 's'}${dropped}`;
  if (job.status === 'failed') return `Failed: ${job.error?.message || 'unknown error'}`;
  return 'Cancelled';
}

function renderJobs() {
  const current = state.jobs.get(state.currentJob);
  const progress = $('#export-progress');
  progress.className = `export-progress ${current?.status || ''}`;
  progress.replaceChildren(...(current ? [h('span', { class: `status-dot ${current.status}` }), jobSummary(current),
    ...(current.status === 'done' ? current.files.map((f) => fileLink(current, f)) : [])] : []));
  const jobs = [...state.jobs.values()].sort((a, b) => b.created_at.localeCompare(a.created_at));
  $('#export-jobs').replaceChildren(
    h('thead', {}, h('tr', {}, ...['Status', 'Started', 'Rows', 'Files', ''].map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, ...(jobs.length ? jobs.map((job) => h('tr', {},
      h('td', {}, h('span', { class: `status ${job.status}` }, job.status)),
      h('td', { title: job.created_at }, fmtAgo(job.created_at)),
      h('td', { class: 'num' }, fmtInt(job.status === 'running' ? job.progress?.rows ?? 0 : job.rows ?? 0)),
      h('td', {}, h('div', { class: 'files' }, ...(job.files || []).map((f) => fileLink(job, f)),
        job.error && h('span', { class: 'error-text' }, job.error.message))),
      h('td', { class: 'actions' }, h('button', { type: 'button', class: 'button small ghost', onclick: () => removeJob(job) },
        job.status === 'running' ? 'Cancel' : 'Remove')))) : [h('tr', {}, h('td', { colspan: 5, class: 'muted empty' }, 'No exports yet.'))])));
}

async function removeJob(job) {
  try {
    await api(`/exports/${encodeURIComponent(job.id)}`, { method: 'DELETE' });
    if (job.status === 'running') state.jobs.set(job.id, { ...job, status: 'cancelled' });
    else state.jobs.delete(job.id);
    renderJobs();
  } catch (err) {
    reported(err);
  }
}

/* ---------------------------------------------------------------- saved segments */

const nameInput = $('#save-name');
const VALID_NAME = /^[A-Za-z0-9_-]{1,64}$/;

const isDirty = () => textarea.value !== state.doc.savedText;

function setDoc(name, etag, savedText) {
  state.doc = { name, etag, savedText };
  nameInput.value = name || '';
  $('#name-error').textContent = '';
  $('#delete').disabled = !name;
  updateDirty();
  renderSaved();
}

function updateDirty() {
  const dirty = isDirty();
  $('#dirty').hidden = !dirty;
  document.title = `${dirty ? '• ' : ''}${state.doc.name || 'untitled'} · audience`;
  $$('.saved-item').forEach((li) => li.classList.toggle('dirty', dirty && li.dataset.name === state.doc.name));
}

/** The editor survives a reload: text and the saved segment it belongs to, per browser tab. */
function saveDraft() {
  sessionStorage.setItem('audience.draft', JSON.stringify({ text: textarea.value, doc: state.doc }));
}

function restoreDraft() {
  const draft = JSON.parse(sessionStorage.getItem('audience.draft') || 'null');
  if (!draft) return;
  setDoc(draft.doc.name, draft.doc.etag, draft.doc.savedText);
  textarea.value = lastText = draft.text;
  onTextChanged();
}

async function loadSaved() {
  const { data } = await api('/segments');
  state.saved = data.segments.sort((a, b) => a.name.localeCompare(b.name));
  renderSaved();
  renderExportSaved();
}

function renderSaved() {
  const filter = norm($('#saved-filter').value);
  const shown = state.saved.filter((s) => !filter || norm(s.name).includes(filter) || norm(s.text).includes(filter));
  $('#saved-list').replaceChildren(...shown.map((s) => h('li', {
    class: `saved-item${s.name === state.doc.name ? ' active' : ''}${s.name === state.doc.name && isDirty() ? ' dirty' : ''}`,
    dataset: { name: s.name },
  }, h('button', { type: 'button', class: 'saved-open', onclick: () => openSaved(s.name), 'aria-current': s.name === state.doc.name ? 'true' : null },
    h('span', { class: 'saved-name' }, s.name),
    h('span', { class: 'saved-when', title: s.modified_at }, fmtAgo(s.modified_at)),
    h('span', { class: 'saved-text' }, s.text.replace(/#[^\n]*/g, '').replace(/\s+/g, ' ').trim())))));
  if (!shown.length) {
    $('#saved-list').append(h('li', { class: 'empty muted small' }, state.saved.length ? 'No segment matches.' : 'Saved segments appear here.'));
  }
}

$('#saved-filter').addEventListener('input', renderSaved);

async function confirmDiscard() {
  if (!isDirty()) return true;
  const choice = await openDialog({
    title: 'Discard unsaved changes?',
    body: h('p', {}, `The changes to ${state.doc.name || 'this segment'} are not saved.`),
    actions: [{ label: 'Keep editing' }, { label: 'Discard changes', value: 'discard', kind: 'danger' }],
  });
  return choice === 'discard';
}

async function openSaved(name) {
  if (name === state.doc.name && !isDirty()) return;
  if (!(await confirmDiscard())) return;
  try {
    const { data, res } = await api(`/segments/${encodeURIComponent(name)}`);
    setDoc(data.name, data.etag ?? res.headers.get('ETag'), data.text);
    setText(data.text);
    textarea.focus();
  } catch (err) {
    reported(err);
  }
}

$('#new-segment').addEventListener('click', async () => {
  if (!(await confirmDiscard())) return;
  setDoc(null, null, '');
  setText('');
  nameInput.focus();
});

function checkName(name) {
  if (VALID_NAME.test(name)) return true;
  $('#name-error').textContent = name ? 'Use 1–64 letters, digits, - or _' : 'Name the segment to save it';
  nameInput.focus();
  return false;
}

/** Save: If-Match for the segment the editor holds, If-None-Match: * for a new name. */
function save() {
  const name = nameInput.value.trim();
  if (!checkName(name)) return;
  const precondition = name === state.doc.name && state.doc.etag ? { 'If-Match': state.doc.etag } : { 'If-None-Match': '*' };
  return putSegment(name, textarea.value, precondition);
}

async function putSegment(name, text, precondition) {
  $('#save').disabled = true;
  try {
    const { data, res } = await api(`/segments/${encodeURIComponent(name)}`,
      { method: 'PUT', body: { text }, headers: precondition, handles: [400, 409] });
    setDoc(name, data.etag ?? res.headers.get('ETag'), text);
    toast(null, `Saved ${name}`, 'ok');
    await loadSaved();
  } catch (err) {
    if (err.status === 409 && err.current) await resolveConflict(name, text, err.current, 'If-Match' in precondition);
    else if (err.status === 400) $('#name-error').textContent = err.message;
    else if (err.isSegmentError) {
      toast(err.code, 'The segment has errors: fix them before saving.');
      segmentError(err, text);
    } else reported(err);
  } finally {
    $('#save').disabled = false;
  }
}

/** Keeps every line of `text`, marking those the other version does not have. */
function diffView(text, other) {
  const theirs = new Set(other.split('\n'));
  return h('pre', { class: 'conflict-text' }, ...text.split('\n').map((line) => h('span', { class: theirs.has(line) ? '' : 'changed' }, `${line}\n`)));
}

/**
 * A 409: someone saved this name since we read it (or it exists already). Both versions are shown; the
 * user's text is never dropped without their choice, and "take theirs" stays undoable with Ctrl+Z.
 */
async function resolveConflict(name, mine, current, stale) {
  const choice = await openDialog({
    title: stale ? `${name} changed on the server` : `A segment named ${name} already exists`,
    body: h('div', {},
      h('p', {}, stale ? 'Someone saved it after you opened it. Choose the version to keep.' : 'Overwrite it with yours, or open theirs.'),
      h('div', { class: 'conflict' },
        h('div', {}, h('h3', {}, 'Theirs (saved)'), diffView(current.text, mine)),
        h('div', {}, h('h3', {}, 'Yours (editor)'), diffView(mine, current.text)))),
    actions: [{ label: 'Cancel' }, { label: 'Take theirs', value: 'theirs' }, { label: 'Keep mine (overwrite)', value: 'mine', kind: 'primary' }],
    wide: true,
  });
  if (choice === 'mine') await putSegment(name, mine, { 'If-Match': current.etag });
  if (choice === 'theirs') {
    setDoc(name, current.etag, current.text);
    replaceRange(0, textarea.value.length, current.text);
    toast(null, 'Loaded their version. Ctrl+Z brings yours back.', 'info');
  }
}

$('#save').addEventListener('click', save);
nameInput.addEventListener('keydown', (e) => { if (e.key === 'Enter') save(); });
nameInput.addEventListener('input', () => { $('#name-error').textContent = ''; });

$('#save-as').addEventListener('click', async () => {
  const input = h('input', { class: 'input', value: state.doc.name ? `${state.doc.name}-copy` : nameInput.value, maxlength: 64,
    'aria-label': 'New name', spellcheck: 'false', autofocus: true });
  const choice = await openDialog({
    title: 'Save as a new segment',
    body: h('label', { class: 'field' }, h('span', {}, 'Name: letters, digits, - and _'), input),
    actions: [{ label: 'Cancel' }, { label: 'Save', value: 'save', kind: 'primary' }],
  });
  if (choice !== 'save') return;
  nameInput.value = input.value.trim();
  // A new name: create it (If-None-Match), so an existing segment is never overwritten silently.
  if (checkName(nameInput.value)) await putSegment(nameInput.value, textarea.value, { 'If-None-Match': '*' });
});

$('#delete').addEventListener('click', async () => {
  const { name } = state.doc;
  const choice = await openDialog({
    title: `Delete ${name}?`,
    body: h('p', {}, 'Segments that use it with ', h('code', {}, `segment("${name}")`), ' will stop checking. The text stays in the editor.'),
    actions: [{ label: 'Cancel' }, { label: 'Delete', value: 'delete', kind: 'danger' }],
  });
  if (choice === 'delete') await deleteSegment(name, state.doc.etag);
});

async function deleteSegment(name, etag) {
  try {
    await api(`/segments/${encodeURIComponent(name)}`, { method: 'DELETE', headers: { 'If-Match': etag }, handles: [409] });
    setDoc(null, null, '');
    nameInput.value = name;    // Save puts it back
    toast(null, `Deleted ${name}. Save brings it back.`, 'info');
    await loadSaved();
  } catch (err) {
    if (err.status !== 409) return reported(err);
    const current = err.current ?? (await api(`/segments/${encodeURIComponent(name)}`).catch(reported))?.data;
    if (!current) return;
    const choice = await openDialog({
      title: `${name} changed on the server`,
      body: h('div', {}, h('p', {}, 'Someone saved it after you opened it. Its current text:'), h('pre', { class: 'conflict-text' }, current.text)),
      actions: [{ label: 'Cancel' }, { label: 'Delete anyway', value: 'delete', kind: 'danger' }],
    });
    if (choice === 'delete') await deleteSegment(name, current.etag);
  }
}

$('#format').addEventListener('click', async () => {
  const segment = textarea.value;
  if (!hasSegment(segment)) return;
  try {
    const { data } = await api('/check', { method: 'POST', body: { segment, snapshot: state.snapshot?.id } });
    if (!data.ok) return renderDiagnostics(data.diagnostics, segment);
    if (data.canonical != null && data.canonical !== segment && textarea.value === segment) replaceRange(0, segment.length, data.canonical);
  } catch (err) {
    reported(err);
  }
});

addEventListener('beforeunload', (e) => {
  if (isDirty()) e.preventDefault();
});

/* ---------------------------------------------------------------- tabs, target, snapshot */

const TABS = ['preview', 'trend', 'explain', 'export'];

function selectTab(tab) {
  state.tab = tab;
  for (const name of TABS) {
    const button = $(`#tab-${name}`);
    button.setAttribute('aria-selected', String(name === tab));
    button.tabIndex = name === tab ? 0 : -1;
    $(`#panel-${name}`).hidden = name !== tab;
  }
  refreshPanel(tab, true);
}

/**
 * Brings the open tab up to date with the editor when it follows the text (preview, trend); an
 * explain output that no longer matches is only dimmed, since explaining is one click away.
 */
function refreshPanel(tab, onlyIfStale = false) {
  if (tab === 'explain') $('#explain-output').classList.toggle('is-stale', state.panelKeys.explain !== panelKey());
  const extra = { preview: [preview.columns], trend: [$('#trend-every').value] }[tab];
  if (!extra || state.tab !== tab) return;
  if (onlyIfStale && state.panelKeys[tab] === panelKey(...extra)) return;
  if (!hasSegment(textarea.value) || state.checked?.text !== textarea.value || !state.checked.ok) return;
  return tab === 'preview' ? refreshPreview() : refreshTrend();
}

$('.tablist').addEventListener('click', (e) => {
  const tab = e.target.closest('[role=tab]');
  if (tab) selectTab(tab.id.slice(4));
});
$('.tablist').addEventListener('keydown', (e) => {
  const step = { ArrowRight: 1, ArrowLeft: -1 }[e.key];
  if (!step) return;
  const next = TABS[(TABS.indexOf(state.tab) + step + TABS.length) % TABS.length];
  selectTab(next);
  $(`#tab-${next}`).focus();
});

$$('input[name=target]').forEach((radio) => radio.addEventListener('change', () => {
  state.target = radio.value;
  renderColumnChooser();
  refreshPanel(state.tab);
}));

async function loadSnapshots() {
  const { data } = await api('/snapshots');
  state.snapshots = data.snapshots;
  $('#snapshot').replaceChildren(...data.snapshots.map((s) => h('option', { value: s.id, title: s.id },
    `${fmtDay(s.as_of)}${s.id === data.latest ? ' · latest' : ''}`)));
  $('#snapshot').value = data.latest;
  await selectSnapshot(data.latest);
}

async function selectSnapshot(id) {
  const { data } = await api(`/catalog?snapshot=${encodeURIComponent(id)}`);
  state.snapshot = state.snapshots.find((s) => s.id === id);
  state.catalog = indexCatalog(data);
  // `count distinct(`: the word before `(` is the function's last word.
  functionNames = data.functions || functionNames;
  functions = new Set(functionNames.map((f) => f.split(' ').pop()));
  const snap = state.snapshot;
  $('#snapshot-meta').replaceChildren(h('code', {}, snap.id),
    ` · ${fmtInt(snap.persons)} persons · ${fmtInt(snap.installations)} installations · ${fmtInt(snap.events)} events`);
  $('#as-of').max = $('#as-of').value = isoDay(new Date(snap.as_of));
  $('#as-of').min = isoDay(new Date(snap.history_start));
  updateAsOfHint();
  renderColumnChooser();
  renderHighlight();
  refresh();
}

function updateAsOfHint() {
  const backtest = Boolean(asOfOverride());
  $('#as-of-hint').hidden = !backtest;
  $('#as-of-clear').hidden = !backtest;
}

$('#snapshot').addEventListener('change', (e) => selectSnapshot(e.target.value).catch(reported));
$('#as-of').addEventListener('change', () => { updateAsOfHint(); refresh(); });
$('#as-of-clear').addEventListener('click', () => {
  $('#as-of').value = isoDay(new Date(state.snapshot.as_of));
  updateAsOfHint();
  refresh();
});

/* ---------------------------------------------------------------- dialogs and toasts */

/**
 * A modal from the one <dialog>: resolves with the value of the action chosen, or null for Esc and
 * for actions without a value (Cancel). Actions with a value submit the dialog's form, so Enter in
 * an input picks the first of them.
 */
function openDialog({ title, body, actions, wide = false }) {
  const dialog = $('#dialog');
  dialog.classList.toggle('wide', wide);
  dialog.replaceChildren(h('form', { method: 'dialog' },
    h('h2', { id: 'dialog-title' }, title), body,
    h('div', { class: 'dialog-actions' }, ...actions.map((a) => (a.value
      ? h('button', { type: 'submit', value: a.value, class: `button ${a.kind || ''}` }, a.label)
      : h('button', { type: 'button', class: 'button ghost', onclick: () => dialog.close('') }, a.label))))));
  dialog.returnValue = '';
  dialog.showModal();
  return new Promise((resolve) => dialog.addEventListener('close', () => resolve(dialog.returnValue || null), { once: true }));
}

function toast(code, message, kind = 'error') {
  const box = $('#toasts');
  const key = `${code}\n${message}`;
  $$('.toast', box).filter((t) => t.dataset.key === key).forEach((t) => t.remove());
  const node = h('div', { class: `toast ${kind}`, role: kind === 'error' ? 'alert' : 'status', dataset: { key } },
    code && h('code', { class: 'toast-code' }, code),
    h('span', { class: 'toast-message' }, message),
    h('button', { type: 'button', class: 'toast-close', 'aria-label': 'Dismiss', onclick: () => node.remove() }, '×'));
  box.append(node);
  setTimeout(() => node.remove(), kind === 'error' ? 8000 : 4000);
}

/* ---------------------------------------------------------------- keyboard */

// The columns popover is a <details>: Esc and a click elsewhere close it, like a menu.
document.addEventListener('click', (e) => {
  if (!e.target.closest('#columns-popover')) $('#columns-popover').open = false;
});
document.addEventListener('keydown', (e) => {
  if (e.key === 'Escape' && $('#columns-popover').open) {
    $('#columns-popover').open = false;
    $('#columns-summary').focus();
  }
});

document.addEventListener('keydown', (e) => {
  if (!(e.ctrlKey || e.metaKey) || e.altKey || $('#dialog').open) return;
  const key = e.key.toLowerCase();
  if (key === 's') save();
  else if (key === 'enter') refresh();
  else if (key === 'e') runExplain();
  else return;
  e.preventDefault();
});

/* ---------------------------------------------------------------- start-up */

async function start() {
  state.token = readToken();
  restoreDraft();
  autosize();
  renderConditions([], '');
  renderJobs();
  if (!state.token) {
    $('#auth-banner').hidden = false;
    return;
  }
  await Promise.all([loadSnapshots(), loadSaved(), loadExports()].map((p) => p.catch(reported)));
}

start();
