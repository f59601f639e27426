"""The app's portal simulator for the sync benchmark, served over HTTP as ``chiso portal-sim``.

Two bench-only changes, neither touching what a sync sees on the wire:

- dossiers belong to the generated communes and departments (not only the 34 provinces);
- the listing finds the page by bisection on the change sequence instead of scanning every
  dossier per page (``PortalSimulator._listing`` is O(N) per page, so O(N²) per full sync:
  at 1 M dossiers the simulator, not chiso, would be what is measured). Same pages, same
  cursors, same ``conlai``.

``python -m bench.portal_sim --dossiers N --port P --units-file F``
"""

from __future__ import annotations

import argparse
import base64
import bisect
import time
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.portal.client import MAX_PAGE_SIZE
from app.portal.simulator import PortalSimulator


class FastListingSimulator(PortalSimulator):
    def _listing(self, cursor: str, size: Any) -> dict[str, Any]:
        self._listing_calls += 1
        try:
            after = int(base64.urlsafe_b64decode(cursor.encode() + b"==")) if cursor else 0
            page_size = max(1, min(int(size or 100), MAX_PAGE_SIZE))
        except ValueError:
            return {"error_code": 4, "message": "Tham số không hợp lệ"}
        seqs = getattr(self, "_seqs", None)
        if seqs is None or len(seqs) != len(self._items):
            seqs = [i.seq for i in self._items]  # items are kept sorted by seq
            self._seqs = seqs
        start = bisect.bisect_right(seqs, after)
        page = self._items[start : start + page_size]
        resume = page[-1].seq if page else after
        return {
            "error_code": 0,
            "message": "Thành công",
            "result": {
                "data": [dict(i.record) for i in page],
                "cursor": base64.urlsafe_b64encode(str(resume).encode()).decode().rstrip("="),
                "conlai": len(self._items) - start - len(page),
            },
        }

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
    simulator = FastListingSimulator(dossiers=args.dossiers, seed=args.seed, units=units)
    print(f"generated {args.dossiers} dossiers in {time.perf_counter() - started:.1f}s", flush=True)
    uvicorn.run(simulator.app(), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
