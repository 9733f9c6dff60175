// Choosing a listing's parcels on the sketch map or by their code boxes.
(function () {
  const box = document.getElementById('parcel-map');
  const codes = JSON.parse(box.dataset.codes || '[]');
  const shapes = box.querySelectorAll('svg path.subject');
  const boxFor = c => document.querySelector('input[name=parcel][value="' + c + '"]');
  function sync() {
    shapes.forEach(function (p, i) {
      const on = boxFor(codes[i]).checked;
      p.setAttribute('fill', on ? '#d9480f' : '#f6c945');
      p.classList.toggle('chosen', on);
    });
  }
  shapes.forEach(function (p, i) {
    p.dataset.code = codes[i];
    p.style.cursor = 'pointer';
    p.addEventListener('click', function () { const b = boxFor(codes[i]); b.checked = !b.checked; sync(); });
  });
  document.querySelectorAll('input[name=parcel]').forEach(b => b.addEventListener('change', sync));
})();
