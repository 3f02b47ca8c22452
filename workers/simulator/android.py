"""Android's command-line tools as scripts meet them: am, pm, monkey, input, ime, settings, content,
getprop, wm, screencap, uiautomator, dumpsys, cmd.

Output formats copy the real tools closely enough for adbutils' parsers (``wm size``, ``dumpsys
window``, ``pm list packages``...) and for scripts that grep them.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import re
import time
import urllib.parse
from typing import TYPE_CHECKING

from workers.simulator.fs import FsError, normalize
from workers.simulator.shell import Command, CommandContext

if TYPE_CHECKING:
    from workers.simulator.phone import Intent, SimulatedPhone

ADB_IME_ACTIONS = (
    "ADB_INPUT_TEXT",
    "ADB_INPUT_B64",
    "ADB_CLEAR_TEXT",
    "ADB_INPUT_CODE",
    "ADB_EDITOR_CODE",
    "ADB_INPUT_CHARS",
)


# ----------------------------------------------------------------------------- properties, wm
async def cmd_getprop(ctx: CommandContext, argv: list[str]) -> int:
    """``getprop [KEY [DEFAULT]]``."""
    props = ctx.phone.props
    if len(argv) == 1:
        await ctx.print("".join(f"[{key}]: [{props[key]}]\n" for key in sorted(props)))
        return 0
    default = argv[2] if len(argv) > 2 else ""
    await ctx.print(props.get(argv[1], default) + "\n")
    return 0


async def cmd_setprop(ctx: CommandContext, argv: list[str]) -> int:
    """``setprop KEY VALUE``; read-only (``ro.``) keys refuse, as for the shell user."""
    if len(argv) != 3:
        await ctx.error("usage: setprop NAME VALUE\n")
        return 1
    if argv[1].startswith("ro."):
        await ctx.error(f"Failed to set property '{argv[1]}' to '{argv[2]}'.\n")
        return 1
    with ctx.phone.lock:
        ctx.phone.props[argv[1]] = argv[2]
    return 0


async def cmd_wm(ctx: CommandContext, argv: list[str]) -> int:
    """``wm size`` / ``wm density``."""
    sub = argv[1] if len(argv) > 1 else ""
    if sub == "size":
        await ctx.print(f"Physical size: {ctx.phone.width}x{ctx.phone.height}\n")
        return 0
    if sub == "density":
        await ctx.print("Physical density: 420\n")
        return 0
    await ctx.error(f"Error: unknown command '{sub}'\n")
    return 255


# ----------------------------------------------------------------------------- screen
async def cmd_screencap(ctx: CommandContext, argv: list[str]) -> int:
    """``screencap [-p] [FILE]``: a real PNG of the current screen."""
    args = [a for a in argv[1:] if a != "-p"]
    if "-d" in args:
        index = args.index("-d")
        del args[index : index + 2]
    # Encoding a PNG takes a few milliseconds; keep the loop that serves every phone free meanwhile.
    png = await asyncio.get_running_loop().run_in_executor(None, ctx.phone.screenshot_png)
    if args:
        try:
            ctx.phone.push_file(normalize(args[0], ctx.shell.cwd), png)
        except FsError as exc:
            await ctx.error(f"Error opening file: {args[0]} ({exc.reason})\n")
            return 1
        return 0
    await ctx.out(png)
    return 0


async def cmd_uiautomator(ctx: CommandContext, argv: list[str]) -> int:
    """``uiautomator dump [--compressed] [FILE|/dev/tty]``."""
    args = [a for a in argv[1:] if not a.startswith("--")]
    if not args or args[0] != "dump":
        await ctx.print(
            "Usage: uiautomator <subcommand> [options]\n\nAvailable subcommands:\n\n"
            "help: displays help message\n\ndump: creates an XML dump of current UI hierarchy\n"
        )
        return 0 if not args else 1
    target = args[1] if len(args) > 1 else "/sdcard/window_dump.xml"
    xml = ctx.phone.dump_xml()
    if target == "/dev/tty":
        await ctx.out(xml.encode("utf-8"))
    else:
        try:
            ctx.phone.push_file(normalize(target, ctx.shell.cwd), xml.encode("utf-8"))
        except FsError as exc:
            await ctx.error(f"ERROR: could not write {target}: {exc.reason}\n")
            return 1
    # The real tool has this typo; scripts grep for it.
    await ctx.print(f"UI hierchary dumped to: {target}\n")
    return 0


# ----------------------------------------------------------------------------- input
def _keycode(name: str) -> int | None:
    from workers.simulator.phone import KEYCODES

    if name.isdigit():
        return int(name)
    return KEYCODES.get(name.upper().removeprefix("KEYCODE_"))


async def cmd_input(ctx: CommandContext, argv: list[str]) -> int:
    """``input [SOURCE] [-d DISPLAY] tap|text|keyevent|swipe|draganddrop|press ...``."""
    args = argv[1:]
    if args and args[0] in (
        "touchscreen",
        "touchpad",
        "keyboard",
        "mouse",
        "trackball",
        "stylus",
        "dpad",
        "gamepad",
        "joystick",
        "touchnavigation",
        "rotaryencoder",
    ):
        args = args[1:]
    if len(args) >= 2 and args[0] == "-d":
        args = args[2:]
    if not args:
        await ctx.error("Usage: input [<source>] [-d DISPLAY_ID] <command> [<arg>...]\n")
        return 1
    sub, rest = args[0], args[1:]
    phone = ctx.phone
    try:
        if sub == "tap" and len(rest) >= 2:
            phone.tap(int(float(rest[0])), int(float(rest[1])))
        elif sub == "text" and rest:
            # Android's `input text` maps characters through the virtual keyboard's key map: only
            # ASCII exists there, so anything else is dropped; "%s" stands for a space.
            text = rest[0].replace("%s", " ")
            phone.type_text("".join(ch for ch in text if " " <= ch <= "~"))
        elif sub == "keyevent" and rest:
            for name in [r for r in rest if not r.startswith("--")]:
                code = _keycode(name)
                if code is None:
                    await ctx.error(f"Error: Unknown keycode: {name}\n")
                    return 1
                phone.keyevent(code)
        elif sub in ("swipe", "draganddrop") and len(rest) >= 4:
            for value in rest[:4]:
                int(float(value))
            duration = int(rest[4]) / 1000 if len(rest) > 4 else 0.3
            await asyncio.sleep(min(duration, 2.0))
        elif sub in ("press", "roll", "motionevent", "keycombination"):
            pass
        else:
            await ctx.error(f"Error: Invalid arguments for command: {sub}\n")
            return 1
    except ValueError:
        await ctx.error(f"Error: Invalid arguments for command: {sub}\n")
        return 1
    return 0


# ----------------------------------------------------------------------------- intents
def _parse_intent(args: list[str]) -> tuple[Intent, list[str]]:
    """Parse ``am``'s intent arguments; returns the intent and any leftover operands."""
    from workers.simulator.phone import Intent

    intent = Intent()
    rest: list[str] = []
    i = 0

    def value() -> str:
        nonlocal i
        i += 1
        if i >= len(args):
            raise ValueError(f'Argument expected after "{args[i - 1]}"')
        return args[i]

    while i < len(args):
        arg = args[i]
        if arg == "-a":
            intent.action = value()
        elif arg == "-d":
            intent.data = value()
        elif arg == "-t":
            intent.mime = value()
        elif arg == "-c":
            intent.categories.append(value())
        elif arg == "-n":
            component = value()
            package, _, activity = component.partition("/")
            if activity.startswith("."):
                activity = package + activity
            intent.component = f"{package}/{activity}"
            intent.package = package
        elif arg == "-p":
            intent.package = value()
        elif arg == "-f":
            intent.flags = int(value(), 0)
        elif arg in ("--es", "--eu", "--ecn"):
            key = value()
            intent.extras[key] = value()
        elif arg == "--esn":
            intent.extras[value()] = None
        elif arg == "--ez":
            key = value()
            intent.extras[key] = value().lower() in ("true", "t", "1")
        elif arg in ("--ei", "--el"):
            key = value()
            intent.extras[key] = int(value())
        elif arg in ("--ef", "--ed"):
            key = value()
            intent.extras[key] = float(value())
        elif arg in ("--esa", "--esal", "--eua", "--eual", "--eia", "--eial", "--ela", "--elal"):
            key = value()
            # am splits arrays on commas not preceded by a backslash
            items = [part.replace("\\,", ",") for part in re.split(r"(?<!\\),", value())]
            intent.extras[key] = items
        elif arg in (
            "--grant-read-uri-permission",
            "--grant-write-uri-permission",
            "--activity-clear-task",
            "--activity-new-task",
            "--activity-clear-top",
            "--activity-single-top",
            "-W",
            "-S",
            "--receiver-foreground",
            "--include-stopped-packages",
            "--activity-no-history",
        ):
            pass
        elif arg in (
            "--user",
            "--display",
            "--windowingMode",
            "--activityType",
            "--start-profiler",
            "-P",
            "--sampling",
            "-R",
            "--attach-agent",
            "--receiver-permission",
        ):
            value()
        elif arg.startswith("-"):
            raise ValueError(f"Unknown option: {arg}")
        else:
            rest.append(arg)
        i += 1
    if rest and intent.data is None and intent.action is None and ":" in rest[0]:
        intent.data = rest.pop(0)
    return intent, rest


async def _am_start(ctx: CommandContext, args: list[str]) -> int:
    phone: SimulatedPhone = ctx.phone
    try:
        intent, _ = _parse_intent(args)
    except ValueError as exc:
        await ctx.error(f"Error: {exc}\n")
        return 1
    await ctx.print(f"Starting: {intent.describe()}\n")
    package = intent.package
    with phone.lock:
        app = phone.apps.get(package or "")
        installed = package in phone.packages if package else False
    unresolved = f"Error: Activity not started, unable to resolve {intent.describe()}\n"
    if package is None or not installed:
        if intent.action == "android.intent.action.VIEW" and intent.data:
            return 0  # a browser would take it
        await ctx.error(unresolved)
        return 1
    activity = intent.component.partition("/")[2] if intent.component else ""
    if app is None:
        # an installed non-social package: nothing to show, but it starts
        return 0
    if activity and not app.has_activity(activity):
        await ctx.error(f"Error type 3\nError: Activity class {{{intent.component}}} does not exist.\n")
        return 1
    if intent.action in ("android.intent.action.SEND", "android.intent.action.SEND_MULTIPLE"):
        if activity and activity != app.share_activity:
            await ctx.error(unresolved)
            return 1
        stream = intent.extras.get("android.intent.extra.STREAM")
        uris = stream if isinstance(stream, list) else [stream] if isinstance(stream, str) else []
        if intent.action == "android.intent.action.SEND" and len(uris) > 1:
            uris = uris[:1]
        phone.deliver_share(app.package, intent.mime or "", uris)
        return 0
    if intent.action not in (None, "android.intent.action.MAIN", "android.intent.action.VIEW"):
        await ctx.error(unresolved)
        return 1
    phone.launch(app.package)
    return 0


async def _am_broadcast(ctx: CommandContext, args: list[str]) -> int:
    phone = ctx.phone
    try:
        intent, _ = _parse_intent(args)
    except ValueError as exc:
        await ctx.error(f"Error: {exc}\n")
        return 1
    await ctx.print(f"Broadcasting: {intent.describe()}\n")
    action = intent.action or ""
    if action == "android.intent.action.MEDIA_SCANNER_SCAN_FILE" and intent.data:
        parsed = urllib.parse.urlparse(intent.data)
        if parsed.scheme == "file":
            phone.media_scan(urllib.parse.unquote(parsed.path))
    elif action in ADB_IME_ACTIONS:
        from workers.simulator.phone import ADB_IME, ADB_KEYBOARD

        with phone.lock:
            # ADBKeyBoard registers its receiver only while it is the active input method.
            active = ADB_KEYBOARD in phone.packages and phone.settings["secure"]["default_input_method"] == ADB_IME
        if active:
            message = intent.extras.get("msg")
            if action == "ADB_INPUT_TEXT" and isinstance(message, str):
                phone.type_text(message)
            elif action == "ADB_INPUT_B64" and isinstance(message, str):
                # ADBKeyBoard logs and drops a payload that is not base64 of UTF-8.
                with contextlib.suppress(binascii.Error, UnicodeDecodeError, ValueError):
                    phone.type_text(base64.b64decode(message, validate=True).decode("utf-8"))
            elif action == "ADB_CLEAR_TEXT":
                phone.clear_text()
            elif action == "ADB_INPUT_CODE" and isinstance(intent.extras.get("code"), int):
                phone.keyevent(int(intent.extras["code"]))
    await ctx.print("Broadcast completed: result=0\n")
    return 0


async def cmd_am(ctx: CommandContext, argv: list[str]) -> int:
    """``am start|start-activity|broadcast|force-stop|kill|stack ...``."""
    sub = argv[1] if len(argv) > 1 else ""
    rest = argv[2:]
    if sub in ("start", "start-activity"):
        return await _am_start(ctx, rest)
    if sub == "broadcast":
        return await _am_broadcast(ctx, rest)
    if sub in ("force-stop", "kill", "stop-app"):
        packages = [a for a in rest if not a.startswith("-")]
        if not packages:
            await ctx.error("Error: no package specified\n")
            return 1
        for package in packages:
            ctx.phone.force_stop(package)
        return 0
    if sub in ("start-service", "startservice", "start-foreground-service"):
        await ctx.print(f"Starting service: {' '.join(rest)}\n")
        return 0
    await ctx.error(f"Unknown command: {sub}\n")
    return 255


async def cmd_monkey(ctx: CommandContext, argv: list[str]) -> int:
    """``monkey -p PACKAGE -c android.intent.category.LAUNCHER 1``: launch an app."""
    args = argv[1:]
    package = args[args.index("-p") + 1] if "-p" in args and args.index("-p") + 1 < len(args) else None
    if package is None:
        await ctx.error("** Error: no package specified\n")
        return 1
    with ctx.phone.lock:
        launchable = package in ctx.phone.apps
    if not launchable:
        await ctx.error("** No activities found to run, monkey aborted.\n")
        return 252
    ctx.phone.launch(package)
    await ctx.print(
        "  bash arg: -p\n  bash arg: " + package + "\nEvents injected: 1\n"
        "## Network stats: elapsed time=11ms (0ms mobile, 0ms wifi, 11ms not connected)\n"
    )
    return 0


# ----------------------------------------------------------------------------- packages
async def cmd_pm(ctx: CommandContext, argv: list[str]) -> int:
    """``pm list packages [-3|-s] [FILTER]``, ``pm path``, ``pm clear``, ``pm grant``."""
    from workers.simulator.phone import ADB_KEYBOARD

    phone = ctx.phone
    args = argv[1:]
    if args[:2] == ["list", "packages"]:
        flags = {a for a in args[2:] if a.startswith("-")}
        filters = [a for a in args[2:] if not a.startswith("-")]
        with phone.lock:
            names = sorted(phone.packages)
            third_party = set(phone.apps) | {ADB_KEYBOARD}
        if "-3" in flags:
            names = [n for n in names if n in third_party]
        if "-s" in flags:
            names = [n for n in names if n not in third_party]
        if filters:
            names = [n for n in names if filters[0] in n]
        if "-f" in flags:
            await ctx.print("".join(f"package:/data/app/{n}-1/base.apk={n}\n" for n in names))
        else:
            await ctx.print("".join(f"package:{n}\n" for n in names))
        return 0
    if args[:1] == ["path"] and len(args) > 1:
        if args[1] not in phone.packages:
            return 1
        await ctx.print(f"package:/data/app/~~{abs(hash(args[1])) % 10**8:08d}==/{args[1]}-1/base.apk\n")
        return 0
    if args[:1] == ["clear"] and len(args) > 1:
        with phone.lock:
            app = phone.apps.get(args[1])
            if app is not None:
                app.accounts.clear()
                app.current = None
        phone.force_stop(args[1])
        await ctx.print("Success\n" if args[1] in phone.packages else "Failed\n")
        return 0
    if args[:1] in (["grant"], ["revoke"], ["enable"], ["disable-user"]):
        return 0
    await ctx.error(f"Unknown command: {' '.join(args[:1])}\n")
    return 1


# ----------------------------------------------------------------------------- input methods
def _enabled_imes(phone: SimulatedPhone) -> list[str]:
    return [m for m in phone.settings["secure"]["enabled_input_methods"].split(":") if m]


def _available_imes(phone: SimulatedPhone) -> list[str]:
    from workers.simulator.phone import ADB_IME, ADB_KEYBOARD, LATIN_IME

    return [LATIN_IME] + ([ADB_IME] if ADB_KEYBOARD in phone.packages else [])


async def cmd_ime(ctx: CommandContext, argv: list[str]) -> int:
    """``ime list [-a] [-s]``, ``ime enable|disable|set ID``, ``ime reset``."""
    from workers.simulator.phone import LATIN_IME

    phone = ctx.phone
    sub = argv[1] if len(argv) > 1 else ""
    args = argv[2:]
    text = ""
    error = ""
    with phone.lock:
        secure = phone.settings["secure"]
        enabled = _enabled_imes(phone)
        available = _available_imes(phone)
        target = next((a for a in args if not a.startswith("-")), "")
        if sub == "list":
            shown = available if "-a" in args else enabled
            if "-s" in args:
                text = "".join(f"{m}\n" for m in shown)
            else:
                text = "".join(f"{m}:\n  mId={m} mSettingsActivity=null\n" for m in shown)
        elif sub in ("enable", "disable", "set") and target not in available:
            verb = "selected" if sub == "set" else f"{sub}d"
            error = f"Unknown input method {target} cannot be {verb} for user #0\n"
        elif sub == "enable":
            already = target in enabled
            if not already:
                secure["enabled_input_methods"] = ":".join([*enabled, target])
            text = f"Input method {target}: {'already enabled' if already else 'now enabled'} for user #0\n"
        elif sub == "disable":
            secure["enabled_input_methods"] = ":".join(m for m in enabled if m != target)
            if secure["default_input_method"] == target:
                secure["default_input_method"] = LATIN_IME
            text = f"Input method {target}: now disabled for user #0\n"
        elif sub == "set":
            if target not in enabled:
                error = f"Input method {target} is not enabled for user #0\n"
            else:
                secure["default_input_method"] = target
                text = f"Input method {target} selected for user #0\n"
        elif sub == "reset":
            secure["enabled_input_methods"] = LATIN_IME
            secure["default_input_method"] = LATIN_IME
            text = f"Reset input method for user #0\nSelected {LATIN_IME}\n"
        else:
            error = (
                "ime <command>:\n  list [-a] [-s]\n  enable [--user <USER_ID>] <ID>\n"
                "  disable [--user <USER_ID>] <ID>\n  set [--user <USER_ID>] <ID>\n"
            )
    if error:
        await ctx.error(error)
        return 255
    await ctx.print(text)
    return 0


async def cmd_settings(ctx: CommandContext, argv: list[str]) -> int:
    """``settings get|put|delete|list NAMESPACE [KEY [VALUE]]``."""
    args = [a for a in argv[1:] if a not in ("--user", "current")]
    if len(args) < 2 or args[1] not in ("system", "secure", "global"):
        await ctx.error("usage:  settings [--user <USERID> | current] get namespace key\n")
        return 255
    sub, namespace = args[0], args[1]
    with ctx.phone.lock:
        table = ctx.phone.settings[namespace]
        if sub == "get" and len(args) >= 3:
            text = table.get(args[2], "null") + "\n"
        elif sub == "put" and len(args) >= 4:
            table[args[2]] = args[3]
            text = ""
        elif sub == "delete" and len(args) >= 3:
            existed = table.pop(args[2], None) is not None
            text = f"Deleted {1 if existed else 0} rows\n"
        elif sub == "list":
            text = "".join(f"{k}={v}\n" for k, v in sorted(table.items()))
        else:
            await ctx.error("Invalid command\n")
            return 255
    await ctx.print(text)
    return 0


# ----------------------------------------------------------------------------- content provider
_WHERE_CLAUSE = re.compile(
    r"""\s*(?P<col>\w+)\s*(?P<op>=|==|!=|LIKE)\s*(?:'(?P<sq>(?:[^']|'')*)'|"(?P<dq>[^"]*)"|(?P<bare>[^\s]+))\s*""",
    re.IGNORECASE,
)


def _where(expression: str) -> list[tuple[str, str, str]]:
    clauses = []
    for part in re.split(r"\s+AND\s+", expression.strip(), flags=re.IGNORECASE):
        match = _WHERE_CLAUSE.fullmatch(part)
        if match is None:
            raise ValueError(f"unsupported where clause: {part}")
        raw = match.group("sq")
        value = raw.replace("''", "'") if raw is not None else match.group("dq") or match.group("bare") or ""
        clauses.append((match.group("col"), match.group("op").upper(), value))
    return clauses


def _like(pattern: str, value: str) -> bool:
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.IGNORECASE | re.DOTALL) is not None


async def cmd_content(ctx: CommandContext, argv: list[str]) -> int:
    """``content query --uri content://media/external/... [--projection a:b] [--where W] [--sort S]``."""
    args = argv[1:]
    if not args or args[0] != "query":
        await ctx.error("usage: adb shell content [subcommand] [options]\n")
        return 1
    options: dict[str, str] = {}
    i = 1
    while i < len(args) - 1:
        if args[i].startswith("--"):
            options[args[i][2:]] = args[i + 1]
            i += 2
        else:
            i += 1
    uri = options.get("uri", "")
    if not uri.startswith("content://media/"):
        await ctx.error(
            f"Error while accessing provider:{uri.split('/')[2] if '//' in uri else uri}\n"
            f"java.lang.IllegalArgumentException: Unknown URI: {uri}\n"
        )
        return 1
    rows = ctx.phone.media_rows(uri)
    try:
        clauses = _where(options["where"]) if "where" in options else []
    except ValueError as exc:
        await ctx.error(f"Error while accessing provider:media\nandroid.database.sqlite.SQLiteException: {exc}\n")
        return 1
    table = []
    for row in rows:
        node = ctx.phone.fs.lookup(row.path)
        record = {
            "_id": str(row.id),
            "_data": row.path,
            "_display_name": row.path.rsplit("/", 1)[-1],
            "mime_type": row.mime,
            "_size": str(node.size if node is not None else 0),
            "date_added": str(row.date_added),
            "media_type": {"images": "1", "audio": "2", "video": "3"}.get(row.volume_kind, "0"),
        }
        keep = True
        for column, op, value in clauses:
            actual = record.get(column, "")
            if op in ("=", "=="):
                keep = keep and actual == value
            elif op == "!=":
                keep = keep and actual != value
            else:
                keep = keep and _like(value, actual)
        if keep:
            table.append(record)
    if options.get("sort", "").lower().endswith("desc"):
        table.reverse()
    if not table:
        await ctx.print("No result found.\n")
        return 0
    columns = options["projection"].split(":") if "projection" in options else list(table[0])
    lines = [f"Row: {index} " + ", ".join(f"{c}={r.get(c, 'NULL')}" for c in columns) for index, r in enumerate(table)]
    await ctx.print("\n".join(lines) + "\n")
    return 0


# ----------------------------------------------------------------------------- dumpsys
async def cmd_dumpsys(ctx: CommandContext, argv: list[str]) -> int:
    """``dumpsys window|activity|display|package|power|battery|input_method``."""
    phone = ctx.phone
    service = argv[1] if len(argv) > 1 else ""
    package, activity = phone.current_focus()
    token = f"{abs(hash(package)) % 0xFFFFFFF:07x}"
    if activity.startswith("Application Error"):
        window = f"Window{{{token} u0 {activity}}}"
        record = "ActivityRecord{9f1e2d u0 com.google.android.apps.nexuslauncher/.NexusLauncherActivity t1}"
    else:
        window = f"Window{{{token} u0 {package}/{activity}}}"
        record = f"ActivityRecord{{{token} u0 {package}/{activity} t{abs(hash(package)) % 90 + 10}}}"
    if service == "window":
        text = (
            "WINDOW MANAGER WINDOWS (dumpsys window windows)\n"
            f"  Window #0 {window}:\n    mDisplayId=0 rootTaskId=1 mSession=Session{{5c1 1234:u0a10123}}\n"
            f"  mCurrentFocus={window}\n  mFocusedApp={record}\n"
            f"  mTopFullscreenOpaqueWindowState={window}\n"
        )
    elif service == "activity":
        text = (
            f"ACTIVITY MANAGER ACTIVITIES (dumpsys activity activities)\n  mResumedActivity: {record}\n"
            f"  ResumedActivity: {record}\n"
        )
        if len(argv) > 2 and argv[2] == "top":
            text = f"TASK 10 id=12\n  ACTIVITY {package}/{activity} {token} pid=4242\n"
    elif service == "display":
        text = (
            f"  DisplayViewport{{valid=true, type=INTERNAL, displayId=0, uniqueId='local:0', physicalPort=0, "
            f"orientation=0, logicalFrame=Rect(0, 0 - {phone.width}, {phone.height}), "
            f"physicalFrame=Rect(0, 0 - {phone.width}, {phone.height}), deviceWidth={phone.width}, "
            f"deviceHeight={phone.height}, isActive=true}}\n  mCurrentOrientation=0\n"
        )
    elif service == "package" and len(argv) > 2:
        name = argv[-1]
        with phone.lock:
            app = phone.apps.get(name)
            installed = name in phone.packages
        if not installed:
            text = f"Unable to find package: {name}\n"
        else:
            version = app.version if app else "1.0"
            code = app.version_code if app else 1
            text = (
                f"Packages:\n  Package [{name}] (4f2a1c):\n    userId=10123\n"
                f"    versionCode={code} minSdk=24 targetSdk=34\n    versionName={version}\n"
                "    firstInstallTime=2024-05-01 10:00:00\n    lastUpdateTime=2024-05-01 10:00:00\n"
                "    pkgFlags=[ HAS_CODE ALLOW_CLEAR_USER_DATA ]\n"
            )
    elif service == "power":
        text = (
            f"Power Manager State:\n  mWakefulness={'Awake' if phone.screen_on else 'Asleep'}\n"
            f"  mHoldingDisplaySuspendBlocker={'true' if phone.screen_on else 'false'}\n"
        )
    elif service == "battery":
        text = (
            "Current Battery Service state:\n  AC powered: false\n  USB powered: true\n"
            "  Wireless powered: false\n  Max charging current: 500000\n  Max charging voltage: 5000000\n"
            "  Charge counter: 2740000\n  status: 2\n  health: 2\n  present: true\n  level: 87\n"
            "  scale: 100\n  voltage: 4200\n  temperature: 285\n  technology: Li-ion\n"
        )
    elif service == "input_method":
        secure = phone.settings["secure"]
        text = (
            f"Current Input Method Manager state:\n  mCurMethodId={secure['default_input_method']}\n"
            f"  mEnabledInputMethods={secure['enabled_input_methods']}\n"
        )
    elif service == "SurfaceFlinger" and "--display-id" in argv:
        text = 'Display 4619827259835644672 (HWC display 0): port=0 pnpId=GGL displayName="Internal"\n'
    else:
        text = f"Can't find service: {service}\n" if service else ""
    await ctx.print(text)
    return 0


async def cmd_cmd(ctx: CommandContext, argv: list[str]) -> int:
    """``cmd SERVICE ...``: the services whose shell commands scripts use."""
    service = argv[1] if len(argv) > 1 else ""
    routes: dict[str, Command] = {
        "package": cmd_pm,
        "activity": cmd_am,
        "input_method": cmd_ime,
        "settings": cmd_settings,
        "window": cmd_wm,
        "input": cmd_input,
    }
    handler = routes.get(service)
    if handler is None:
        if service in ("statusbar", "notification", "media_session", "wifi", "power", "appops"):
            return 0
        await ctx.error(f"Can't find service: {service}\n")
        return 20
    return await handler(ctx, [service, *argv[2:]])


async def cmd_svc(ctx: CommandContext, argv: list[str]) -> int:
    """``svc wifi|data|power ...``: accepted."""
    return 0


async def cmd_reboot(ctx: CommandContext, argv: list[str]) -> int:
    """``reboot``: the shell user may not."""
    await ctx.error("reboot: Operation not permitted\n")
    return 1


async def cmd_uptime(ctx: CommandContext, argv: list[str]) -> int:
    """``uptime``."""
    await ctx.print(
        f" {time.strftime('%H:%M:%S', time.gmtime())} up 3 days,  4:05,  0 users,  load average: 0.52, 0.48, 0.50\n"
    )
    return 0


COMMANDS: dict[str, Command] = {
    "getprop": cmd_getprop,
    "setprop": cmd_setprop,
    "wm": cmd_wm,
    "screencap": cmd_screencap,
    "uiautomator": cmd_uiautomator,
    "input": cmd_input,
    "am": cmd_am,
    "monkey": cmd_monkey,
    "pm": cmd_pm,
    "ime": cmd_ime,
    "settings": cmd_settings,
    "content": cmd_content,
    "dumpsys": cmd_dumpsys,
    "cmd": cmd_cmd,
    "svc": cmd_svc,
    "reboot": cmd_reboot,
    "uptime": cmd_uptime,
}
