/* weldpulse tracker: a pageview on load and on SPA navigation; weldpulse("name", {props: {...}}) for custom events.
   <script defer data-site="sk_live_..." src="https://your-weldpulse/js/script.js"></script>
   Optional: data-api="https://..." (default: the script's origin), data-respect-dnt="true". No cookies, no storage. */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script) return;
  var siteKey = script.getAttribute("data-site");
  var api = (script.getAttribute("data-api") || new URL(script.src).origin).replace(/\/$/, "");
  var endpoint = api + "/v1/collect";
  var respectDnt = script.getAttribute("data-respect-dnt") === "true";
  var queued = (window.weldpulse && window.weldpulse.q) || [];
  var lastPath = null;

  function doNotTrack() {
    return respectDnt && (navigator.doNotTrack === "1" || window.doNotTrack === "1");
  }

  function send(name, props) {
    if (!siteKey || doNotTrack()) return;
    var body = JSON.stringify({
      site_key: siteKey,
      name: name,
      url: location.href,
      referrer: document.referrer || "",
      props: props || {}
    });
    if (window.fetch) {
      // keepalive lets the request outlive the page, like sendBeacon.
      fetch(endpoint, {
        method: "POST",
        body: body,
        headers: { "Content-Type": "application/json" },
        keepalive: true,
        credentials: "omit"
      }).catch(function () {});
    } else if (navigator.sendBeacon) {
      navigator.sendBeacon(endpoint, new Blob([body], { type: "text/plain" }));
    }
  }

  function pageview() {
    if (location.pathname === lastPath) return;
    lastPath = location.pathname;
    send("pageview");
  }

  window.weldpulse = function (name, options) {
    send(String(name), options && options.props);
  };
  for (var i = 0; i < queued.length; i++) window.weldpulse.apply(null, queued[i]);

  var pushState = history.pushState;
  if (pushState) {
    history.pushState = function () {
      pushState.apply(this, arguments);
      pageview();
    };
    window.addEventListener("popstate", pageview);
  }
  pageview();
})();
