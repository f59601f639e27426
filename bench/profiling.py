"""py-spy sampling of running processes, summarised into the functions that cost the most.

Idle time (waiting on sockets, i.e. on PostgreSQL) is not sampled: the summary is where the
Python processes burn CPU, which on a 2-core machine is what PostgreSQL competes with.
"""

from __future__ import annotations

import collections
import re
import signal
import subprocess
from pathlib import Path
from typing import Any

from bench.infra import ensure_py_spy, log

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")


class Profiler:
    def __init__(self, name: str, pids: list[int], seconds: int, out_dir: Path) -> None:
        self.name = name
        self.pids = pids
        self.seconds = seconds
        self.out_dir = out_dir
        self.outputs: list[Path] = []
        self._procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        binary = ensure_py_spy()
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for pid in self.pids:
            out = self.out_dir / f"{self.name}-{pid}.txt"
            self.outputs.append(out)
            command = [
                binary,
                "record",
                "--pid",
                str(pid),
                "--duration",
                str(self.seconds),
                "--rate",
                "250",
                "--format",
                "raw",
                "--output",
                str(out),
                "--nonblocking",
            ]
            self._procs.append(
                subprocess.Popen(  # noqa: S603
                    command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
                )
            )
        log(f"py-spy recording {self.name}: pids {self.pids}")

    def stop(self) -> None:
        for proc in self._procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)  # py-spy writes what it has on SIGINT
        for proc in self._procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def summary(self, top: int = 25) -> dict[str, Any]:
        return summarise([p for p in self.outputs if p.exists()], top)


def _label(frame: str) -> str:
    match = _FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    file = match["file"]
    for marker in ("/site-packages/", "/work/main/", "/lib/python3"):
        if marker in file:
            file = file.split(marker, 1)[1]
    return f"{match['func']} ({file})"


def summarise(paths: list[Path], top: int = 25) -> dict[str, Any]:
    """Inclusive and self sample shares per function over py-spy's collapsed stacks."""
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for path in paths:
        for line in path.read_text(errors="replace").splitlines():
            stack, _, count_text = line.rpartition(" ")
            if not stack or not count_text.isdigit():
                continue
            count = int(count_text)
            frames = [_label(f) for f in stack.split(";")]
            frames = [f for f in frames if not f.startswith(("process ", "thread ("))]
            if not frames:
                continue
            total += count
            for label in set(frames):
                inclusive[label] += count
            own[frames[-1]] += count

    def share(counter: collections.Counter[str]) -> list[dict[str, Any]]:
        return [
            {"function": k, "share": round(v / total, 4), "samples": v}
            for k, v in counter.most_common(top)
        ]

    return {
        "samples": total,
        "files": [str(p) for p in paths],
        "inclusive": share(inclusive),
        "self": share(own),
    }
