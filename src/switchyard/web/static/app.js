// Shared behaviour: theme toggle, copy buttons, the model page's tabs, charts.
(function () {
  "use strict";
  var root = document.documentElement;

  // --- theme -------------------------------------------------------------------------------
  var toggle = document.getElementById("theme-toggle");
  function isDark() {
    if (root.dataset.theme) { return root.dataset.theme === "dark"; }
    return window.matchMedia("(prefers-color-scheme: dark)").matches;
  }
  function syncToggle() {
    if (toggle) { toggle.setAttribute("aria-pressed", String(isDark())); }
  }
  if (toggle) {
    toggle.addEventListener("click", function () {
      var next = isDark() ? "light" : "dark";
      root.dataset.theme = next;
      try { localStorage.setItem("switchyard-theme", next); } catch (e) { /* none */ }
      syncToggle();
      document.dispatchEvent(new Event("switchyard:theme"));
    });
  }
  syncToggle();

  // --- copy buttons ------------------------------------------------------------------------
  document.querySelectorAll("button.copy").forEach(function (button) {
    button.addEventListener("click", function () {
      var target = document.getElementById(button.dataset.copyTarget);
      var status = button.parentElement.querySelector(".copy-status");
      var text = target ? target.textContent : "";
      var done = function (ok) {
        button.dataset.copied = ok ? "true" : "false";
        if (status) { status.textContent = ok ? "Copied" : "Copy failed"; }
        button.firstChild.textContent = ok ? "Copied" : "Copy";
        setTimeout(function () {
          button.firstChild.textContent = "Copy";
          if (status) { status.textContent = ""; }
        }, 1500);
      };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(function () { done(true); }, function () { done(false); });
      } else {
        // Plain-HTTP origins have no async clipboard: select and copy the old way.
        var area = document.createElement("textarea");
        area.value = text;
        document.body.append(area);
        area.select();
        var ok = false;
        try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
        area.remove();
        done(ok);
      }
    });
  });

  // --- tabs (WAI-ARIA tabs pattern; without JavaScript every panel shows) ------------------
  var tablist = document.querySelector("[role=tablist]");
  if (tablist) {
    var tabs = Array.prototype.slice.call(tablist.querySelectorAll("[role=tab]"));
    var select = function (tab, focus) {
      tabs.forEach(function (t) {
        var selected = t === tab;
        t.setAttribute("aria-selected", String(selected));
        t.tabIndex = selected ? 0 : -1;
        document.getElementById(t.getAttribute("aria-controls")).hidden = !selected;
      });
      if (focus) { tab.focus(); }
      history.replaceState(null, "", "#" + tab.getAttribute("aria-controls"));
      window.dispatchEvent(new Event("resize"));  // charts in a newly shown panel size themselves
    };
    tabs.forEach(function (tab, index) {
      tab.addEventListener("click", function (event) { event.preventDefault(); select(tab, false); });
      tab.addEventListener("keydown", function (event) {
        var next = null;
        if (event.key === "ArrowRight") { next = tabs[(index + 1) % tabs.length]; }
        if (event.key === "ArrowLeft") { next = tabs[(index - 1 + tabs.length) % tabs.length]; }
        if (event.key === "Home") { next = tabs[0]; }
        if (event.key === "End") { next = tabs[tabs.length - 1]; }
        if (next) { event.preventDefault(); select(next, true); }
      });
    });
    var wanted = tabs.filter(function (t) { return "#" + t.getAttribute("aria-controls") === location.hash; })[0];
    select(wanted || tabs[0], false);
  }

  // --- charts (uPlot) ----------------------------------------------------------------------
  var dataBlock = document.getElementById("chart-data");
  if (!dataBlock || typeof uPlot === "undefined") { return; }
  var charts = JSON.parse(dataBlock.textContent);
  var palette = ["#4f6bed", "#e0803a", "#2e9e6b", "#c2417a", "#8a63d2", "#b59a1b"];
  var plots = [];

  function css(name) { return getComputedStyle(root).getPropertyValue(name).trim(); }

  function build(el, spec) {
    el.replaceChildren();
    var ink = css("--ink-muted") || "#666";
    var grid = css("--border") || "#ddd";
    var axis = { stroke: ink, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
    var bars = spec.kind === "bars";
    var series = [{}].concat(spec.series.map(function (s, i) {
      var color = palette[i % palette.length];
      return {
        label: s.label,
        stroke: color,
        width: 2,
        fill: bars ? color + "cc" : undefined,
        paths: bars ? uPlot.paths.bars({ size: [0.6, 48] }) : undefined,
        points: { show: !bars },
        spanGaps: false,
        value: function (u, v) { return v == null ? "—" : (spec.unit ? v.toFixed(2) + " " + spec.unit : v.toLocaleString()); },
      };
    }));
    var data = [spec.x].concat(spec.series.map(function (s) { return s.values; }));
    var opts = {
      width: Math.max(el.clientWidth, 280),
      height: 240,
      series: series,
      axes: [axis, Object.assign({}, axis, { size: 60 })],
      // Bars are centred on their day: leave half a day either side so none is clipped.
      scales: { x: { time: true, range: bars ? function (u, min, max) {
        return [min - 43200, max + 43200];
      } : undefined }, y: { range: function (u, min, max) {
        if (spec.unit === "%") { return [0, 100]; }
        return [0, max > 0 ? max * 1.1 : 1];
      } } },
      legend: { show: true },
      cursor: { drag: { x: false, y: false } },
    };
    var plot = new uPlot(opts, data, el);
    plots.push({ plot: plot, el: el });
    el.dataset.rendered = "true";
  }

  function render() {
    plots.forEach(function (p) { p.plot.destroy(); });
    plots = [];
    document.querySelectorAll("[data-chart]").forEach(function (el) {
      var spec = charts[el.dataset.chart];
      if (!spec || !spec.x || spec.x.length === 0 || spec.series.length === 0) { return; }
      build(el, spec);
    });
  }
  render();
  document.addEventListener("switchyard:theme", render);
  window.addEventListener("resize", function () {
    plots.forEach(function (p) {
      if (p.el.clientWidth > 0) { p.plot.setSize({ width: p.el.clientWidth, height: 240 }); }
    });
  });
})();
