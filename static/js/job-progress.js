(function () {
  const msg = document.getElementById('job-message');
  async function poll() {
    const r = await fetch(msg.dataset.url, { headers: { 'Accept': 'application/json' } });
    const j = await r.json();
    document.getElementById('bar').style.width = j.percent + '%';
    msg.textContent = (j.message || '') + (j.total > 1 ? ' (' + j.done + ' / ' + j.total + ')' : '');
    if (j.status === 'failed') {
      const e = document.getElementById('job-error'); e.hidden = false; e.textContent = j.error;
      return;
    }
    if (j.status === 'done' && j.next) {
      document.getElementById('job-done').hidden = false;
      document.getElementById('job-next').href = j.next;
      window.location.href = j.next;
      return;
    }
    setTimeout(poll, 700);
  }
  poll();
})();
