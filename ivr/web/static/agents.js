/* Agents card: each agent's state, pause reason and today's figures (calls, talk time, pauses), with
   pause / resume / end wrap-up / log out / log in buttons (log in: back in at the agent's registered
   phone; without one the API answers 409, shown under the card). Reads the API token the dashboard keeps
   in this tab's sessionStorage; a supervisor's token controls every agent, an agent's own token (a viewer
   token named as the agent) only that agent, others see the figures with the buttons disabled. Polls GET
   /api/agents and answers each button with POST /api/agents/{id}/<action>. Data is inserted as text,
   never as HTML. */
(function () {
  "use strict";

  var TOKEN_KEY = "ivr.apiToken";
  var TICK_MS = 2000;
  var STATES = {
    available: "空闲 Available", ringing: "振铃 Ringing", in_call: "通话 In call", wrap_up: "整理 Wrap-up",
    on_break: "小休 On break", logged_out: "离线 Logged out"
  };
  var ACTIONS = [
    ["pause", "暂停 Pause", function (a) { return a.state !== "on_break" && a.state !== "logged_out"; }],
    ["resume", "恢复 Resume", function (a) { return a.state === "on_break"; }],
    ["wrapup-done", "结束整理 End wrap-up", function (a) { return a.state === "wrap_up"; }],
    /* Log out and log in share one place in the row: only the one that applies is shown ("hide"). */
    ["logout", "登出 Log out", function (a) { return a.state !== "logged_out"; }, "hide"],
    ["login", "登录 Log in", function (a) { return a.state === "logged_out"; }, "hide"]
  ];

  var who = null, whoToken = null, busy = false;

  function $(id) { return document.getElementById(id); }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function headers(token, json) {
    var h = { Authorization: "Bearer " + token };
    if (json) h["Content-Type"] = "application/json";
    return h;
  }

  function minutes(seconds) {
    var s = Math.round(seconds || 0);
    return Math.floor(s / 60) + ":" + ("0" + (s % 60)).slice(-2);
  }

  function mayControl(agent) {
    if (!who) return false;
    return who.role === "supervisor" || who.role === "admin" || who.name === agent.agent_id;
  }

  function act(agent, action, token) {
    var body = {};
    if (action === "pause") body.reason = ($("agent-reason").value || "break").trim();
    $("agent-error").hidden = true;
    busy = true;
    fetch("/api/agents/" + encodeURIComponent(agent.agent_id) + "/" + action, {
      method: "POST", headers: headers(token, true), body: JSON.stringify(body), cache: "no-store"
    })
      .then(function (r) {
        if (r.ok) return null;
        return r.json().then(function (e) { throw new Error(e.error || ("HTTP " + r.status)); });
      })
      .catch(function (e) {
        $("agent-error").textContent = agent.agent_id + ": " + e.message;
        $("agent-error").hidden = false;
      })
      .then(function () { busy = false; load(token); });
  }

  function render(agents, token) {
    var body = $("agents").querySelector("tbody");
    body.textContent = "";
    $("agent-count").textContent = agents.length ? String(agents.length) : "";
    if (!agents.length) {
      var tr = el("tr", "empty");
      var td = el("td", null, "暂无坐席 No agents");
      td.colSpan = 7;
      tr.appendChild(td);
      body.appendChild(tr);
      return;
    }
    agents.forEach(function (a) {
      var today = a.today || {};
      var row = el("tr");
      row.setAttribute("data-agent", a.agent_id);
      row.appendChild(el("td", "agent", a.name && a.name !== a.agent_id ? a.agent_id + " " + a.name : a.agent_id));
      row.appendChild(el("td", "state state-" + a.state, STATES[a.state] || a.state));
      row.appendChild(el("td", "reason", a.pause_reason || ""));
      row.appendChild(el("td", "num calls", today.calls || 0));
      row.appendChild(el("td", "num talk", minutes(today.talk_s)));
      row.appendChild(el("td", "num pauses", (today.pauses || 0) + " · " + minutes(today.paused_s)));
      var cell = el("td", "actions");
      ACTIONS.forEach(function (spec) {
        if (spec[3] === "hide" && !spec[2](a)) return;
        var button = el("button", "btn toggle agent-" + spec[0], spec[1]);  // "agent-": .login is the sign-in overlay
        button.type = "button";
        button.disabled = !mayControl(a) || !spec[2](a);
        button.addEventListener("click", function () { act(a, spec[0], token); });
        cell.appendChild(button);
      });
      row.appendChild(cell);
      body.appendChild(row);
    });
  }

  function load(token) {
    fetch("/api/agents", { headers: headers(token), cache: "no-store" })
      .then(function (r) {
        $("agent-card").hidden = !r.ok;
        return r.ok ? r.json() : null;
      })
      .then(function (data) { if (data && !busy) render(data.agents || [], token); })
      .catch(function (e) { console.warn(e); });
  }

  function tick() {
    var token = sessionStorage.getItem(TOKEN_KEY);
    if (!token) {
      $("agent-card").hidden = true;
      who = null;
      whoToken = null;
      return;
    }
    if (token !== whoToken) {
      whoToken = token;
      fetch("/api/whoami", { headers: headers(token), cache: "no-store" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (me) { who = me; load(token); })
        .catch(function (e) { console.warn(e); });
      return;
    }
    if (!busy) load(token);
  }

  tick();
  setInterval(tick, TICK_MS);
})();
