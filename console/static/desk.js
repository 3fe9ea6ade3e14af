// The agent desk, live: each server-sent event is the whole desk (console/desk.py): the seat,
// and the call offered to this agent with its ticket stub. Actions post with the CSRF token.
(function () {
  "use strict";
  var root = document.getElementById("desk");
  var status = document.getElementById("live-status");
  var csrf = document.querySelector('meta[name="csrf-token"]').content;
  var CALL_LABELS = { offered: "来电振铃", connected: "通话中", ended: "通话结束", missed: "未接来电" };
  var shown = "";  // the linkedid whose ticket is in the form (an update must not wipe what is typed)
  var wrapupTimer = null;  // app_queue says nothing when a wrap-up ends: the page reads the seat then

  function text(id, value) { document.getElementById(id).textContent = value === undefined || value === null ? "" : value; }
  function say(message, ok, detail) {  // detail: an English reason kept as written, for the admin (lang=en)
    var p = document.getElementById("desk-message");
    p.hidden = false;
    p.className = ok ? "ok" : "alert";
    p.textContent = message;
    if (detail) {
      var tech = document.createElement("span"), en = document.createElement("span");
      tech.className = "tech muted";
      en.lang = "en";
      en.textContent = detail;
      tech.append("（技术细节：", en, "）");
      p.append(tech);
    }
  }
  function renderSeat(seat) {
    var el = document.getElementById("seat-state");
    el.dataset.state = seat.state;
    el.textContent = seat.label;
    text("seat-reason", seat.reason ? "（" + seat.reason + "）" : "");
    clearTimeout(wrapupTimer);
    if (seat.state === "wrapup" && seat.wrapup_left > 0) {
      wrapupTimer = setTimeout(reread, seat.wrapup_left * 1000 + 200);
    }
  }
  function reread() {
    fetch(root.dataset.reread, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (desk) { if (desk) { renderDesk(desk); } }, function () {});
  }
  function renderCall(call, seat) {
    var box = document.getElementById("call");
    if (!call) {
      box.dataset.state = "none";
      box.dataset.linkedid = "";
      document.getElementById("call-panel").hidden = true;
      document.getElementById("transfer-form").hidden = true;
      document.getElementById("call-idle").hidden = false;
      return;
    }
    var s = call.stub;
    box.dataset.state = call.state;
    box.dataset.linkedid = call.linkedid;
    document.getElementById("call-idle").hidden = true;
    document.getElementById("call-panel").hidden = false;
    // 后处理 only while the seat's wrap-up lasts
    text("call-state-label", (CALL_LABELS[call.state] || call.state) + (call.state === "ended" && seat.state === "wrapup" ? "（后处理）" : ""));
    document.getElementById("transfer-form").hidden = call.state !== "connected";  // only while talking
    text("stub-number", s.number ? "工单 " + s.number : "");
    text("stub-line", [s.line, s.line_title].filter(Boolean).join(" "));
    text("stub-caller", s.caller);
    var path = (s.ivr_nodes || []).join(" → ");
    text("stub-ivr", path ? path + ((s.ivr_keys || []).length ? "（按键 " + s.ivr_keys.join(" ") + "）" : "") : "—");
    text("stub-request", s.request_label ? s.request_label + (s.request_type_source === "agent" ? "（座席）" : "（语音导航）") : "未选择");
    text("stub-wait", s.wait_seconds === null || s.wait_seconds === undefined ? "—" : s.wait_seconds + " 秒");
    text("stub-priority", s.elderly ? "老年人来电" : (s.priority_reason || "—"));
    var list = document.getElementById("stub-history");
    list.replaceChildren.apply(list, (s.history || []).map(function (h) {
      var li = document.createElement("li"), a = document.createElement("a");
      a.href = "/tickets/" + encodeURIComponent(h.number);
      a.textContent = h.number;
      li.appendChild(a);
      li.appendChild(document.createTextNode(" " + [h.received, h.request_label, h.disposition].filter(Boolean).join(" · ")));
      return li;
    }));
    if (!list.children.length) {
      var none = document.createElement("li");
      none.className = "muted";
      none.textContent = "无";
      list.appendChild(none);
    }
    if (shown !== call.linkedid) {  // a new call: the form shows its ticket
      shown = call.linkedid;
      document.getElementById("ticket-linkedid").value = call.linkedid;
      document.querySelectorAll('input[name="request_type"]').forEach(function (r) { r.checked = r.value === s.request_type; });
      document.getElementById("ticket-department").value = s.department || "";
      document.getElementById("ticket-notes").value = s.notes || "";
    }
  }
  function post(form, extra) {
    var data = new URLSearchParams(new FormData(form));
    Object.keys(extra || {}).forEach(function (k) { data.set(k, extra[k]); });
    return fetch(form.getAttribute("action"), {  // (form.action is the button named "action")
      method: "POST", body: data, credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf, "Accept": "application/json" },
    }).then(function (r) { return r.json(); }).then(function (reply) { say(reply.message, reply.ok, reply.detail); return reply; },
      function () { say("操作失败：网络错误", false); });
  }
  function renderSupervision(notice) {  // a supervisor on this call (config supervision.notify_agent)
    var p = document.getElementById("supervised");
    p.hidden = !notice;
    p.dataset.mode = notice ? notice.mode : "";
    p.textContent = notice ? "督导 " + notice.supervisor + " 正在" + notice.label + "本通话。" : "";
  }
  function renderSuperviseButtons(call) {  // a supervisor's 监听/耳语/强插: only while the seat talks
    document.querySelectorAll(".supervise-panel button").forEach(function (b) {
      b.disabled = !call || call.state !== "connected";
    });
  }
  document.querySelector(".seat-actions").addEventListener("submit", function (e) {
    e.preventDefault();
    post(e.target, { action: e.submitter ? e.submitter.value : "" });
  });
  document.getElementById("ticket-form").addEventListener("submit", function (e) {
    e.preventDefault();
    post(e.target).then(function (reply) { if (reply && reply.ok) root.dataset.saved = reply.number; });
  });
  document.getElementById("transfer-form").addEventListener("submit", function (e) {
    e.preventDefault();
    var button = document.getElementById("transfer-go");
    button.disabled = true;  // one click, one transfer
    post(e.target).then(function (reply) {
      button.disabled = false;
      if (reply && reply.ok) root.dataset.transferred = reply.linkedid;
    });
  });

  var events = new EventSource(root.dataset.events);
  function renderDesk(desk) {
    renderSeat(desk.seat);
    renderCall(desk.call, desk.seat);
    renderSupervision(desk.supervision);
    renderSuperviseButtons(desk.call);
  }
  events.addEventListener("desk", function (e) {
    renderDesk(JSON.parse(e.data));
    status.dataset.status = "live";
    status.textContent = "实时";
  });
  events.onerror = function () { status.dataset.status = "reconnecting"; status.textContent = "重连中…"; };
})();
