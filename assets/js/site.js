// Kindly microsite: optional enhancements. Everything works without this file; it only
// tells the front that a person (not a link scanner) is looking, and how far a video played.
(function () {
  "use strict";
  var root = document.documentElement;
  var endpoint = root.getAttribute("data-beacon");
  if (!endpoint) return;
  var page = (window.crypto && crypto.randomUUID) ? crypto.randomUUID()
    : String(Date.now()) + "-" + String(Math.random()).slice(2, 12);

  function send(type, extra) {
    var body = { type: type, id: page };
    if (extra) for (var key in extra) body[key] = extra[key];
    var text = JSON.stringify(body);
    if (navigator.sendBeacon && navigator.sendBeacon(endpoint, new Blob([text], { type: "text/plain" }))) return;
    if (window.fetch) fetch(endpoint, { method: "POST", body: text, keepalive: true, credentials: "same-origin" });
  }

  function ready() {
    send("view");
    var video = document.querySelector("video");
    if (!video) return;
    var seen = {};
    // The template's call-to-action buttons appear over the player while their scene plays.
    var overlays = Array.prototype.slice.call(document.querySelectorAll(".overlay [data-from]"));
    function showOverlays() {
      var t = video.currentTime;
      overlays.forEach(function (button) {
        var on = t >= parseFloat(button.getAttribute("data-from")) && t <= parseFloat(button.getAttribute("data-to"));
        if (on === button.hidden) button.hidden = !on;
      });
    }
    video.addEventListener("timeupdate", showOverlays);
    video.addEventListener("seeked", showOverlays);
    video.addEventListener("play", function () {
      if (!seen.play) { seen.play = true; send("video_play"); }
    });
    video.addEventListener("timeupdate", function () {
      if (!video.duration) return;
      var pct = video.currentTime / video.duration * 100;
      [25, 50, 75].forEach(function (mark) {
        if (pct >= mark && !seen[mark]) { seen[mark] = true; send("video_progress", { pct: mark }); }
      });
    });
    video.addEventListener("ended", function () {
      if (!seen.end) { seen.end = true; send("video_complete"); }
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", ready);
  else ready();
})();
