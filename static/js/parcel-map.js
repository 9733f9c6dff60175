(function () {
  const el = document.getElementById('map');
  const bounds = JSON.parse(el.dataset.bounds || 'null');
  const sources = {
    parcels: { type: 'vector', tiles: [location.origin + '/tiles/{z}/{x}/{y}.pbf'], minzoom: 10, maxzoom: 16 }
  };
  const layers = [{ id: 'bg', type: 'background', paint: { 'background-color': '#f4f1e8' } }];
  if (el.dataset.basemap) {
    sources.basemap = { type: 'raster', tiles: [el.dataset.basemap], tileSize: 256 };
    layers.push({ id: 'basemap', type: 'raster', source: 'basemap' });
  }
  layers.push({
    id: 'parcel-fill', type: 'fill', source: 'parcels', 'source-layer': 'parcels',
    paint: { 'fill-opacity': 0.55, 'fill-color': ['case',
      ['==', ['get', 'kind'], 'homestead'], '#c0392b',
      ['==', ['get', 'dklb'], '21'], '#8e6fc1',
      ['in', ['get', 'dklb'], ['literal', ['22', '23', '99']]], '#4a90c2',
      ['==', ['get', 'sfjbnt'], '1'], '#3f8f29', '#e6b422'] }
  });
  layers.push({ id: 'parcel-line', type: 'line', source: 'parcels', 'source-layer': 'parcels',
    paint: { 'line-color': '#5b4a1e', 'line-width': 0.6 } });
  const map = new maplibregl.Map({
    container: 'map', style: { version: 8, sources: sources, layers: layers },
    bounds: bounds ? [[bounds[0], bounds[1]], [bounds[2], bounds[3]]] : undefined,
    center: bounds ? undefined : [113.1, 36.2], zoom: bounds ? undefined : 13,
    fitBoundsOptions: { padding: 20, maxZoom: 16 }
  });
  window.sanquanMap = map;
  map.on('load', async function () {  // the 流转 layer: parcels under a management right today
    const fc = await (await fetch('/market/transfers.geojson')).json();
    map.addSource('transfers', { type: 'geojson', data: fc });
    map.addLayer({ id: 'transfers-fill', type: 'fill', source: 'transfers',
      paint: { 'fill-color': '#0b6e8a', 'fill-opacity': 0.45 } });
    map.addLayer({ id: 'transfers-line', type: 'line', source: 'transfers',
      paint: { 'line-color': '#0b6e8a', 'line-width': 2, 'line-dasharray': [2, 1] } });
    const count = document.getElementById('transfers-count');
    if (count) { count.textContent = '(' + fc.features.length + ')'; }
    window.sanquanTransfers = fc;
    const toggle = document.getElementById('layer-transfers');
    if (toggle) {
      toggle.addEventListener('change', function () {
        const v = this.checked ? 'visible' : 'none';
        map.setLayoutProperty('transfers-fill', 'visibility', v);
        map.setLayoutProperty('transfers-line', 'visibility', v);
      });
    }
  });
  map.addControl(new maplibregl.NavigationControl());
  map.addControl(new maplibregl.ScaleControl({ unit: 'metric' }));
  map.on('click', 'parcel-fill', function (e) {
    const f = e.features && e.features[0];
    if (f) { window.location.href = '/parcels/' + f.properties.id; }
  });
  map.on('mouseenter', 'parcel-fill', function () { map.getCanvas().style.cursor = 'pointer'; });
  map.on('mouseleave', 'parcel-fill', function () { map.getCanvas().style.cursor = ''; });
  document.getElementById('map-search').addEventListener('submit', function (e) { e.preventDefault(); });
  document.getElementById('map-search-btn').addEventListener('click', async function () {
    const q = document.getElementById('map-q').value.trim();
    const ul = document.getElementById('map-results');
    ul.innerHTML = '';
    if (q.length < 2) return;
    const resp = await fetch('/parcels/search?q=' + encodeURIComponent(q));
    document.getElementById('map-search-cut').hidden = !resp.headers.get('X-Search-Cut');
    const rows = await resp.json();
    for (const r of rows) {
      const li = document.createElement('li');
      const a = document.createElement('a');
      a.href = '/parcels/' + r.id;
      a.textContent = r.code + (r.holder ? ' · ' + r.holder : '');
      li.appendChild(a);
      ul.appendChild(li);
    }
    if (rows.length) {
      const b = rows[0].bbox;
      map.fitBounds([[b[0], b[1]], [b[2], b[3]]], { padding: 80, maxZoom: 17 });
    }
  });
})();
