// Live pages: the server says when clusters or profiles change; the page
// fetches itself again and swaps its main content, keeping the scroll.
(function () {
  if (!window.EventSource) return;
  const main = () => document.querySelector("main");
  let pending = false;
  async function refresh() {
    if (pending) return;
    pending = true;
    try {
      const res = await fetch(location.href, { headers: { "X-Strata-Fragment": "main" } });
      if (res.ok) {
        main().innerHTML = await res.text();
        document.body.dataset.refreshed = String(Date.now());
      }
    } finally {
      pending = false;
    }
  }
  const es = new EventSource("/events" + location.search);
  es.addEventListener("changed", refresh);
  // A change between serving this page and the stream opening (or while
  // the stream was down and reconnecting) is told by nobody: the server
  // opens the stream only once its watches run, so one refresh on each
  // open closes that gap.
  es.addEventListener("open", refresh);
})();
