// Live updates over server-sent events. An element with data-events="URL" and
// data-live="NAME" follows that stream; each "update" event goes to the renderer a page
// script registered as IvrLive.renderers[NAME]. Renderers write text (textContent), never
// markup: what callers said must not become HTML.
"use strict";
window.IvrLive = window.IvrLive || { renderers: {} };

(function () {
  function follow(element) {
    const render = window.IvrLive.renderers[element.dataset.live];
    if (!render) return;
    const source = new EventSource(element.dataset.events);
    element.classList.remove("on");
    source.addEventListener("open", function () {
      element.classList.add("on");
      element.title = "updating live";
    });
    source.addEventListener("error", function () {
      element.classList.remove("on");
      element.title = "reconnecting…";
    });
    source.addEventListener("update", function (event) {
      render(JSON.parse(event.data), element);
      element.dataset.updates = String(Number(element.dataset.updates || "0") + 1);
    });
    window.addEventListener("pagehide", function () { source.close(); });
  }

  // Helpers for renderers: build elements from text only.
  window.IvrLive.el = function (tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  };

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-events][data-live]").forEach(follow);
  });
})();
