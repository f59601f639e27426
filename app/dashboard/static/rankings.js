"use strict";
(function () {
  const params = new URLSearchParams(location.search);
  const level = document.getElementById("level");
  const period = document.getElementById("period");
  const source = document.getElementById("source");
  for (const [value, name] of Object.entries(LEVELS)) level.add(new Option(name, value));
  const periods = recentPeriods(new Date(), 15);
  const wanted = params.get("period");
  if (wanted && !periods.includes(wanted)) periods.unshift(wanted);
  // Default: the last complete month.
  periods.forEach((p) => period.add(new Option(p, p)));
  period.value = wanted || periods[1];
  level.value = params.get("level") || "province";
  source.value = params.get("source") || "computed";

  async function load() {
    const query = new URLSearchParams({ level: level.value, period: period.value,
                                        source: source.value });
    if (params.get("parent")) query.set("parent", params.get("parent"));
    history.replaceState(null, "", `?${query}`);
    const body = document.querySelector("#ranking tbody");
    try {
      const data = await getJson(`/v1/rankings?${query}`);
      body.innerHTML = data.items.map((item) => `
        <tr data-unit="${escapeHtml(item.unit_code)}">
          <td class="num">${item.rank ?? "–"}</td>
          <td><a href="/dashboard/units/${encodeURIComponent(item.unit_code)}?period=${
            encodeURIComponent(period.value)}">${escapeHtml(item.name)}</a>${
            item.integrity_flags ? ` <span title="${item.integrity_flags} cảnh báo dữ liệu đang mở">⚠</span>` : ""}</td>
          <td class="num">${item.total === null ? "–" : item.total.toFixed(2)}</td>
          <td>${item.grade ? `<span class="grade">${escapeHtml(item.grade)}</span>` : "–"}</td>
          <td>${item.rank === null ? "" : change(item.rank_change)}</td>
          <td class="num hide-narrow">${Math.round(item.completeness)}%</td>
        </tr>`).join("") || '<tr><td colspan="6" class="muted">Chưa có dữ liệu cho kỳ này.</td></tr>';
      document.getElementById("summary").textContent =
        `${data.ranked} đơn vị được xếp hạng · kỳ ${data.period}` +
        (data.status === "closed" ? " · đã chốt" : "") + (data.projected ? " · dự kiến" : "");
      // Public files: plain links, no key (Vietnamese headers; add lang=en for English ones).
      document.getElementById("exports").innerHTML =
        `Tải bảng xếp hạng: <a href="/v1/rankings?${query}&format=csv" download>CSV</a> · ` +
        `<a href="/v1/rankings?${query}&format=xlsx" download>Excel</a>`;
      stackedBars(document.getElementById("chart"), data.items.map((item) => ({
        key: item.unit_code, label: item.name, total: item.total, groups: item.groups,
      })), 100);
    } catch (error) {
      body.innerHTML = `<tr><td colspan="6" class="error">Không tải được: ${
        escapeHtml(errorText(error))}</td></tr>`;
    }
  }
  [level, period, source].forEach((s) => s.addEventListener("change", load));
  load();
})();
