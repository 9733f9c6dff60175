// The public market's map: the register's tiles and the listed parcels as their own layer.
(function () {
  const el = document.getElementById('market-map');
  const sources = {
    parcels: { type: 'vector', tiles: [location.origin + '/tiles/{z}/{x}/{y}.pbf'], minzoom: 10, maxzoom: 16 },
    listed: { type: 'geojson', data: el.dataset.geojson }
  };
  const layers = [{ id: 'bg', type: 'background', paint: { 'background-color': '#f4f1e8' } }];
  if (el.dataset.basemap) {
    sources.basemap = { type: 'raster', tiles: [el.dataset.basemap], tileSize: 256 };
    layers.push({ id: 'basemap', type: 'raster', source: 'basemap' });
  }
  layers.push({ id: 'parcel-fill', type: 'fill', source: 'parcels', 'source-layer': 'parcels', paint: { 'fill-color': '#e6b422', 'fill-opacity': 0.25 } });
  layers.push({ id: 'listed-fill', type: 'fill', source: 'listed', paint: { 'fill-color': '#d9480f', 'fill-opacity': 0.7 } });
  layers.push({ id: 'listed-line', type: 'line', source: 'listed', paint: { 'line-color': '#7a2600', 'line-width': 1.2 } });
  const map = new maplibregl.Map({ container: 'market-map', style: { version: 8, sources: sources, layers: layers }, center: [113.1, 36.2], zoom: 11 });
  window.marketMap = map;
  map.addControl(new maplibregl.NavigationControl());
  fetch(el.dataset.geojson).then(r => r.json()).then(function (fc) {
    window.marketFeatures = fc.features.length;
    if (!fc.features.length) return;
    let b = [180, 90, -180, -90];
    for (const f of fc.features) {
      const polys = f.geometry.type === 'Polygon' ? [f.geometry.coordinates] : f.geometry.coordinates;
      for (const poly of polys) for (const c of poly[0]) { b = [Math.min(b[0], c[0]), Math.min(b[1], c[1]), Math.max(b[2], c[0]), Math.max(b[3], c[1])]; }
    }
    map.fitBounds([[b[0], b[1]], [b[2], b[3]]], { padding: 40, maxZoom: 16, duration: 0 });
  });
  map.on('click', 'listed-fill', function (e) {
    const f = e.features && e.features[0];
    if (f) { window.location.href = '/market/listings/' + f.properties.listing; }
  });
})();
