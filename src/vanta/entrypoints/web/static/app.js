// Behaviour for the pages, by data attribute (the Content-Security-Policy allows no inline
// script). Loaded with defer, after htmx.
(function () {
  "use strict";

  // <time data-expires="ISO">: a live countdown to an overlay's expiry.
  function tick() {
    document.querySelectorAll("[data-expires]").forEach(function (el) {
      var left = Math.floor((Date.parse(el.getAttribute("data-expires")) - Date.now()) / 1000);
      if (left <= 0) { el.textContent = "expired"; el.classList.add("expired"); return; }
      var m = Math.floor(left / 60), s = left % 60;
      el.textContent = m + ":" + (s < 10 ? "0" : "") + s + " left";
    });
  }
  setInterval(tick, 1000);
  document.addEventListener("DOMContentLoaded", tick);

  // <tbody data-sse="/app/orders/stream" data-sse-event="order">: rows pushed by the server
  // (HTML fragments) go on top; the empty-state row goes away with the first one.
  function connect(el) {
    var source = new EventSource(el.getAttribute("data-sse"));
    source.addEventListener(el.getAttribute("data-sse-event") || "message", function (ev) {
      var empty = el.querySelector(".empty-row");
      if (empty) { empty.remove(); }
      el.insertAdjacentHTML("afterbegin", ev.data);
      var status = document.getElementById(el.getAttribute("data-sse-status") || "");
      if (status) { status.textContent = "Live: last order at " + new Date().toLocaleTimeString(); }
    });
    source.addEventListener("error", function () {
      var status = document.getElementById(el.getAttribute("data-sse-status") || "");
      if (status) { status.textContent = "Reconnecting…"; }
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-sse]").forEach(connect);
  });
})();
