// The reports chart: outcomes per day as stacked bars, from the JSON the server put in the
// canvas's data-chart attribute (no inline script: the CSP is script-src 'self').
(function () {
  "use strict";
  var canvas = document.getElementById("outcomes-chart");
  if (!canvas || !window.Chart) return;
  var data = JSON.parse(canvas.dataset.chart || "{}");
  var colors = {
    confirmed: "#1f8a4c", cancelled: "#c53030", reschedule: "#b7791f", opted_out: "#805ad5",
    voicemail: "#2b6cb0", incomplete: "#a0aec0", no_answer: "#718096", unreached: "#4a5568",
    sms_sent: "#dd6b20", skipped: "#d69e2e", cancelled_before_call: "#ed64a6", failed: "#9b2c2c",
  };
  var spare = ["#319795", "#d53f8c", "#3182ce", "#38a169", "#ed8936", "#667eea"];
  (data.datasets || []).forEach(function (set, n) {
    set.backgroundColor = colors[set.label] || spare[n % spare.length];
  });
  var chart = new window.Chart(canvas, {
    type: "bar",
    data: { labels: data.labels || [], datasets: data.datasets || [] },
    options: {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } },
      plugins: { legend: { position: "bottom" } },
    },
  });
  canvas.dataset.rendered = chart ? "1" : "";
})();
