// Your consignments' changes as they happen, from the gateway's live stream (GET /v1/consignment-events, server-sent
// events). Read with fetch, as EventSource cannot send the token; one stream per tab. When it ends (the token
// expired, the network dropped, the gateway restarted) the tab connects again with a fresh token, and catches up by
// listing again, as the stream does not replay what it missed.

// Reads a text/event-stream body, calling `onEvent(name, data)` for each event; comments (keep-alives) are skipped.
async function readEvents(body, onEvent) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let name = 'message';
      const data = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event: ')) name = line.slice(7);
        else if (line.startsWith('data: ')) data.push(line.slice(6));
      }
      if (!block.startsWith(':')) onEvent(name, data.join('\n'));
    }
  }
}

const sleep = (ms, signal) => new Promise((resolve) => {
  const timer = setTimeout(resolve, ms);
  signal.addEventListener('abort', () => { clearTimeout(timer); resolve(); }, { once: true });
});

// Follows the stream until `stop()`: `token()` is the access token now, `renew()` refreshes it (false: the login is
// over), `onChange(event)` is called for each change of a consignment, `onConnect(again)` each time the stream opens
// (`again` after a break: list again), and `onState(text)` says whether updates are live.
export function follow({ token, renew, onChange, onConnect, onState }) {
  const controller = new AbortController();
  const { signal } = controller;
  (async () => {
    let pause = 1000;
    let opened = false;
    while (!signal.aborted && token()) {
      try {
        const response = await fetch('/v1/consignment-events', {
          headers: { Accept: 'text/event-stream', Authorization: `Bearer ${token()}` }, signal,
        });
        if (response.status === 401) {
          if (!(await renew().catch(() => false))) break;
          continue;
        }
        if (!response.ok) {
          const problem = await response.json().catch(() => null);
          onState(`Live updates paused: ${problem?.detail ?? `the gateway answered ${response.status}`}.`);
        } else {
          await readEvents(response.body, (name, data) => {
            if (name === 'open') {
              onState('Live: changes appear here as they happen.');
              onConnect(opened);
              opened = true;
              pause = 1000;
            } else if (name.startsWith('consignment.')) {
              onChange(JSON.parse(data));
            }
          });
        }
      } catch {
        if (signal.aborted) break;
        onState('Live updates paused: reconnecting…');
      }
      await sleep(pause, signal);
      pause = Math.min(pause * 2, 30000);
    }
    if (!signal.aborted) onState('Live updates off: log in again.');
  })();
  return () => controller.abort();
}
