"""Small helpers on top of adbutils: a private adb server on a chosen port, and shell calls with
deadlines and exit codes."""

from workers.adb.server import AdbServer, adb_binary, adb_client, server_alive
from workers.adb.shell import ShellResult, shell
from workers.adb.sync import push_file

__all__ = ["AdbServer", "ShellResult", "adb_binary", "adb_client", "push_file", "server_alive", "shell"]
