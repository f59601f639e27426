"""Results as JSON under bench/results/ and as a table in docs/PERFORMANCE.md."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from bench.config import PERFORMANCE_MD, RESULTS_DIR, SCENARIOS

_FORMATS = {
    "req/s": "{:,.0f}",
    "events/s": "{:,.0f}",
    "dossiers/s": "{:,.0f}",
    "ms": "{:,.1f}",
    "s": "{:,.3f}",
    "MiB": "{:,.0f}",
}

DOC_HEADER = """# Performance

Measured by `make bench` (`python -m bench`; options: `make bench SCALE=national`,
`BENCH_ARGS="--scenarios batch,sweep --profile batch"`). Every figure is measured in the same
run as its baseline, on the same machine, interleaved round by round (median of the rounds), so
the **ratio** is the number to read; absolute figures depend on the machine. Raw results, with
every round, are in `bench/results/`. How each scenario and baseline works: docstrings in
`bench/scenarios/`.
"""


def is_full(data: dict[str, Any]) -> bool:
    return set(data["scenarios"]) == set(SCENARIOS)


def write_json(data: dict[str, Any], results_dir: Path = RESULTS_DIR) -> Path:
    """``<date>-<scale>.json`` for a full run; a subset of scenarios (or a trial of
    ``--api-env``) gets its own name, so it never replaces the run the docs table shows."""
    results_dir.mkdir(parents=True, exist_ok=True)
    day = data["machine"]["date"][:10]
    name = f"{day}-{data['scale']}"
    if not is_full(data) or data["config"].get("api_env"):
        name += "-" + "+".join(data["scenarios"]) + "-" + data["machine"]["date"][11:19]
        name = name.replace(":", "")
    path = results_dir / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")
    return path


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "–"
    return _FORMATS.get(unit, "{:,.2f}").format(value) + f" {unit}"


def _met(met: bool | None) -> str:
    return {True: "yes", False: "**no**", None: "–"}[met]


def table(data: dict[str, Any]) -> str:
    lines = [
        "| scenario | figure | chiso | baseline | ratio | target | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for scenario in data["scenarios"].values():
        title = scenario["title"]
        if not scenario["figures"]:
            lines.append(
                f"| {title} | {scenario['status']}: {scenario['message']} | – | – | – | – | – |"
            )
            continue
        for f in scenario["figures"]:
            name = f["name"] + (f" ({scenario['status']})" if scenario["status"] != "ok" else "")
            base = _fmt(f["baseline"], f["unit"])
            if f["baseline_name"]:
                base += f" ({f['baseline_name']})"
            ratio = f"{f['ratio']:.2f}" if f["ratio"] is not None else "–"
            lines.append(
                f"| {title} | {name} | {_fmt(f['value'], f['unit'])} | {base} "
                f"| {ratio} | {f['target'] or '–'} | {_met(f['met'])} |"
            )
        if scenario["message"] and scenario["figures"]:
            lines.append(f"| {title} | note: {scenario['message']} | | | | | |")
    return "\n".join(lines)


def _load_note(data: dict[str, Any]) -> str:
    cores = data["machine"]["cores"]
    loads = [x for s in data["scenarios"].values() for x in s["details"].get("load_1min", [])]
    if not loads:
        return ""
    peak = max(loads)
    if peak <= cores:
        return f"1-minute load stayed ≤ {peak:.1f} on {cores} cores."
    return (
        f"1-minute load up to {peak:.1f} on {cores} cores: the load generator, the processes "
        "under test and PostgreSQL share them (and any other work on the machine); read "
        "ratios, not absolute figures."
    )


def section(data: dict[str, Any], json_path: Path, sources: list[Path] | None = None) -> str:
    m = data["machine"]
    if sources:
        raw = (
            "Raw (each scenario's latest run): "
            + ", ".join(f"`{p.relative_to(p.parents[2])}`" for p in sources)
            + "."
        )
        took = f"Runs took {data['seconds'] / 60:.1f} min in all."
    else:
        raw = f"Raw: `{json_path.relative_to(json_path.parents[2])}`."
        took = f"Run took {data['seconds'] / 60:.1f} min."
    pg = data["postgres"]
    cfg = data["config"]
    return "\n".join(
        [
            f"## SCALE={data['scale']} — {m['date'][:10]}",
            "",
            f"Machine: {m['cores']} cores ({m['cpu']}), {m['memory_gib']} GiB RAM, Linux "
            f"{m['kernel']}, Python {m['python']}; PostgreSQL {pg['version']} "
            f"(shared_buffers {pg['settings'].get('shared_buffers', '?')}, synchronous_commit "
            f"{pg['settings'].get('synchronous_commit', '?')}). API and baselines: uvicorn, "
            f"{cfg['workers']} workers each; load generator: {cfg['loadgen']}; "
            f"{cfg['rounds']} interleaved rounds, median. {took} {raw} {_load_note(data)}",
            "",
            table(data),
            "",
        ]
    )


def latest_per_scenario(
    scale: str, results_dir: Path = RESULTS_DIR
) -> tuple[dict[str, Any], list[Path]] | None:
    """The most recent result of every scenario at ``scale`` (``--api-env`` trials left out),
    merged into one run-shaped dict, with the files it came from.

    A national run takes hours, so it is often run a few scenarios at a time; the table shows
    each scenario's latest measurement, and says which run (file) each came from.
    """
    runs = []
    for path in sorted(results_dir.glob(f"*-{scale}*.json")):
        data = json.loads(path.read_text())
        if data.get("scale") == scale and not data["config"].get("api_env"):
            runs.append((data["machine"]["date"], path, data))
    if not runs:
        return None
    runs.sort(key=lambda r: r[0])
    chosen: dict[str, tuple[Path, dict[str, Any]]] = {}
    for _, path, data in runs:
        for name, scenario in data["scenarios"].items():
            if scenario["status"] == "ok" or name not in chosen:
                chosen[name] = (path, {**scenario, "source": path.name})
    latest = runs[-1][2]
    merged = {
        **latest,
        "scenarios": {n: chosen[n][1] for n in SCENARIOS if n in chosen},
        "seconds": sum(d["seconds"] for _, p, d in runs if p in {c[0] for c in chosen.values()}),
    }
    return merged, sorted({c[0] for c in chosen.values()})


def update_doc(data: dict[str, Any], json_path: Path, doc: Path = PERFORMANCE_MD) -> None:
    """Replace this scale's section between its markers, keeping the rest of the file."""
    start, end = f"<!-- bench:{data['scale']}:start -->", f"<!-- bench:{data['scale']}:end -->"
    merged = latest_per_scenario(data["scale"], json_path.parent)
    if merged is not None and len(merged[1]) > 1:
        data, sources = merged
        block = f"{start}\n{section(data, sources[-1], sources)}{end}"
    else:
        block = f"{start}\n{section(data, json_path)}{end}"
    text = doc.read_text() if doc.exists() else DOC_HEADER
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    doc.write_text(text)
