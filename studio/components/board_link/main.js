// The Device step's browser link: pick the board with Web Serial, open it, and relay its bytes both ways to
// the studio over a WebSocket on the page's own origin (studio/board_relay.py). The Streamlit component
// value carries only events (capabilities, connected, errors), which rerun the page; the data never does.
import { LineFramer, lineText } from "./framing.js";

const box = document.getElementById("box");
const button = document.getElementById("connect");
const showAll = document.getElementById("all");
const statusLine = document.getElementById("status");

const caps = {
  webSerial: "serial" in navigator,
  secure: window.isSecureContext,
  policy: policyAllowsSerial(),
  origin: location.origin,
};

let args = null;
let seq = 0;
let current = null;   // { token, port, ws, framer, closing, writes, reader }
let lastPort = null;  // the port picked last, for Reconnect without the chooser
let lastReopen = null;
let rendered = false;

function policyAllowsSerial() {
  const policy = document.permissionsPolicy || document.featurePolicy;
  try {
    return policy ? policy.allowsFeature("serial") : null;
  } catch (e) {
    return null;
  }
}

function post(type, data) {
  window.parent.postMessage({ isStreamlitMessage: true, type, ...data }, "*");
}

function report(event, extra = {}) {
  seq += 1;
  post("streamlit:setComponentValue", { value: { ...caps, event, seq, ...extra }, dataType: "json" });
}

function setHeight() {
  post("streamlit:setFrameHeight", { height: box.style.display === "none" ? 0 : document.body.scrollHeight });
}

function say(text, kind = "") {
  statusLine.textContent = text;
  statusLine.className = kind;
  setHeight();
}

function errorInfo(e, stage) {
  return { name: (e && e.name) || "Error", message: (e && e.message) || String(e), stage };
}

function relayUrl(token) {
  const at = location.pathname.indexOf("/component/");
  const base = at >= 0 ? location.pathname.slice(0, at) : "";
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${base}${args.relay_path}?token=${encodeURIComponent(token)}`;
}

function describe(port) {
  const info = port.getInfo ? port.getInfo() : {};
  if (info.usbVendorId === undefined) return "a serial port";
  const hex = (v) => v.toString(16).toUpperCase().padStart(4, "0");
  const ids = `${hex(info.usbVendorId)}:${hex(info.usbProductId)}`;
  const xiao = (args.filters || []).some((f) => f.usbVendorId === info.usbVendorId && f.usbProductId === info.usbProductId);
  return xiao ? `XIAO ESP32S3 (${ids})` : `USB serial ${ids}`;
}

function openSocket(url) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.binaryType = "arraybuffer";
    ws.onopen = () => resolve(ws);
    ws.onerror = () => reject(Object.assign(new Error(`no answer from ${url.split("?")[0]}`), { name: "RelayError" }));
  });
}

async function connect(port) {
  const token = args.token;
  const baud = args.baud;
  button.disabled = true;
  say(`Opening ${describe(port)} at ${baud} baud…`);
  try {
    await port.open({ baudRate: baud, bufferSize: 65536 });
  } catch (e) {
    button.disabled = false;
    say(`Could not open the port: ${e.message}`, "bad");
    report("error", { error: errorInfo(e, "open") });
    return;
  }
  let ws;
  try {
    ws = await openSocket(relayUrl(token));
  } catch (e) {
    await port.close().catch(() => {});
    button.disabled = false;
    say("The port is open, but the studio's relay did not answer.", "bad");
    report("error", { error: errorInfo(e, "relay") });
    return;
  }
  const link = { token, port, ws, framer: new LineFramer({ maxLine: args.max_line }), closing: false,
                 writes: Promise.resolve(), written: 0, reader: null, timer: null };
  current = link;
  lastPort = port;
  ws.onmessage = (ev) => onRelayMessage(link, ev.data);
  ws.onclose = () => {
    if (!link.closing) finish(link, "The studio's connection closed; the port was let go.", "relay-closed");
  };
  ws.send(JSON.stringify({ type: "hello", info: port.getInfo ? port.getInfo() : {}, baud }));
  say(`Connected: ${describe(port)} at ${baud} baud, relayed to the studio.`, "good");
  button.disabled = true;
  readLoop(link);
  report("connected", { token, info: port.getInfo ? port.getInfo() : {} });
}

async function readLoop(link) {
  const { port, framer, ws } = link;
  while (!link.closing) {
    if (!port.readable) {
      lost(link, Object.assign(new Error("The port is no longer readable."), { name: "NetworkError" }));
      return;
    }
    const reader = port.readable.getReader();
    link.reader = reader;
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        if (!value || !value.length) continue;
        const out = framer.push(value);
        if (out.send && ws.readyState === WebSocket.OPEN) ws.send(out.send);
        if (out.lines.length) showLast(link, out.lines[out.lines.length - 1]);
        clearTimeout(link.timer);
        if (framer.hasUnsent) {
          link.timer = setTimeout(() => {
            const tail = framer.flush();
            if (tail && ws.readyState === WebSocket.OPEN) ws.send(tail);
          }, 30);
        }
      }
    } catch (e) {
      if (link.closing) return;
      // Framing, parity, break and overrun errors leave the port open with a new stream; anything
      // that leaves it without one (NetworkError: unplugged) ends the link.
      if (!port.readable) {
        lost(link, e);
        return;
      }
    } finally {
      try { reader.releaseLock(); } catch (e) { /* already released */ }
    }
  }
}

function showLast(link, line) {
  const text = lineText(line.bytes);
  if (text.startsWith("FS READY")) say(`Connected: ${describe(link.port)}. The board says: ${text}`, "good");
}

function onRelayMessage(link, data) {
  if (typeof data === "string") {
    let msg = {};
    try { msg = JSON.parse(data); } catch (e) { return; }
    if (msg.type === "close") finish(link, "Disconnected: the port is free again.", "closed");
    if (msg.type === "refused") {
      finish(link, "Another tab already holds this connection.", "error",
             { name: "Busy", message: "the studio refused a second connection", stage: "relay" });
    }
    return;
  }
  const bytes = new Uint8Array(data);
  link.writes = link.writes.then(async () => {
    if (link.closing || !link.port.writable) return;
    const writer = link.port.writable.getWriter();
    try {
      await writer.write(bytes);
      link.written += bytes.length;
      if (link.ws.readyState === WebSocket.OPEN) link.ws.send(JSON.stringify({ type: "ack", n: link.written }));
    } catch (e) {
      lost(link, e, "write");
    } finally {
      try { writer.releaseLock(); } catch (e) { /* already released */ }
    }
  });
}

function lost(link, e, stage = "read") {
  if (link.closing) return;
  const error = errorInfo(e, stage);
  if (link.ws.readyState === WebSocket.OPEN) link.ws.send(JSON.stringify({ type: "lost", ...error }));
  finish(link, `Lost the board: ${error.message}`, "lost", error);
}

async function finish(link, text, event, error) {
  if (link.closing) return;
  link.closing = true;
  clearTimeout(link.timer);
  try { link.ws.close(); } catch (e) { /* gone */ }
  try { if (link.reader) await link.reader.cancel(); } catch (e) { /* gone */ }
  try { await link.writes; } catch (e) { /* gone */ }
  try { await link.port.close(); } catch (e) { /* unplugged ports cannot be closed */ }
  if (current === link) current = null;
  button.disabled = false;
  say(text, event === "closed" ? "" : "bad");
  report(event, error ? { token: link.token, error } : { token: link.token });
}

button.addEventListener("click", async () => {
  // requestPort must run in this click (the browser's user-activation rule), before any await.
  let chosen;
  try {
    chosen = await navigator.serial.requestPort(showAll.checked ? {} : { filters: args.filters });
  } catch (e) {
    say(e.name === "NotFoundError" ? "No port was picked." : `The browser refused: ${e.message}`, "bad");
    report("error", { error: errorInfo(e, "request") });
    return;
  }
  await connect(chosen);
});

async function reopen() {
  let ports = [];
  try {
    ports = await navigator.serial.getPorts();
  } catch (e) {
    report("error", { error: errorInfo(e, "request") });
    return;
  }
  let port = ports.includes(lastPort) ? lastPort : null;
  if (!port) {
    const ours = ports.filter((p) => {
      const i = p.getInfo ? p.getInfo() : {};
      return (args.filters || []).some((f) => f.usbVendorId === i.usbVendorId && f.usbProductId === i.usbProductId);
    });
    port = ours.length === 1 ? ours[0] : null;
  }
  if (!port) {
    say("Press Connect board to pick the board again.", "bad");
    report("error", { error: { name: "NotFoundError", message: "no port this page may reopen", stage: "reopen" } });
    return;
  }
  await connect(port);
}

async function onRender(newArgs) {
  const first = args === null;
  args = newArgs;
  box.style.display = args.active && caps.webSerial ? "block" : "none";
  if (!current) button.disabled = false;
  if (current && current.token !== args.token) {
    // The studio let go of this connection (Disconnect, Reconnect): free the port.
    await finish(current, "Disconnected: the port is free again.", "closed");
  }
  if (first) report("probe");
  if (lastReopen !== null && args.reopen !== lastReopen && caps.webSerial && !current) reopen();
  lastReopen = args.reopen;
  setHeight();
}

window.addEventListener("message", (ev) => {
  if (ev.data && ev.data.type === "streamlit:render") onRender(ev.data.args);
});
window.addEventListener("pagehide", () => {
  if (current) {
    current.closing = true;
    try { current.ws.close(); } catch (e) { /* gone */ }
    current.port.close().catch(() => {});
  }
});
if (caps.webSerial) {
  navigator.serial.addEventListener("disconnect", (ev) => {
    if (current && ev.target === current.port) {
      lost(current, Object.assign(new Error("The device has been lost."), { name: "NetworkError" }));
    }
  });
}
post("streamlit:componentReady", { apiVersion: 1 });
