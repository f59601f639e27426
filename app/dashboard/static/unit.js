"use strict";
(function () {
  const code = decodeURIComponent(location.pathname.split("/").pop());
  const params = new URLSearchParams(location.search);
  const period = document.getElementById("period");
  const periods = recentPeriods(new Date(), 15);
  periods.forEach((p) => period.add(new Option(p, p)));
  // The current month by default, as the chart below shows it.
  period.value = params.get("period") && periods.includes(params.get("period"))
    ? params.get("period") : periods[0];
  const fmt = (v) => (v === null || v === undefined ? "–" : Number(v).toFixed(2));
  const pct = (v) => (v === null || v === undefined ? "–" : `${Number(v).toFixed(1)}%`);

  // The last 12 months, the current one included.
  async function loadHistory(name) {
    const months = recentPeriods(new Date(), 12).slice(0, 12).reverse();
    try {
      const data = await getJson(`/v1/units/${encodeURIComponent(code)}/history?from=${
        months[0]}&to=${months[months.length - 1]}&granularity=month`);
      lineChart(document.getElementById("history"), data.items.map((p) => ({
        label: p.period.slice(5), value: p.total === null ? null : Number(p.total),
      })), 100, PALETTE[4], name);
    } catch (error) {
      document.getElementById("history").textContent = `Không tải được: ${errorText(error)}`;
    }
  }

  let lastCard = null;

  async function loadScorecard() {
    history.replaceState(null, "", `?period=${period.value}`);
    const kpis = document.getElementById("kpis");
    const body = document.querySelector("#scorecard tbody");
    try {
      const card = await getJson(`/v1/units/${encodeURIComponent(code)}/scorecard?period=${
        period.value}`);
      const named = lastCard === null || lastCard.name !== card.name;
      lastCard = card;
      document.getElementById("title").textContent = card.name;
      document.title = `${card.name} – chiso`;
      if (named) loadHistory(card.name);
      kpis.innerHTML = `
        <div><div class="muted">Tổng điểm</div><div class="big">${fmt(card.total)}/100</div></div>
        <div><div class="muted">Xếp loại</div><div class="big">${escapeHtml(card.grade || "–")}</div></div>
        <div><div class="muted">Thứ hạng</div><div class="big">${escapeHtml(rankText(card))}</div>
          <div>${card.rank ? change(card.rank_change) : ""}</div></div>
        <div><div class="muted">Dữ liệu</div><div class="big">${
          Math.round(Number(card.completeness))}%</div></div>`;
      body.innerHTML = card.groups.map((g) => `
        <tr><th>${escapeHtml(g.code)} – ${escapeHtml(g.name)}</th><td class="num">${fmt(g.points)}</td>
          <td class="num">${fmt(g.max_points)}</td><td class="num">${fmt(g.lost)}</td><td></td></tr>
        ${g.metrics.map((m) => `<tr><td>${escapeHtml(m.name)}${m.missing ?
          ' <span class="muted">(chưa có dữ liệu)</span>' : ""}</td>
          <td class="num">${fmt(m.points)}</td><td class="num">${fmt(m.max_points)}</td>
          <td class="num">${fmt(m.lost)}</td><td class="num hide-narrow">${pct(m.rate)}</td></tr>`)
          .join("")}`).join("");
      document.getElementById("shortfalls").innerHTML = card.shortfalls.slice(0, 10).map((m) =>
        `<li>${escapeHtml(m.name)}: ${m.missing ? "chưa có dữ liệu" :
          `mất ${fmt(m.lost)} điểm (tỷ lệ ${pct(m.rate)}${m.full_marks_rate ?
            `, cần ${pct(m.full_marks_rate)} để đạt tối đa` : ""})`}</li>`).join("");
      const officialCard = document.getElementById("official-card");
      officialCard.hidden = !card.official;
      if (card.official) {
        document.querySelector("#official tbody").innerHTML =
          `<tr><th>Tổng</th><td class="num">${fmt(card.official.total)}</td>
            <td class="num">${fmt(card.official.total_difference)}</td></tr>` +
          Object.entries(card.official.groups).map(([g, v]) =>
            `<tr><td>${escapeHtml(g)}</td><td class="num">${fmt(v)}</td>
              <td class="num">${fmt(card.official.group_differences[g])}</td></tr>`).join("");
      }
    } catch (error) {
      kpis.innerHTML = `<p class="error">Không tải được phiếu điểm: ${escapeHtml(errorText(error))}</p>`;
      body.innerHTML = "";
      loadInsights(null);
      return;
    }
    loadInsights(lastCard);
  }

  async function section(id, url, render) {
    const box = document.getElementById(id);
    try {
      box.innerHTML = render(await getJson(url));
      return true;
    } catch (error) {
      box.innerHTML = "";
      return false;
    }
  }

  async function loadInsights(card) {
    const base = `/v1/units/${encodeURIComponent(code)}`;
    const shown = await Promise.all([
      section("whatif", `${base}/what-if?period=${period.value}&target=${
        encodeURIComponent("grade:Tốt")}`, renderWhatIf),
      section("projection", `${base}/projection?period=${period.value}`, renderProjection),
      card ? section("integrity", `/v1/rankings?level=${card.level}&period=${period.value}`,
        (ranking) => renderIntegrity(ranking.items.find((i) => i.unit_code === code))) : false,
    ]);
    document.getElementById("insights").hidden = !shown.some(Boolean);
  }

  // The planner's texts come in Vietnamese (getJson asks for them).
  function renderWhatIf(plan) {
    const title = `<h3>Để đạt ${escapeHtml(plan.target.label)}</h3>`;
    if (plan.already_reached || !plan.reachable) {
      return `${title}<p>${escapeHtml(plan.message)}</p>`;
    }
    return `${title}<p>${escapeHtml(plan.message)}</p><ol>${plan.improvements.map((s) =>
      `<li>${escapeHtml(s.name)}: ${escapeHtml(s.action)} (+${fmt(s.points_gained)} điểm)</li>`)
      .join("")}</ol>`;
  }

  function renderProjection(report) {
    const p = report.projection;
    if (p) {
      return `<h3>Dự báo cuối kỳ</h3><p>Tổng điểm dự kiến <strong>${fmt(p.total)}</strong>
        (từ ${fmt(p.total_low)} đến ${fmt(p.total_high)})${p.rank ? `, hạng ${p.rank}/${
        p.of} (từ ${p.rank_best} đến ${p.rank_worst})` : ""}.</p>`;
    }
    const last = report.history[report.history.length - 1];
    if (!report.actual || !last) return "";
    return `<h3>Dự báo và kết quả</h3><p>Dự báo ngày ${escapeHtml(last.made_on)}: ${
      fmt(last.total)} (từ ${fmt(last.total_low)} đến ${fmt(last.total_high)}); kết quả: ${
      fmt(report.actual.total)}.</p>`;
  }

  function renderIntegrity(row) {
    if (!row) return "";
    if (!row.integrity_flags) return "<h3>Cảnh báo dữ liệu</h3><p>Không có cảnh báo.</p>";
    return `<h3>Cảnh báo dữ liệu</h3><p>⚠ ${row.integrity_flags} cảnh báo đang mở (không làm
      thay đổi điểm). Danh sách hồ sơ: <code>GET /v1/units/${escapeHtml(code)}/integrity</code>
      (cần khóa API).</p>`;
  }

  // "4/6": a rank and the number ranked (an integer and `of`, or the older "4/6" text).
  function rankText(card) {
    if (card.rank === null || card.rank === undefined) return "–";
    return card.of === null || card.of === undefined
      ? String(card.rank) : `${card.rank}/${card.of}`;
  }

  period.addEventListener("change", loadScorecard);
  loadScorecard().then(() => { if (lastCard === null) loadHistory(null); });
})();
