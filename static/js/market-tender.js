// A sealed tender: the commitment sha256(price|nonce|plan) is computed here; the price never leaves the browser before the opening.
(function () {
  const n = new Uint8Array(16); crypto.getRandomValues(n);
  const nonce = Array.from(n, b => b.toString(16).padStart(2, "0")).join("");
  document.getElementById("t-nonce").textContent = nonce;
  document.getElementById("lodge-form").addEventListener("submit", async function (ev) {
    if (document.getElementById("t-commitment").value) return;
    ev.preventDefault();
    const text = document.getElementById("t-price").value.trim() + "|" + nonce + "|" + document.getElementById("t-plan").value;
    const h = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
    document.getElementById("t-commitment").value = Array.from(new Uint8Array(h), b => b.toString(16).padStart(2, "0")).join("");
    document.getElementById("t-price").value = ""; document.getElementById("t-plan").disabled = true;
    this.submit();
  });
})();
