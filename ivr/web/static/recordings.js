/* Call recordings card: the newest recorded calls and a player for any call's recording (stereo:
   the caller on the left, the agent on the right). Supervisors only (the API answers 403 to a viewer,
   and the card stays hidden). The WAV is fetched with the API token this tab keeps in sessionStorage
   and played from a blob: URL; the token never goes into a URL. Text only, never HTML. */
(function () {
  "use strict";

  var TOKEN_KEY = "ivr.apiToken";
  var POLL_MS = 2000;
  var RELOAD_MS = 20000;
  var LIMIT = 20;

  // refused: the API said 403/404 to this token (a viewer's; an engine without the routes): not asked
  // again until the token changes, so a viewer's console gets no failed request every RELOAD_MS.
  var state = { token: null, loadedAt: 0, busy: false, url: null, refused: false };

  function byId(id) { return document.getElementById(id); }

  function cell(text, cls) {
    var td = document.createElement("td");
    if (cls) td.className = cls;
    td.textContent = text;
    return td;
  }

  function auth() { return { Authorization: "Bearer " + state.token }; }

  function say(text) {
    var note = byId("recording-note");
    note.textContent = text || "";
    note.hidden = !text;
  }

  /* Fetch one call's recording and put it in the player. */
  function open(callId) {
    say("加载中 Loading " + callId + " …");
    fetch("/api/calls/" + encodeURIComponent(callId) + "/recording", { headers: auth(), cache: "no-store" })
      .then(function (r) {
        if (r.ok) return r.blob();
        return r.json().then(function (body) { throw new Error(body.error || ("HTTP " + r.status)); },
                             function () { throw new Error("HTTP " + r.status); });
      })
      .then(function (blob) {
        var player = byId("recording-player");
        if (state.url) URL.revokeObjectURL(state.url);
        state.url = URL.createObjectURL(blob);
        player.src = state.url;
        player.hidden = false;
        player.setAttribute("data-call", callId);
        byId("recording-playing").textContent = callId;
        say("");
        var started = player.play();
        if (started && started.catch) started.catch(function () { /* no autoplay: the controls are there */ });
      })
      .catch(function (e) { say("无法播放 Cannot play: " + e.message); });
  }

  function show(items) {
    var body = byId("recordings").querySelector("tbody");
    body.textContent = "";
    byId("recording-count").textContent = items.length ? String(items.length) : "";
    if (!items.length) {
      var empty = document.createElement("tr");
      empty.className = "empty";
      var td = cell("暂无录音 No recordings");
      td.colSpan = 4;
      empty.appendChild(td);
      body.appendChild(empty);
      return;
    }
    items.forEach(function (item) {
      var tr = document.createElement("tr");
      tr.setAttribute("data-call", item.call_id);
      tr.appendChild(cell(item.day, "day"));
      tr.appendChild(cell(item.call_id, "call"));
      tr.appendChild(cell(item.duration_s.toFixed(1) + " s", "num duration"));
      var action = cell("", "play");
      var button = document.createElement("button");
      button.type = "button";
      button.className = "btn toggle";
      button.textContent = "▶ 播放 Play";
      button.addEventListener("click", function () { open(item.call_id); });
      action.appendChild(button);
      tr.appendChild(action);
      body.appendChild(tr);
    });
  }

  function reload() {
    if (state.busy) return;
    state.busy = true;
    state.loadedAt = Date.now();
    fetch("/api/recordings?limit=" + LIMIT, { headers: auth(), cache: "no-store" })
      .then(function (r) {
        byId("recording-card").hidden = !r.ok;
        state.refused = r.status === 403 || r.status === 404;
        return r.ok ? r.json().then(function (data) { show(data.recordings || []); }) : null;
      })
      .catch(function (e) { console.warn("recordings", e); })
      .then(function () { state.busy = false; });
  }

  function poll() {
    var token = sessionStorage.getItem(TOKEN_KEY);
    if (token !== state.token) {
      state.token = token;
      state.refused = false;
      byId("recording-card").hidden = true;
      if (token) reload();
      return;
    }
    if (token && !state.refused && Date.now() - state.loadedAt > RELOAD_MS) reload();
  }

  document.addEventListener("DOMContentLoaded", function () {
    byId("recording-form").addEventListener("submit", function (event) {
      event.preventDefault();
      var callId = byId("recording-call").value.trim();
      if (callId) open(callId);
    });
    poll();
    setInterval(poll, POLL_MS);
  });
})();
