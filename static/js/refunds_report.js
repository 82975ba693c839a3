// The staff console's refunds report: draws its charts (Chart.js, static/vendor/chartjs)
// from the figures the page carries in <script type="application/json" id="refunds-report-data">.
(() => {
  const source = document.getElementById("refunds-report-data");
  if (!source || !window.Chart) return;
  const report = JSON.parse(source.textContent);
  const colours = ["#417690", "#ba2121", "#b35c00", "#5c8a00", "#7a4fa0", "#2a7d8c", "#8c6d2a"];
  const draw = (id, type, labels, datasets, options = {}) => {
    const canvas = document.getElementById(id);
    if (!canvas) return;
    new window.Chart(canvas, {
      type,
      data: {
        labels,
        datasets: datasets.map((set, i) => ({
          backgroundColor: type === "doughnut" ? colours : colours[i % colours.length],
          borderColor: type === "line" ? colours[i % colours.length] : undefined,
          ...set,
        })),
      },
      options: { responsive: true, maintainAspectRatio: false, animation: false, ...options },
    });
  };
  // Counts have whole ticks; the stacked charts add their parts up.
  const counts = { scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } };
  const stacked = {
    scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } },
  };
  const months = report.months;

  draw("chart-months", "bar", months, [{ label: "Requests", data: report.requests }], counts);
  const amounts = Object.entries(report.amounts).flatMap(([currency, sets]) => [
    { label: `Asked (${currency})`, data: sets.asked.map(Number) },
    { label: `Approved (${currency})`, data: sets.approved.map(Number) },
  ]);
  draw("chart-amounts", "bar", months, amounts);
  draw("chart-kinds", "bar", report.kinds.labels, [
    { label: "Approved", data: report.kinds.approved },
    { label: "Denied", data: report.kinds.denied },
    {
      label: "Pending",
      data: report.kinds.lines.map((n, i) => n - report.kinds.approved[i] - report.kinds.denied[i]),
    },
  ], stacked);
  draw("chart-reasons", "doughnut", report.reasons.labels, [
    { label: "Requests", data: report.reasons.requests },
  ]);
  draw("chart-ack", "bar", months, [
    { label: "On time", data: report.ack.on_time },
    { label: "Late", data: report.ack.late },
  ], stacked);
  draw("chart-decide", "bar", months, [
    { label: "On time", data: report.decide.on_time },
    { label: "Late", data: report.decide.late },
  ], stacked);
  draw("chart-breaches", "line", months, [{ label: "Breach rate (%)", data: report.breach_rate }], {
    scales: { y: { beginAtZero: true, suggestedMax: 100 } },
  });
})();
