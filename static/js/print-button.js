document.querySelectorAll('#print-notice').forEach(function (b) {
  b.addEventListener('click', function () { window.print(); });
});
