// Small behaviours the pages share. Everything else is HTMX attributes in the templates.
document.addEventListener("click", (event) => {
  const target = event.target.closest("[data-confirm]");
  if (target && !window.confirm(target.dataset.confirm)) {
    event.preventDefault();
  }
});

// The operations page: lines over time, data {labels, series: [{label, axis, values}]}; the
// first series is scaled on the left axis, the second on the right; null values are gaps.
function drawLines(canvas, data) {
  const number = new Intl.NumberFormat(document.documentElement.lang, { maximumFractionDigits: 2 });
  const colors = ["#2456d6", "#d97706"];
  const scales = {};
  data.series.forEach((s, i) => {
    scales[s.axis] = {
      position: i === 0 ? "left" : "right",
      beginAtZero: true,
      title: { display: true, text: s.label },
      ticks: { callback: (v) => number.format(v) },
      grid: { drawOnChartArea: i === 0 },
    };
  });
  new window.Chart(canvas, {
    type: "line",
    data: {
      labels: data.labels,
      datasets: data.series.map((s, i) => ({
        label: s.label, data: s.values, yAxisID: s.axis,
        borderColor: colors[i % colors.length], backgroundColor: colors[i % colors.length],
        pointRadius: 0, borderWidth: 2, spanGaps: false,
      })),
    },
    options: { animation: false, interaction: { mode: "index", intersect: false }, scales },
  });
}

// Charts: <canvas data-chart="bar" data-source="id-of-json-script">; data {labels, values, currency}.
function drawCharts(root) {
  if (!window.Chart) return;
  root.querySelectorAll("canvas[data-chart]").forEach((canvas) => {
    if (canvas.dataset.drawn) return;
    const data = JSON.parse(document.getElementById(canvas.dataset.source).textContent);
    if (canvas.dataset.chart === "operations") {
      drawLines(canvas, data);
      canvas.dataset.drawn = "1";
      return;
    }
    const money = new Intl.NumberFormat(document.documentElement.lang, {
      style: "currency", currency: data.currency || "EUR", maximumFractionDigits: 0,
    });
    new window.Chart(canvas, {
      type: canvas.dataset.chart,
      data: { labels: data.labels, datasets: [{ data: data.values, backgroundColor: "#2456d6" }] },
      options: {
        plugins: { legend: { display: false } },
        scales: { y: { ticks: { callback: (v) => money.format(v) } } },
      },
    });
    canvas.dataset.drawn = "1";
  });
}
window.addEventListener("load", () => drawCharts(document));
// A chart about to be swapped out by HTMX is let go of first.
document.addEventListener("htmx:beforeSwap", (event) => {
  if (!window.Chart) return;
  event.detail.target.querySelectorAll("canvas[data-chart]").forEach((canvas) => {
    const chart = window.Chart.getChart(canvas);
    if (chart) chart.destroy();
  });
});
document.addEventListener("htmx:afterSettle", (event) => drawCharts(event.target));

// Order form: "Remove" on a line drops that row, then re-prices the order (a change event
// on the form triggers its HTMX preview).
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-remove-row]");
  if (!button) return;
  const row = document.querySelector(button.dataset.removeRow);
  const form = button.form;
  if (!row) return;
  const next = row.nextElementSibling || row.previousElementSibling;
  row.remove();
  if (form) form.dispatchEvent(new Event("change", { bubbles: true }));
  const focusTarget = next ? next.querySelector("select, input:not([type=hidden])") : document.getElementById("add-line");
  if (focusTarget) focusTarget.focus();
});

// The pages carry no inline script or event handler (the Content-Security-Policy refuses
// them); these behaviours are asked for with data attributes instead.
// <select data-autosubmit>: choosing an option sends its form.
document.addEventListener("change", (event) => {
  const field = event.target.closest("[data-autosubmit]");
  if (field && field.form) field.form.requestSubmit();
});
// <input data-select-on-focus>: the whole value is selected, ready to copy.
document.addEventListener("focusin", (event) => {
  if (event.target.matches("[data-select-on-focus]")) event.target.select();
});
// <button data-copy="#field">: selects the field and copies its value to the clipboard.
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const field = document.querySelector(button.dataset.copy);
  if (!field) return;
  field.select();
  if (navigator.clipboard) navigator.clipboard.writeText(field.value);
});
