// The Shippy web app: sign up, log in, ship a consignment (a form or a file), your consignments page by page with
// their status and a Cancel button, kept up to date live (live.js), the fleet with how full each vessel is, and
// (admins) a form to add a vessel.
// No build step: plain modules the gateway serves.
import { call, APIError } from './api.js';
import { follow } from './live.js';

const $ = (id) => document.getElementById(id);
function stored(key) {
  return {
    get: () => sessionStorage.getItem(key),
    set: (value) => (value ? sessionStorage.setItem(key, value) : sessionStorage.removeItem(key)),
  };
}
const access = stored('shippy.token');
const refresh = stored('shippy.refresh');
const session = {
  get token() { return access.get(); },
  get refreshToken() { return refresh.get(); },
  keep(tokens) { access.set(tokens?.token); refresh.set(tokens?.refresh_token); },
  forget() { session.keep(null); },
};

// Access tokens live minutes: a 401 is answered by one refresh (shared by the calls that meet it at once), then
// the call again. A refresh refused means the login is over (expired, revoked, or its token used twice).
let refreshing = null;
async function renew() {
  const presented = session.refreshToken;
  if (!presented) return false;
  refreshing ??= call('POST', '/v1/sessions/refresh', { body: { refresh_token: presented } })
    .then((tokens) => { session.keep(tokens); return true; })
    .catch((error) => { if (error instanceof APIError && error.status === 401) session.forget(); throw error; })
    .finally(() => { refreshing = null; });
  return refreshing;
}

async function authed(method, path, options = {}) {
  try {
    return await call(method, path, { ...options, token: session.token });
  } catch (error) {
    if (!(error instanceof APIError && error.status === 401) || !(await renew())) throw error;
    return call(method, path, { ...options, token: session.token });
  }
}
let pageTokens = [''];
let currentPage = 0;

function say(text, kind = 'info') {
  const box = $('message');
  box.textContent = text;
  box.className = kind;
  box.focus();
}

function failed(error) {
  if (error instanceof APIError && error.status === 401 && session.token) {
    session.forget();
    show(null);
  }
  say(error.message, 'error');
}

function cell(row, text) {
  const td = document.createElement('td');
  td.textContent = text;
  row.append(td);
}

function addContainerRow(values = {}) {
  const row = $('container-row').content.firstElementChild.cloneNode(true);
  row.querySelector('[name=customer_id]').value = values.customer_id ?? '';
  row.querySelector('[name=origin]').value = values.origin ?? '';
  row.querySelector('.remove').addEventListener('click', () => {
    if ($('containers').children.length > 1) row.remove();
  });
  $('containers').append(row);
}

// The live stream while logged in: each change (from this tab, another, or the CLI) lists again.
let stopFollowing = () => {};
function followChanges() {
  stopFollowing();
  stopFollowing = follow({
    token: () => session.token,
    renew,
    onChange: () => relist().catch(failed),
    onConnect: (again) => { if (again) relist().catch(failed); },
    onState: (text) => { $('live').textContent = text; },
  });
}

// One listing at a time: changes that come while one runs are covered by one more after it.
let listing = null;
let listAgain = false;
async function relist() {
  if (listing) { listAgain = true; return listing; }
  listing = Promise.all([loadConsignments(currentPage), loadFleet()]).finally(() => {
    listing = null;
    if (listAgain) { listAgain = false; relist().catch(failed); }
  });
  return listing;
}

async function show(me) {
  const loggedIn = Boolean(me);
  if (loggedIn) followChanges(); else { stopFollowing(); $('live').textContent = ''; }
  $('whoami').textContent = loggedIn ? `Logged in as ${me.name} <${me.email}>` : 'Not logged in.';
  $('logout').hidden = !loggedIn;
  $('account').hidden = loggedIn;
  for (const id of ['ship', 'consignments', 'fleet']) $(id).hidden = !loggedIn;
  $('vessel-form').hidden = !(me?.roles ?? []).includes('admin');
  if (loggedIn) await Promise.all([loadConsignments(0), loadFleet()]);
}

async function loadConsignments(index) {
  const token = pageTokens[index] ?? '';
  const query = new URLSearchParams({ page_size: '10' });
  if (token) query.set('page_token', token);
  const page = await authed('GET', `/v1/consignments?${query}`);
  const rows = $('consignment-rows');
  rows.replaceChildren();
  for (const consignment of page.consignments) {
    const row = document.createElement('tr');
    row.className = `status-${consignment.status}`;
    row.dataset.id = consignment.id;
    cell(row, consignment.description);
    cell(row, consignment.weight.toLocaleString());
    cell(row, String(consignment.containers.length));
    cell(row, consignment.vessel_id);
    cell(row, consignment.status);
    const actions = document.createElement('td');
    if (consignment.status === 'booked') {
      const button = document.createElement('button');
      button.type = 'button';
      button.className = 'cancel';
      button.textContent = 'Cancel';
      button.setAttribute('aria-label', `Cancel "${consignment.description}"`);
      button.addEventListener('click', () => askToCancel(consignment));
      actions.append(button);
    }
    row.append(actions);
    rows.append(row);
  }
  if (page.consignments.length === 0) {
    const row = document.createElement('tr');
    cell(row, 'None yet.');
    rows.append(row);
  }
  currentPage = index;
  pageTokens = pageTokens.slice(0, index + 1);
  if (page.next_page_token) pageTokens.push(page.next_page_token);
  $('consignments-next').disabled = !page.next_page_token;
  $('consignments-next').dataset.index = String(index + 1);
}

async function loadFleet() {
  const page = await authed('GET', '/v1/vessels?page_size=500');
  const rows = $('vessel-rows');
  rows.replaceChildren();
  for (const vessel of page.vessels) {
    const row = document.createElement('tr');
    row.dataset.id = vessel.id;
    cell(row, vessel.id);
    cell(row, vessel.name);
    row.append(bar(vessel.capacity - vessel.room_capacity, vessel.capacity, 'containers'));
    row.append(bar(vessel.max_weight - vessel.room_weight, vessel.max_weight, 'kg'));
    rows.append(row);
  }
}

// A cell with how much of a vessel's room is booked: a bar, and the figures beside it.
function bar(booked, total, unit) {
  const td = document.createElement('td');
  const meter = document.createElement('meter');
  meter.min = 0;
  meter.max = total;
  meter.value = booked;
  meter.high = total * 0.9;
  meter.optimum = 0;
  const text = `${booked.toLocaleString()} of ${total.toLocaleString()} ${unit} booked`;
  meter.setAttribute('aria-label', text);
  meter.textContent = text;
  const figures = document.createElement('span');
  figures.textContent = `${booked.toLocaleString()} / ${total.toLocaleString()}`;
  td.append(meter, figures);
  return td;
}

// Asks before cancelling: the dialog's buttons close it with their value.
function askToCancel(consignment) {
  const dialog = $('cancel-dialog');
  $('cancel-what').textContent =
    `"${consignment.description}": ${consignment.containers.length} containers on vessel ${consignment.vessel_id}.`;
  dialog.returnValue = '';
  dialog.onclose = async () => {
    if (dialog.returnValue !== 'cancel') return;
    try {
      const cancelled = await authed('POST', `/v1/consignments/${encodeURIComponent(consignment.id)}/cancel`);
      await Promise.all([loadConsignments(currentPage), loadFleet()]);
      say(`Cancelled: "${cancelled.description}"; its room on vessel ${cancelled.vessel_id} is free again.`,
        'success');
    } catch (error) {
      failed(error);
    }
  };
  dialog.showModal();
}

async function ship(body) {
  // One key for the call and its retry after a refresh: one consignment, however often it is sent.
  const consignment = await authed('POST', '/v1/consignments', {
    body, headers: { 'Idempotency-Key': crypto.randomUUID() },
  });
  // The lists first, then the message: what it says is on the page when it appears.
  await Promise.all([loadConsignments(0), loadFleet()]);
  say(`Shipped: "${consignment.description}" on vessel ${consignment.vessel_id}.`, 'success');
}

function handle(form, action) {
  $(form).addEventListener('submit', async (event) => {
    event.preventDefault();
    const button = event.target.querySelector('button[type=submit]');
    button.disabled = true;
    try {
      await action(new FormData(event.target), event.target);
    } catch (error) {
      failed(error);
    } finally {
      button.disabled = false;
    }
  });
}

handle('signup-form', async (data, form) => {
  const user = await call('POST', '/v1/users', { body: Object.fromEntries(data) });
  say(`Welcome, ${user.name}: your account is ready. Log in to ship.`, 'success');
  $('login-email').value = user.email;
  form.reset();
});

handle('login-form', async (data, form) => {
  session.keep(await call('POST', '/v1/sessions', { body: Object.fromEntries(data) }));
  form.reset();
  const me = await authed('GET', '/v1/users/me');
  await show(me);
  say(`Logged in as ${me.name}.`, 'success');
});

handle('ship-form', async (data, form) => {
  const containers = [...$('containers').children].map((row) => ({
    customer_id: row.querySelector('[name=customer_id]').value,
    origin: row.querySelector('[name=origin]').value,
  }));
  await ship({ description: data.get('description'), weight: Number(data.get('weight')), containers });
  form.reset();
  $('containers').replaceChildren();
  addContainerRow();
});

handle('vessel-form', async (data, form) => {
  const vessel = await authed('POST', '/v1/vessels', {
    body: { name: data.get('name'), capacity: Number(data.get('capacity')), max_weight: Number(data.get('max_weight')) },
  });
  form.reset();
  await loadFleet();
  say(`Added vessel ${vessel.name} (${vessel.id}).`, 'success');
});

handle('file-form', async (data, form) => {
  const file = data.get('file');
  if (file.size > 64 * 1024) throw new APIError(413, 'Too large', 'The file is larger than 64 KiB.');
  await ship(await file.text());
  form.reset();
});

$('add-container').addEventListener('click', () => addContainerRow());
$('consignments-first').addEventListener('click', () => loadConsignments(0).catch(failed));
$('consignments-next').addEventListener('click', (event) =>
  loadConsignments(Number(event.target.dataset.index)).catch(failed));
$('fleet-refresh').addEventListener('click', () => loadFleet().catch(failed));
$('logout').addEventListener('click', async () => {
  const presented = session.refreshToken;
  session.forget();
  show(null);
  try {
    if (presented) await call('POST', '/v1/sessions/logout', { body: { refresh_token: presented } });
    say('Logged out.');
  } catch (error) {
    say(`Logged out here, but the server could not be told (${error.message}).`, 'error');
  }
});

addContainerRow();
if (session.token) {
  authed('GET', '/v1/users/me').then(show).catch(failed);
}
