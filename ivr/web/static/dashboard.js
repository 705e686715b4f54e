/* Hotline operations dashboard: live numbers over SSE, today's figures from /api/reports/summary,
   charts drawn as inline SVG. No libraries, no build step. Data is inserted as text, never as HTML.
   Every API call carries the API token in an Authorization header. The token is asked for once and
   kept in this tab's sessionStorage: never in a URL or a cookie. EventSource cannot send a header, so
   the event stream is read with fetch and parsed here. */
(function () {
  "use strict";

  var SVG = "http://www.w3.org/2000/svg";
  var SUMMARY_MIN_INTERVAL_MS = 3000;
  var DISPATCH_REFRESH_MS = 15000;
  var CAMPAIGN_REFRESH_MS = 10000;
  var RECONNECT_MS = 2000;
  var TOKEN_KEY = "ivr.apiToken";
  var COLORS = ["#1f6feb", "#0f9d8f", "#e39b12", "#7a5af8", "#d64545", "#1e9e57", "#0ea5e9", "#b4531f"];
  var AGENT_STATES = [
    ["available", "空闲 Available", "#1e9e57"],
    ["ringing", "振铃 Ringing", "#0ea5e9"],
    ["in_call", "通话中 In call", "#1f6feb"],
    ["wrap_up", "话后 Wrap-up", "#7a5af8"],
    ["on_break", "小休 Break", "#e39b12"],
    ["logged_out", "离线 Logged out", "#b8c2cf"]
  ];
  var DIALECTS = {
    cmn: "普通话 Mandarin", yue: "粤语 Cantonese", hak: "客家话 Hakka", nan: "闽南语 Minnan",
    wuu: "吴语 Wu", en: "英语 English", "": "未知 Unknown"
  };
  var STAGES = {
    calls: ["来电", "Calls"],
    intent_captured: ["识别需求", "Need captured"],
    self_service_broke: ["自助中断", "Self-service broke"],
    continued_by_agent: ["人工接续", "Continued by agent"]
  };

  function $(id) { return document.getElementById(id); }

  function el(tag, attrs, text) {
    var node = document.createElementNS(SVG, tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function h(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

  function emptyRow(body, text, columns) {
    var tr = h("tr", "empty"), td = h("td", "", text);
    td.colSpan = columns;
    tr.appendChild(td);
    body.appendChild(tr);
  }

  function setText(id, text) {
    var node = $(id);
    if (!node || node.textContent === String(text)) return;
    node.textContent = text;
    node.classList.add("flash");
    setTimeout(function () { node.classList.remove("flash"); }, 600);
  }

  function pct(v) { return v === null || v === undefined ? "–" : (v * 100).toFixed(1) + "%"; }
  function secs(v) {
    if (v === null || v === undefined) return "–";
    if (v < 60) return Math.round(v) + "s";
    return Math.floor(v / 60) + "m" + String(Math.round(v % 60)).padStart(2, "0") + "s";
  }
  function num(v) { return v === null || v === undefined ? "–" : Number(v).toLocaleString("zh-CN"); }

  /* --- the API token ------------------------------------------------------------------------ */

  var token = null, me = null, running = false;

  function withToken(headers) {
    var out = {};
    Object.keys(headers || {}).forEach(function (k) { out[k] = headers[k]; });
    out.Authorization = "Bearer " + token;
    return out;
  }

  /* fetch with the token; a 401 (a wrong or revoked token) asks for a token again. */
  function api(path, opts) {
    opts = opts || {};
    if (!token) return Promise.reject(new Error("signed out"));
    var init = { method: opts.method || "GET", headers: withToken(opts.headers), cache: "no-store" };
    if (opts.body !== undefined) init.body = opts.body;
    if (opts.signal) init.signal = opts.signal;
    return fetch(path, init).then(function (r) {
      if (r.status === 401) {
        signOut("令牌无效或已撤销 The token is not valid (any more)");
        throw new Error("unauthorized");
      }
      return r;
    });
  }

  function showLogin(message) {
    $("login").hidden = false;
    var box = $("login-error");
    box.textContent = message || "";
    box.hidden = !message;
    $("login-token").focus();
  }

  function signOut(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    token = null;
    me = null;
    stopStream();
    $("who").hidden = true;
    $("signout").hidden = true;
    showLogin(message);
  }

  /* Check a token with /api/whoami before keeping it. */
  function signIn(candidate, quiet) {
    var submit = $("login-submit");
    submit.disabled = true;
    return fetch("/api/whoami", { headers: { Authorization: "Bearer " + candidate }, cache: "no-store" })
      .then(function (r) {
        if (r.status === 401) throw new Error("令牌无效 This is not a valid token");
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.json();
      })
      .then(function (who) {
        token = candidate;
        sessionStorage.setItem(TOKEN_KEY, candidate);
        $("login-token").value = "";
        $("login").hidden = true;
        signedIn(who);
      })
      .catch(function (e) {
        if (quiet) sessionStorage.removeItem(TOKEN_KEY);
        showLogin(quiet ? "" : e.message);
      })
      .then(function () { submit.disabled = false; });
  }

  function loginSubmitted(event) {
    event.preventDefault();
    var candidate = $("login-token").value.trim();
    if (!candidate) { showLogin("请输入令牌 Enter a token"); return; }
    signIn(candidate, false);
  }

  function canAct() { return me !== null && me.role !== "viewer"; }

  function signedIn(who) {
    me = who;
    var badge = $("who");
    badge.textContent = who.name + " · " + who.role;
    badge.hidden = false;
    $("signout").hidden = false;
    $("dispatch-by").textContent = who.name;
    if (!running) {
      running = true;
      setInterval(function () { if (token) scheduleSummary(); }, 60000);
      setInterval(function () { if (token) loadDispatch(); }, DISPATCH_REFRESH_MS);
      setInterval(function () { if (token && campaignsServed) loadCampaigns(); }, CAMPAIGN_REFRESH_MS);
    }
    loadSummary();
    loadDispatch();
    loadCampaigns();
    connect();
  }

  /* --- charts ------------------------------------------------------------------------------ */

  function ring(svg, fraction, color) {
    clear(svg);
    var r = 48, c = 2 * Math.PI * r;
    svg.appendChild(el("circle", { cx: 60, cy: 60, r: r, fill: "none", stroke: "#e8edf3", "stroke-width": 12 }));
    if (fraction === null || fraction === undefined) return;
    var f = Math.max(0, Math.min(1, fraction));
    svg.appendChild(el("circle", {
      cx: 60, cy: 60, r: r, fill: "none", stroke: color, "stroke-width": 12, "stroke-linecap": "round",
      "stroke-dasharray": (c * f).toFixed(1) + " " + c.toFixed(1), transform: "rotate(-90 60 60)"
    }));
  }

  function hbars(svg, items, opts) {
    opts = opts || {};
    clear(svg);
    var width = svg.clientWidth || 320, row = 26, labelW = opts.labelWidth || 128;
    var shown = items.slice(0, opts.max || 8);
    var height = Math.max(row * shown.length + 6, 60);
    svg.setAttribute("viewBox", "0 0 " + width + " " + height);
    svg.setAttribute("height", height);
    if (!shown.length) {
      svg.appendChild(el("text", { x: width / 2, y: 34, "text-anchor": "middle", "class": "nodata" }, "暂无数据 No data yet"));
      return;
    }
    var max = Math.max.apply(null, shown.map(function (d) { return d.value; })) || 1;
    var total = opts.total || shown.reduce(function (a, d) { return a + d.value; }, 0) || 1;
    var barMax = width - labelW - (opts.noteWidth || 70);
    shown.forEach(function (d, i) {
      var y = i * row + 4, w = Math.max(2, (d.value / max) * barMax);
      var label = d.label.length > 17 ? d.label.slice(0, 16) + "…" : d.label;
      svg.appendChild(el("text", { x: 0, y: y + 14, "font-size": 12, fill: "#1b2a3a" }, label));
      svg.appendChild(el("rect", {
        x: labelW, y: y + 3, width: w, height: 15, rx: 4,
        fill: d.color || opts.color || COLORS[i % COLORS.length]
      }));
      var note = num(d.value) + (opts.share === false ? "" : "  " + Math.round((100 * d.value) / total) + "%");
      if (d.note) note = d.note;
      svg.appendChild(el("text", { x: labelW + w + 6, y: y + 15, "font-size": 12, fill: "#6b7a8c" }, note));
    });
  }

  function donut(svg, legend, segments) {
    clear(svg);
    clear(legend);
    var total = segments.reduce(function (a, s) { return a + s.value; }, 0);
    var r = 60, c = 2 * Math.PI * r, offset = 0;
    svg.appendChild(el("circle", { cx: 80, cy: 80, r: r, fill: "none", stroke: "#eef2f7", "stroke-width": 22 }));
    segments.forEach(function (s) {
      if (total > 0 && s.value > 0) {
        var len = (s.value / total) * c;
        svg.appendChild(el("circle", {
          cx: 80, cy: 80, r: r, fill: "none", stroke: s.color, "stroke-width": 22,
          "stroke-dasharray": len.toFixed(2) + " " + (c - len).toFixed(2),
          "stroke-dashoffset": (-offset).toFixed(2), transform: "rotate(-90 80 80)"
        }));
        offset += len;
      }
      var li = h("li");
      var swatch = h("i");
      swatch.style.background = s.color;
      li.appendChild(swatch);
      li.appendChild(h("span", "", s.label));
      li.appendChild(h("b", "", num(s.value)));
      legend.appendChild(li);
    });
    svg.appendChild(el("text", { x: 80, y: 80, "text-anchor": "middle", "font-size": 26, "font-weight": 700, fill: "#1b2a3a" }, String(total)));
    svg.appendChild(el("text", { x: 80, y: 100, "text-anchor": "middle", "font-size": 11, fill: "#6b7a8c" }, "坐席 agents"));
  }

  function funnel(svg, stages) {
    clear(svg);
    var top = stages.length ? stages[0].calls : 0;
    if (!top) {
      svg.appendChild(el("text", { x: 180, y: 100, "text-anchor": "middle", "class": "nodata" }, "暂无数据 No data yet"));
      return;
    }
    var colors = ["#1f6feb", "#0f9d8f", "#e39b12", "#1e9e57"];
    var rowH = 46, maxW = 180, x0 = 8;
    stages.forEach(function (s, i) {
      var w = Math.max(6, (s.calls / top) * maxW);
      var next = i + 1 < stages.length ? Math.max(6, (stages[i + 1].calls / top) * maxW) : w;
      var y = i * rowH + 6, cx = x0 + maxW / 2;
      var pts = [
        [cx - w / 2, y], [cx + w / 2, y], [cx + next / 2, y + rowH - 8], [cx - next / 2, y + rowH - 8]
      ].map(function (p) { return p[0].toFixed(1) + "," + p[1].toFixed(1); }).join(" ");
      svg.appendChild(el("polygon", { points: pts, fill: colors[i % colors.length], opacity: 0.9 }));
      svg.appendChild(el("text", { x: cx, y: y + 24, "text-anchor": "middle", "font-size": 13, "font-weight": 700, fill: "#fff" }, num(s.calls)));
      var name = STAGES[s.stage] || [s.stage, ""];
      var label = el("text", { x: x0 + maxW + 14, y: y + 17, "font-size": 13, fill: "#1b2a3a", "font-weight": 600 }, name[0]);
      label.appendChild(el("tspan", { dx: 6, "font-size": 12, "font-weight": 700, fill: colors[i % colors.length] },
        Math.round((100 * s.calls) / top) + "%"));
      svg.appendChild(label);
      svg.appendChild(el("text", { x: x0 + maxW + 14, y: y + 32, "font-size": 11, fill: "#6b7a8c" }, name[1]));
    });
  }

  /* --- live state (SSE `live`) --------------------------------------------------------------- */

  function renderLive(live) {
    setText("in-ivr", live.in_ivr);
    setText("in-queue", live.in_queue);
    setText("with-agent", live.with_agent);
    var byState = live.agents_by_state || {};
    setText("agents-available", byState.available || 0);
    var online = 0;
    Object.keys(byState).forEach(function (k) { if (k !== "logged_out") online += byState[k]; });
    $("agents-online").textContent = "在线 online " + online;
    var longest = 0;
    (live.queues || []).forEach(function (q) { if (q.waiting && q.longest_wait_s > longest) longest = q.longest_wait_s; });
    $("longest-wait").textContent = live.in_queue ? "最长等待 longest " + secs(longest) : "\u00a0";

    renderQueues(live.queues || []);
    donut($("agents-donut"), $("agents-legend"), AGENT_STATES.map(function (s) {
      return { label: s[1], color: s[2], value: byState[s[0]] || 0 };
    }));
    renderFlows(live.flows || []);
    renderRecent(live.recent || [], live.at);
    $("updated").textContent = "更新 updated " + new Date().toLocaleTimeString("zh-CN", { hour12: false });
  }

  function renderQueues(queues) {
    var body = $("queues").tBodies[0];
    clear(body);
    if (!queues.length) return emptyRow(body, "暂无队列 No queues", 5);
    queues.forEach(function (q) {
      var tr = h("tr");
      tr.appendChild(h("td", "", q.queue));
      tr.appendChild(h("td", "num", num(q.waiting)));
      var wait = h("td"), wrap = h("div", "waitbar"), bar = h("div", "bar");
      bar.style.width = Math.min(160, 2 + q.longest_wait_s) + "px";
      if (q.longest_wait_s > 20) bar.classList.add(q.longest_wait_s > 60 ? "bad" : "warn");
      wrap.appendChild(bar);
      wrap.appendChild(h("span", "", q.waiting ? secs(q.longest_wait_s) : "–"));
      wait.appendChild(wrap);
      tr.appendChild(wait);
      tr.appendChild(h("td", "num", num(q.agents_available)));
      tr.appendChild(h("td", "num", num(q.agents_in_call)));
      body.appendChild(tr);
    });
  }

  function renderFlows(flows) {
    var list = $("flows");
    clear(list);
    if (!flows.length) {
      list.appendChild(h("li", "empty", "暂无流程 No flows loaded"));
      return;
    }
    flows.forEach(function (f) {
      var li = h("li");
      li.appendChild(h("span", "name", f.flow_id));
      li.appendChild(h("span", "ver", f.version ? "v" + f.version : "未投产 not in service"));
      var ok = f.status === "loaded";
      var badge = ok ? "运行中 Loaded" : f.status === "refused"
        ? "修改被拒，旧版本继续服务 Edit refused, v" + f.version + " still serving" : "加载失败 Load failed";
      li.appendChild(h("span", "badge " + (ok ? "ok" : "fail"), badge));
      (f.errors || []).slice(0, 3).forEach(function (e) { li.appendChild(h("span", "err", e)); });
      list.appendChild(li);
    });
  }

  function renderRecent(calls, at) {
    var body = $("recent").tBodies[0];
    clear(body);
    if (!calls.length) return emptyRow(body, "暂无通话 No calls", 4);
    var now = at ? Date.parse(at) : Date.now();
    calls.slice(0, 8).forEach(function (c) {
      var tr = h("tr");
      tr.appendChild(h("td", "", c.caller));
      var where = h("td");
      if (c.agent_id) where.appendChild(h("span", "pill agent", "坐席 " + c.agent_id));
      else if (c.queue) where.appendChild(h("span", "pill queue", "排队 " + c.queue));
      else where.appendChild(h("span", "pill", "IVR " + (c.node || "")));
      tr.appendChild(where);
      tr.appendChild(h("td", "", c.dialect || "–"));
      tr.appendChild(h("td", "", secs(Math.max(0, (now - Date.parse(c.started_at)) / 1000))));
      body.appendChild(tr);
    });
  }

  /* --- today's summary ---------------------------------------------------------------------- */

  function todayStart() {
    var d = new Date();
    d.setHours(0, 0, 0, 0);
    return d;
  }

  function renderSummary(s) {
    setText("calls-today", num(s.calls));
    $("calls-foot").textContent = "进行中 in progress " + num(s.in_progress);
    setText("containment", pct(s.containment));
    ring($("ring-containment"), s.containment, "#0f9d8f");
    setText("service-level", pct(s.service_level));
    ring($("ring-sl"), s.service_level, s.service_level !== null && s.service_level < 0.8 ? "#e39b12" : "#1f6feb");
    setText("nps", s.nps === null ? "–" : (s.nps > 0 ? "+" : "") + s.nps.toFixed(0));
    ring($("ring-nps"), s.nps === null ? null : (s.nps + 100) / 200, s.nps !== null && s.nps < 0 ? "#d64545" : "#7a5af8");
    $("nps-foot").textContent = num(s.surveys) + " 份评价 surveys";
    setText("answer-rate", pct(s.answer_rate));
    $("offered-foot").textContent = "转人工 offered " + num(s.offered);
    setText("abandon-rate", pct(s.abandon_rate));
    $("abandon-foot").textContent = "放弃 abandoned " + num(s.abandoned);
    setText("asa", secs(s.asa_s));
    $("asa-foot").textContent = "人工接听 answered " + num(s.answered);

    var intents = Object.keys(s.intent_mix).map(function (k) { return { label: k, value: s.intent_mix[k] }; });
    hbars($("intent-chart"), intents, { total: s.calls });
    funnel($("funnel-chart"), s.funnel);
    hbars($("breakpoint-chart"), s.breakpoints.map(function (b) {
      return {
        label: b.node || "(call)", value: b.calls, color: "#d64545",
        note: num(b.calls) + " 通 calls · 接续 " + num(b.rescued)
      };
    }), { share: false, noteWidth: 140, labelWidth: 110 });
    var dialects = Object.keys(s.dialects).map(function (k, i) {
      return { label: DIALECTS[k] || k, value: s.dialects[k], color: COLORS[(i + 1) % COLORS.length] };
    });
    hbars($("dialect-chart"), dialects, { labelWidth: 126 });
  }

  var summaryTimer = null, lastSummary = 0, summaryBusy = false;

  function loadSummary() {
    summaryTimer = null;
    if (summaryBusy) { scheduleSummary(); return; }
    summaryBusy = true;
    lastSummary = Date.now();
    var since = todayStart();
    $("today-range").textContent = "自 since " + since.toLocaleDateString("zh-CN") + " 00:00";
    api("/api/reports/summary?since=" + encodeURIComponent(since.toISOString()))
      .then(function (r) { if (!r.ok) throw new Error("summary " + r.status); return r.json(); })
      .then(renderSummary)
      .catch(function (e) { console.warn(e); })
      .then(function () { summaryBusy = false; });
  }

  function scheduleSummary() {
    if (summaryTimer !== null) return;
    var wait = Math.max(0, lastSummary + SUMMARY_MIN_INTERVAL_MS - Date.now());
    summaryTimer = setTimeout(loadSummary, wait);
  }

  /* --- emergency dispatch (GET/POST/DELETE /api/dispatch; no SSE event, so polled) ---------------- */

  var DISPATCH_LOG_ROWS = 8;
  var DISPATCH_ACTIONS = {
    start: "发起 Start", end: "结束 End", expire: "到期 Expired",
    night_start: "夜间开始 Night began", night_end: "夜间结束 Night ended"
  };
  var dispatchBusy = false, dispatchAgain = false;

  function joined(names) { return names && names.length ? names.join(", ") : "–"; }

  function splitNames(text) {
    return text.split(/[,，、\s]+/).map(function (s) { return s.trim(); }).filter(Boolean);
  }

  function pad2(n) { return String(n).padStart(2, "0"); }

  /* A datetime-local value ("2026-07-01T18:00") as ISO-8601 with this browser's offset at that date. */
  function localIso(value) {
    var d = new Date(value);
    if (isNaN(d.getTime())) return value;
    var off = -d.getTimezoneOffset(), sign = off < 0 ? "-" : "+", a = Math.abs(off);
    return d.getFullYear() + "-" + pad2(d.getMonth() + 1) + "-" + pad2(d.getDate()) + "T" + pad2(d.getHours()) +
      ":" + pad2(d.getMinutes()) + ":" + pad2(d.getSeconds()) + sign + pad2(Math.floor(a / 60)) + ":" + pad2(a % 60);
  }

  function when(iso) {
    if (!iso) return "–";
    var d = new Date(iso);
    var time = d.toLocaleTimeString("zh-CN", { hour12: false });
    return d.toDateString() === new Date().toDateString() ? time : d.toLocaleDateString("zh-CN") + " " + time;
  }

  /* The API's `{"error": "..."}` message, or the status when the body is not that. */
  function apiError(response) {
    return response.json().then(
      function (body) { return body && typeof body.error === "string" ? body.error : "HTTP " + response.status; },
      function () { return "HTTP " + response.status; }
    );
  }

  function showDispatchError(message) {
    var box = $("dispatch-error");
    box.textContent = message || "";
    box.hidden = !message;
  }

  function renderDispatchActive(active) {
    var body = $("dispatch-active").tBodies[0];
    clear(body);
    var ops = active.filter(function (d) { return d.id !== "night"; }).length;
    $("dispatch-count").textContent = ops ? "进行中 " + ops + " active" : "";
    if (!active.length) return emptyRow(body, "暂无调度 No dispatch in force", 7);
    active.forEach(function (d) {
      var night = d.id === "night";
      var tr = h("tr", night ? "night" : "");
      tr.dataset.id = d.id;
      var region = h("td");
      if (night) region.appendChild(h("span", "pill night", "夜间规则 Night rule"));
      else {
        region.appendChild(h("span", "region", d.region));
        region.appendChild(h("span", "did", d.id));
      }
      tr.appendChild(region);
      tr.appendChild(h("td", "", joined(d.helper_sites)));
      tr.appendChild(h("td", "queues", joined(d.queues)));
      tr.appendChild(h("td", "", d.until ? when(d.until) : night ? "夜间结束 night's end" : "至结束 until ended"));
      tr.appendChild(h("td", "reason", d.reason || "–"));
      tr.appendChild(h("td", "", d.requested_by || "–"));
      var act = h("td", "num");
      if (night) act.appendChild(h("span", "muted", "按排班 scheduled"));
      else {
        var button = h("button", "btn end", "结束 End");
        button.type = "button";
        button.disabled = !canAct();
        button.addEventListener("click", function () { endDispatch(d.id, button); });
        act.appendChild(button);
      }
      tr.appendChild(act);
      body.appendChild(tr);
    });
  }

  /* What a log entry did: a refusal's reason, or the dispatch id, region ← helper sites, reason, note. */
  function dispatchDetail(e) {
    if (!e.accepted) return e.detail || "–";
    var parts = [], where = e.region && e.region !== "*" ? e.region : "";
    if (e.dispatch_id && e.dispatch_id !== "night") parts.push(e.dispatch_id);
    if (e.action === "start" || e.action === "night_start") where += (where ? " ← " : "") + joined(e.helper_sites);
    if (where) parts.push(where);
    if (e.action === "start" && e.reason) parts.push(e.reason);
    if (e.detail) parts.push(e.detail);
    return parts.join(" · ") || "–";
  }

  function renderDispatchLog(entries) {
    var body = $("dispatch-log").tBodies[0];
    clear(body);
    if (!entries.length) return emptyRow(body, "暂无记录 No changes recorded", 4);
    entries.slice(0, DISPATCH_LOG_ROWS).forEach(function (e) {
      var tr = h("tr", e.accepted ? "" : "refused");
      tr.appendChild(h("td", "", when(e.at)));
      tr.appendChild(h("td", "", DISPATCH_ACTIONS[e.action] || e.action));
      var result = h("td");
      result.appendChild(h("span", "badge " + (e.accepted ? "ok" : "fail"), e.accepted ? "已执行 Accepted" : "被拒 Refused"));
      tr.appendChild(result);
      tr.appendChild(h("td", "detail", dispatchDetail(e)));
      body.appendChild(tr);
    });
  }

  function dispatchAvailable(yes, message) {
    $("dispatch-fields").disabled = !yes;
    var note = $("dispatch-note");
    note.textContent = yes ? "" : "应急调度不可用 Emergency dispatch unavailable: " + message;
    note.hidden = yes;
  }

  function loadDispatch() {
    if (dispatchBusy) { dispatchAgain = true; return Promise.resolve(); }
    dispatchBusy = true;
    return api("/api/dispatch?limit=" + DISPATCH_LOG_ROWS)
      .then(function (r) {
        if (!r.ok) return apiError(r).then(function (m) { dispatchAvailable(false, m); });
        return r.json().then(function (data) {
          if (canAct()) dispatchAvailable(true);
          else dispatchAvailable(false, "需要主管令牌 a supervisor's token is needed to start or end one");
          renderDispatchActive(data.active || []);
          renderDispatchLog(data.log || []);
        });
      })
      .catch(function (e) { console.warn(e); })
      .then(function () {
        dispatchBusy = false;
        if (dispatchAgain) { dispatchAgain = false; loadDispatch(); }
      });
  }

  function endDispatch(id, button) {
    button.disabled = true;
    showDispatchError("");
    api("/api/dispatch/" + encodeURIComponent(id), { method: "DELETE" })
      .then(function (r) { return r.ok ? null : apiError(r); })
      .catch(function (e) { return String(e); })
      .then(function (message) {
        if (message) showDispatchError(message);
        loadDispatch();
      });
  }

  function startDispatch(event) {
    event.preventDefault();
    var until = $("dispatch-until").value;
    var body = {
      region: $("dispatch-region").value.trim(),
      helper_sites: splitNames($("dispatch-sites").value),
      until: until ? localIso(until) : null,
      reason: $("dispatch-reason").value.trim()
    };
    var queues = splitNames($("dispatch-queues").value);
    if (queues.length) body.queues = queues;
    var submit = $("dispatch-submit");
    submit.disabled = true;
    showDispatchError("");
    api("/api/dispatch", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body)
    })
      .then(function (r) {
        if (!r.ok) return apiError(r);
        $("dispatch-form").reset();
        return null;
      })
      .catch(function (e) { return String(e); })
      .then(function (message) {
        submit.disabled = false;
        if (message) showDispatchError(message);
        loadDispatch();
      });
  }

  /* --- outbound campaigns (GET /api/campaigns, POST .../pause|resume; polled). The card stays hidden
     when the engine runs no campaigns (the routes are not there: 404). ---------------------------- */

  function showCampaignError(message) {
    var box = $("campaign-error");
    box.textContent = message || "";
    box.hidden = !message;
  }

  function resultsText(results) {
    var names = Object.keys(results || {}).sort(function (a, b) { return results[b] - results[a]; });
    return names.length ? names.map(function (n) { return n + " " + results[n]; }).join(" · ") : "–";
  }

  function renderCampaigns(campaigns) {
    var body = $("campaigns").tBodies[0];
    clear(body);
    var running = campaigns.filter(function (c) { return !c.paused; }).length;
    $("campaign-count").textContent = campaigns.length ? "进行中 " + running + " / " + campaigns.length + " running" : "";
    if (!campaigns.length) return emptyRow(body, "暂无活动 No campaigns", 7);
    campaigns.forEach(function (c) {
      var tr = h("tr", c.paused ? "paused" : "");
      tr.dataset.campaign = c.campaign;
      tr.appendChild(h("td", "name", c.campaign));
      var progress = h("td", "progress");
      var bar = h("progress");
      bar.max = Math.max(1, c.targets);
      bar.value = c.done;
      progress.appendChild(bar);
      progress.appendChild(h("span", "done", c.done + " / " + c.targets));
      tr.appendChild(progress);
      tr.appendChild(h("td", "num", String(c.attempted)));
      tr.appendChild(h("td", "num", c.completed + " (" + Math.round(c.completion_rate * 100) + "%)"));
      tr.appendChild(h("td", "detail", resultsText(c.results)));
      var state = h("td");
      state.appendChild(h("span", "badge state " + (c.paused ? "fail" : "ok"), c.paused ? "已暂停 Paused" : "进行中 Running"));
      tr.appendChild(state);
      var act = h("td", "num");
      var button = h("button", "btn toggle", c.paused ? "继续 Resume" : "暂停 Pause");
      button.type = "button";
      button.disabled = !canAct();
      button.title = canAct() ? "" : "需要主管令牌 a supervisor's token is needed";
      button.addEventListener("click", function () { toggleCampaign(c, button); });
      act.appendChild(button);
      tr.appendChild(act);
      body.appendChild(tr);
    });
  }

  // False once the engine answered 404 (it runs no campaigns): polling stops, so the browser does not
  // log a failed request every CAMPAIGN_REFRESH_MS; signing in again asks once more.
  var campaignsServed = true;

  function loadCampaigns() {
    return api("/api/campaigns")
      .then(function (r) {
        campaignsServed = r.status !== 404;
        $("campaign-card").hidden = !campaignsServed;
        if (!campaignsServed) return null;
        if (!r.ok) return apiError(r).then(showCampaignError);
        return r.json().then(function (data) { renderCampaigns(data.campaigns || []); });
      })
      .catch(function (e) { console.warn(e); });
  }

  function toggleCampaign(campaign, button) {
    button.disabled = true;
    showCampaignError("");
    var path = "/api/campaigns/" + encodeURIComponent(campaign.campaign) + (campaign.paused ? "/resume" : "/pause");
    api(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" })
      .then(function (r) { return r.ok ? null : apiError(r); })
      .catch(function (e) { return String(e); })
      .then(function (message) {
        if (message) showCampaignError(message);
        loadCampaigns();
      });
  }

  /* --- live updates: the event stream, read with fetch so it can carry the token ---------------- */

  var stream = null;  // the AbortController of the stream being read

  function stopStream() {
    if (stream) { stream.abort(); stream = null; }
  }

  function onEvent(block) {
    var name = "message", data = [];
    block.split("\n").forEach(function (line) {
      if (line.indexOf("event:") === 0) name = line.slice(6).trim();
      else if (line.indexOf("data:") === 0) data.push(line.slice(5).replace(/^ /, ""));
    });
    if (!data.length) return;
    if (name === "live") renderLive(JSON.parse(data.join("\n")));
    else if (name === "calls") scheduleSummary();
  }

  function readEvents(reader) {
    var decoder = new TextDecoder(), buffer = "";
    function pump() {
      return reader.read().then(function (chunk) {
        if (chunk.done) return null;
        buffer += decoder.decode(chunk.value, { stream: true });
        var end = buffer.indexOf("\n\n");
        while (end >= 0) {
          onEvent(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
          end = buffer.indexOf("\n\n");
        }
        return pump();
      });
    }
    return pump();
  }

  function connect() {
    if (!token || stream) return;
    var controller = new AbortController(), conn = $("conn"), text = $("conn-text");
    stream = controller;
    api("/api/events", { headers: { Accept: "text/event-stream" }, signal: controller.signal })
      .then(function (r) {
        if (!r.ok || !r.body) throw new Error("events: HTTP " + r.status);
        conn.className = "conn conn-on";
        text.textContent = "实时 Live";
        scheduleSummary();
        loadDispatch();
        return readEvents(r.body.getReader());
      })
      .catch(function (e) { if (!controller.signal.aborted) console.warn(e); })
      .then(function () {
        if (stream === controller) stream = null;
        conn.className = "conn conn-off";
        text.textContent = token ? "重连中 Reconnecting" : "未登录 Signed out";
        if (!controller.signal.aborted && token) setTimeout(connect, RECONNECT_MS);
      });
  }

  /* --- wiring --------------------------------------------------------------------------------- */

  function tick() {
    $("clock").textContent = new Date().toLocaleTimeString("zh-CN", { hour12: false });
  }

  tick();
  setInterval(tick, 1000);
  $("dispatch-form").addEventListener("submit", startDispatch);
  $("login-form").addEventListener("submit", loginSubmitted);
  $("signout").addEventListener("click", function () { signOut(""); });
  var kept = sessionStorage.getItem(TOKEN_KEY);
  if (kept) signIn(kept, true);
  else showLogin("");
})();
