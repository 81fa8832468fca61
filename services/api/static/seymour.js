/* Seymour UI: the little behaviour htmx does not cover (row removal, confirmations, JSON body
   validation as you type, the custom interval field, the alert policy's "edited" note, the
   response-time chart). No build step. */
(function () {
  "use strict";

  // Polled fragments carry the ETag of what they show: send it back, and keep the fragment on a 304
  // (the server drew nothing; htmx would otherwise swap in the empty body).
  document.addEventListener("htmx:configRequest", function (event) {
    var etag = event.detail.elt.getAttribute && event.detail.elt.getAttribute("data-etag");
    if (etag && event.detail.verb === "get") event.detail.headers["If-None-Match"] = etag;
  });
  // A select that applies itself (the tag filter): no inline handlers, so the CSP can forbid them.
  document.addEventListener("change", function (event) {
    if (event.target.matches && event.target.matches("select[data-autosubmit]") && event.target.form) {
      event.target.form.submit();
    }
  });
  document.addEventListener("htmx:beforeSwap", function (event) {
    if (event.detail.xhr.status === 304) event.detail.shouldSwap = false;
  });

  document.addEventListener("click", function (event) {
    var mover = event.target.closest("[data-move-step]");
    if (mover) {
      var card = mover.closest("[data-step-card]");
      var sibling = mover.getAttribute("data-move-step") === "up" ? card.previousElementSibling : card.nextElementSibling;
      if (sibling && sibling.matches("[data-step-card]")) {
        if (mover.getAttribute("data-move-step") === "up") sibling.before(card); else sibling.after(card);
      }
      return;
    }
    var button = event.target.closest("[data-remove-row]");
    if (button) {
      var row = button.closest(".row");
      if (row) row.remove();
    }
  });

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.matches("form[data-confirm]") && !window.confirm(form.getAttribute("data-confirm"))) {
      event.preventDefault();
    }
  });

  function bodyEditor(editor) {
    var textarea = editor.querySelector("textarea");
    var status = editor.querySelector(".json-status");
    var mode = editor.querySelector("input[name=body_mode]:checked");
    var current = mode ? mode.value : "none";
    textarea.hidden = current === "none";
    status.textContent = "";
    status.className = "json-status small";
    if (current !== "json" || !textarea.value.trim()) return;
    try {
      var value = JSON.parse(textarea.value);
      if (value === null || typeof value !== "object") throw new Error("a JSON body must be an object {…} or an array […]");
      status.textContent = "✓ valid JSON";
      status.classList.add("ok");
    } catch (error) {
      status.textContent = "✗ " + error.message;
      status.classList.add("bad");
    }
  }

  function intervalField(select) {
    var custom = document.querySelector("[data-interval-custom]");
    if (custom) custom.hidden = select.value !== "custom";
  }

  function policyEdited(target) {
    var details = target.closest("details.disclosure");
    var note = details && details.querySelector("[data-policy-summary]");
    if (note) note.textContent = "edited: saved with the form";
  }

  document.addEventListener("input", function (event) {
    var editor = event.target.closest("[data-body-editor]");
    if (editor) bodyEditor(editor);
    policyEdited(event.target);
  });
  document.addEventListener("change", function (event) {
    if (event.target.matches("[data-chart-step]")) {
      var chart = document.getElementById("chart");
      if (chart) chart.removeAttribute("data-ready");
      loadChart();
      return;
    }
    var editor = event.target.closest("[data-body-editor]");
    if (editor) bodyEditor(editor);
    if (event.target.matches("[data-interval]")) intervalField(event.target);
  });

  var COLORS = ["#2563eb", "#0d9488", "#9333ea", "#ea580c", "#0891b2", "#65a30d", "#db2777", "#4b5563"];

  function drawChart(el, data) {
    var series = data.series.filter(function (s) { return s.t.length > 0; });
    if (!series.length) {
      el.innerHTML = '<p class="muted">No runs in this window yet.</p>';
      return;
    }
    var stamps = {};
    series.forEach(function (s) { s.t.forEach(function (t) { stamps[t] = true; }); });
    var xs = Object.keys(stamps).map(Number).sort(function (a, b) { return a - b; });
    var index = new Map(xs.map(function (t, i) { return [t, i]; }));
    var failures = xs.map(function () { return null; });
    var columns = series.map(function (s) {
      var ys = xs.map(function () { return null; });
      s.t.forEach(function (t, i) {
        var at = index.get(t);
        ys[at] = s.ms[i];
        if (s.failed[i]) failures[at] = s.ms[i] === null ? 0 : s.ms[i];
      });
      return ys;
    });
    var opts = {
      width: el.clientWidth || 800,
      height: 280,
      scales: { x: { time: true } },
      legend: { live: true },
      series: [{}].concat(series.map(function (s, i) {
        return { label: s.name, stroke: COLORS[i % COLORS.length], width: 1.5, spanGaps: true,
                 points: { show: data.resolution === "hour" || xs.length < 60 },
                 value: function (u, v) { return v === null ? "—" : v.toFixed(0) + " ms"; } };
      })).concat([{ label: "Failed", stroke: "#dc2626", fill: "#dc2626", paths: function () { return null; },
                    points: { show: true, size: 8, fill: "#dc2626", stroke: "#ffffff", width: 1 },
                    value: function (u, v) { return v === null ? "" : "failed"; } }]),
      axes: [{ stroke: "#6b7280", grid: { stroke: "#eef0f3" } },
             { stroke: "#6b7280", grid: { stroke: "#eef0f3" }, size: 70,
               values: function (u, vals) { return vals.map(function (v) { return v + " ms"; }); } }],
    };
    el.innerHTML = "";
    var plot = new window.uPlot(opts, [xs].concat(columns).concat([failures]), el);
    window.addEventListener("resize", function () { plot.setSize({ width: el.clientWidth, height: 280 }); });
    el.setAttribute("data-ready", "true");
  }

  function loadChart() {
    var el = document.getElementById("chart");
    if (!el || !window.uPlot) return;
    var picker = document.querySelector("[data-chart-step]");
    var src = el.getAttribute("data-src");
    if (picker && picker.value) src += "&step=" + encodeURIComponent(picker.value);
    fetch(src, { credentials: "same-origin" })
      .then(function (response) { return response.json(); })
      .then(function (data) { drawChart(el, data); })
      .catch(function () { el.innerHTML = '<p class="muted">The chart could not be loaded.</p>'; });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-body-editor]").forEach(bodyEditor);
    var interval = document.querySelector("[data-interval]");
    if (interval) intervalField(interval);
    loadChart();
  });
  document.addEventListener("runs-changed", function () { window.setTimeout(loadChart, 4000); });
})();
