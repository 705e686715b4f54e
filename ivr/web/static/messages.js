/* Voice messages card: the messages callers left (newest first) with transcript, follow-up and a player,
   and the voice of the customer below it (needs and top themes of the last 7 days' transcripts).
   Reads the same API token the dashboard keeps in this tab's sessionStorage. The audio is fetched with
   the token in the Authorization header and played from a blob: URL (an <audio src> cannot send a
   header, and a token never goes in a URL). Data is inserted as text, never as HTML. Supervisors only:
   the card stays hidden for a viewer's token (the API answers 403). */
(function () {
  "use strict";

  var TOKEN_KEY = "ivr.apiToken";
  var TICK_MS = 2000;
  var REFRESH_MS = 15000;
  var PAGE = 50;
  var ENDED = {
    terminator: "按#结束 # pressed", silence: "静音结束 Silence", max_length: "最长 Max length",
    hangup: "挂机 Hung up"
  };

  var lastToken = null, lastLoad = 0, loading = false, refused = false, playing = {};

  function $(id) { return document.getElementById(id); }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function emptyRow(body, text, columns) {
    var tr = el("tr", "empty");
    var td = el("td", null, text);
    td.colSpan = columns;
    tr.appendChild(td);
    body.appendChild(tr);
  }

  function headers(token) { return { Authorization: "Bearer " + token }; }

  function when(iso) {
    var d = new Date(iso);
    return isNaN(d) ? iso : d.toLocaleString();
  }

  function play(message, cell, token) {
    if (playing[message.id]) { playing[message.id].play(); return; }
    fetch(message.audio, { headers: headers(token), cache: "no-store" })
      .then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.blob();
      })
      .then(function (blob) {
        var audio = el("audio");
        audio.controls = true;
        audio.preload = "auto";
        audio.src = URL.createObjectURL(blob);
        audio.setAttribute("data-message", String(message.id));
        cell.textContent = "";
        cell.appendChild(audio);
        playing[message.id] = audio;
        var started = audio.play();
        if (started && started.catch) started.catch(function () { /* autoplay refused: the controls remain */ });
      })
      .catch(function (e) { cell.textContent = "无法播放 Cannot play: " + e.message; });
  }

  function render(messages, token) {
    var body = $("messages").querySelector("tbody");
    body.textContent = "";
    $("message-count").textContent = messages.length ? String(messages.length) : "";
    if (!messages.length) {
      emptyRow(body, "暂无留言 No messages", 7);
      return;
    }
    messages.forEach(function (m) {
      var tr = el("tr");
      tr.setAttribute("data-message", String(m.id));
      tr.appendChild(el("td", "time", when(m.created_at)));
      tr.appendChild(el("td", "caller", m.caller));
      tr.appendChild(el("td", "queue", m.queue));
      tr.appendChild(el("td", "num duration", m.duration_s.toFixed(1) + " s"));
      var words = m.transcript || "（未识别 not transcribed）";
      if (m.kind === "survey") words = "[NPS " + m.survey_score + "] " + words;
      var said = el("td", "transcript", words);
      said.title = ENDED[m.ended_by] || m.ended_by;
      tr.appendChild(said);
      tr.appendChild(el("td", "follow-up", m.follow_up));
      var cell = el("td", "player");
      if (playing[m.id]) {
        cell.appendChild(playing[m.id]);
      } else {
        var button = el("button", "btn play", "▶ 播放 Play");
        button.type = "button";
        button.addEventListener("click", function () { play(m, cell, token); });
        cell.appendChild(button);
      }
      tr.appendChild(cell);
      body.appendChild(tr);
    });
  }

  function renderThemes(voc) {
    var needs = Object.keys(voc.by_need || {}).map(function (k) { return k + " " + voc.by_need[k]; });
    $("voc-needs").textContent = voc.total ? ("需求 Needs: " + needs.join(" · ")) : "";
    var body = $("voc-themes").querySelector("tbody");
    body.textContent = "";
    var themes = voc.themes || [];
    if (!themes.length) {
      emptyRow(body, "暂无数据 No data yet", 4);
      return;
    }
    themes.forEach(function (t) {
      var row = el("tr");
      row.setAttribute("data-theme", t.term);
      row.appendChild(el("td", "term", t.term));
      row.appendChild(el("td", "num count", t.count));
      row.appendChild(el("td", "needs", Object.keys(t.needs).map(function (k) { return k + " " + t.needs[k]; }).join(", ")));
      row.appendChild(el("td", "examples", t.examples.join(" | ")));
      body.appendChild(row);
    });
  }

  function loadThemes(token) {
    return fetch("/api/messages/themes?since=7d", { headers: headers(token), cache: "no-store" })
      .then(function (r) { return r.ok ? r.json().then(renderThemes) : null; })
      .catch(function (e) { console.warn(e); });
  }

  function load(token) {
    if (loading) return;
    loading = true;
    lastLoad = Date.now();
    fetch("/api/messages?limit=" + PAGE, { headers: headers(token), cache: "no-store" })
      .then(function (r) {
        var card = $("message-card");
        card.hidden = r.status === 403 || r.status === 404 || r.status === 401;
        refused = r.status === 403 || r.status === 404;  // not asked again until the token changes
        if (!r.ok) return null;
        return r.json().then(function (data) {
          render(data.messages || [], token);
          return loadThemes(token);
        });
      })
      .catch(function (e) { console.warn(e); })
      .then(function () { loading = false; });
  }

  function tick() {
    var token = sessionStorage.getItem(TOKEN_KEY);
    if (!token) {
      $("message-card").hidden = true;
      lastToken = null;
      return;
    }
    if (token !== lastToken) {
      lastToken = token;
      refused = false;
      playing = {};
      load(token);
    } else if (!refused && Date.now() - lastLoad >= REFRESH_MS) {
      load(token);
    }
  }

  tick();
  setInterval(tick, TICK_MS);
})();
