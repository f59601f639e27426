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
    document.getElementById("export-unit").textContent =
      unit.options[unit.selectedIndex] ? unit.options[unit.selectedIndex].text : unit.value;
    const body = document.querySelector("#counts tbody");
    try {
      const url = `/v1/units/${encodeURIComponent(unit.value)}/overdue-counts` +
        (period.value ? `?period=${period.value}` : "");
      const data = await getJson(url);
      const rows = data.items.filter((r) => r.overdue > 0);
      const total = rows.reduce((sum, r) => sum + r.overdue, 0);
      document.getElementById("summary").textContent =
        `${total} hồ sơ quá hạn tại ${new Date(data.as_of).toLocaleString("vi-VN", { timeZone: "Asia/Ho_Chi_Minh" })}`;
      simpleBars(document.getElementById("chart"), rows.map((r) => ({
        key: r.unit_code, label: r.unit_name, value: r.overdue })), PALETTE[5],
        "Số hồ sơ quá hạn theo đơn vị");
      body.innerHTML = rows.map((r) => `<tr><td>${escapeHtml(r.unit_name)}</td>
        <td class="num">${r.overdue}</td><td class="num">${r.without_apology}</td></tr>`).join("")
        || '<tr><td colspan="3" class="muted">Không có hồ sơ quá hạn.</td></tr>';
    } catch (error) {
      body.innerHTML = `<tr><td colspan="3" class="error">Không tải được: ${
        escapeHtml(errorText(error))}</td></tr>`;
    }
  }

  // --- the detailed list as a file: it names dossiers, so it needs a key -------------------
  const keyForm = document.getElementById("key-form");
  const keyInput = document.getElementById("api-key");
  const keyState = document.getElementById("key-state");
  const status = document.getElementById("export-status");
  let pending = null; // the format asked for while the key was being asked

  function showKeyState() {
    const known = Boolean(sessionKey.get());
    keyState.hidden = !known;
    if (known) keyForm.hidden = true;
  }

  function say(message, isError) {
    status.textContent = message;
    status.className = isError ? "error" : "muted";
  }

  async function download(format) {
    const key = sessionKey.get();
    if (!key) {
      pending = format;
      keyForm.hidden = false;
      say("Nhập khóa API để tải danh sách.", false);
      keyInput.focus();
      return;
    }
    const url = `/v1/units/${encodeURIComponent(unit.value)}/overdue?format=${format}`;
    say("Đang tải…", false);
    try {
      const name = await downloadWithKey(url, key, `ho-so-qua-han.${format}`);
      say(`Đã tải ${name}.`, false);
    } catch (error) {
      if (error.status === 401 || error.status === 403) {
        sessionKey.forget(); // a wrong key is not kept: ask again
        pending = format;
        showKeyState();
        keyForm.hidden = false;
      }
      say(`Không tải được: ${errorText(error)}.`, true);
    }
  }

  document.querySelectorAll("#export button[data-format]").forEach((button) =>
    button.addEventListener("click", () => download(button.dataset.format)));
  keyForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const key = keyInput.value.trim();
    if (!key) return;
    sessionKey.set(key);
    keyInput.value = "";
    showKeyState();
    download(pending || "csv");
    pending = null;
  });
  document.getElementById("forget-key").addEventListener("click", () => {
    sessionKey.forget();
    showKeyState();
    say("Đã xóa khóa API khỏi phiên này.", false);
  });

  showKeyState();
  unit.addEventListener("change", load);
  period.addEventListener("change", load);
  provinces().then(load);
})();
