(function () {
  const el = document.getElementById('fault-map');
  const map = new maplibregl.Map({ container: 'fault-map', style: { version: 8, sources: {
      parcels: { type: 'vector', tiles: [location.origin + '/tiles/{z}/{x}/{y}.pbf'], minzoom: 10, maxzoom: 16 },
      faults: { type: 'geojson', data: el.dataset.url } },
    layers: [{ id: 'bg', type: 'background', paint: { 'background-color': '#f4f1e8' } },
      { id: 'parcels', type: 'line', source: 'parcels', 'source-layer': 'parcels', paint: { 'line-color': '#8a7a4a', 'line-width': 0.5 } },
      { id: 'faults', type: 'circle', source: 'faults', paint: { 'circle-radius': 7, 'circle-color': '#cf222e', 'circle-stroke-color': '#fff', 'circle-stroke-width': 2 } }] },
    center: [113.1, 36.2], zoom: 12 });
  window.faultMap = map;
  fetch(el.dataset.url).then(r => r.json()).then(fc => {
    if (!fc.features.length) return;
    const b = new maplibregl.LngLatBounds();
    fc.features.forEach(f => b.extend(f.geometry.coordinates));
    map.fitBounds(b, { padding: 60, maxZoom: 16, duration: 0 });
  });
  map.on('click', 'faults', e => {
    const p = e.features[0].properties;
    new maplibregl.Popup().setLngLat(e.lngLat).setText(p.rule + ' ' + p.code + ': ' + p.detail).addTo(map);
  });
})();
