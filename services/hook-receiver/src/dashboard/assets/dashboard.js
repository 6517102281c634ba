// Live updates: the server sends an event whenever a run this page shows moves on
// (server-sent events, reconnecting on their own); the page then reloads itself,
// at most once a second and never while the operator is typing in a form.
(function () {
  if (!window.EventSource || !document.body.dataset.live) return;
  var watch = document.body.dataset.live; // "*" or a run id
  var badge = document.getElementById("live");
  var pending = false;
  var typing = function () {
    var a = document.activeElement;
    return a && (a.tagName === "INPUT" || a.tagName === "TEXTAREA" || a.tagName === "SELECT") && a.value;
  };
  var reload = function () {
    if (pending) return;
    pending = true;
    setTimeout(function again() {
      if (typing()) { setTimeout(again, 1000); return; }
      window.location.reload();
    }, 1000);
  };
  var source = new EventSource("/live");
  source.onopen = function () { if (badge) badge.hidden = false; };
  source.onerror = function () { if (badge) badge.hidden = true; };
  // A page left for another keeps its stream open in the back-forward cache, and a
  // browser has six connections per site: the seventh page's requests would wait.
  window.addEventListener("pagehide", function () { source.close(); });
  window.addEventListener("pageshow", function (e) { if (e.persisted) window.location.reload(); });
  source.addEventListener("run", function (e) {
    if (watch === "*" || e.data === "*" || e.data === watch) reload();
  });
})();
