"""The app's portal simulator for the sync benchmark, served over HTTP as ``chiso portal-sim``.

One bench-only change, not touching what a sync sees on the wire: dossiers belong to the
generated communes and departments (their chiso codes as the ``MaHoSo`` prefix, which chiso
resolves like an identifier), not to the simulator's ten demo units. The listing already finds
its page by bisection and records are generated when served, so a million dossiers cost neither
a quadratic walk nor gigabytes.

``python -m bench.portal_sim --dossiers N --port P --units-file F``
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.portal.simulator import PortalSimulator


class BenchSimulator(PortalSimulator):
    def app(self) -> Starlette:
        async def healthz(_: Request) -> Response:
            return JSONResponse({"dossiers": len(self._items)})

        app = super().app()
        app.router.routes.append(Route("/healthz", healthz, methods=["GET"]))
        return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dossiers", type=int, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--units-file", type=Path, required=True)
    args = parser.parse_args()
    units = args.units_file.read_text().split()
    started = time.perf_counter()
    simulator = BenchSimulator(dossiers=args.dossiers, seed=args.seed, units=units)
    print(f"generated {args.dossiers} dossiers in {time.perf_counter() - started:.1f}s", flush=True)
    uvicorn.run(simulator.app(), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
