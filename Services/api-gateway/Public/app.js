// The Shippy web app: sign up, log in, ship a consignment (a form or a file), your consignments page by page,
// and the fleet with the room each vessel has left. No build step: plain modules the gateway serves.
import { call, APIError } from './api.js';

const $ = (id) => document.getElementById(id);
const session = {
  get token() { return sessionStorage.getItem('shippy.token'); },
  set token(value) { value ? sessionStorage.setItem('shippy.token', value) : sessionStorage.removeItem('shippy.token'); },
};
let pageTokens = [''];

function say(text, kind = 'info') {
  const box = $('message');
  box.textContent = text;
  box.className = kind;
  box.focus();
}

function failed(error) {
  if (error instanceof APIError && error.status === 401 && session.token) {
    session.token = null;
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

async function show(me) {
  const loggedIn = Boolean(me);
  $('whoami').textContent = loggedIn ? `Logged in as ${me.name} <${me.email}>` : 'Not logged in.';
  $('logout').hidden = !loggedIn;
  $('account').hidden = loggedIn;
  for (const id of ['ship', 'consignments', 'fleet']) $(id).hidden = !loggedIn;
  if (loggedIn) await Promise.all([loadConsignments(0), loadFleet()]);
}

async function loadConsignments(index) {
  const token = pageTokens[index] ?? '';
  const query = new URLSearchParams({ page_size: '10' });
  if (token) query.set('page_token', token);
  const page = await call('GET', `/v1/consignments?${query}`, { token: session.token });
  const rows = $('consignment-rows');
  rows.replaceChildren();
  for (const consignment of page.consignments) {
    const row = document.createElement('tr');
    cell(row, consignment.description);
    cell(row, consignment.weight.toLocaleString());
    cell(row, String(consignment.containers.length));
    cell(row, consignment.vessel_id);
    rows.append(row);
  }
  if (page.consignments.length === 0) {
    const row = document.createElement('tr');
    cell(row, 'None yet.');
    rows.append(row);
  }
  pageTokens = pageTokens.slice(0, index + 1);
  if (page.next_page_token) pageTokens.push(page.next_page_token);
  $('consignments-next').disabled = !page.next_page_token;
  $('consignments-next').dataset.index = String(index + 1);
}

async function loadFleet() {
  const page = await call('GET', '/v1/vessels?page_size=500', { token: session.token });
  const rows = $('vessel-rows');
  rows.replaceChildren();
  for (const vessel of page.vessels) {
    const row = document.createElement('tr');
    cell(row, vessel.id);
    cell(row, vessel.name);
    cell(row, `${vessel.room_capacity} of ${vessel.capacity}`);
    cell(row, `${vessel.room_weight.toLocaleString()} of ${vessel.max_weight.toLocaleString()}`);
    rows.append(row);
  }
}

async function ship(body) {
  const consignment = await call('POST', '/v1/consignments', {
    token: session.token, body, headers: { 'Idempotency-Key': crypto.randomUUID() },
  });
  say(`Shipped: "${consignment.description}" on vessel ${consignment.vessel_id}.`, 'success');
  await Promise.all([loadConsignments(0), loadFleet()]);
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
  const created = await call('POST', '/v1/sessions', { body: Object.fromEntries(data) });
  session.token = created.token;
  form.reset();
  const me = await call('GET', '/v1/users/me', { token: session.token });
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
$('logout').addEventListener('click', () => {
  session.token = null;
  show(null);
  say('Logged out.');
});

addContainerRow();
if (session.token) {
  call('GET', '/v1/users/me', { token: session.token }).then(show).catch(failed);
}
