"""Results as JSON under bench/results/ and as a table in docs/PERFORMANCE.md."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from bench.config import (
    HTTP_SCENARIOS,
    PERFORMANCE_MD,
    RESULTS_DIR,
    SCALES,
    SCENARIOS,
    available,
)
from bench.targets import TARGETS, Target, answers

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


def normalize(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with every scenario result keyed as ``bench.run.result_key`` keys it and
    carrying its ``scenario`` name and ``api_processes``. Results of schema 1 (one process
    count per run, keyed by scenario name) get the run's ``workers`` for their HTTP
    scenarios."""
    if data.get("schema", 1) >= 2:
        return data
    workers = data["config"].get("workers")
    scenarios = {}
    for name, scenario in data["scenarios"].items():
        count = workers if name in HTTP_SCENARIOS else None
        key = name if count is None else f"{name}@{count}"
        scenarios[key] = {**scenario, "scenario": name, "api_processes": count}
    config = {**data["config"], "api_processes": [workers] if workers else []}
    return {**data, "schema": 2, "config": config, "scenarios": scenarios}


def _order(item: tuple[str, dict[str, Any]]) -> tuple[int, int]:
    scenario = item[1]
    name = scenario["scenario"]
    rank = SCENARIOS.index(name) if name in SCENARIOS else len(SCENARIOS)
    return rank, scenario.get("api_processes") or 0


def scenario_names(data: dict[str, Any]) -> list[str]:
    names = [s["scenario"] for s in normalize(data)["scenarios"].values()]
    return list(dict.fromkeys(names))


def is_full(data: dict[str, Any]) -> bool:
    return set(scenario_names(data)) == {n for n in SCENARIOS if available(n)}


def write_json(data: dict[str, Any], results_dir: Path = RESULTS_DIR) -> Path:
    """``<date>-<scale>.json`` for a full run; a subset of scenarios (or a trial of
    ``--api-env``) gets its own name, so it never replaces the run the docs table shows."""
    results_dir.mkdir(parents=True, exist_ok=True)
    day = data["machine"]["date"][:10]
    name = f"{day}-{data['scale']}"
    if not is_full(data) or data["config"].get("api_env"):
        name += "-" + "+".join(scenario_names(data)) + "-" + data["machine"]["date"][11:19]
        name = name.replace(":", "")
    path = results_dir / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")
    return path


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "–"
    return _FORMATS.get(unit, "{:,.2f}").format(value) + f" {unit}"


def _latency(latency: dict[str, Any] | None) -> str:
    if not latency:
        return "–"
    p50, p99 = latency.get("p50"), latency.get("p99")
    if (p99 or 0) >= 10_000:  # a burst's: seconds read better
        return " / ".join("–" if v is None else f"{v / 1000:,.1f}" for v in (p50, p99)) + " s"
    return " / ".join("–" if v is None else f"{v:,.1f}" for v in (p50, p99)) + " ms"


def _met(met: bool | None) -> str:
    return {True: "yes", False: "**no**", None: "–"}[met]


def _procs(scenario: dict[str, Any]) -> str:
    count = scenario.get("api_processes")
    return str(count) if count else "–"


def _judged(f: dict[str, Any], scenario: dict[str, Any]) -> tuple[str, bool | None]:
    """A figure's target and whether it is met: by today's ``TARGETS`` when it answers one,
    else as the run judged it."""
    for target in TARGETS.values():
        if target.scenario == scenario["scenario"] and answers(target, scenario["figures"]) is f:
            return target.text, target.met(f["value"], f["baseline"])
    return f["target"] or "–", f["met"]


def _measured(f: dict[str, Any], baseline: str) -> list[str]:
    """chiso's figure, its latencies, the baseline's figure and its latencies."""
    return [
        _fmt(f["value"], f["unit"]),
        _latency(f.get("latency_ms")),
        baseline,
        _latency(f.get("baseline_latency_ms")),
    ]


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def table(data: dict[str, Any]) -> str:
    """Every figure of every scenario (and API process count)."""
    data = normalize(data)
    lines = [
        "| scenario | API processes | figure | chiso | p50 / p99 | baseline | p50 / p99 "
        "| ratio | target | met |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for _, scenario in sorted(data["scenarios"].items(), key=_order):
        title, procs = scenario["title"], _procs(scenario)
        if not scenario["figures"]:
            lines.append(
                _row([title, procs, f"{scenario['status']}: {scenario['message']}"] + ["–"] * 7)
            )
            continue
        for f in scenario["figures"]:
            name = f["name"] + (f" ({scenario['status']})" if scenario["status"] != "ok" else "")
            base = _fmt(f["baseline"], f["unit"])
            if f["baseline_name"]:
                base += f" ({f['baseline_name']})"
            ratio = f"{f['ratio']:.2f}" if f["ratio"] is not None else "–"
            target, met = _judged(f, scenario)
            cells = [title, procs, name, *_measured(f, base), ratio, target, _met(met)]
            lines.append(_row(cells))
        if scenario["message"] and scenario["figures"]:
            lines.append(_row([title, procs, f"note: {scenario['message']}"] + [""] * 7))
    return "\n".join(lines)


def _label(target: Target, scale: dict[str, Any]) -> str:
    """The target's label with the run's size, and the national one when it differs."""
    if not target.size:
        return target.label
    try:
        size = target.size.format(**scale)
    except (KeyError, ValueError):
        return target.label
    national = target.size.format(**vars(SCALES["national"]))
    if national != size:
        size += f" (national: {national})"
    return f"{target.label}: {size}"


def targets_table(data: dict[str, Any]) -> str:
    """One row per target and API process count: every target of the hot path, met or not."""
    data = normalize(data)
    scale = data["config"].get("scale") or vars(SCALES[data["scale"]])
    lines = [
        "| target | API processes | chiso | p50 / p99 | baseline | p50 / p99 | ratio "
        "| target | met |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    results = sorted(data["scenarios"].items(), key=_order)
    for target in TARGETS.values():
        label = _label(target, scale)
        runs = [s for _, s in results if s["scenario"] == target.scenario]
        if not runs:
            why = "not measured in this run"
            if not available(target.scenario):
                why = f"not measured: no bench/scenarios/{target.scenario}.py"
            lines.append(_row([label, "–", why, "–", "–", "–", "–", target.text, "–"]))
            continue
        for scenario in runs:
            f = answers(target, scenario["figures"])
            if f is None:
                why = "not measured by that run"
                if scenario["status"] != "ok" and scenario["message"]:
                    why = f"{scenario['status']}: {scenario['message']}"
                if scenario.get("source"):
                    why += f" ({scenario['source']})"
                lines.append(
                    _row([label, _procs(scenario), why, "–", "–", "–", "–", target.text, "–"])
                )
                continue
            base = _fmt(f["baseline"], f["unit"])
            if f["baseline_name"]:
                base += f" ({f['baseline_name']})"
            ratio = f"{f['value'] / f['baseline']:.2f}" if f["value"] and f["baseline"] else "–"
            met = target.met(f["value"], f["baseline"]) if scenario["status"] == "ok" else None
            cells = [label, _procs(scenario), *_measured(f, base), ratio]
            lines.append(_row([*cells, target.text, _met(met)]))
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


# The server's settings a reader needs to weigh the ingestion figures: its cache, its commit,
# and how often it checkpoints (each checkpoint makes the next change to every page write the
# whole page to the log). Settings older results did not record are left out.
_SHOWN_SETTINGS = (
    "shared_buffers", "synchronous_commit", "max_wal_size", "checkpoint_timeout",
    "wal_compression",
)  # fmt: skip


def _settings_note(settings: dict[str, str]) -> str:
    shown = [f"{name} {settings[name]}" for name in _SHOWN_SETTINGS if name in settings]
    return ", ".join(shown) or "settings not recorded"


def _checkpoint_note(config: dict[str, Any]) -> str:
    if not config.get("checkpoint_rounds"):
        return ""
    return "; each ingestion round, chiso's and its COPY's, began with a checkpoint"


def _processes_note(data: dict[str, Any]) -> str:
    counts = sorted({s["api_processes"] for s in data["scenarios"].values() if s["api_processes"]})
    if not counts:
        return "API and baselines: uvicorn"
    each = " and ".join(str(c) for c in counts)
    if len(counts) == 1:
        return f"API and baselines: uvicorn, {each} process{'es' if counts[0] > 1 else ''} each"
    return (
        f"API and baselines: uvicorn, each HTTP scenario measured with {each} processes "
        "(the API and its baseline restarted with the same count each time)"
    )


def section(data: dict[str, Any], json_path: Path, sources: list[Path] | None = None) -> str:
    data = normalize(data)
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
            f"({_settings_note(pg['settings'])}{_checkpoint_note(cfg)}). "
            f"{_processes_note(data)}; "
            f"load generator: {cfg['loadgen']}; {cfg['rounds']} interleaved rounds, median. "
            f"{took} {raw} {_load_note(data)}",
            "",
            "Targets (judged by `bench/targets.py`; latencies are p50 / p99 of what the "
            "throughput counts: requests, or batches for COPY and batch ingestion, or the time "
            "from storing a dossier's last event to its derivation for the burst):",
            "",
            targets_table(data),
            "",
            "Every figure:",
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
            runs.append((data["machine"]["date"], path, normalize(data)))
    if not runs:
        return None
    runs.sort(key=lambda r: r[0])
    chosen: dict[str, tuple[Path, dict[str, Any]]] = {}
    for _, path, data in runs:
        for name, scenario in data["scenarios"].items():
            if scenario["status"] == "ok" or name not in chosen:
                chosen[name] = (path, {**scenario, "source": path.name})
    latest = runs[-1][2]
    ordered = sorted(((k, s) for k, (_, s) in chosen.items()), key=_order)
    merged = {
        **latest,
        "scenarios": dict(ordered),
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
