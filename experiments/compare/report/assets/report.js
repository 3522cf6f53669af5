// The comparison report's drawing script, inlined into report.html by experiments.compare.report.page.
// Plain ES5-style JavaScript, no library: draws every chart from the embedded JSON. The SVG namespace is read
// from an inline <svg> so the file holds no URL. Each chart is drawn in its own try block: one failure shows in
// its container (and the console) without blanking the others.
"use strict";
(function () {
  var DATA = JSON.parse(document.getElementById("report-data").textContent);
  var STATS = DATA.statistics;
  var SVG_NS = document.getElementById("svg-namespace").namespaceURI;
  var hiddenSeries = {};

  function isNum(x) { return typeof x === "number" && isFinite(x); }
  function fmt(x) { return isNum(x) ? String(Number(x.toPrecision(4))) : "-"; }
  function fmtCi(e) {
    if (!e) { return "-"; }
    return fmt(e.value) + " [" + (isNum(e.low) && isNum(e.high) ? fmt(e.low) + ", " + fmt(e.high) : "-") + "]";
  }
  // Table numbers: a fixed number of decimals per kind of number (page.py's PRECISION), never "-0.00".
  function fixed(x, digits) {
    if (!isNum(x)) { return "-"; }
    var text = x.toFixed(digits);
    return Number(text) === 0 ? (0).toFixed(digits) : text;
  }
  function ciCell(td, e, digits) {
    if (!e || !isNum(e.value)) { td.textContent = "-"; return; }
    td.textContent = fixed(e.value, digits);
    htmlEl(td, "span", {"class": "ci"}, isNum(e.low) && isNum(e.high) ?
      "[" + fixed(e.low, digits) + ", " + fixed(e.high, digits) + "]" : "[-]");
  }
  function colour(name) { return (DATA.colours && DATA.colours[name]) || "#555555"; }

  function svgEl(parent, tag, attrs, text) {
    var node = document.createElementNS(SVG_NS, tag);
    setAttrs(node, attrs, text);
    if (parent) { parent.appendChild(node); }
    return node;
  }
  function htmlEl(parent, tag, attrs, text) {
    var node = document.createElement(tag);
    setAttrs(node, attrs, text);
    if (parent) { parent.appendChild(node); }
    return node;
  }
  function setAttrs(node, attrs, text) {
    if (attrs) { Object.keys(attrs).forEach(function (key) { node.setAttribute(key, String(attrs[key])); }); }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
  }
  function tooltip(node, text) { svgEl(node, "title", null, text); }
  function note(container, text) { htmlEl(container, "p", {"class": "empty"}, text); }

  function extent(values) {
    var low = Infinity, high = -Infinity;
    values.forEach(function (v) { if (isNum(v)) { low = Math.min(low, v); high = Math.max(high, v); } });
    if (low > high) { return [0, 1]; }
    if (low === high) { var pad = Math.abs(low) * 0.1 || 1; return [low - pad, high + pad]; }
    return [low, high];
  }
  // A domain widened by 6% a side, so no interval end or dot sits on the frame (plots.py's padded_limits).
  function padded(domain) {
    var margin = (domain[1] - domain[0]) * 0.06;
    return [domain[0] - margin, domain[1] + margin];
  }
  function linear(d0, d1, r0, r1) {
    var span = (d1 - d0) || 1;
    return function (v) { return r0 + (v - d0) / span * (r1 - r0); };
  }
  function ticks(low, high, count) {
    var span = high - low;
    if (!isNum(span) || span <= 0) { return isNum(low) ? [low] : []; }
    var step = Math.pow(10, Math.floor(Math.log(span / count) / Math.LN10));
    var error = span / count / step;
    if (error >= 7.5) { step *= 10; } else if (error >= 3.5) { step *= 5; } else if (error >= 1.5) { step *= 2; }
    var out = [];
    for (var v = Math.ceil(low / step) * step; v <= high + step * 1e-9 && out.length < 50; v += step) {
      out.push(Number(v.toPrecision(12)));
    }
    return out;
  }

  // An SVG with a frame, grid, axis ticks and labels; yTicks false for a categorical y axis.
  function frame(container, opts) {
    var width = opts.width || 720, height = opts.height || 320;
    var m = {left: opts.left || 64, right: 16, top: 28, bottom: 44};
    var svg = svgEl(null, "svg", {width: width, height: height, viewBox: "0 0 " + width + " " + height,
                                  "class": "plot", role: "img"});
    container.appendChild(svg);
    svgEl(svg, "text", {x: 8, y: 16, "class": "plot-title"}, opts.title);
    var x = linear(opts.xDomain[0], opts.xDomain[1], m.left, width - m.right);
    var y = linear(opts.yDomain[0], opts.yDomain[1], height - m.bottom, m.top);
    var axes = svgEl(svg, "g", {"class": "axes"});
    ticks(opts.xDomain[0], opts.xDomain[1], 6).forEach(function (t) {
      svgEl(axes, "line", {x1: x(t), x2: x(t), y1: m.top, y2: height - m.bottom, "class": "grid"});
      svgEl(axes, "text", {x: x(t), y: height - m.bottom + 14, "text-anchor": "middle"}, fmt(t));
    });
    if (opts.yTicks !== false) {
      ticks(Math.min(opts.yDomain[0], opts.yDomain[1]), Math.max(opts.yDomain[0], opts.yDomain[1]), 5)
        .forEach(function (t) {
          svgEl(axes, "line", {x1: m.left, x2: width - m.right, y1: y(t), y2: y(t), "class": "grid"});
          svgEl(axes, "text", {x: m.left - 6, y: y(t) + 4, "text-anchor": "end"}, fmt(t));
        });
    }
    svgEl(axes, "rect", {x: m.left, y: m.top, width: width - m.left - m.right, height: height - m.top - m.bottom,
                         "class": "frame"});
    svgEl(axes, "text", {x: (m.left + width - m.right) / 2, y: height - 8, "text-anchor": "middle"}, opts.xLabel || "");
    if (opts.yLabel) {
      svgEl(axes, "text", {transform: "translate(14," + (m.top + height - m.bottom) / 2 + ") rotate(-90)",
                           "text-anchor": "middle"}, opts.yLabel);
    }
    return {svg: svg, x: x, y: y, left: m.left, right: width - m.right, top: m.top, bottom: height - m.bottom};
  }

  function legend(container, names) {
    if (!names.length) { return; }
    var box = htmlEl(container, "div", {"class": "legend"});
    names.forEach(function (name) {
      var item = htmlEl(box, "button", {type: "button", "class": "legend-item", "data-legend": name,
                                        title: "click to hide or show " + name + " in every chart"});
      var swatch = htmlEl(item, "span", {"class": "swatch"});
      swatch.style.background = colour(name);
      htmlEl(item, "span", null, name);
      item.addEventListener("click", function () {
        hiddenSeries[name] = !hiddenSeries[name];
        applyVisibility();
      });
    });
  }
  function applyVisibility() {
    var nodes = document.querySelectorAll("[data-series]");
    for (var i = 0; i < nodes.length; i++) {
      nodes[i].style.display = hiddenSeries[nodes[i].getAttribute("data-series")] ? "none" : "";
    }
    var items = document.querySelectorAll("[data-legend]");
    for (var j = 0; j < items.length; j++) {
      items[j].classList.toggle("off", !!hiddenSeries[items[j].getAttribute("data-legend")]);
    }
  }

  // Lines with CI bands: series [{name, x, mean, low, high, tip(i)}].
  function lineChart(container, title, series, xLabel, yLabel, yDomain) {
    var xs = [], ys = [];
    series.forEach(function (s) { xs = xs.concat(s.x); ys = ys.concat(s.mean, s.low, s.high); });
    if (!xs.some(isNum) || !ys.some(isNum)) { note(container, title + ": no data"); return; }
    var f = frame(container, {title: title, xDomain: extent(xs), yDomain: padded(yDomain || extent(ys)),
                              xLabel: xLabel, yLabel: yLabel});
    series.forEach(function (s) {
      var group = svgEl(f.svg, "g", {"data-series": s.name});
      var run = [];
      var flushBand = function () {
        if (run.length > 1) {
          var upper = run.map(function (i) { return f.x(s.x[i]).toFixed(1) + "," + f.y(s.high[i]).toFixed(1); });
          var lower = run.slice().reverse().map(function (i) {
            return f.x(s.x[i]).toFixed(1) + "," + f.y(s.low[i]).toFixed(1);
          });
          svgEl(group, "polygon", {points: upper.concat(lower).join(" "), fill: colour(s.name), "fill-opacity": 0.18,
                                   stroke: "none"});
        }
        run = [];
      };
      var i;
      for (i = 0; i < s.x.length; i++) {
        if (isNum(s.x[i]) && isNum(s.low[i]) && isNum(s.high[i])) { run.push(i); } else { flushBand(); }
      }
      flushBand();
      var path = "", penDown = false;
      for (i = 0; i < s.x.length; i++) {
        if (isNum(s.x[i]) && isNum(s.mean[i])) {
          path += (penDown ? "L" : "M") + f.x(s.x[i]).toFixed(1) + "," + f.y(s.mean[i]).toFixed(1);
          penDown = true;
        } else { penDown = false; }
      }
      if (path) { svgEl(group, "path", {d: path, fill: "none", stroke: colour(s.name), "stroke-width": 2}); }
      for (i = 0; i < s.x.length; i++) {
        if (isNum(s.x[i]) && isNum(s.mean[i])) {
          var dot = svgEl(group, "circle", {cx: f.x(s.x[i]).toFixed(1), cy: f.y(s.mean[i]).toFixed(1), r: 3,
                                            fill: colour(s.name)});
          tooltip(dot, s.name + "\n" + xLabel + ": " + fmt(s.x[i]) + "\n" + yLabel + ": " +
                  fmtCi({value: s.mean[i], low: s.low[i], high: s.high[i]}) + (s.tip ? s.tip(i) : ""));
        }
      }
    });
    legend(container, series.map(function (s) { return s.name; }));
  }

  // Dot-and-whisker rows: [{label, series, estimate, tip}] on a shared x domain, optional reference line.
  function intervalChart(container, title, rows, xDomain, reference, xLabel) {
    if (!rows.length) { note(container, title + ": no data"); return; }
    var longest = Math.max.apply(null, rows.map(function (r) { return r.label.length; }));
    var f = frame(container, {title: title, xDomain: xDomain, yDomain: [rows.length, 0], xLabel: xLabel,
                              yTicks: false, height: 72 + 24 * rows.length, left: Math.min(260, 16 + 7 * longest)});
    if (isNum(reference)) {
      svgEl(f.svg, "line", {x1: f.x(reference), x2: f.x(reference), y1: f.top, y2: f.bottom, stroke: "#888",
                            "stroke-dasharray": "4 3"});
    }
    rows.forEach(function (r, i) {
      var group = svgEl(f.svg, "g", {"data-series": r.series});
      var cy = f.y(i + 0.5), e = r.estimate || {};
      svgEl(group, "text", {x: f.left - 6, y: cy + 4, "text-anchor": "end"}, r.label);
      if (isNum(e.low) && isNum(e.high)) {
        svgEl(group, "line", {x1: f.x(e.low), x2: f.x(e.high), y1: cy, y2: cy, stroke: colour(r.series),
                              "stroke-width": 3, "stroke-opacity": 0.6});
      }
      if (isNum(e.value)) {
        var dot = svgEl(group, "circle", {cx: f.x(e.value), cy: cy, r: 5, fill: colour(r.series)});
        tooltip(dot, r.label + ": " + fmtCi(e) + (r.tip ? "\n" + r.tip : ""));
      }
    });
  }

  function drawCurves(container) {
    var scenarios = Object.keys(STATS.curves || {});
    if (!scenarios.length) { note(container, "no learning curves in the rows"); return; }
    scenarios.forEach(function (scenario) {
      var byVariant = STATS.curves[scenario];
      var series = STATS.variants.filter(function (v) { return byVariant[v]; }).map(function (v) {
        var c = byVariant[v];
        return {name: v, x: c.steps, mean: c.iqm, low: c.low, high: c.high,
                tip: function () { return "\nseeds: " + c.n_seeds; }};
      });
      lineChart(container, scenario + ": sample efficiency (IQM over seeds)", series, "environment steps",
                "eval mean return");
    });
  }

  function aggregateRows(condition, metric, variants) {
    var byVariant = (STATS.aggregate || {})[condition] || {};
    return variants.filter(function (v) { return byVariant[v] && byVariant[v][metric]; }).map(function (v) {
      var entry = byVariant[v];
      return {label: v === STATS.baseline ? v + " (baseline)" : v, series: v, estimate: entry[metric],
              tip: "seeds: " + entry.n_seeds + "; scenarios: " + (entry.scenarios || []).join(", ")};
    });
  }

  function drawIqm(container) {
    var values = [];
    STATS.conditions.forEach(function (condition) {
      aggregateRows(condition, "iqm", STATS.variants).forEach(function (r) {
        values.push(r.estimate.value, r.estimate.low, r.estimate.high);
      });
    });
    if (!values.some(isNum)) { note(container, "no scores"); return; }
    var domain = padded(extent(values));
    STATS.conditions.forEach(function (condition) {
      intervalChart(container, condition + ": IQM of seed mean returns",
                    aggregateRows(condition, "iqm", STATS.variants), domain, null, "mean return");
    });
    legend(container, STATS.variants);
  }

  function drawImprovement(container) {
    var others = STATS.variants.filter(function (v) { return v !== STATS.baseline; });
    if (!others.length) { note(container, "only the baseline: nothing to compare"); return; }
    STATS.conditions.forEach(function (condition) {
      intervalChart(container, condition + ": P(variant > " + STATS.baseline + ")",
                    aggregateRows(condition, "probability_of_improvement", others), padded([0, 1]), 0.5,
                    "probability of improvement");
    });
    legend(container, others);
  }

  function drawProfiles(container) {
    var conditions = Object.keys(STATS.profiles || {});
    if (!conditions.length) { note(container, "no scores"); return; }
    conditions.forEach(function (condition) {
      var profile = STATS.profiles[condition];
      var series = STATS.variants.filter(function (v) { return profile.variants[v]; }).map(function (v) {
        var c = profile.variants[v];
        return {name: v, x: profile.thresholds, mean: c.fraction, low: c.low, high: c.high,
                tip: function () { return "\nseeds: " + c.n_seeds; }};
      });
      lineChart(container, condition + ": performance profile", series, "score threshold",
                "fraction of runs above", [0, 1]);
    });
  }

  // Diverging red (low) - yellow - green (high) colour for t in [0, 1].
  function heat(t) {
    var stops = [[215, 48, 39], [255, 255, 191], [26, 152, 80]];
    var u = Math.max(0, Math.min(1, t)) * 2, k = Math.min(1, Math.floor(u)), w = u - k;
    var rgb = [0, 1, 2].map(function (c) { return Math.round(stops[k][c] + (stops[k + 1][c] - stops[k][c]) * w); });
    return "rgb(" + rgb.join(",") + ")";
  }

  function drawTransfer(container) {
    var conditions = STATS.transfer_conditions || [], variants = STATS.variants || [];
    var cell = function (v, c) { var byVariant = (STATS.aggregate || {})[c] || {}; return byVariant[v]; };
    var values = [];
    variants.forEach(function (v) {
      conditions.forEach(function (c) { var e = cell(v, c); if (e && e.iqm) { values.push(e.iqm.value); } });
    });
    if (!values.some(isNum)) { note(container, "no scores"); return; }
    var range = extent(values), cellWidth = 120, cellHeight = 30;
    var left = Math.min(260, 16 + 7 * Math.max.apply(null, variants.map(function (v) { return v.length; })));
    var width = left + cellWidth * conditions.length + 16, height = 48 + cellHeight * variants.length;
    var svg = svgEl(container, "svg", {width: width, height: height, viewBox: "0 0 " + width + " " + height,
                                       "class": "plot", role: "img"});
    svgEl(svg, "text", {x: 8, y: 16, "class": "plot-title"}, "IQM per variant (rows) and condition (columns)");
    conditions.forEach(function (c, j) {
      svgEl(svg, "text", {x: left + cellWidth * (j + 0.5), y: 40, "text-anchor": "middle"}, c);
    });
    variants.forEach(function (v, i) {
      var group = svgEl(svg, "g", {"data-series": v}), y = 48 + cellHeight * i;
      svgEl(group, "text", {x: left - 6, y: y + cellHeight / 2 + 4, "text-anchor": "end"}, v);
      conditions.forEach(function (c, j) {
        var e = cell(v, c), value = e && e.iqm ? e.iqm.value : null;
        var t = isNum(value) ? (value - range[0]) / ((range[1] - range[0]) || 1) : null;
        var rect = svgEl(group, "rect", {x: left + cellWidth * j + 1, y: y + 1, width: cellWidth - 2,
                                         height: cellHeight - 2, fill: t === null ? "#eeeeee" : heat(t)});
        tooltip(rect, v + " under " + c + "\nIQM " + (e ? fmtCi(e.iqm) + "\nseeds: " + e.n_seeds : "-"));
        var label = svgEl(group, "text", {x: left + cellWidth * (j + 0.5), y: y + cellHeight / 2 + 4,
                                          "text-anchor": "middle", "pointer-events": "none"}, fixed(value, 2));
        label.setAttribute("fill", "#111");
      });
    });
    legend(container, variants);
  }

  // One row per variant and robustness condition, so the table keeps its width however many conditions there are.
  function drawRobustness(container) {
    var conditions = STATS.robustness_conditions || [], variants = STATS.variants || [];
    if (!conditions.length || !variants.length) { note(container, "no robustness condition was evaluated"); return; }
    var aggregate = STATS.aggregate || {}, clean = aggregate.clean || {};
    var table = htmlEl(container, "table", {"class": "robustness"});
    var head = htmlEl(htmlEl(table, "thead"), "tr");
    ["variant", "condition", "clean IQM [95% CI]", "IQM [95% CI]", "change from clean",
     "crash rate [95% t CI]"].forEach(function (name) { htmlEl(head, "th", null, name); });
    var body = htmlEl(table, "tbody");
    variants.forEach(function (v) {
      var cleanIqm = clean[v] ? clean[v].iqm : null;
      conditions.forEach(function (c) {
        var e = (aggregate[c] || {})[v];
        var tr = htmlEl(body, "tr", {"data-series": v});
        htmlEl(tr, "td", null, v + (v === STATS.baseline ? " (baseline)" : ""));
        htmlEl(tr, "td", null, c);
        ciCell(htmlEl(tr, "td"), cleanIqm, 2);
        ciCell(htmlEl(tr, "td"), e ? e.iqm : null, 2);
        var change = e && cleanIqm && isNum(e.iqm.value) && isNum(cleanIqm.value) ? e.iqm.value - cleanIqm.value : null;
        var shown = fixed(change, 2);
        var td = htmlEl(tr, "td", {title: "IQM under " + c + " minus IQM clean (point estimates)"}, shown);
        // The colour follows the number shown: a change that reads 0.00 is neither a gain nor a drop.
        if (isNum(change)) { td.className = Number(shown) > 0 ? "better" : Number(shown) < 0 ? "worse" : "same"; }
        ciCell(htmlEl(tr, "td"), e ? e.crash_rate : null, 2);
      });
    });
    legend(container, variants);
  }

  var charts = {"chart-curves": drawCurves, "chart-iqm": drawIqm, "chart-poi": drawImprovement,
                "chart-profiles": drawProfiles, "chart-transfer": drawTransfer, "table-robustness": drawRobustness};
  Object.keys(charts).forEach(function (id) {
    var container = document.getElementById(id);
    if (!container) { return; }
    try {
      charts[id](container);
    } catch (error) {
      note(container, "this chart could not be drawn: " + error);
      console.error(error);
    }
  });
  applyVisibility();
})();
