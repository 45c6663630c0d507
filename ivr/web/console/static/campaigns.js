// Campaign progress, live (see live.js): bars, counts, state and the buttons it allows.
"use strict";
(function () {
  const el = window.IvrLive.el;

  function badges(container, counts, attribute, link) {
    if (!container) return;
    const items = Object.keys(counts).map(function (key) {
      const badge = el(link ? "a" : "span", key + ": " + counts[key], "badge");
      badge.setAttribute(attribute, key);
      if (link) badge.href = link(key);
      return badge;
    });
    container.replaceChildren.apply(container, items);
  }

  function update(root, c) {
    c.segments.forEach(function (seg) {
      const bar = root.querySelector('.progress [data-status="' + seg.status + '"]');
      if (bar) bar.className = seg.status + " w" + Math.round(seg.width);
    });
    const progress = root.querySelector(".progress");
    if (progress) {
      progress.setAttribute("aria-valuenow", String(c.percent));
      progress.title = c.finished + " of " + c.total + " finished";
    }
    const finished = root.querySelector(".finished");
    if (finished) finished.textContent = c.finished + " / " + c.total + " finished (" + c.percent + "%)";
    badges(root.querySelector(".outcomes"), c.outcomes, "data-outcome");
    badges(root.querySelector(".statuses"), c.statuses, "data-status-count", function (status) {
      return "/console/notifications?campaign=" + encodeURIComponent(c.id) +
        "&status=" + encodeURIComponent(status);
    });
    const state = root.querySelector(".state");
    if (state && state.textContent.trim() !== c.state) {
      const badge = el("span", c.state, "badge");
      badge.dataset.value = c.state;
      state.replaceChildren(badge);
    }
    root.querySelectorAll("form[data-action]").forEach(function (form) {
      form.hidden = c.actions.indexOf(form.dataset.action) < 0;
    });
    root.dataset.state = c.state;
  }

  window.IvrLive.renderers.campaigns = function (snapshot) {
    snapshot.campaigns.forEach(function (c) {
      document.querySelectorAll('[data-campaign="' + CSS.escape(c.id) + '"]').forEach(function (root) {
        update(root, c);
      });
    });
  };

  // A confirmation before a destructive button (no inline onclick: the CSP forbids it).
  document.addEventListener("submit", function (event) {
    const button = event.target.querySelector("[data-confirm]");
    if (button && !window.confirm(button.dataset.confirm)) event.preventDefault();
  });
})();
