// The order page's countdown: ticks down to the order's deadline, warns once a minute (or
// data-warn seconds) is left, then hides the payment form and reloads the page (the server
// says what became of the order).
(function () {
  var el = document.getElementById("countdown");
  var live = document.getElementById("live");
  var warning = document.getElementById("hold-warning");
  var warn = parseInt(el.getAttribute("data-warn"), 10) || 60;
  var left = parseInt(el.getAttribute("data-seconds"), 10);
  var end = Date.now() + left * 1000;
  function tick() {
    var s = Math.max(0, Math.round((end - Date.now()) / 1000));
    el.textContent = Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
    if (s <= warn && s > 0 && warning.hidden) {
      warning.hidden = false;
      live.classList.add("ending");
    }
    if (s > 0) { setTimeout(tick, 250); return; }
    warning.hidden = true;
    document.getElementById("pay-form").hidden = true;
    document.getElementById("expired-note").hidden = false;
    setTimeout(function () { location.reload(); }, 2000);
  }
  tick();
})();
