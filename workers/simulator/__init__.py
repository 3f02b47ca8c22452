"""Simulated Android phones behind a real adb server (see docs/simulator.md).

- :class:`SimulatedPhone`: one phone (in-process control of accounts, files, posts, faults).
- :class:`Fleet`: many phones on loopback ports, attached to an adb server with ``adb connect``.
- :func:`serve_fleet`: the blocking entry point for ``phonefleet simulate`` / ``python -m workers.simulator``.
- :class:`SimulatorClient`: the typed client of the JSON control API, usable from any process.
"""

from workers.simulator.client import SimulatorClient, SimulatorError
from workers.simulator.fleet import Fleet, running_fleet, serve_fleet
from workers.simulator.models import AppInfo, Fault, FileEntry, PhoneInfo, PostRecord
from workers.simulator.phone import SimulatedPhone

__all__ = [
    "AppInfo",
    "Fault",
    "FileEntry",
    "Fleet",
    "PhoneInfo",
    "PostRecord",
    "SimulatedPhone",
    "SimulatorClient",
    "SimulatorError",
    "running_fleet",
    "serve_fleet",
]
