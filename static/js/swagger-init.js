(function () {
  var el = document.getElementById('swagger-ui-container');
  var config = { url: el.dataset.specUrl, dom_id: '#swagger-ui-container' };
  var override = JSON.parse(el.dataset.config || '{}');
  for (var k in override) { config[k] = override[k]; }
  window.addEventListener('load', function () { window.ui = SwaggerUIBundle(config); });
})();
