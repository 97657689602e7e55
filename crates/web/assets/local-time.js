// Times in the visitor's own time zone: the server writes UTC, labelled as such, in each
// <time datetime="..." data-local="time|datetime|day">; this rewrites the text with the browser's
// locale and zone, and keeps the UTC text as the tooltip. Without script, UTC stays.
(function () {
  var styles = {
    time: { hour: "numeric", minute: "2-digit", second: "2-digit", timeZoneName: "short" },
    datetime: { year: "numeric", month: "short", day: "numeric", hour: "numeric", minute: "2-digit", timeZoneName: "short" },
    day: { weekday: "short", year: "numeric", month: "short", day: "numeric", hour: "numeric", minute: "2-digit", timeZoneName: "short" }
  };
  var times = document.querySelectorAll("time[data-local]");
  for (var i = 0; i < times.length; i++) {
    var el = times[i], at = new Date(el.getAttribute("datetime"));
    if (isNaN(at.getTime())) { continue; }
    try {
      var text = at.toLocaleString(undefined, styles[el.getAttribute("data-local")] || styles.datetime);
      el.title = el.textContent;
      el.textContent = text;
      el.setAttribute("data-localised", "");
    } catch (e) { /* an old browser: the UTC text stays */ }
  }
})();
