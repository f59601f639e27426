// Minimal SVG charts (no external library: the dashboard must work on a closed network).
// Colour-blind-safe palette (Okabe–Ito), one colour per index group.
"use strict";
const PALETTE = ["#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7"];
const GROUPS = ["CKMB", "TDGQ", "CLGQ", "TTTT", "MDHL", "MDSH"];
const GROUP_NAMES = {
  CKMB: "Công khai, minh bạch", TDGQ: "Tiến độ giải quyết", CLGQ: "Dịch vụ trực tuyến",
  TTTT: "Thanh toán trực tuyến", MDHL: "Mức độ hài lòng", MDSH: "Số hóa hồ sơ",
};
const SVG_NS = "http://www.w3.org/2000/svg";

function el(name, attrs, text) {
  const node = document.createElementNS(SVG_NS, name);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function legend(container, names, colors) {
  const box = document.createElement("div");
  box.className = "legend";
  names.forEach((name, i) => {
    const item = document.createElement("span");
    item.style.setProperty("--swatch", (colors || PALETTE)[i % (colors || PALETTE).length]);
    item.textContent = name;
    box.appendChild(item);
  });
  container.appendChild(box);
}

const SHOWN = (v) => (v === null || v === undefined ? "–" : Number(v).toFixed(2));

// A unit's name cut to fit beside a bar (the whole name in its tooltip).
function shortName(name, room) {
  const text = String(name ?? "");
  return text.length > room ? `${text.slice(0, room - 1)}…` : text;
}

// Horizontal stacked bars: one bar per unit, one segment per group (max 100 points); the unit's
// name on the left, its total at the end of its bar.
function stackedBars(container, rows, max) {
  container.replaceChildren();
  legend(container, GROUPS.map((g) => `${g} – ${GROUP_NAMES[g]}`));
  const label = 190, barH = 18, gap = 6, width = 640, room = 60;
  const height = rows.length * (barH + gap) + 4;
  const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, role: "img",
                          "aria-label": "Điểm theo nhóm chỉ số của từng đơn vị" });
  const scale = (width - label - room) / (max || 100);
  rows.forEach((row, i) => {
    const y = i * (barH + gap);
    const bar = el("g", { class: "bar", "data-unit": row.key });
    const name = el("text", { class: "label", x: 0, y: y + barH - 5 },
                    shortName(row.label, 32));
    name.appendChild(el("title", {}, row.label));
    bar.appendChild(name);
    let x = label;
    GROUPS.forEach((g, j) => {
      const v = row.groups[g] || 0;
      if (v > 0) {
        const seg = el("rect", { x, y, width: v * scale, height: barH, fill: PALETTE[j] });
        seg.appendChild(el("title", {}, `${row.label} – ${GROUP_NAMES[g]}: ${SHOWN(v)}`));
        bar.appendChild(seg);
        x += v * scale;
      }
    });
    bar.appendChild(el("text", { class: "value", x: x + 4, y: y + barH - 5 }, SHOWN(row.total)));
    svg.appendChild(bar);
  });
  container.appendChild(svg);
}

// Horizontal bars of one value per unit: the unit's name on the left, the value at the end of
// every bar (room is kept for the longest bar's).
function simpleBars(container, rows, color, title) {
  container.replaceChildren();
  const label = 230, barH = 20, gap = 6, width = 640, room = 56;
  const height = rows.length * (barH + gap) + 4;
  const max = Math.max(1, ...rows.map((r) => r.value));
  const scale = (width - label - room) / max;
  const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, role: "img",
                          "aria-label": title || "Biểu đồ theo đơn vị" });
  rows.forEach((row, i) => {
    const y = i * (barH + gap);
    const bar = el("g", { class: "row", "data-unit": row.key });
    const name = el("text", { class: "label", x: 0, y: y + barH - 6 },
                    shortName(row.label, 38));
    name.appendChild(el("title", {}, row.label));
    bar.appendChild(name);
    const w = Math.max(1, row.value * scale);
    const rect = el("rect", { class: "bar", x: label, y, width: w, height: barH,
                              fill: color || PALETTE[5] });
    rect.appendChild(el("title", {}, `${row.label}: ${row.value}`));
    bar.appendChild(rect);
    bar.appendChild(el("text", { class: "value", x: label + w + 4, y: y + barH - 6 },
                       String(row.value)));
    svg.appendChild(bar);
  });
  container.appendChild(svg);
}

// A line over periods (null values leave gaps), each point with its value; ``name``: whose.
function lineChart(container, points, max, color, name) {
  container.replaceChildren();
  if (name) legend(container, [name], [color || PALETTE[4]]);
  const width = 640, height = 230, pad = 34, top = 20;
  const step = (width - 2 * pad) / Math.max(1, points.length - 1);
  const y = (v) => height - pad - (v / (max || 100)) * (height - pad - top);
  const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, role: "img",
                          "aria-label": `Tổng điểm theo kỳ${name ? ` – ${name}` : ""}` });
  [0, 25, 50, 75, 100].forEach((t) => {
    svg.appendChild(el("line", { x1: pad, x2: width - pad, y1: y(t), y2: y(t),
                                 stroke: "#d9dde5" }));
    svg.appendChild(el("text", { x: 2, y: y(t) + 4 }, String(t)));
  });
  let path = "", joined = false;
  points.forEach((p, i) => {
    const x = pad + i * step;
    svg.appendChild(el("text", { class: "period", x, y: height - 8, "text-anchor": "middle" },
                       p.label));
    if (p.value === null || p.value === undefined) { joined = false; return; }
    path += `${joined ? "L" : "M"}${x},${y(p.value)} `;
    joined = true;
    const dot = el("circle", { class: "point", cx: x, cy: y(p.value), r: 4,
                               fill: color || PALETTE[4] });
    dot.appendChild(el("title", {}, `${p.label}: ${SHOWN(p.value)}`));
    svg.appendChild(dot);
    svg.appendChild(el("text", { class: "value", x, y: y(p.value) - 8, "text-anchor": "middle" },
                       SHOWN(p.value)));
  });
  svg.insertBefore(el("path", { d: path.trim(), fill: "none", stroke: color || PALETTE[4],
                                "stroke-width": 2 }), svg.firstChild);
  container.appendChild(svg);
}

// Shared helpers for the pages.
const LEVELS = { province: "Tỉnh, thành phố", department: "Sở, ban, ngành",
                 commune: "Xã, phường, đặc khu", ministry: "Bộ, ngành" };

function recentPeriods(today, months) {
  const out = [];
  let y = today.getFullYear(), m = today.getMonth() + 1;
  for (let i = 0; i < months; i++) {
    out.push(`${y}-${String(m).padStart(2, "0")}`);
    m -= 1; if (m === 0) { m = 12; y -= 1; }
  }
  const q = Math.floor((today.getMonth()) / 3) + 1;
  for (let i = 0; i < 4; i++) {
    const qq = ((q - 1 - i) % 4 + 4) % 4 + 1, yy = today.getFullYear() - (q - 1 - i < 0 ? 1 : 0);
    out.push(`${yy}-Q${qq}`);
  }
  out.push(String(today.getFullYear()), String(today.getFullYear() - 1));
  return out;
}

function change(value) {
  if (value === null || value === undefined) return '<span class="same">mới</span>';
  if (value > 0) return `<span class="up" title="Tăng ${value} bậc">▲ ${value}</span>`;
  if (value < 0) return `<span class="down" title="Giảm ${-value} bậc">▼ ${-value}</span>`;
  return '<span class="same">–</span>';
}

function escapeHtml(s) {
  return String(s ?? "").replace(/[&<>"']/g, (c) =>
    ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

// The API's texts for people (insights) in Vietnamese, whatever the browser's language.
const API_HEADERS = { Accept: "application/json", "Accept-Language": "vi" };

async function getJson(url) {
  // "no-cache": revalidate with the stored ETag every time (a 304 costs the server nothing).
  const response = await fetch(url, { cache: "no-cache", headers: API_HEADERS });
  if (!response.ok) throw failure(response);
  return response.json();
}

function failure(response) {
  const error = new Error(`HTTP ${response.status}`);
  error.status = response.status;
  return error;
}

// What went wrong, in Vietnamese (the API's own details are in English).
function errorText(error) {
  const status = error && error.status;
  if (status === 401) return "cần khóa API";
  if (status === 403) return "khóa API không có quyền với đơn vị này";
  if (status === 404) return "không tìm thấy dữ liệu";
  if (status === 422 || status === 400) return "yêu cầu không hợp lệ";
  if (status === 429) return "quá nhiều yêu cầu, vui lòng thử lại sau ít phút";
  if (status) return `lỗi máy chủ (mã ${status})`;
  return "không kết nối được máy chủ";
}

// --- downloads -------------------------------------------------------------------------------

// The file name a Content-Disposition header gives (its UTF-8 form first).
function filenameOf(disposition, fallback) {
  const utf8 = /filename\*=UTF-8''([^;]+)/i.exec(disposition || "");
  if (utf8) return decodeURIComponent(utf8[1]);
  const plain = /filename="([^"]+)"/i.exec(disposition || "");
  return plain ? plain[1] : fallback;
}

// Download a file that needs a key: fetch with the Bearer key, hand the body to the browser as a
// Blob link (a plain link cannot carry the key).
async function downloadWithKey(url, key, fallbackName) {
  const response = await fetch(url, { cache: "no-store",
                                      headers: { Authorization: `Bearer ${key}` } });
  if (!response.ok) throw failure(response);
  const blob = await response.blob();
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = filenameOf(response.headers.get("content-disposition"), fallbackName);
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
  return link.download;
}

// The API key of this browser tab: kept in sessionStorage only (gone when the tab closes), never
// in the address, never in localStorage.
const KEY_ITEM = "chiso.apiKey";
const sessionKey = {
  get: () => sessionStorage.getItem(KEY_ITEM),
  set: (key) => sessionStorage.setItem(KEY_ITEM, key),
  forget: () => sessionStorage.removeItem(KEY_ITEM),
};
