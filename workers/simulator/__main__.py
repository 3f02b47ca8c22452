"""``python -m workers.simulator --phones N [--adb-port P] [--control-port C]``.

Starts its own adb server on ``--adb-port`` when none is listening there (and kills it on exit),
attaches N simulated phones to it and serves the control API until interrupted.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from workers.adb.server import AdbServer, server_alive
from workers.simulator.fleet import serve_fleet


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and run the fleet until SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m workers.simulator", description=__doc__)
    parser.add_argument("--phones", type=int, default=5, help="how many phones (default 5)")
    parser.add_argument("--adb-port", type=int, default=5037, help="adb server port (default 5037)")
    parser.add_argument("--control-port", type=int, default=0, help="control API port (default: any free)")
    parser.add_argument("--accounts-per-app", type=int, default=1, help="accounts logged in per app")
    parser.add_argument("--upload-seconds", type=float, default=1.0, help="how long an upload takes")
    parser.add_argument("--ready-file", type=Path, help="write serials and control URL here when ready")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    own_server = None if server_alive(args.adb_port) else AdbServer(args.adb_port).start()
    try:
        serve_fleet(
            args.phones,
            args.adb_port,
            args.control_port,
            accounts_per_app=args.accounts_per_app,
            upload_seconds=args.upload_seconds,
            ready_file=args.ready_file,
        )
    finally:
        if own_server is not None:
            own_server.kill()


if __name__ == "__main__":
    main()
