// The cluster page of a p2p agent. It reads the agent's API from the same
// origin: GET /v1/cluster every two seconds (members, links, digests,
// counters), and two streams, /v1/kv-watch (the store) and /v1/events (the
// live feed), read with fetch so that the API token can travel in the
// Authorization header. Everything a peer published (names, tags, values) is
// inserted as text, never as HTML.
"use strict";

const tokenKey = "p2p-api-token";
const page = {
  token: sessionStorage.getItem(tokenKey) || "",
  view: null, // the last /v1/cluster answer
  names: new Map(), // node ID -> name
  keys: new Map(), // key -> record
  feed: 0,
  epoch: 0, // bumped when the token changes: old loops stop
};

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== undefined && v !== null) node.setAttribute(k, v);
  }
  for (const c of children) {
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function svg(tag, attrs, text) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const short = (id) => (id || "").slice(0, 10);
const nameOf = (id) => page.names.get(id) || short(id);

function setStatus(text) {
  document.getElementById("status").textContent = text;
}

class Unauthorized extends Error {}

function headers() {
  return page.token ? { Authorization: "Bearer " + page.token } : {};
}

async function getJSON(path) {
  const resp = await fetch(path, { headers: headers(), cache: "no-store" });
  if (resp.status === 401) throw new Unauthorized();
  const body = await resp.json().catch(() => null);
  if (!resp.ok) {
    throw new Error((body && body.error && body.error.message) || resp.status + " " + resp.statusText);
  }
  return body;
}

function askToken() {
  const form = document.getElementById("token-form");
  form.hidden = false;
  setStatus("waiting for the API token");
}

document.getElementById("token-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  page.token = document.getElementById("token").value.trim();
  sessionStorage.setItem(tokenKey, page.token);
  document.getElementById("token-form").hidden = true;
  start();
});

// stream reads a server-sent event stream and passes each event's data,
// decoded, to onEvent; it reconnects until the page's epoch changes.
async function stream(path, epoch, onConnect, onEvent) {
  while (epoch === page.epoch) {
    try {
      const resp = await fetch(path, { headers: headers(), cache: "no-store" });
      if (resp.status === 401) throw new Unauthorized();
      if (!resp.ok || !resp.body) throw new Error(path + ": " + resp.status);
      onConnect();
      const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done || epoch !== page.epoch) break;
        buf += value;
        let end;
        while ((end = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, end);
          buf = buf.slice(end + 2);
          const data = block
            .split("\n")
            .filter((l) => l.startsWith("data:"))
            .map((l) => l.slice(5).replace(/^ /, ""))
            .join("\n");
          if (data) onEvent(JSON.parse(data));
        }
      }
    } catch (err) {
      if (err instanceof Unauthorized) {
        askToken();
        return;
      }
    }
    if (epoch !== page.epoch) return;
    setStatus(path + ": connection lost, retrying");
    await sleep(2000);
  }
}

// ---- members, digests, links, counters: GET /v1/cluster ----

async function pollCluster(epoch) {
  while (epoch === page.epoch) {
    try {
      const view = await getJSON("/v1/cluster");
      page.view = view;
      for (const m of view.members) if (m.name) page.names.set(m.id, m.name);
      renderCluster(view);
      renderStore();
      setStatus("updated " + new Date().toLocaleTimeString());
    } catch (err) {
      if (err instanceof Unauthorized) {
        askToken();
        return;
      }
      setStatus("cannot reach the agent: " + err.message);
    }
    await sleep(2000);
  }
}

function formatTags(tags) {
  const pairs = Object.entries(tags || {}).map(([k, v]) => k + "=" + v);
  pairs.sort();
  return pairs.join(", ") || "–";
}

function renderCluster(view) {
  const self = view.members.find((m) => m.self);
  if (self) {
    document.getElementById("whoami").textContent =
      "this agent: " + (self.name || short(self.id)) + " · overlay " + self.addr + " · API " + location.host;
  }
  const body = document.querySelector("#members tbody");
  body.replaceChildren(
    ...view.members.map((m) => {
      const st = view.nodes[m.id];
      const link = m.self ? "self" : m.neighbor ? "neighbor" : "–";
      let digest = "–";
      let keys = "–";
      if (st && !st.error) {
        digest = st.digest.slice(0, 16);
        keys = st.keys;
      } else if (st && st.error) {
        digest = st.error;
      }
      return el(
        "tr",
        { "data-id": m.id, "data-name": m.name || "", "data-state": m.state },
        el("td", {}, m.name || "?"),
        el("td", { class: "state state-" + m.state }, m.state),
        el("td", { class: "mono" }, m.addr),
        el("td", {}, formatTags(m.tags)),
        el("td", {}, link),
        el("td", { class: "mono", title: m.id }, short(m.id)),
        el("td", { class: "num" }, keys),
        el("td", { class: "mono digest" }, digest),
      );
    }),
  );

  const alive = view.members.filter((m) => m.state === "alive");
  const digests = new Set();
  let answered = 0;
  for (const m of alive) {
    const st = view.nodes[m.id];
    if (st && !st.error) {
      digests.add(st.digest);
      answered++;
    }
  }
  const banner = document.getElementById("converged");
  if (view.converged) {
    banner.className = "banner ok";
    banner.textContent = "converged: the " + alive.length + " live members hold the same store (digest " +
      [...digests][0].slice(0, 16) + ")";
  } else {
    banner.className = "banner diverged";
    banner.textContent = "not converged: " + digests.size + " different store digests among " + answered +
      " of " + alive.length + " live members that answered";
  }
  renderGraph(view);
  renderCounters(view);
}

function renderGraph(view) {
  const graph = document.getElementById("graph");
  const members = view.members.slice().sort((a, b) => (a.name || a.id).localeCompare(b.name || b.id));
  const size = 420;
  const radius = members.length > 1 ? 150 : 0;
  const pos = new Map();
  members.forEach((m, i) => {
    const angle = (2 * Math.PI * i) / members.length - Math.PI / 2;
    pos.set(m.id, { x: size / 2 + radius * Math.cos(angle), y: size / 2 + radius * Math.sin(angle) });
  });
  const edges = new Map();
  for (const [id, st] of Object.entries(view.nodes)) {
    if (st.error) continue;
    for (const n of st.neighbors || []) {
      if (!pos.has(id) || !pos.has(n)) continue;
      const key = id < n ? id + " " + n : n + " " + id;
      edges.set(key, [id, n]);
    }
  }
  const parts = [];
  for (const [key, [a, b]] of edges) {
    const p = pos.get(a);
    const q = pos.get(b);
    parts.push(svg("line", { x1: p.x, y1: p.y, x2: q.x, y2: q.y, "data-link": key }));
  }
  const colors = { alive: "#1f7a3a", failed: "#b3261e", left: "#7a6a1f" };
  for (const m of members) {
    const p = pos.get(m.id);
    const g = svg("g", { "data-id": m.id });
    const circle = svg("circle", { cx: p.x, cy: p.y, r: 14, fill: colors[m.state] || "#5d6872", class: m.self ? "self" : "" });
    circle.append(svg("title", {}, (m.name || "?") + " " + m.addr + " (" + m.state + ")"));
    g.append(circle, svg("text", { x: p.x, y: p.y + 30 }, m.name || short(m.id)));
    parts.push(g);
  }
  graph.replaceChildren(...parts);
}

function renderCounters(view) {
  const body = document.querySelector("#counters tbody");
  const rows = [];
  for (const m of view.members) {
    const st = view.nodes[m.id];
    if (!st || st.error) continue;
    const c = st.counters;
    rows.push(
      el(
        "tr",
        { "data-id": m.id },
        el("td", {}, m.name || short(m.id)),
        el("td", { class: "num" }, c.delivered),
        el("td", { class: "num" }, c.messages_in),
        el("td", { class: "num" }, c.messages_out),
        el("td", { class: "num" }, c.drops),
        el("td", { class: "num" }, c.refusals),
      ),
    );
  }
  body.replaceChildren(...rows);
}

// ---- the store: GET /v1/kv-watch ----

function displayValue(b64) {
  let bytes;
  try {
    bytes = Uint8Array.from(atob(b64 || ""), (c) => c.charCodeAt(0));
  } catch {
    return "?";
  }
  try {
    const text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    if (!/[\u0000-\u0008\u000b-\u001f]/.test(text)) return text;
  } catch {
    // not UTF-8
  }
  return "<" + bytes.length + " bytes>";
}

// versionTime turns "2026-11-30T19:58:37.83546434Z.0" (a hybrid logical
// clock) into a local time.
function versionTime(version) {
  const physical = (version || "").replace(/\.\d+$/, "");
  const t = new Date(physical);
  return isNaN(t) ? version : t.toLocaleString();
}

function renderStore() {
  const body = document.querySelector("#store tbody");
  const keys = [...page.keys.keys()].sort();
  body.replaceChildren(
    ...keys.map((k) => {
      const r = page.keys.get(k);
      const value = displayValue(r.value);
      return el(
        "tr",
        { "data-key": k },
        el("td", { class: "mono" }, k),
        el("td", { class: "mono value", title: value }, value),
        el("td", { title: r.writer }, nameOf(r.writer)),
        el("td", { title: r.version }, versionTime(r.version)),
      );
    }),
  );
  document.getElementById("store-empty").hidden = keys.length > 0;
}

function watchStore(epoch) {
  return stream(
    "/v1/kv-watch?prefix=",
    epoch,
    () => page.keys.clear(),
    (ev) => {
      if (ev.type === "put") page.keys.set(ev.record.key, ev.record);
      else if (ev.type === "delete") page.keys.delete(ev.record.key);
      if (ev.type !== "put" || !ev.initial) renderStore();
    },
  );
}

// ---- the live feed: GET /v1/events ----

function addFeed(text, kind) {
  const feed = document.getElementById("feed");
  const now = new Date();
  feed.prepend(el("li", { class: "feed-" + kind }, el("time", {}, now.toLocaleTimeString()), text));
  while (feed.children.length > 100) feed.lastChild.remove();
}

function watchEvents(epoch) {
  return stream(
    "/v1/events",
    epoch,
    () => addFeed("connected to the event stream", "info"),
    (ev) => {
      if (ev.type === "message") {
        const who = ev.name || nameOf(ev.from);
        const how = ev.direct ? "direct" : "broadcast, " + (ev.hops || 0) + " hops";
        addFeed("message from " + who + " (" + how + "): " + JSON.stringify(ev.data), "message");
      } else if (ev.type === "member") {
        addFeed("member " + ev.kind + ": " + (ev.name || nameOf(ev.id)) + " " + ev.addr, "member");
      } else if (ev.type === "error") {
        addFeed("stream error: " + ev.error, "error");
      }
    },
  );
}

function start() {
  page.epoch++;
  const epoch = page.epoch;
  pollCluster(epoch);
  watchStore(epoch);
  watchEvents(epoch);
}

start();
