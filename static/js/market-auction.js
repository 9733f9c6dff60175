// The live bidding page: server-time countdown, bids pushed by the stream service (SSE) or polled, idempotent bids.
(function () {
  const el = document.getElementById("auction");
  const d = el.dataset, id = d.id, step = +d.step, acc = +d.acc || 1;
  const L = JSON.parse(document.getElementById("auction-l10n").textContent);
  let serverNow = Date.parse(d.now), loadedAt = performance.now();
  let ends = Date.parse(d.ends), timed = Date.parse(d.timed), starts = Date.parse(d.starts);
  let seq = +d.seq, price = d.price ? +d.price : null;
  const me = d.me ? +d.me : null;
  const best = {};
  const fmt = f => (f / 100).toFixed(2).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  const now = () => serverNow + (performance.now() - loadedAt) * acc;
  document.querySelectorAll("#history tbody tr").forEach(tr => {
    const b = +tr.dataset.bidder; best[b] = Math.max(best[b] || 0, +tr.dataset.amount); });
  function rank() {
    const r = document.getElementById("rank");
    if (!r || me === null || !(me in best)) return;
    const mine = best[me];
    r.textContent = 1 + Object.values(best).filter(v => v > mine).length;
  }
  function add(b) {
    if (b.seq <= seq) return;
    seq = b.seq; price = b.amount_fen; ends = Date.parse(b.ends_at);
    best[b.bidder] = Math.max(best[b.bidder] || 0, b.amount_fen);
    const tr = document.createElement("tr");
    tr.dataset.seq = b.seq; tr.dataset.bidder = b.bidder; tr.dataset.amount = b.amount_fen;
    const t = new Date(Date.parse(b.at || b.market_at));
    tr.innerHTML = "<td>" + b.seq + "</td><td>" + L.bidder.replace("N", b.bidder) + "</td><td>" +
      fmt(b.amount_fen) + "</td><td>" + t.toLocaleTimeString("zh-CN", {hour12: false}) + "</td>";
    document.querySelector("#history tbody").prepend(tr);
    document.getElementById("price").textContent = fmt(price);
    document.getElementById("ends-at").textContent = new Date(ends).toLocaleString("zh-CN", {hour12: false});
    const amt = document.getElementById("bid-amount");
    if (amt && document.activeElement !== amt) amt.value = fmt(price + step).replace(/,/g, "");
    rank();
  }
  function tick() {
    const t = now(), left = Math.max(0, ends - t);
    const s = Math.floor(left / 1000 / acc * acc) / 1000;  // market seconds left
    const sec = Math.floor(left / 1000);
    document.getElementById("countdown").textContent = left <= 0 ? L.ended :
      String(Math.floor(sec / 3600)).padStart(2, "0") + ":" + String(Math.floor(sec / 60) % 60).padStart(2, "0") + ":" + String(sec % 60).padStart(2, "0");
    document.getElementById("period").textContent = t < starts ? L.notyet : t >= ends ? L.ended : t < timed ? L.free : L.timed;
    void s;
  }
  setInterval(tick, 200); tick();
  async function poll() {
    try {
      const r = await fetch("/api/market/auctions/" + id + "?since=" + seq);
      const st = await r.json();
      serverNow = Date.parse(st.now); loadedAt = performance.now();
      st.bids.slice().reverse().forEach(add);
      ends = Date.parse(st.ends_at);
    } catch (e) { /* next time */ }
  }
  if (d.stream && window.EventSource) {
    const es = new EventSource(d.stream.replace(/\/$/, "") + "/auctions/" + id + "/events");
    es.addEventListener("bid", ev => add(JSON.parse(ev.data)));
    es.onerror = () => poll();
    setInterval(poll, 5000);
  } else {
    setInterval(poll, 1000);
  }
  const amt = document.getElementById("bid-amount");
  if (amt) amt.value = ((price === null ? +d.reserve : price + step) / 100).toFixed(2);
  rank();
  const form = document.getElementById("bid-form");
  if (form) form.addEventListener("submit", async ev => {
    ev.preventDefault();
    const yuan = document.getElementById("bid-amount").value.trim();
    const m = /^(\d+)(?:\.(\d{1,2}))?$/.exec(yuan);
    const out = document.getElementById("bid-result");
    if (!m) { out.textContent = "?"; return; }
    const fen = parseInt(m[1], 10) * 100 + parseInt((m[2] || "0").padEnd(2, "0"), 10);
    const key = (crypto.randomUUID ? crypto.randomUUID() : String(Math.random()).slice(2) + Date.now()).replace(/-/g, "");
    for (let attempt = 0; attempt < 3; attempt++) {   // a retry reuses the key: never two bids
      try {
        const r = await fetch("/api/market/auctions/" + id + "/bids", {method: "POST",
          headers: {"Content-Type": "application/json", "Authorization": "Applicant " + d.key},
          body: JSON.stringify({amount_fen: fen, client_key: key})});
        const b = await r.json();
        if (r.ok) { out.textContent = L.ok.replace("N", b.seq); add({...b, bidder: me, at: b.market_at}); }
        else { out.textContent = b.detail || b.status; if (b.current_price_fen) { price = b.current_price_fen; poll(); } }
        return;
      } catch (e) { await new Promise(res => setTimeout(res, 300)); }
    }
  });
})();
