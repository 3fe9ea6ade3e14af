// The desk page's WebRTC phone (docs/console.md): the microphone first, then the seat's SIP
// account from the console (never in the page's source), JsSIP registering over the WebSocket.
// The seat logs in to its queues once the phone is registered: a seat is never rung without one.
// The ticket pop is desk.js's (the server-sent desk); this file only rings, answers and hangs up.
(function () {
  "use strict";
  var panel = document.getElementById("phone");
  if (!panel) { return; }
  if (typeof JsSIP === "undefined") {  // console/static/jssip.min.js not built (./run's setup builds it)
    var missing = document.getElementById("phone-error");
    missing.hidden = false;
    missing.textContent = "网页话机组件未安装，请联系管理员。";
    document.getElementById("phone-state").textContent = "未注册";
    panel.dataset.state = "offline";
    return;
  }
  var csrf = document.querySelector('meta[name="csrf-token"]').content;
  var audio = document.getElementById("phone-audio");
  var answerButton = document.getElementById("phone-answer");
  var hangupButton = document.getElementById("phone-hangup");
  var muteButton = document.getElementById("phone-mute");
  var holdButton = document.getElementById("phone-hold");
  var timer = document.getElementById("phone-timer");
  var micSelect = document.getElementById("phone-mic");
  var MIC_KEY = "ivr.phone.microphone";  // the agent's choice, in this browser's localStorage
  var keys = document.getElementById("phone-keys");
  var transfer = document.getElementById("phone-transfer");
  var STATES = { starting: "正在启动…", registering: "正在注册…", registered: "已注册，等待来电",
    ringing: "来电振铃", talking: "通话中", offline: "未注册" };
  var microphone = null, ua = null, session = null, loggedIn = false, ticking = null;
  var iceServers = [];  // phones.web.ice_servers from the account, TURN with this sign-in's credentials

  function show(state) {
    panel.dataset.state = state;
    document.getElementById("phone-state").textContent = STATES[state];
    answerButton.hidden = state !== "ringing";
    hangupButton.hidden = state !== "ringing" && state !== "talking";
    muteButton.hidden = holdButton.hidden = keys.hidden = transfer.hidden = state !== "talking";
    if (state !== "talking") { showMuted(false); showHeld(false); }
    clock(state === "talking");
    if (state === "ringing") { note(""); }
  }
  function showMuted(muted) {
    muteButton.dataset.muted = String(muted);
    muteButton.textContent = muted ? "取消静音" : "静音";
  }
  function showHeld(held) {
    holdButton.dataset.held = String(held);
    holdButton.textContent = held ? "恢复通话" : "保持";
  }
  function clock(running) {  // the call timer: from the answer, while talking (the agent's own clock)
    if (!running) { clearInterval(ticking); ticking = null; timer.hidden = true; return; }
    if (ticking) { return; }
    var since = Date.now();
    var tick = function () {
      var s = Math.floor((Date.now() - since) / 1000), h = Math.floor(s / 3600), m = Math.floor(s / 60) % 60;
      timer.textContent = (h ? h + ":" : "") + String(m).padStart(2, "0") + ":" + String(s % 60).padStart(2, "0");
    };
    tick();
    timer.hidden = false;
    ticking = setInterval(tick, 1000);
  }
  function savedMicrophone() {
    try { return localStorage.getItem(MIC_KEY) || ""; } catch (e) { return ""; }
  }
  function listMicrophones() {  // labels are only given once the page may use a microphone
    return navigator.mediaDevices.enumerateDevices().then(function (devices) {
      var inputs = devices.filter(function (d) { return d.kind === "audioinput"; });
      micSelect.replaceChildren.apply(micSelect, inputs.map(function (d, i) {
        var option = document.createElement("option");
        option.value = d.deviceId;
        option.textContent = d.label || "麦克风 " + (i + 1);
        return option;
      }));
      var track = microphone && microphone.getAudioTracks()[0];
      var want = savedMicrophone();
      micSelect.value = inputs.some(function (d) { return d.deviceId === want; }) ? want :
        (track && track.getSettings().deviceId) || "";
      document.getElementById("phone-mic-choice").hidden = inputs.length < 2;
    }, function () {});
  }
  // The chosen microphone for the call being answered: captured anew when the choice changed.
  function microphoneForCall() {
    var want = micSelect.value, track = microphone.getAudioTracks()[0];
    if (!want || (track && track.getSettings().deviceId === want)) { return Promise.resolve(microphone); }
    return navigator.mediaDevices.getUserMedia({ audio: { deviceId: { exact: want } }, video: false }).then(function (stream) {
      microphone.getTracks().forEach(function (t) { t.stop(); });
      microphone = stream;
      return stream;
    }, function () {
      fail("无法使用所选麦克风，本次通话使用原麦克风。");
      return microphone;
    });
  }
  function fail(message) {
    var p = document.getElementById("phone-error");
    p.hidden = !message;
    p.textContent = message || "";
  }
  function note(message, ok) {  // what the panel's own actions (转接) answered
    var p = document.getElementById("phone-note");
    p.hidden = !message;
    p.className = ok ? "ok" : "alert";
    p.textContent = message || "";
  }
  function idle() {
    session = null;
    show(ua && ua.isRegistered() ? "registered" : "offline");
  }
  function logInOnce() {  // the desk's own 签入 (desk.js posts it): once, after the first registration
    if (loggedIn) { return; }
    loggedIn = true;
    document.getElementById("seat-login").click();
  }
  // The page rings once the desk shows the call's ticket (app_queue's AgentCalled reaches the desk
  // about when the INVITE reaches the phone): the agent answers knowing who calls. A ticket that is
  // late (the desk's stream reconnecting) holds the ring RING_WAIT_MS at most.
  var RING_WAIT_MS = 2000;
  function ringWithTicket(s) {
    var call = document.getElementById("call"), rung = false;
    var watcher = new MutationObserver(function () { ring(false); });
    var timer = setTimeout(function () { ring(true); }, RING_WAIT_MS);
    function ring(anyway) {
      if (rung || (!anyway && call.dataset.state !== "offered" && call.dataset.state !== "connected")) { return; }
      rung = true;
      watcher.disconnect();
      clearTimeout(timer);
      if (session === s && !s.isEnded()) { show("ringing"); }
    }
    watcher.observe(call, { attributes: true, attributeFilter: ["data-state"] });
    ring(false);
  }
  // JsSIP answers once the browser has gathered every candidate: a STUN or TURN server that does not
  // answer would hold the answer for many seconds. ICE_WAIT_MS after the first candidate the answer goes
  // with what is there (a reachable relay answers in well under that).
  var ICE_WAIT_MS = 2000;
  function gatherAtMost(e) {  // each offer or answer's gathering has its own ready(), a no-op once sent
    if (e.ready.capped) { return; }
    e.ready.capped = true;
    setTimeout(e.ready, ICE_WAIT_MS);
  }
  // Asterisk offers the caller's codec first (the carrier's G.711: A-law in China), then the seat's
  // others; Chrome answers in its own order (PCMU before PCMA), so Asterisk transcoded every packet
  // of an A-law call both ways (benchmarks/README.md, section 11). Of each offer the phone keeps the
  // first voice codec this browser speaks (and the DTMF events): the call then needs no transcoding.
  var CAN = {};
  ((window.RTCRtpReceiver && RTCRtpReceiver.getCapabilities && RTCRtpReceiver.getCapabilities("audio")) || { codecs: [] })
    .codecs.forEach(function (c) { CAN[c.mimeType.split("/")[1].toUpperCase()] = true; });
  function offerersCodec(sdp) {
    var lines = sdp.split("\r\n"), names = { "0": "PCMU", "8": "PCMA", "9": "G722" }, keep = null, inAudio = false;
    lines.forEach(function (l) { var m = /^a=rtpmap:(\d+) ([^/]+)/.exec(l); if (m) { names[m[1]] = m[2].toUpperCase(); } });
    var voice = function (p) { return CAN[names[p]] && names[p] !== "TELEPHONE-EVENT" && names[p] !== "CN"; };
    return lines.map(function (l) {
      if (l.indexOf("m=") === 0) {
        var parts = l.split(" "), first = parts.slice(3).filter(voice)[0];
        inAudio = l.indexOf("m=audio ") === 0 && first !== undefined;
        if (!inAudio) { return l; }
        keep = parts.slice(3).filter(function (p) { return p === first || names[p] === "TELEPHONE-EVENT"; });
        return parts.slice(0, 3).concat(keep).join(" ");
      }
      var m = inAudio && /^a=(?:rtpmap|fmtp|rtcp-fb):(\d+)/.exec(l);
      return m && keep.indexOf(m[1]) < 0 ? null : l;
    }).filter(function (l) { return l !== null; }).join("\r\n");
  }
  function takeCall(s) {
    if (session) { s.terminate({ status_code: 486, reason_phrase: "Busy Here" }); return; }
    session = s;
    ringWithTicket(s);
    s.on("sdp", function (e) { if (e.originator === "remote" && e.type === "offer") { e.sdp = offerersCodec(e.sdp); } });
    s.on("peerconnection", function (e) {
      e.peerconnection.addEventListener("track", function (t) { audio.srcObject = t.streams[0]; });
    });
    s.on("confirmed", function () { show("talking"); });
    s.on("icecandidate", gatherAtMost);
    s.on("hold", function (e) { if (e.originator === "local") { showHeld(true); } });
    s.on("unhold", function (e) { if (e.originator === "local") { showHeld(false); } });
    s.on("ended", idle);
    s.on("failed", function (e) {
      if (e.cause !== JsSIP.C.causes.CANCELED && e.cause !== JsSIP.C.causes.REJECTED) { fail("通话失败：" + e.cause); }
      idle();
    });
  }
  function start(account) {
    iceServers = account.ice || [];
    ua = new JsSIP.UA({
      sockets: [new JsSIP.WebSocketInterface(account.ws)], uri: account.uri, authorization_user: account.user,
      password: account.password, display_name: account.display, register: true, session_timers: false,
      connection_recovery_min_interval: 2, connection_recovery_max_interval: 30,  // reconnects, then registers again
    });
    ua.on("connecting", function () { show("registering"); });
    ua.on("registered", function () { fail(""); if (!session) { show("registered"); } logInOnce(); });
    ua.on("unregistered", function () { if (!session) { show("offline"); } });
    ua.on("registrationFailed", function (e) { show("offline"); fail("话机注册失败：" + e.cause); });
    ua.on("disconnected", function () { if (!session) { show("offline"); } fail("话机连接已断开，正在自动重连…"); });
    ua.on("newRTCSession", function (e) { if (e.originator === "remote") { takeCall(e.session); } });
    ua.start();
  }
  answerButton.addEventListener("click", function () {
    if (!session) { return; }
    var ringing = session;
    microphoneForCall().then(function (stream) {
      if (session === ringing && !ringing.isEnded()) { ringing.answer({ mediaStream: stream, pcConfig: { iceServers: iceServers } }); }
    });
  });
  hangupButton.addEventListener("click", function () { if (session) { session.terminate(); } });
  muteButton.addEventListener("click", function () {  // the microphone's track off: the caller hears silence
    if (!session) { return; }
    var muted = muteButton.dataset.muted !== "true";
    if (muted) { session.mute({ audio: true }); } else { session.unmute({ audio: true }); }
    showMuted(muted);
  });
  // 保持: a re-INVITE (sendonly) from JsSIP; Asterisk plays music on hold to the citizen until 恢复通话
  holdButton.addEventListener("click", function () {
    if (!session) { return; }
    if (holdButton.dataset.held === "true") { session.unhold(); } else { session.hold(); }
  });
  keys.addEventListener("click", function (e) {  // RFC 4733 in the RTP, as the seat's endpoint expects
    var key = e.target.dataset && e.target.dataset.key;
    if (session && key) { session.sendDTMF(key, { transportType: "RFC2833" }); }
  });
  // 转接 / 咨询转接: the desk's own transfer (the engine moves the agent's channel in Asterisk, to a
  // target of the plan only); the page dials nothing itself. Attended: the agent talks to the target
  // on this same call and 挂断 completes the transfer (Asterisk's atxfer, as the softphone's *2).
  transfer.addEventListener("click", function (e) {
    var attended = e.target.dataset && e.target.dataset.attended;
    if (!session || !attended) { return; }
    var buttons = transfer.querySelectorAll("button");
    buttons.forEach(function (b) { b.disabled = true; });  // one click, one transfer
    var data = new URLSearchParams({ target: document.getElementById("phone-transfer-target").value, attended: attended });
    fetch(transfer.dataset.action, { method: "POST", body: data, credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf, "Accept": "application/json" } })
      .then(function (r) { return r.json(); })
      .then(function (reply) { note(reply.message, reply.ok); }, function () { note("转接失败：网络错误", false); })
      .then(function () { buttons.forEach(function (b) { b.disabled = false; }); });
  });
  // for diagnostics and the browser test: the call's RTCPeerConnection (its getStats())
  window.ivrDeskPhone = { connection: function () { return session ? session.connection : null; } };

  micSelect.addEventListener("change", function () {  // kept for the next call, and the next visit
    try { localStorage.setItem(MIC_KEY, micSelect.value); } catch (e) { /* storage off: this page only */ }
  });
  navigator.mediaDevices.addEventListener("devicechange", listMicrophones);
  var saved = savedMicrophone();
  navigator.mediaDevices.getUserMedia({ audio: saved ? { deviceId: saved } : true, video: false }).then(function (stream) {
    microphone = stream;
    listMicrophones();
    return fetch(panel.dataset.account, { method: "POST", credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf, "Accept": "application/json" } })
      .then(function (r) { return r.json(); })
      .then(function (account) {
        if (!account.ok) { show("offline"); fail(account.message); return; }
        start(account);
      }, function () { show("offline"); fail("无法获取话机账号：网络错误，请刷新页面重试。"); });
  }, function () {
    show("offline");
    fail("无法使用麦克风：请在浏览器中允许本页使用麦克风后刷新页面。网页话机未注册，本座席不会签入队列。");
  });
})();
