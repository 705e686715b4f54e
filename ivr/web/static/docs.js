/* Renders /api/openapi.json as a readable page (no external libraries). */
(function () {
  "use strict";
  function h(tag, cls, text) {
    var n = document.createElement(tag);
    if (cls) n.className = cls;
    if (text !== undefined) n.textContent = text;
    return n;
  }
  function schemaText(s) {
    if (!s) return "";
    if (s.$ref) return s.$ref.split("/").pop();
    if (s.type === "array") return "array of " + schemaText(s.items);
    var t = Array.isArray(s.type) ? s.type.join(" | ") : s.type || "object";
    return s.enum ? t + " (" + s.enum.filter(function (x) { return x !== null; }).join(", ") + ")" : t;
  }
  /* The document needs a token like every API route: the one the dashboard kept in this tab. */
  var token = sessionStorage.getItem("ivr.apiToken");
  var headers = token ? { Authorization: "Bearer " + token } : {};
  fetch("/api/openapi.json", { headers: headers, cache: "no-store" }).then(function (r) {
    if (r.status === 401) throw new Error("请先在看板登录 Sign in on the dashboard (/) first: this page uses its token");
    if (!r.ok) throw new Error("HTTP " + r.status);
    return r.json();
  }).then(function (spec) {
    document.getElementById("title").textContent = spec.info.title + " " + spec.info.version;
    document.getElementById("description").textContent = spec.info.description;
    var ops = document.getElementById("ops");
    Object.keys(spec.paths).forEach(function (path) {
      var item = spec.paths[path];
      Object.keys(item).forEach(function (method) {
        var op = item[method], box = h("section", "op"), head = h("div", "head");
        head.appendChild(h("span", "method " + method, method.toUpperCase()));
        head.appendChild(h("span", "path", path));
        head.appendChild(h("span", "", op.summary));
        box.appendChild(head);
        var rows = (op.parameters || []).map(function (p) {
          return [p.name, p.in + (p.required ? ", required" : ""), schemaText(p.schema), p.description || ""];
        });
        if (op.requestBody) {
          var body = op.requestBody.content["application/json"].schema;
          rows.push(["(body)", "application/json", schemaText(body), ""]);
        }
        Object.keys(op.responses).forEach(function (code) {
          var resp = op.responses[code], content = resp.content || {};
          var type = Object.keys(content)[0] || "";
          rows.push([code, "response " + type, type ? schemaText(content[type].schema) : "", resp.description]);
        });
        var table = h("table");
        var hr = h("tr");
        ["name", "where", "type", "description"].forEach(function (t) { hr.appendChild(h("th", "", t)); });
        table.appendChild(hr);
        rows.forEach(function (r) {
          var tr = h("tr");
          r.forEach(function (c) { tr.appendChild(h("td", "", c)); });
          table.appendChild(tr);
        });
        box.appendChild(table);
        ops.appendChild(box);
      });
    });
    var schemas = document.getElementById("schemas");
    Object.keys(spec.components.schemas).forEach(function (name) {
      var d = h("details", "op");
      d.appendChild(h("summary", "", name));
      d.appendChild(h("pre", "schema", JSON.stringify(spec.components.schemas[name], null, 2)));
      schemas.appendChild(d);
    });
  }).catch(function (e) {
    document.getElementById("description").textContent = e.message;
  });
})();
