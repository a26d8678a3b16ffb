/* Throughline web chat widget. Embed with
 *   <script src="https://cx.example.com/v1/webchat/widget.js"
 *           data-token-url="/your-backend/chat-token" async></script>
 * data-token-url answers POST {"visitor":"..."} with {"token":"..."} (your
 * backend asks POST /v1/webchat/token with its channel token). No
 * third-party requests; no cookies; the visitor id stays in localStorage. */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script) return;
  var base = new URL(script.src, location.href).origin;
  var tokenURL = script.getAttribute("data-token-url");
  var title = script.getAttribute("data-title") || "Chat with us";
  var visitor = localStorage.getItem("throughline_visitor");
  if (!visitor) {
    visitor = "v-" + Math.random().toString(36).slice(2) + Date.now().toString(36);
    localStorage.setItem("throughline_visitor", visitor);
  }
  var css = ".tl-chat{position:fixed;right:16px;bottom:16px;font:14px system-ui,sans-serif;z-index:2147483000}" +
    ".tl-open{background:#2b59c3;color:#fff;border:0;border-radius:20px;padding:10px 16px;cursor:pointer}" +
    ".tl-panel{display:none;flex-direction:column;width:320px;height:420px;background:#fff;border:1px solid #ccd;border-radius:8px;box-shadow:0 4px 16px rgba(0,0,0,.15)}" +
    ".tl-chat.tl-shown .tl-panel{display:flex}.tl-chat.tl-shown .tl-open{display:none}" +
    ".tl-head{background:#2b59c3;color:#fff;padding:8px 12px;border-radius:8px 8px 0 0;display:flex;justify-content:space-between}" +
    ".tl-head button{background:none;border:0;color:#fff;cursor:pointer;font-size:16px}" +
    ".tl-log{flex:1;overflow-y:auto;padding:8px;display:flex;flex-direction:column;gap:6px}" +
    ".tl-msg{max-width:80%;padding:6px 10px;border-radius:12px;white-space:pre-wrap;word-wrap:break-word}" +
    ".tl-visitor{align-self:flex-end;background:#2b59c3;color:#fff}.tl-bot,.tl-agent,.tl-system{align-self:flex-start;background:#eef}" +
    ".tl-agent{background:#efe}.tl-form{display:flex;border-top:1px solid #ccd}" +
    ".tl-form input{flex:1;border:0;padding:10px;outline:none}.tl-form button{border:0;background:none;color:#2b59c3;padding:0 12px;cursor:pointer}";
  var style = document.createElement("style");
  style.textContent = css;
  document.head.appendChild(style);
  var root = document.createElement("div");
  root.className = "tl-chat";
  root.innerHTML = '<button class="tl-open" type="button"></button><div class="tl-panel" role="dialog">' +
    '<div class="tl-head"><span></span><button class="tl-close" type="button" aria-label="Close">×</button></div>' +
    '<div class="tl-log" aria-live="polite"></div><form class="tl-form"><input class="tl-input" autocomplete="off" ' +
    'placeholder="Type a message" maxlength="4000"><button type="submit">Send</button></form></div>';
  document.body.appendChild(root);
  root.querySelector(".tl-open").textContent = title;
  root.querySelector(".tl-head span").textContent = title;
  var log = root.querySelector(".tl-log"), input = root.querySelector(".tl-input");
  var shown = {}, outbox = [], ws = null, backoff = 500;

  function show(id, from, text) {
    if (shown[id]) return;
    var el = document.createElement("div");
    el.className = "tl-msg tl-" + from;
    el.textContent = text;
    shown[id] = el;
    log.appendChild(el);
    log.scrollTop = log.scrollHeight;
  }
  function flush() {
    while (ws && ws.readyState === 1 && outbox.length) ws.send(JSON.stringify(outbox.shift()));
  }
  function connect() {
    fetch(tokenURL, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ visitor: visitor }) })
      .then(function (r) { if (!r.ok) throw new Error("token " + r.status); return r.json(); })
      .then(function (j) {
        ws = new WebSocket(base.replace(/^http/, "ws") + "/v1/webchat/ws?token=" + encodeURIComponent(j.token));
        ws.onopen = function () { backoff = 500; flush(); };
        ws.onmessage = function (ev) {
          var f = JSON.parse(ev.data);
          if (f.type === "message") show(f.id, f.from, f.text);
        };
        ws.onclose = retry;
      })
      .catch(retry);
  }
  function retry() {
    ws = null;
    setTimeout(connect, backoff);
    backoff = Math.min(backoff * 2, 30000);
  }
  root.querySelector(".tl-open").onclick = function () { root.classList.add("tl-shown"); input.focus(); };
  root.querySelector(".tl-close").onclick = function () { root.classList.remove("tl-shown"); };
  root.querySelector(".tl-form").onsubmit = function (e) {
    e.preventDefault();
    var text = input.value.trim();
    if (!text) return;
    var id = "m-" + Date.now().toString(36) + Math.random().toString(36).slice(2, 8);
    show(id, "visitor", text);
    outbox.push({ type: "message", id: id, text: text });
    input.value = "";
    flush();
  };
  connect();
})();
