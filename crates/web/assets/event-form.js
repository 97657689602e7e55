// The event form's start: <input type="datetime-local"> holds a time in the visitor's zone,
// so this sends the zone's offset from UTC at that very moment (minutes east, in utcOffset)
// and says which zone it is. A time the server wrote in UTC (data-utc, the edit form) is
// first shown in the visitor's zone. Without script the time stays UTC, as the form says.
(function () {
  var input = document.getElementById("starts-at");
  var offset = document.getElementById("utc-offset");
  var note = document.getElementById("zone-note");
  function pad(n) { return String(n).padStart(2, "0"); }
  if (input.hasAttribute("data-utc")) {
    var utc = new Date(input.value + "Z");
    if (!isNaN(utc.getTime())) {
      input.value = utc.getFullYear() + "-" + pad(utc.getMonth() + 1) + "-" + pad(utc.getDate()) +
        "T" + pad(utc.getHours()) + ":" + pad(utc.getMinutes());
    }
    input.removeAttribute("data-utc");
  }
  function sync() {
    var at = new Date(input.value);
    offset.value = isNaN(at.getTime()) ? "" : String(-at.getTimezoneOffset());
  }
  var zone = "";
  try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { /* none */ }
  note.textContent = "In your time zone" + (zone ? " (" + zone + ")" : "") + ".";
  note.setAttribute("data-zone", zone);
  input.addEventListener("change", sync);
  input.form.addEventListener("submit", sync);
  sync();
})();
