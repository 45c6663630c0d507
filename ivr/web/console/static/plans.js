// The plan page's state graph: Mermaid draws the stateDiagram text the server put in
// #plan-graph (escaped as text) into an SVG. The CSP allows no inline styles, so Mermaid's
// own <style> element does not apply; reports.css styles the graph instead.
(function () {
  "use strict";
  var graph = document.getElementById("plan-graph");
  var status = document.getElementById("plan-graph-status");
  if (!graph) return;
  function done(text, failed) {
    if (!status) return;
    status.textContent = text;
    status.classList.toggle("error", !!failed);
    status.hidden = !failed && !text;
  }
  if (!window.mermaid) {
    done("The graph library did not load.", true);
    return;
  }
  window.mermaid.initialize({
    startOnLoad: false,
    securityLevel: "strict",
    theme: "neutral",
    htmlLabels: false,
    state: { htmlLabels: false },
  });
  window.mermaid
    .run({ nodes: [graph] })
    .then(function () {
      graph.dataset.rendered = "1";
      done("", false);
    })
    .catch(function (error) {
      done("The graph could not be drawn: " + (error && error.message ? error.message : error), true);
    });
})();
