"""The toybox/mksh commands of the simulated shell (files, text, tests, ``sleep``, ``sh -c``).

Error texts and exit codes follow Android's toybox, which is what a script sees on a real phone.
The Android tools (``am``, ``pm``, ``input``...) live in :mod:`workers.simulator.android`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import posixpath
import re
import time

from workers.simulator.fs import DirNode, FileNode, FsError, Node, normalize
from workers.simulator.shell import SHELL, Command, CommandContext, Shell, ShellExit


def _path(ctx: CommandContext, raw: str) -> str:
    return normalize(raw, ctx.shell.cwd)


def _split_flags(args: list[str], known: str) -> tuple[set[str], list[str]]:
    """Toybox-style short options (``-rf``), stopping at ``--`` or the first operand."""
    flags: set[str] = set()
    rest: list[str] = []
    parsing = True
    for arg in args:
        if parsing and arg == "--":
            parsing = False
        elif parsing and arg.startswith("-") and len(arg) > 1 and all(c in known for c in arg[1:]):
            flags.update(arg[1:])
        else:
            rest.append(arg)
    return flags, rest


async def cmd_true(ctx: CommandContext, argv: list[str]) -> int:
    """``true`` (and ``:``)."""
    return 0


async def cmd_false(ctx: CommandContext, argv: list[str]) -> int:
    """``false``."""
    return 1


async def cmd_exit(ctx: CommandContext, argv: list[str]) -> int:
    """``exit [N]``."""
    raise ShellExit(int(argv[1]) if len(argv) > 1 and argv[1].lstrip("-").isdigit() else ctx.shell.status)


async def cmd_echo(ctx: CommandContext, argv: list[str]) -> int:
    """``echo [-n] [-e] words``."""
    args = argv[1:]
    newline, escapes = True, False
    while args and args[0] in ("-n", "-e", "-ne", "-en", "-E"):
        newline = newline and "n" not in args[0]
        escapes = escapes or "e" in args[0]
        args = args[1:]
    text = " ".join(args)
    if escapes:
        text = text.encode("utf-8").decode("unicode_escape").encode("latin-1").decode("utf-8", "replace")
    await ctx.print(text + ("\n" if newline else ""))
    return 0


async def cmd_printf(ctx: CommandContext, argv: list[str]) -> int:
    """``printf FORMAT [ARGS]`` for %s, %d and backslash escapes."""
    if len(argv) < 2:
        await ctx.error("printf: Need 1 argument\n")
        return 1
    fmt = argv[1].encode("utf-8").decode("unicode_escape").encode("latin-1").decode("utf-8", "replace")
    values = iter(argv[2:])
    text = re.sub(r"%[sd]", lambda _m: next(values, ""), fmt)
    await ctx.print(text.replace("%%", "%"))
    return 0


async def cmd_cat(ctx: CommandContext, argv: list[str]) -> int:
    """``cat [FILE...]``; no file means standard input."""
    if len(argv) == 1:
        await ctx.out(ctx.stdin)
        return 0
    status = 0
    for raw in argv[1:]:
        if raw == "-":
            await ctx.out(ctx.stdin)
            continue
        try:
            with ctx.phone.lock:
                data = ctx.phone.fs.read(_path(ctx, raw))
        except FsError as exc:
            await ctx.error(f"cat: {raw}: {exc.reason}\n")
            status = 1
            continue
        await ctx.out(data)
    return status


def _perm_string(node: Node) -> str:
    kind = "d" if isinstance(node, DirNode) else "-"
    mode = node.mode
    bits = "".join((flag if mode & (1 << (8 - index)) else "-") for index, flag in enumerate("rwxrwxrwx"))
    return kind + bits


def _long_line(name: str, node: Node) -> str:
    stamp = time.strftime("%Y-%m-%d %H:%M", time.gmtime(node.mtime))
    return f"{_perm_string(node)} 1 root everybody {node.size:>8} {stamp} {name}\n"


async def cmd_ls(ctx: CommandContext, argv: list[str]) -> int:
    """``ls [-l] [-a] [-1] [-d] [PATH...]``."""
    flags, paths = _split_flags(argv[1:], "laA1dRhtS")
    paths = paths or ["."]
    status = 0
    blocks: list[str] = []
    for raw in paths:
        with ctx.phone.lock:
            node = ctx.phone.fs.lookup(_path(ctx, raw))
            entries = ctx.phone.fs.listdir(_path(ctx, raw)) if isinstance(node, DirNode) else []
        if node is None:
            await ctx.error(f"ls: {raw}: No such file or directory\n")
            status = 1
            continue
        if isinstance(node, FileNode) or "d" in flags:
            blocks.append(_long_line(raw, node) if "l" in flags else raw + "\n")
            continue
        lines = ""
        if len(paths) > 1:
            lines += f"{raw}:\n"
        if "l" in flags:
            lines += f"total {len(entries) * 8}\n"
        for name, child in entries:
            if name.startswith(".") and not ({"a", "A"} & flags):
                continue
            lines += _long_line(name, child) if "l" in flags else name + "\n"
        blocks.append(lines)
    await ctx.print("".join(blocks))
    return status


async def cmd_rm(ctx: CommandContext, argv: list[str]) -> int:
    """``rm [-f] [-r] PATH...``."""
    flags, paths = _split_flags(argv[1:], "rRfiv")
    if not paths and "f" not in flags:
        await ctx.error('rm: Needs 1 argument (see "rm --help")\n')
        return 1
    status = 0
    for raw in paths:
        try:
            with ctx.phone.lock:
                ctx.phone.fs.remove(_path(ctx, raw), recursive=bool({"r", "R"} & flags))
        except FsError as exc:
            if exc.code == 2 and "f" in flags:
                continue
            reason = "Is a directory" if exc.code == 21 else exc.reason
            await ctx.error(f"rm: {raw}: {reason}\n")
            status = 1
    return status


async def cmd_mkdir(ctx: CommandContext, argv: list[str]) -> int:
    """``mkdir [-p] DIR...``."""
    flags, paths = _split_flags(argv[1:], "pv")
    status = 0
    for raw in paths:
        try:
            with ctx.phone.lock:
                ctx.phone.fs.mkdir(_path(ctx, raw), parents="p" in flags)
        except FsError as exc:
            await ctx.error(f"mkdir: {raw}: {exc.reason}\n")
            status = 1
    return status


async def cmd_touch(ctx: CommandContext, argv: list[str]) -> int:
    """``touch FILE...``."""
    status = 0
    for raw in argv[1:]:
        if raw.startswith("-"):
            continue
        try:
            with ctx.phone.lock:
                node = ctx.phone.fs.lookup(_path(ctx, raw))
                if isinstance(node, FileNode):
                    node.mtime = int(time.time())
                elif node is None:
                    ctx.phone.fs.write(_path(ctx, raw), b"")
        except FsError as exc:
            await ctx.error(f"touch: {raw}: {exc.reason}\n")
            status = 1
    return status


async def cmd_cp(ctx: CommandContext, argv: list[str]) -> int:
    """``cp SRC DST`` (files only); ``mv`` shares it."""
    _, args = _split_flags(argv[1:], "rRfpav")
    name = argv[0]
    if len(args) != 2:
        await ctx.error(f"{name}: Needs 2 arguments\n")
        return 1
    src, dst = (_path(ctx, a) for a in args)
    try:
        with ctx.phone.lock:
            data = ctx.phone.fs.read(src)
            if ctx.phone.fs.is_dir(dst):
                dst = posixpath.join(dst, posixpath.basename(src))
            ctx.phone.fs.write(dst, data)
            if name == "mv":
                ctx.phone.fs.remove(src)
    except FsError as exc:
        await ctx.error(f"{name}: {exc.path}: {exc.reason}\n")
        return 1
    return 0


def _evaluate_test(ctx: CommandContext, args: list[str]) -> bool:
    if args and args[0] == "!":
        return not _evaluate_test(ctx, args[1:])
    if not args:
        return False
    if len(args) == 1:
        return args[0] != ""
    if len(args) == 2:
        op, operand = args
        if op == "-z":
            return operand == ""
        if op == "-n":
            return operand != ""
        with ctx.phone.lock:
            node = ctx.phone.fs.lookup(_path(ctx, operand))
        return {
            "-e": node is not None,
            "-f": isinstance(node, FileNode),
            "-d": isinstance(node, DirNode),
            "-s": node is not None and node.size > 0,
            "-r": node is not None,
            "-w": node is not None,
            "-x": isinstance(node, DirNode),
            "-L": False,
        }.get(op, False)
    if len(args) == 3:
        left, op, right = args
        if op in ("=", "=="):
            return left == right
        if op == "!=":
            return left != right
        numeric = {
            "-eq": int.__eq__,
            "-ne": int.__ne__,
            "-lt": int.__lt__,
            "-le": int.__le__,
            "-gt": int.__gt__,
            "-ge": int.__ge__,
        }
        if op in numeric:
            try:
                return bool(numeric[op](int(left), int(right)))
            except ValueError:
                return False
    if "-a" in args:
        index = args.index("-a")
        return _evaluate_test(ctx, args[:index]) and _evaluate_test(ctx, args[index + 1 :])
    if "-o" in args:
        index = args.index("-o")
        return _evaluate_test(ctx, args[:index]) or _evaluate_test(ctx, args[index + 1 :])
    return False


async def cmd_test(ctx: CommandContext, argv: list[str]) -> int:
    """``test EXPR`` and ``[ EXPR ]``."""
    args = argv[1:]
    if argv[0] == "[":
        if not args or args[-1] != "]":
            await ctx.error("[: missing ]\n")
            return 2
        args = args[:-1]
    return 0 if _evaluate_test(ctx, args) else 1


def _format_stat(fmt: str, values: dict[str, str]) -> str:
    def expand(match: re.Match[str]) -> str:
        return values.get(match.group(1), match.group(0))

    return re.sub(r"%(.)", expand, fmt)


async def cmd_stat(ctx: CommandContext, argv: list[str]) -> int:
    """``stat [-c FORMAT] FILE...`` with %s %n %Y %a %F %A."""
    args = argv[1:]
    fmt: str | None = None
    if len(args) >= 2 and args[0] in ("-c", "--format"):
        fmt, args = args[1], args[2:]
    elif args and args[0].startswith("-c"):
        fmt, args = args[0][2:], args[1:]
    status = 0
    for raw in args:
        with ctx.phone.lock:
            node = ctx.phone.fs.lookup(_path(ctx, raw))
        if node is None:
            await ctx.error(f"stat: '{raw}': No such file or directory\n")
            status = 1
            continue
        kind = "directory" if isinstance(node, DirNode) else ("regular file" if node.size else "regular empty file")
        if fmt is not None:
            values = {
                "s": str(node.size),
                "n": raw,
                "Y": str(node.mtime),
                "a": f"{node.mode:o}",
                "F": kind,
                "A": _perm_string(node),
                "u": "0",
                "g": "9997",
                "%": "%",
            }
            await ctx.print(_format_stat(fmt, values) + "\n")
        else:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(node.mtime))
            await ctx.print(
                f"  File: {raw}\n  Size: {node.size}\t Blocks: {(node.size + 511) // 512}\t IO Blocks: 4096\t{kind}\n"
                f"Access: (0{node.mode:o}/{_perm_string(node)})\tUid: (    0/    root)\tGid: ( 9997/everybody)\n"
                f"Modify: {stamp}.000000000 +0000\n"
            )
    return status


async def cmd_md5sum(ctx: CommandContext, argv: list[str]) -> int:
    """``md5sum FILE...``."""
    status = 0
    files = [a for a in argv[1:] if not a.startswith("-")] or ["-"]
    for raw in files:
        try:
            if raw == "-":
                data = ctx.stdin
            else:
                with ctx.phone.lock:
                    data = ctx.phone.fs.read(_path(ctx, raw))
        except FsError as exc:
            await ctx.error(f"md5sum: {raw}: {exc.reason}\n")
            status = 1
            continue
        await ctx.print(f"{hashlib.md5(data).hexdigest()}  {raw}\n")  # noqa: S324
    return status


async def cmd_sleep(ctx: CommandContext, argv: list[str]) -> int:
    """``sleep SECONDS``."""
    try:
        seconds = float(argv[1].rstrip("s"))
    except (IndexError, ValueError):
        await ctx.error('sleep: Needs 1 argument (see "sleep --help")\n')
        return 1
    await asyncio.sleep(max(0.0, seconds))
    return 0


async def cmd_grep(ctx: CommandContext, argv: list[str]) -> int:
    """``grep [-i] [-v] [-q] [-c] [-E] [-F] [-o] PATTERN [FILE...]``."""
    flags, args = _split_flags(argv[1:], "ivqcEFoenwx")
    if not args:
        await ctx.error("grep: Needs 1 argument\n")
        return 2
    pattern, files = args[0], args[1:]
    source = re.escape(pattern) if "F" in flags else pattern
    if "F" not in flags and "E" not in flags:
        # basic regular expressions: \| \( \) are the operators, bare ones are literal
        source = source.replace(r"\|", "\0").replace("|", r"\|").replace("\0", "|")
    if "w" in flags:
        source = rf"\b(?:{source})\b"
    if "x" in flags:
        source = rf"^(?:{source})$"
    try:
        regex = re.compile(source, re.IGNORECASE if "i" in flags else 0)
    except re.error:
        await ctx.error(f"grep: bad regex '{pattern}'\n")
        return 2
    if files:
        chunks = []
        for raw in files:
            try:
                with ctx.phone.lock:
                    chunks.append(ctx.phone.fs.read(_path(ctx, raw)))
            except FsError as exc:
                await ctx.error(f"grep: {raw}: {exc.reason}\n")
        text = b"".join(chunks).decode("utf-8", "replace")
    else:
        text = ctx.stdin.decode("utf-8", "replace")
    matched = []
    for line in text.splitlines():
        found = regex.search(line) is not None
        if found != ("v" in flags):
            matched.append(line)
    if "q" not in flags:
        if "c" in flags:
            await ctx.print(f"{len(matched)}\n")
        elif "o" in flags and "v" not in flags:
            await ctx.print("".join(m.group(0) + "\n" for line in matched for m in regex.finditer(line)))
        else:
            await ctx.print("".join(line + "\n" for line in matched))
    return 0 if matched else 1


async def cmd_head_tail(ctx: CommandContext, argv: list[str]) -> int:
    """``head``/``tail`` ``[-n N]`` on standard input or one file."""
    count = 10
    args = argv[1:]
    files: list[str] = []
    i = 0
    while i < len(args):
        if args[i] == "-n" and i + 1 < len(args):
            count = int(args[i + 1].lstrip("+-") or 10)
            i += 2
            continue
        if re.fullmatch(r"-\d+", args[i]):
            count = int(args[i][1:])
        else:
            files.append(args[i])
        i += 1
    try:
        data = ctx.phone.read_file(_path(ctx, files[0])) if files else ctx.stdin
    except FsError as exc:
        await ctx.error(f"{argv[0]}: {files[0]}: {exc.reason}\n")
        return 1
    lines = data.decode("utf-8", "replace").splitlines(keepends=True)
    picked = lines[:count] if argv[0] == "head" else lines[-count:] if count else []
    await ctx.print("".join(picked))
    return 0


async def cmd_wc(ctx: CommandContext, argv: list[str]) -> int:
    """``wc [-l|-c|-w]`` on standard input or files."""
    flags, files = _split_flags(argv[1:], "lcwm")
    sources: list[tuple[str, bytes]] = []
    for raw in files or ["-"]:
        try:
            sources.append((raw, ctx.stdin if raw == "-" else ctx.phone.read_file(_path(ctx, raw))))
        except FsError as exc:
            await ctx.error(f"wc: {raw}: {exc.reason}\n")
            return 1
    for name, data in sources:
        counts = {"l": data.count(b"\n"), "w": len(data.split()), "c": len(data), "m": len(data)}
        wanted = [k for k in "lwcm" if k in flags] or ["l", "w", "c"]
        label = "" if name == "-" else f" {name}"
        await ctx.print(" ".join(str(counts[k]) for k in wanted) + label + "\n")
    return 0


async def cmd_base64(ctx: CommandContext, argv: list[str]) -> int:
    """``base64 [-d] [FILE]``."""
    flags, files = _split_flags(argv[1:], "dw0")
    data = ctx.phone.read_file(_path(ctx, files[0])) if files else ctx.stdin
    if "d" in flags:
        try:
            await ctx.out(base64.b64decode(data))
        except (binascii.Error, ValueError):
            await ctx.error("base64: bad input\n")
            return 1
    else:
        await ctx.print(base64.b64encode(data).decode() + "\n")
    return 0


async def cmd_pwd(ctx: CommandContext, argv: list[str]) -> int:
    """``pwd``."""
    await ctx.print(ctx.shell.cwd + "\n")
    return 0


async def cmd_cd(ctx: CommandContext, argv: list[str]) -> int:
    """``cd DIR``."""
    target = _path(ctx, argv[1] if len(argv) > 1 else "/")
    if not ctx.phone.fs.is_dir(target):
        await ctx.error(f"{SHELL}: cd: {argv[1] if len(argv) > 1 else '/'}: No such file or directory\n")
        return 2
    ctx.shell.cwd = target
    return 0


async def cmd_id(ctx: CommandContext, argv: list[str]) -> int:
    """``id``: adbd's shell user."""
    if "-u" in argv:
        await ctx.print("2000\n")
    else:
        await ctx.print(
            "uid=2000(shell) gid=2000(shell) groups=2000(shell),1004(input),1007(log),1011(adb),"
            "1015(sdcard_rw),1028(sdcard_r),3003(inet) context=u:r:shell:s0\n"
        )
    return 0


async def cmd_whoami(ctx: CommandContext, argv: list[str]) -> int:
    """``whoami``."""
    await ctx.print("shell\n")
    return 0


async def cmd_date(ctx: CommandContext, argv: list[str]) -> int:
    """``date`` and ``date +%s``."""
    if len(argv) > 1 and argv[1].startswith("+"):
        await ctx.print(time.strftime(argv[1][1:].replace("%s", str(int(time.time()))), time.gmtime()) + "\n")
    else:
        await ctx.print(time.strftime("%a %b %d %H:%M:%S UTC %Y", time.gmtime()) + "\n")
    return 0


async def cmd_basename(ctx: CommandContext, argv: list[str]) -> int:
    """``basename PATH``."""
    await ctx.print(posixpath.basename(argv[1].rstrip("/")) + "\n" if len(argv) > 1 else "\n")
    return 0


async def cmd_dirname(ctx: CommandContext, argv: list[str]) -> int:
    """``dirname PATH``."""
    await ctx.print((posixpath.dirname(argv[1].rstrip("/")) or ".") + "\n" if len(argv) > 1 else ".\n")
    return 0


async def cmd_which(ctx: CommandContext, argv: list[str]) -> int:
    """``which NAME...``."""
    status = 0
    for name in argv[1:]:
        if name in ctx.shell.commands:
            await ctx.print(f"/system/bin/{name}\n")
        else:
            status = 1
    return status


async def cmd_sh(ctx: CommandContext, argv: list[str]) -> int:
    """``sh -c 'COMMANDS'`` or ``sh`` reading commands from standard input."""
    args = argv[1:]
    nested = Shell(ctx.phone, ctx.shell.commands)
    nested.cwd = ctx.shell.cwd
    nested.env = dict(ctx.shell.env)
    if args and args[0] == "-c":
        if len(args) < 2:
            await ctx.error(f"{SHELL}: -c: option requires an argument\n")
            return 2
        return await nested.run(args[1], ctx.out, ctx.err)
    if args:
        try:
            script = ctx.phone.read_file(_path(ctx, args[0])).decode("utf-8", "replace")
        except FsError as exc:
            await ctx.error(f"{SHELL}: {args[0]}: {exc.reason}\n")
            return 127
        return await nested.run(script, ctx.out, ctx.err)
    return await nested.run(ctx.stdin.decode("utf-8", "replace"), ctx.out, ctx.err)


async def cmd_log(ctx: CommandContext, argv: list[str]) -> int:
    """``log``: accepted and dropped."""
    return 0


async def cmd_logcat(ctx: CommandContext, argv: list[str]) -> int:
    """``logcat -c`` / ``logcat -d``: an empty log."""
    if not {"-c", "-d", "--clear"} & set(argv):
        # A streaming logcat would never end; the simulator has no log to stream.
        await ctx.print("--------- beginning of main\n")
    return 0


def _registry() -> dict[str, Command]:
    from workers.simulator import android

    table: dict[str, Command] = {
        "true": cmd_true,
        ":": cmd_true,
        "false": cmd_false,
        "exit": cmd_exit,
        "echo": cmd_echo,
        "printf": cmd_printf,
        "cat": cmd_cat,
        "ls": cmd_ls,
        "rm": cmd_rm,
        "mkdir": cmd_mkdir,
        "touch": cmd_touch,
        "cp": cmd_cp,
        "mv": cmd_cp,
        "test": cmd_test,
        "[": cmd_test,
        "stat": cmd_stat,
        "md5sum": cmd_md5sum,
        "sleep": cmd_sleep,
        "grep": cmd_grep,
        "head": cmd_head_tail,
        "tail": cmd_head_tail,
        "wc": cmd_wc,
        "base64": cmd_base64,
        "pwd": cmd_pwd,
        "cd": cmd_cd,
        "id": cmd_id,
        "whoami": cmd_whoami,
        "date": cmd_date,
        "basename": cmd_basename,
        "dirname": cmd_dirname,
        "which": cmd_which,
        "sh": cmd_sh,
        "log": cmd_log,
        "logcat": cmd_logcat,
    }
    table.update(android.COMMANDS)
    return table


COMMANDS: dict[str, Command] = _registry()
