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
    surveyCells(tr, row.satisfaction_today);
    var chart = td(tr, "trend", "");
    chart.innerHTML = row.trend_svg;  // built and escaped by the server (no script in it)
  }
  function average(x) { return x === null || x === undefined ? "—" : x.toFixed(2); }
  function surveyCells(tr, s, share) {  // today's satisfaction survey (queues/kpi.py with_shares)
    td(tr, "survey-rated", s.rated + "/" + s.survey_offered);
    if (share) td(tr, "survey-rated-share", pct(s.rated_share));
    td(tr, "survey-average", average(s.average));
    td(tr, "survey-satisfied", pct(s.satisfied_share));
    td(tr, "survey-low", s.low_rated);
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
  function agentRow(a) {  // 座席满意度: one agent's survey today; its low ratings in red
    var tr = document.createElement("tr");
    tr.dataset.agent = a.agent;
    td(tr, "agent", a.agent).className = "mono";
    td(tr, "name", a.name);
    surveyCells(tr, a.satisfaction_today, true);
    tr.lastChild.classList.toggle("alarm", a.satisfaction_today.low_rated > 0);
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
    fill("agent-satisfaction", (board.agent_satisfaction || []).map(agentRow));
    nodes();
    seatRows();
    trunkRows();
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
    tile("today-satisfied", pct(p.satisfaction_today.satisfied_share));
    tile("today-average", average(p.satisfaction_today.average));
    tile("today-rated", p.satisfaction_today.rated + "/" + p.satisfaction_today.survey_offered);
    recordingDisk(p.recording_disk);
    leaderSession(board.leader_session);
    document.body.dataset.seq = board.seq;
  }
  function bytes(n) {
    return n >= 1073741824 ? (n / 1073741824).toFixed(1) + " GB" : (n / 1048576).toFixed(1) + " MB";
  }
  function recordingDisk(d) {  // the recordings disk (console/wallboard.py recording_disk): red on the alarm
    var li = document.getElementById("recording-disk");
    var used = li.querySelector('[data-field="recording-disk"]'), free = li.querySelector('[data-field="recording-disk-free"]');
    var stale = d && d.age_s > 120;
    var problem = {"no-inodes": "inode 已用尽，无法录音", "not-writable": "目录不可写，无法录音"}[d && d.problem] || "";
    used.textContent = d ? "已用 " + pct(d.used_ratio) + (d.alarm ? " 告警" : "") + (problem ? "：" + problem : "") : "—";
    li.dataset.problem = problem ? d.problem : "";
    free.textContent = d ? "剩余 " + bytes(d.free) + (stale ? "（" + dur(d.age_s) + "前）" : "") : "";
    li.dataset.alarm = d && d.alarm ? "1" : "0";
    li.classList.toggle("alarm", !!(d && d.alarm));
  }
  function leaderSession(s) {  // 领导接听 (console/wallboard.py leader_session): on now, else today's next; none: hidden
    var line = document.getElementById("leader-session");
    line.hidden = !s;
    line.dataset.session = s ? s.id : "";
    line.dataset.on = s && s.on ? "1" : "0";
    if (!s) return;
    function field(name, text) { line.querySelector('[data-field="' + name + '"]').textContent = text; }
    field("state", "领导接听（" + JSON.parse(line.dataset.labels)[s.on ? "on" : "next"] + "）");
    field("topic", s.topic);
    field("window", s.window);
    field("waiting", "排队 " + s.waiting);
    // the session's own seats by state, their own pauses by reason (小休 …); held seats apart: 非本场次
    var labels = JSON.parse(line.dataset.seatLabels), a = s.agents;
    var parts = ["签入 " + a.logged_in, labels.available + " " + a.available, labels.talking + " " + a.talking];
    ["ringing", "wrapup", "unreachable"].forEach(function (k) { if (a[k]) parts.push(labels[k] + " " + a[k]); });
    Object.keys(s.pauses).forEach(function (r) { parts.push((r || labels.paused) + " " + s.pauses[r]); });
    field("seats", "领导座席：" + parts.join("，"));
    field("held", labels.held + " " + s.held);
  }
  function nodes() {  // a cluster: callers waiting and seats talking or ringing on each node
    document.querySelectorAll("#nodes tr[data-ami]").forEach(function (tr) {
      var ami = tr.dataset.ami, by = board.platform.waiting_by_node || {};
      function count(state) {
        return (board.seats || []).filter(function (s) { return s.node === ami && s.state === state; }).length;
      }
      tr.querySelector('[data-field="waiting"]').textContent = by[ami] || 0;
      tr.querySelector('[data-field="talking"]').textContent = count("talking");
      tr.querySelector('[data-field="ringing"]').textContent = count("ringing");
    });
  }
  function seatRows() {  // the 座席 rows: each seat's state now; 监听/耳语/强插 only for a seat that talks
    var table = document.getElementById("seats");
    if (!table) return;
    var labels = JSON.parse(table.dataset.labels), states = {};
    (board.seats || []).forEach(function (s) { states[s.agent] = s.state; });
    table.querySelectorAll("tbody tr[data-agent]").forEach(function (tr) {
      var state = states[tr.dataset.agent] || "logged_out";  // no seat record: never logged in
      tr.dataset.state = state;
      tr.querySelector('[data-field="state"]').textContent = labels[state] || labels.logged_out;
      tr.querySelectorAll("button[data-mode]").forEach(function (b) { b.disabled = state !== "talking"; });
    });
  }
  function trunkRows() {  // 中继线路: each node's trunk, 不可达 while its gateway does not answer OPTIONS
    var table = document.getElementById("trunks");
    if (!table) return;
    fill("trunks", (board.trunks || []).map(function (t) {
      var tr = document.createElement("tr");
      tr.dataset.trunk = t.trunk;
      tr.dataset.node = t.node;
      tr.dataset.up = t.up ? "1" : "0";
      td(tr, "title", t.title);
      td(tr, "node", t.node);
      td(tr, "state", t.up ? "正常" : "不可达");
      tr.lastChild.classList.toggle("alarm", !t.up);
      return tr;
    }));
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
