// 工作台: the one script. The pages work without it; with it, a queue reloads itself when the
// events say something changed, and "/" jumps to the case-number search.
(function () {
  "use strict";
  var queues = document.querySelectorAll("[data-queue]");
  var badge = document.getElementById("live");
  function refresh(el) {
    fetch(el.getAttribute("data-queue"), { headers: { "x-jiesu-fragment": "1" }, credentials: "same-origin" })
      .then(function (r) {
        if (r.status === 401) { window.location.reload(); return null; }
        return r.ok ? r.text() : null;
      })
      .then(function (html) { if (html !== null && html !== undefined) { el.innerHTML = html; } })
      .catch(function () {});
  }
  if (queues.length && window.EventSource) {
    var source = new EventSource("/events");
    source.addEventListener("change", function () { queues.forEach(refresh); });
    // On reconnecting, refresh once: events that passed while the stream was down would
    // otherwise be missed.
    var opened = false;
    source.onopen = function () {
      if (opened) { queues.forEach(refresh); }
      opened = true;
      if (badge) { badge.classList.add("on"); badge.textContent = "实时更新"; }
    };
    source.onerror = function () { if (badge) { badge.classList.remove("on"); badge.textContent = "连接中断，正在重连…"; } };
  }
  document.addEventListener("keydown", function (e) {
    var t = e.target;
    var typing = t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT" || t.isContentEditable);
    if (!typing && e.key === "/") {
      var box = document.getElementById("case-search");
      if (box) { e.preventDefault(); box.focus(); }
    }
  });
})();
