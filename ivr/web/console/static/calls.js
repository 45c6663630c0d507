// The live calls table, rebuilt from each snapshot (see live.js).
"use strict";
(function () {
  const el = window.IvrLive.el;

  window.IvrLive.renderers.calls = function (snapshot) {
    const body = document.querySelector("#live-calls tbody");
    const rows = snapshot.calls.map(function (call) {
      const row = el("tr");
      row.dataset.call = call.id;
      const who = el("td");
      who.append(el("span", call.name || "", "who-name"), " ", el("span", call.number, "mono"));
      if (call.direction === "inbound") who.append(" ", el("span", "inbound", "badge"));
      const status = el("td");
      status.append(el("span", call.status, "badge info"));
      const since = el("td", call.for);
      since.title = call.since;
      const link = el("td");
      if (call.notification) {
        const a = el("a", "notification");
        a.href = "/console/notifications/" + encodeURIComponent(call.notification);
        link.append(a);
      }
      row.append(who, el("td", call.plan), status, el("td", call.state || "–"), since, link);
      return row;
    });
    if (rows.length === 0) {
      const row = el("tr", null, "empty-row");
      const cell = el("td", "No calls under way.", "empty");
      cell.colSpan = 6;
      row.append(cell);
      rows.push(row);
    }
    body.replaceChildren.apply(body, rows);
    const total = snapshot.total;
    let text = total + (total === 1 ? " call" : " calls") + " under way";
    if (total > snapshot.calls.length) text += ", the newest " + snapshot.calls.length + " shown";
    document.getElementById("calls-total").textContent = text + ".";
  };
})();
