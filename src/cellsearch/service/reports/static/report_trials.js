// The report page's trial table and parallel-coordinates plot (cellsearch).
// Reads two globals the page defines before this script:
//   TRIALS: the report's `trials` columns ({number: [...], cell_type: [...], ..., params: {}}),
//           or null when the page is to fetch them from PAGE.trials_url (big studies)
//   PAGE:   {metric_label, direction, cells, dashboard (URL or null), refresh (seconds, 0: off),
//            trials_url (the report's JSON, relative to the page) or null}
// Filter, sort and page live in the address's fragment, so a reload keeps them.
(function () {
  "use strict";
  const PAGE_SIZE = 100;
  const LOG_SPAN = 100; // as the server's plots: log scale above two decades
  const PARCOORDS_MAX = 2000; // lines drawn at most (evenly spread over the trial numbers)
  const PARCOORDS_EAGER = 500; // more lines than this: drawn once the plot scrolls into view

  function readState() {
    const q = new URLSearchParams(window.location.hash.slice(1));
    return {
      cell: q.get("cell") || "",
      sort: q.get("sort") || "number",
      desc: q.get("desc") === "1",
      page: Math.max(0, parseInt(q.get("page") || "0", 10) || 0),
    };
  }

  function writeState(state) {
    const q = new URLSearchParams();
    if (state.cell) q.set("cell", state.cell);
    q.set("sort", state.sort);
    q.set("desc", state.desc ? "1" : "0");
    q.set("page", String(state.page));
    history.replaceState(null, "", "#" + q.toString());
  }

  function scheduleRefresh() {
    if (!PAGE.refresh) return;
    window.setTimeout(function () {
      if (document.hidden) {
        document.addEventListener("visibilitychange", () => window.location.reload(), {once: true});
      } else {
        window.location.reload();
      }
    }, PAGE.refresh * 1000);
  }

  scheduleRefresh();
  if (typeof TRIALS !== "undefined" && TRIALS) {
    if (TRIALS.number.length) start(TRIALS);
  } else if (PAGE.trials_url) {
    fetch(PAGE.trials_url, {headers: {Accept: "application/json"}, credentials: "same-origin"})
      .then((response) => (response.ok ? response.json() : null))
      .then((report) => {
        if (report && report.trials && report.trials.number.length) start(report.trials);
      });
  }

  function start(T) {
  const paramNames = Object.keys(T.params);
  const columns = [
    {key: "number", label: "#", get: (i) => T.number[i]},
    {key: "cell_type", label: "cell", get: (i) => T.cell_type[i]},
    {key: "state", label: "state", get: (i) => T.state[i]},
    {key: "value", label: PAGE.metric_label, get: (i) => T.value[i]},
    {key: "epochs", label: "epochs", get: (i) => T.epochs[i]},
    {key: "seconds", label: "seconds", get: (i) => T.seconds[i]},
    {key: "param_count", label: "parameters", get: (i) => T.param_count[i]},
  ].concat(paramNames.map((name) => ({key: "p:" + name, label: name, get: (i) => T.params[name][i]})));

  const state = readState();
  if (!columns.some((c) => c.key === state.sort)) state.sort = "number";
  const table = document.getElementById("trials");
  const filter = document.getElementById("cell-filter");
  filter.value = PAGE.cells.includes(state.cell) ? state.cell : "";
  state.cell = filter.value;

  function format(value) {
    if (value === null || value === undefined) return "\u2014";
    if (typeof value === "number" && !Number.isInteger(value)) return String(Number(value.toPrecision(4)));
    return String(value);
  }

  function compare(a, b) {
    if (a === b) return 0;
    if (a === null || a === undefined) return 1; // missing values last, either direction
    if (b === null || b === undefined) return -1;
    return a < b ? -1 : 1;
  }

  function selected() {
    const rows = [];
    for (let i = 0; i < T.number.length; i++) {
      if (!state.cell || T.cell_type[i] === state.cell) rows.push(i);
    }
    const column = columns.find((c) => c.key === state.sort);
    rows.sort(function (i, j) {
      const a = column.get(i);
      const b = column.get(j);
      if (a === null || a === undefined || b === null || b === undefined) return compare(a, b);
      const order = compare(a, b) * (state.desc ? -1 : 1);
      return order || T.number[i] - T.number[j];
    });
    return rows;
  }

  function header() {
    const row = document.createElement("tr");
    for (const column of columns) {
      const th = document.createElement("th");
      th.textContent = column.label;
      th.dataset.key = column.key;
      if (column.key === state.sort) th.setAttribute("aria-sort", state.desc ? "descending" : "ascending");
      th.addEventListener("click", function () {
        state.desc = state.sort === column.key ? !state.desc : false;
        state.sort = column.key;
        state.page = 0;
        render();
      });
      row.appendChild(th);
    }
    const head = table.tHead;
    head.replaceChildren(row);
  }

  function numberCell(i) {
    const td = document.createElement("td");
    if (PAGE.dashboard) {
      const link = document.createElement("a");
      link.href = PAGE.dashboard + "/trials?numbers=" + encodeURIComponent(T.number[i]);
      link.title = "open in optuna-dashboard";
      link.textContent = "#" + T.number[i];
      td.appendChild(link);
    } else {
      td.textContent = "#" + T.number[i];
    }
    return td;
  }

  function body(rows) {
    const start = state.page * PAGE_SIZE;
    const fragment = document.createDocumentFragment();
    for (const i of rows.slice(start, start + PAGE_SIZE)) {
      const tr = document.createElement("tr");
      tr.dataset.number = String(T.number[i]);
      for (const column of columns) {
        if (column.key === "number") {
          tr.appendChild(numberCell(i));
          continue;
        }
        const td = document.createElement("td");
        td.textContent = format(column.get(i));
        tr.appendChild(td);
      }
      fragment.appendChild(tr);
    }
    table.tBodies[0].replaceChildren(fragment);
  }

  function pager(rows) {
    const pages = Math.max(1, Math.ceil(rows.length / PAGE_SIZE));
    state.page = Math.min(state.page, pages - 1);
    const first = rows.length ? state.page * PAGE_SIZE + 1 : 0;
    const last = Math.min(rows.length, (state.page + 1) * PAGE_SIZE);
    document.getElementById("page-info").textContent = `rows ${first}-${last} of ${rows.length}`;
    document.getElementById("prev").disabled = state.page === 0;
    document.getElementById("next").disabled = state.page >= pages - 1;
    const what = state.cell ? `${state.cell} trials` : "trials";
    document.getElementById("trial-count").textContent = `${rows.length} ${what}`;
  }

  function spansDecades(values) {
    const positive = values.filter((v) => typeof v === "number" && v > 0);
    if (positive.length !== values.length || !positive.length) return false;
    return Math.max(...positive) / Math.min(...positive) > LOG_SPAN;
  }

  function logTicks(low, high) {
    // 1, 2 and 5 times the powers of ten inside [low, high], as positions on a log10 axis
    const ticks = [];
    for (let p = Math.floor(Math.log10(low)); p <= Math.ceil(Math.log10(high)); p++) {
      for (const m of [1, 2, 5]) {
        const v = m * Math.pow(10, p);
        if (v >= low && v <= high) ticks.push(v);
      }
    }
    if (ticks.length < 2) ticks.splice(0, ticks.length, low, high);
    return {tickvals: ticks.map(Math.log10), ticktext: ticks.map((v) => String(Number(v.toPrecision(3))))};
  }

  function dimension(label, values, log, keepConstant) {
    if (values.some((v) => v === null || v === undefined)) return null; // not every trial has it
    if (!keepConstant && new Set(values.map(String)).size < 2) return null; // one value: no axis
    if (values.every((v) => typeof v === "number")) {
      if (log && values.every((v) => v > 0)) {
        const ticks = logTicks(Math.min(...values), Math.max(...values));
        return {label: label + " (log)", values: values.map(Math.log10), ...ticks};
      }
      return {label: label, values: values};
    }
    const levels = Array.from(new Set(values.map(String))).sort();
    return {
      label: label,
      values: values.map((v) => levels.indexOf(String(v))),
      tickvals: levels.map((_, k) => k),
      ticktext: levels,
    };
  }

  function spread(items, most) {
    if (items.length <= most) return items;
    const byNumber = items.slice().sort((i, j) => T.number[i] - T.number[j]);
    return Array.from({length: most}, (_, k) => byNumber[Math.floor((k * byNumber.length) / most)]);
  }

  let pending = null;
  function parcoords(rows) {
    const div = document.getElementById("plot-parcoords");
    const complete = rows.filter((i) => T.state[i] === "complete" && T.value[i] !== null);
    if (complete.length > PARCOORDS_EAGER && !div.dataset.seen) {
      pending = rows; // drawn when it comes into view: a big plot must not hold up the page
      return;
    }
    const done = spread(complete, PARCOORDS_MAX);
    const note = document.getElementById("parcoords-note");
    note.textContent = done.length < complete.length
      ? `Drawing ${done.length} of the ${complete.length} completed trials, evenly spread over ` +
        "the trial numbers; filter by cell type to draw fewer at a time."
      : "";
    if (!done.length) {
      const note = {text: "No completed trials to draw yet.", showarrow: false, xref: "paper", yref: "paper", x: 0.5, y: 0.5};
      const hidden = {visible: false};
      Plotly.react(div, [], {annotations: [note], xaxis: hidden, yaxis: hidden}, {displaylogo: false});
      return;
    }
    const cells = PAGE.cells;
    const dims = [{
      label: "cell type",
      values: done.map((i) => cells.indexOf(T.cell_type[i])),
      tickvals: cells.map((_, k) => k),
      ticktext: cells,
      range: [0, Math.max(1, cells.length - 1)],
    }];
    const logScale = T.log_scale || [];
    for (const name of paramNames) {
      const dim = dimension(name, done.map((i) => T.params[name][i]), logScale.includes(name));
      if (dim) dims.push(dim);
    }
    const values = done.map((i) => T.value[i]);
    const value = dimension(PAGE.metric_label, values, spansDecades(values), true); // as the plots
    dims.push(value);
    const trace = {
      type: "parcoords",
      dimensions: dims,
      line: {
        color: value.values,
        colorscale: "Viridis",
        reversescale: PAGE.direction === "minimize", // the best trials in yellow
        showscale: true,
        colorbar: {title: {text: value.label}, tickvals: value.tickvals, ticktext: value.ticktext},
      },
    };
    Plotly.react(div, [trace], {margin: {l: 70, r: 170, t: 50, b: 30}}, {displaylogo: false, responsive: true});
  }

  function render(redraw) {
    writeState(state);
    const rows = selected();
    pager(rows);
    header();
    body(rows);
    if (redraw) parcoords(rows); // the plot depends on the filter only
  }

  if ("IntersectionObserver" in window) {
    const plot = document.getElementById("plot-parcoords");
    new IntersectionObserver(function (entries, observer) {
      if (!entries.some((e) => e.isIntersecting)) return;
      plot.dataset.seen = "1";
      observer.disconnect();
      if (pending) parcoords(pending);
    }).observe(plot);
  } else {
    document.getElementById("plot-parcoords").dataset.seen = "1";
  }

  filter.addEventListener("change", function () {
    state.cell = filter.value;
    state.page = 0;
    render(true);
  });
  document.getElementById("prev").addEventListener("click", function () {
    state.page = Math.max(0, state.page - 1);
    render();
  });
  document.getElementById("next").addEventListener("click", function () {
    state.page += 1;
    render();
  });
  render(true);
  }
})();
