// The wallboard, live: every server-sent event is the whole board (console/wallboard.py), so a
// reconnect simply starts again from the state. No framework; the page is built from the data.
(function () {
  "use strict";
  var offset = 0, board = null;
  var status = document.getElementById("live-status");

  function pct(x) { return x === null || x === undefined ? "—" : (x * 100).toFixed(1) + "%"; }
  function dur(s) {
    s = Math.max(0, Math.floor(s));
    var m = Math.floor(s / 60);
    return m ? m + "分" + String(s % 60).padStart(2, "0") + "秒" : s + "秒";
  }
  function longest(row) {
    return row.oldest_joined === null ? 0 : (Date.now() / 1000 - offset) - row.oldest_joined;
  }
  function td(tr, field, text) {
    var cell = document.createElement("td");
    cell.dataset.field = field;
    cell.textContent = text;
    tr.appendChild(cell);
    return cell;
  }
  function kpiCells(tr, row) {
    td(tr, "today-offered", row.today.offered);
    td(tr, "today-answered", row.today.answered);
    td(tr, "today-rate15", pct(row.today.answer_rate_15));
    td(tr, "today-rate30", pct(row.today.answer_rate_30));
    td(tr, "today-abandoned", row.today.abandoned);
    td(tr, "hour-offered", row.last_hour.offered);
    td(tr, "hour-rate15", pct(row.last_hour.answer_rate_15));
    td(tr, "hour-abandoned", row.last_hour.abandoned);
    var chart = td(tr, "trend", "");
    chart.innerHTML = row.trend_svg;  // built and escaped by the server (no script in it)
  }
  function waitCells(tr, row) {
    td(tr, "waiting", row.waiting);
    var cell = td(tr, "longest", row.waiting ? dur(longest(row)) : "—");
    cell.dataset.oldest = row.oldest_joined === null ? "" : row.oldest_joined;
  }
  function queueRow(row, columns) {
    var tr = document.createElement("tr");
    tr.dataset.queue = row.name;
    td(tr, "title", row.title);
    waitCells(tr, row);
    columns.forEach(function (c) { td(tr, "agents-" + c, row.agents[c]); });
    td(tr, "callbacks", row.callbacks_pending);
    kpiCells(tr, row);
    return tr;
  }
  function lineRow(row) {
    var tr = document.createElement("tr");
    tr.dataset.line = row.name;
    td(tr, "number", row.name);
    td(tr, "title", row.title);
    waitCells(tr, row);
    kpiCells(tr, row);
    return tr;
  }
  function fill(id, rows) {
    var body = document.querySelector("#" + id + " tbody");
    body.replaceChildren.apply(body, rows);
  }
  function render() {
    var queues = document.querySelector("#queues tbody");
    var columns = queues.dataset.agentColumns.split(",");
    fill("queues", board.queues.map(function (r) { return queueRow(r, columns); }));
    fill("lines", board.lines.map(lineRow));
    var p = board.platform, tiles = document.getElementById("platform");
    function tile(field, text) { tiles.querySelector('[data-field="' + field + '"]').textContent = text; }
    tile("waiting", p.waiting);
    tile("longest", p.waiting ? dur(p.longest_wait_s) : "—");
    tile("agents", p.agents_logged_in);
    tile("callbacks", p.callbacks_pending);
    tile("today-offered", p.today.offered);
    tile("today-rate15", pct(p.today.answer_rate_15));
    tile("today-rate30", pct(p.today.answer_rate_30));
    tile("today-abandoned", p.today.abandoned);
    document.body.dataset.seq = board.seq;
  }
  function tick() {  // waits grow between events
    document.querySelectorAll('td[data-field="longest"]').forEach(function (cell) {
      if (!cell.dataset.oldest) return;
      var s = (Date.now() / 1000 - offset) - parseFloat(cell.dataset.oldest);
      cell.textContent = dur(s);
      cell.classList.toggle("alarm", s > 15);
    });
  }
  function setStatus(state, text) { status.dataset.status = state; status.textContent = text; }

  var events = new EventSource("/wallboard/events");
  events.addEventListener("snapshot", function (e) {
    board = JSON.parse(e.data);
    offset = Date.now() / 1000 - board.at;  // the server's clock, not this screen's
    render();
    tick();
    setStatus("live", "实时");
  });
  events.onerror = function () { setStatus("reconnecting", "重连中…"); };
  setInterval(tick, 1000);
})();
