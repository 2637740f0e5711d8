// The city map: every collection the reader may see, as vector tiles from this server only.
// No request leaves the server: MapLibre is served from /static/vendor, there is no glyphs URL
// (labels are drawn with the browser's own fonts) and no external basemap: the city's own
// reference layers (administrative areas, roads, water, buildings) are drawn first, in grey.
import * as maplibregl from "/static/vendor/maplibre-gl.mjs";

const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22"];
const REFERENCE = new Set(["admin_area", "road_segment", "building", "water_body"]);
const state = { token: sessionStorage.getItem("twinhub-token") || "", asOf: "", collections: [], config: {} };

function headers() {
  return state.token ? { Authorization: `Bearer ${state.token}` } : {};
}

function withAsOf(url) {
  if (!state.asOf) return url;
  return url + (url.includes("?") ? "&" : "?") + "as-of=" + encodeURIComponent(state.asOf);
}

async function api(path) {
  const response = await fetch(withAsOf(path), { headers: headers() });
  const body = await response.json();
  if (!response.ok) throw new Error(body.description || response.statusText);
  return body;
}

function escapeHtml(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

const map = new maplibregl.Map({
  container: "map",
  style: { version: 8, sources: {}, layers: [{ id: "background", type: "background", paint: { "background-color": "#eef1f4" } }] },
  center: [121.47, 31.23],
  zoom: 9,
  localIdeographFontFamily: "'Noto Sans CJK SC', 'Noto Sans SC', sans-serif",
  transformRequest: (url) => (url.startsWith(location.origin) ? { url: withAsOf(url), headers: headers() } : { url }),
  attributionControl: false,
});
map.addControl(new maplibregl.NavigationControl(), "top-right");
map.addControl(new maplibregl.ScaleControl({ unit: "metric" }), "bottom-right");
window.twinhubMap = map;  // for the tests and for stewards poking at it in the console

function colourOf(department) {
  const departments = [...new Set(state.collections.map((c) => c.twinhub.department))].sort();
  return PALETTE[departments.indexOf(department) % PALETTE.length];
}

function layerIds(id) {
  return [`${id}:fill`, `${id}:line`, `${id}:point`, `${id}:label`];
}

function removeCollections() {
  for (const c of state.collections) {
    for (const layer of layerIds(c.id)) if (map.getLayer(layer)) map.removeLayer(layer);
    if (map.getSource(c.id)) map.removeSource(c.id);
  }
}

function addCollection(c) {
  const reference = REFERENCE.has(c.twinhub.standard);
  const colour = reference ? "#9aa5b1" : colourOf(c.twinhub.department);
  map.addSource(c.id, {
    type: "vector",
    tiles: [`${location.origin}/collections/${encodeURIComponent(c.id)}/tiles/WebMercatorQuad/{z}/{y}/{x}`],
    minzoom: 0, maxzoom: 22, bounds: c.extent ? c.extent.spatial.bbox[0] : undefined,
  });
  const common = { source: c.id, "source-layer": c.id, metadata: { collection: c.id } };
  map.addLayer({ ...common, id: `${c.id}:fill`, type: "fill", filter: ["==", ["geometry-type"], "Polygon"],
                 paint: { "fill-color": colour, "fill-opacity": reference ? 0.25 : 0.35, "fill-outline-color": colour } });
  map.addLayer({ ...common, id: `${c.id}:line`, type: "line", filter: ["==", ["geometry-type"], "LineString"],
                 paint: { "line-color": colour, "line-width": reference ? 1 : 2 } });
  map.addLayer({ ...common, id: `${c.id}:point`, type: "circle", filter: ["==", ["geometry-type"], "Point"],
                 paint: { "circle-color": colour, "circle-radius": 6, "circle-stroke-color": "#fff", "circle-stroke-width": 1.5 } });
  if (c.queryables && c.queryables.includes("name")) {
    map.addLayer({ ...common, id: `${c.id}:label`, type: "symbol", minzoom: 12, filter: ["==", ["geometry-type"], "Point"],
                   layout: { "text-field": ["to-string", ["get", "name"]], "text-size": 12, "text-offset": [0, 1.2], "text-anchor": "top" },
                   paint: { "text-color": "#222", "text-halo-color": "#fff", "text-halo-width": 1.2 } });
  }
}

function renderPanel() {
  const groups = {};
  for (const c of state.collections) {
    const key = `${c.twinhub.department} · ${c.twinhub.standard || "table"}`;
    (groups[key] = groups[key] || []).push(c);
  }
  const panel = document.getElementById("layers");
  panel.innerHTML = "";
  for (const key of Object.keys(groups).sort()) {
    const heading = document.createElement("h3");
    heading.textContent = key;
    panel.append(heading);
    for (const c of groups[key]) {
      const row = document.createElement("label");
      row.className = "layer";
      row.dataset.collection = c.id;
      const colour = REFERENCE.has(c.twinhub.standard) ? "#9aa5b1" : colourOf(c.twinhub.department);
      row.innerHTML = `<input type="checkbox" checked><span class="swatch" style="background:${colour}"></span>` +
        `<span>${escapeHtml(c.title)}</span>`;
      row.querySelector("input").addEventListener("change", (event) => {
        for (const layer of layerIds(c.id)) {
          if (map.getLayer(layer)) map.setLayoutProperty(layer, "visibility", event.target.checked ? "visible" : "none");
        }
      });
      panel.append(row);
    }
  }
}

async function loadCollections() {
  const doc = await api("/collections");
  const collections = doc.collections.filter((c) => c.extent);
  await Promise.all(collections.map(async (c) => {  // at once, not one after another: the first paint waits on them
    const queryables = await api(`/collections/${encodeURIComponent(c.id)}/queryables`);
    c.queryables = Object.keys(queryables.properties || {});
  }));
  removeCollections();
  const order = (c) => (REFERENCE.has(c.twinhub.standard) ? 0 : 1);
  state.collections = collections.sort((a, b) => order(a) - order(b) || a.id.localeCompare(b.id));
  for (const c of state.collections) addCollection(c);
  renderPanel();
  fitOnce();
  delete document.body.dataset.idle;
  map.once("idle", () => { document.body.dataset.idle = String(Date.now()); });  // every layer's tiles drawn
  document.getElementById("reader").textContent = state.token ? "reading with your token" : "public data (no token)";
  document.body.dataset.loaded = String(state.collections.length);
}

// /map#bbox=minx,miny,maxx,maxy&collection=ID&item=FID (the HTML pages' map links): framed on one feature
function focusOf() {
  const params = new URLSearchParams(location.hash.slice(1));
  const box = (params.get("bbox") || "").split(",").map(Number);
  return box.length === 4 && box.every(Number.isFinite) ? { box, collection: params.get("collection"), item: params.get("item") } : null;
}

async function showFocus(focus) {
  const collection = collectionOf(focus.collection);
  if (!collection || !focus.item) return;
  const feature = await api(`/collections/${encodeURIComponent(collection.id)}/items/${encodeURIComponent(focus.item)}`);
  if (!feature.geometry) return;
  const at = feature.geometry.type === "Point" ? feature.geometry.coordinates : firstPoint(feature.geometry);
  new maplibregl.Popup({ maxWidth: "360px" }).setLngLat(at).setHTML(popupHtml(collection, feature.properties)).addTo(map);
}

let fitted = false;
function fitOnce() {
  const boxes = state.collections.map((c) => c.extent.spatial.bbox[0]);
  const focus = focusOf();
  if (!fitted && focus) {
    fitted = true;
    map.fitBounds([[focus.box[0], focus.box[1]], [focus.box[2], focus.box[3]]], { padding: 80, duration: 0, maxZoom: 17 });
    showFocus(focus).catch(showError);
    return;
  }
  if (fitted || !boxes.length) return;
  fitted = true;
  const union = boxes.reduce((a, b) => [Math.min(a[0], b[0]), Math.min(a[1], b[1]), Math.max(a[2], b[2]), Math.max(a[3], b[3])]);
  map.fitBounds([[union[0], union[1]], [union[2], union[3]]], { padding: 40, duration: 0, maxZoom: 16 });
}

function popupHtml(collection, properties) {
  const t = collection.twinhub;
  const rows = Object.entries(properties).map(([k, v]) => {
    const cls = (t.protected_columns || []).includes(k) ? ' class="protected"' : "";
    return `<tr><td>${escapeHtml(k)}</td><td${cls}>${escapeHtml(v)}</td></tr>`;
  }).join("");
  const [department, name] = collection.id.split(".");
  const dagster = state.config.dagster_url ? `${state.config.dagster_url}/assets/${encodeURIComponent(department)}/${encodeURIComponent(name)}` : null;
  const quality = t.quarantined_share == null ? "" : ` · ${(100 * (1 - t.quarantined_share)).toFixed(0)} % of rows published`;
  return `<div class="popup"><strong>${escapeHtml(collection.title)}</strong>` +
    `<div class="muted">${escapeHtml(t.department)} · ${escapeHtml(collection.id)} · version ${escapeHtml(t.version ?? "–")}` +
    ` · updated ${escapeHtml((t.updated || "").slice(0, 16))}${quality}</div>` +
    `<table>${rows}</table>` + (dagster ? `<a href="${dagster}" target="_blank" rel="noopener">Dagster asset</a>` : "") + "</div>";
}

function collectionOf(id) {
  return state.collections.find((c) => c.id === id);
}

map.on("click", (event) => {
  if (document.body.classList.contains("picking")) return whatIsHere(event.lngLat);
  const hit = map.queryRenderedFeatures(event.point).find((f) => f.layer.metadata && f.layer.metadata.collection);
  if (!hit) return;
  const collection = collectionOf(hit.layer.metadata.collection);
  new maplibregl.Popup({ maxWidth: "360px" }).setLngLat(event.lngLat).setHTML(popupHtml(collection, hit.properties)).addTo(map);
});

function textQueryables(c) {
  return c.queryables.filter((q) => q === "name" || q === "address" || q.endsWith("_id") || q === "id");
}

async function search(text) {
  const list = document.getElementById("results");
  list.innerHTML = "";
  const quoted = text.replaceAll("'", "''");
  for (const c of state.collections) {
    const fields = textQueryables(c);
    if (!fields.length) continue;
    const filter = fields.map((f) => (f === "name" || f === "address") ? `${f} LIKE '%${quoted}%'` : `${f} = '${quoted}'`).join(" OR ");
    const page = await api(`/collections/${encodeURIComponent(c.id)}/items?limit=10&filter=${encodeURIComponent(filter)}`);
    for (const feature of page.features) addResult(list, c, feature);
  }
  if (!list.children.length) list.innerHTML = "<li class=muted>nothing found</li>";
}

function addResult(list, collection, feature, note = "") {
  const item = document.createElement("li");
  const label = feature.properties.name ?? feature.id ?? "(unnamed)";
  item.innerHTML = `${escapeHtml(label)} <span class="muted">${escapeHtml(collection.title)}${escapeHtml(note)}</span>`;
  item.addEventListener("click", () => {
    if (!feature.geometry) return;
    const [lon, lat] = feature.geometry.type === "Point" ? feature.geometry.coordinates : firstPoint(feature.geometry);
    map.flyTo({ center: [lon, lat], zoom: Math.max(map.getZoom(), 15) });
    new maplibregl.Popup({ maxWidth: "360px" }).setLngLat([lon, lat]).setHTML(popupHtml(collection, feature.properties)).addTo(map);
  });
  list.append(item);
}

function firstPoint(geometry) {
  let c = geometry.coordinates;
  while (Array.isArray(c[0])) c = c[0];
  return c;
}

function metres(a, b) {
  const r = 6371008.8, rad = Math.PI / 180;
  const dLat = (b[1] - a[1]) * rad, dLon = (b[0] - a[0]) * rad;
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(a[1] * rad) * Math.cos(b[1] * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * r * Math.asin(Math.sqrt(h));
}

async function whatIsHere(lngLat) {
  document.body.classList.remove("picking");
  const radius = Number(document.getElementById("radius").value) || 300;
  const dLat = radius / 111320, dLon = radius / (111320 * Math.cos(lngLat.lat * Math.PI / 180));
  const bbox = [lngLat.lng - dLon, lngLat.lat - dLat, lngLat.lng + dLon, lngLat.lat + dLat].map((v) => v.toFixed(7)).join(",");
  const list = document.getElementById("nearby");
  list.innerHTML = "";
  for (const c of state.collections) {
    const page = await api(`/collections/${encodeURIComponent(c.id)}/items?limit=100&bbox=${bbox}`);
    for (const feature of page.features) {
      if (!feature.geometry) continue;
      const d = metres([lngLat.lng, lngLat.lat], feature.geometry.type === "Point" ? feature.geometry.coordinates : firstPoint(feature.geometry));
      if (feature.geometry.type !== "Point" || d <= radius) addResult(list, c, feature, ` · ${Math.round(d)} m`);
    }
  }
  if (!list.children.length) list.innerHTML = "<li class=muted>nothing within the radius</li>";
}

async function loadVersions() {
  const select = document.getElementById("asof");
  select.length = 1;
  const doc = await api("/versions");
  for (const v of doc.versions) {
    const option = document.createElement("option");
    option.value = String(v.version);
    option.textContent = `${v.version} · ${v.dataset} · ${(v.published_at || "").slice(0, 16)}`;
    select.append(option);
  }
}

document.getElementById("search").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = document.getElementById("q").value.trim();
  if (text) search(text).catch(showError);
});
document.getElementById("here").addEventListener("click", () => document.body.classList.add("picking"));
document.getElementById("asof").addEventListener("change", (event) => {
  state.asOf = event.target.value;
  loadCollections().catch(showError);
});
document.getElementById("login").addEventListener("submit", (event) => {
  event.preventDefault();
  state.token = document.getElementById("token").value.trim();
  sessionStorage.setItem("twinhub-token", state.token);
  document.getElementById("token").value = "";
  reload();
});
document.getElementById("logout").addEventListener("click", () => {
  state.token = "";
  sessionStorage.removeItem("twinhub-token");
  reload();
});

function showError(error) {
  document.getElementById("reader").textContent = `error: ${error.message}`;
}

function reload() {
  Promise.all([loadCollections(), loadVersions()]).catch(showError);
}

map.on("load", async () => {
  try {
    state.config = await api("/map/config");
    document.getElementById("title").textContent = state.config.title || "twinhub";
  } catch (error) {
    showError(error);
  }
  reload();
});
