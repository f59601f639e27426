"use strict";
(function () {
  const params = new URLSearchParams(location.search);
  const unit = document.getElementById("unit");
  const period = document.getElementById("period");
  period.add(new Option("Hiện tại", ""));
  recentPeriods(new Date(), 12).forEach((p) => period.add(new Option(p, p)));
  period.value = params.get("period") || "";

  async function provinces() {
    const data = await getJson("/v1/units?level=province&limit=500");
    data.items.forEach((u) => unit.add(new Option(u.name, u.code)));
    unit.value = params.get("unit") || (data.items[0] && data.items[0].code) || "";
  }

  async function load() {
    if (!unit.value) return;
    const query = new URLSearchParams({ unit: unit.value });
    if (period.value) query.set("period", period.value);
    history.replaceState(null, "", `?${query}`);
    const body = document.querySelector("#counts tbody");
    try {
      const url = `/v1/units/${encodeURIComponent(unit.value)}/overdue-counts` +
        (period.value ? `?period=${period.value}` : "");
      const data = await getJson(url);
      const rows = data.items.filter((r) => r.overdue > 0);
      const total = rows.reduce((sum, r) => sum + r.overdue, 0);
      document.getElementById("summary").textContent =
        `${total} hồ sơ quá hạn tại ${new Date(data.as_of).toLocaleString("vi-VN")}`;
      simpleBars(document.getElementById("chart"), rows.map((r) => ({
        key: r.unit_code, label: r.unit_name, value: r.overdue })));
      body.innerHTML = rows.map((r) => `<tr><td>${escapeHtml(r.unit_name)}</td>
        <td class="num">${r.overdue}</td><td class="num">${r.without_apology}</td></tr>`).join("")
        || '<tr><td colspan="3" class="muted">Không có hồ sơ quá hạn.</td></tr>';
      document.getElementById("export").innerHTML =
        `Danh sách chi tiết (cần khóa API có quyền <code>dossiers:read</code>): ` +
        `<a href="/v1/units/${encodeURIComponent(unit.value)}/overdue?format=csv">CSV</a>`;
    } catch (error) {
      body.innerHTML = `<tr><td colspan="3" class="error">Không tải được: ${
        escapeHtml(error.message)}</td></tr>`;
    }
  }
  unit.addEventListener("change", load);
  period.addEventListener("change", load);
  provinces().then(load);
})();
