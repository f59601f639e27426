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

function legend(container, names) {
  const box = document.createElement("div");
  box.className = "legend";
  names.forEach((name, i) => {
    const item = document.createElement("span");
    item.style.setProperty("--swatch", PALETTE[i % PALETTE.length]);
    item.textContent = name;
    box.appendChild(item);
  });
  container.appendChild(box);
}

// Horizontal stacked bars: one bar per row, one segment per group (max 100 points).
function stackedBars(container, rows, max) {
  container.replaceChildren();
  legend(container, GROUPS.map((g) => `${g} – ${GROUP_NAMES[g]}`));
  const label = 150, barH = 18, gap = 6, width = 640;
  const height = rows.length * (barH + gap) + 24;
  const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, role: "img",
                          "aria-label": "Điểm theo nhóm chỉ số" });
  const scale = (width - label - 50) / (max || 100);
  rows.forEach((row, i) => {
    const y = i * (barH + gap);
    svg.appendChild(el("text", { x: 0, y: y + barH - 5 }, row.label.slice(0, 24)));
    const bar = el("g", { class: "bar", "data-unit": row.key });
    let x = label;
    GROUPS.forEach((g, j) => {
      const v = row.groups[g] || 0;
      if (v > 0) {
        const seg = el("rect", { x, y, width: v * scale, height: barH, fill: PALETTE[j] });
        seg.appendChild(el("title", {}, `${GROUP_NAMES[g]}: ${v}`));
        bar.appendChild(seg);
        x += v * scale;
      }
    });
    svg.appendChild(bar);
    svg.appendChild(el("text", { x: x + 4, y: y + barH - 5 }, row.total ?? "–"));
  });
  container.appendChild(svg);
}

// Vertical bars of one value per category.
function simpleBars(container, rows, color) {
  container.replaceChildren();
  const width = 640, height = 240, pad = 30;
  const max = Math.max(1, ...rows.map((r) => r.value));
  const step = (width - pad) / Math.max(1, rows.length);
  const svg = el("svg", { viewBox: `0 0 ${width} ${height + 60}`, role: "img",
                          "aria-label": "Hồ sơ quá hạn theo đơn vị" });
  rows.forEach((row, i) => {
    const h = (row.value / max) * height;
    const x = pad + i * step + step * 0.1;
    const bar = el("rect", { class: "bar", x, y: height - h, width: step * 0.8, height: h,
                             fill: color || PALETTE[5], "data-unit": row.key });
    bar.appendChild(el("title", {}, `${row.label}: ${row.value}`));
    svg.appendChild(bar);
    svg.appendChild(el("text", { x: x + step * 0.4, y: height - h - 3, "text-anchor": "middle" },
                       String(row.value)));
    svg.appendChild(el("text", { x: x, y: height + 14,
                                 transform: `rotate(35 ${x} ${height + 14})` },
                       row.key));
  });
  container.appendChild(svg);
}

// A line over periods (null values leave gaps).
function lineChart(container, points, max, color) {
  container.replaceChildren();
  const width = 640, height = 220, pad = 34;
  const step = (width - 2 * pad) / Math.max(1, points.length - 1);
  const y = (v) => height - pad - (v / (max || 100)) * (height - 2 * pad);
  const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, role: "img",
                          "aria-label": "Tổng điểm theo kỳ" });
  [0, 25, 50, 75, 100].forEach((t) => {
    svg.appendChild(el("line", { x1: pad, x2: width - pad, y1: y(t), y2: y(t),
                                 stroke: "#d9dde5" }));
    svg.appendChild(el("text", { x: 2, y: y(t) + 4 }, String(t)));
  });
  let path = "", joined = false;
  points.forEach((p, i) => {
    const x = pad + i * step;
    svg.appendChild(el("text", { x, y: height - 8, "text-anchor": "middle" }, p.label));
    if (p.value === null || p.value === undefined) { joined = false; return; }
    path += `${joined ? "L" : "M"}${x},${y(p.value)} `;
    joined = true;
    const dot = el("circle", { class: "point", cx: x, cy: y(p.value), r: 4,
                               fill: color || PALETTE[4] });
    dot.appendChild(el("title", {}, `${p.label}: ${p.value}`));
    svg.appendChild(dot);
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

async function getJson(url) {
  // "no-cache": revalidate with the stored ETag every time (a 304 costs the server nothing).
  const response = await fetch(url, { cache: "no-cache", headers: { Accept: "application/json" } });
  if (!response.ok) {
    let detail = response.statusText;
    try { detail = (await response.json()).detail || detail; } catch (e) { /* not JSON */ }
    const error = new Error(detail);
    error.status = response.status;
    throw error;
  }
  return response.json();
}
