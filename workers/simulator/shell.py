"""A small POSIX-style shell, standing in for Android's mksh for what adb clients send.

It parses quoting (``'…'``, ``"…"``, backslashes, concatenated segments as ``shlex.quote`` produces),
``$?``/``$VAR``, ``;``/``&&``/``||``/``|``/``&``, redirections (``>``, ``>>``, ``<``, ``2>``, ``2>&1``,
``&>``) and ``*``/``?`` globs, then runs commands from a registry. Pipelines run their stages one
after another with buffered pipes, which is all that short-lived commands need.
"""

from __future__ import annotations

import fnmatch
import posixpath
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from workers.simulator.fs import FsError, normalize

if TYPE_CHECKING:
    from workers.simulator.phone import SimulatedPhone

Sink = Callable[[bytes], Awaitable[None]]
Command = Callable[["CommandContext", list[str]], Awaitable[int]]

SHELL = "/system/bin/sh"
_OPERATORS = ("&&", "||", ";;", ";", "&", "|", "\n")


class ShellSyntaxError(Exception):
    """The command line could not be parsed."""


class ShellExit(Exception):
    """``exit N`` was run."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


@dataclass
class Word:
    """A word as written: literal and variable segments, and whether it has unquoted wildcards."""

    segments: list[tuple[bool, str]] = field(default_factory=list)  # (is_variable, text)
    glob: bool = False
    quoted: bool = False

    def add(self, text: str, *, variable: bool = False) -> None:
        """Append a literal run or a variable reference."""
        if not variable and self.segments and not self.segments[-1][0]:
            self.segments[-1] = (False, self.segments[-1][1] + text)
        else:
            self.segments.append((variable, text))


@dataclass
class Redirect:
    """``fd op target``; ``target`` is a word, or an fd number for ``>&``."""

    fd: int
    op: str
    target: Word | int


@dataclass
class SimpleCommand:
    """Words plus redirections."""

    words: list[Word] = field(default_factory=list)
    redirects: list[Redirect] = field(default_factory=list)


Pipeline = list[SimpleCommand]
CommandList = list[tuple[str, Pipeline]]  # (operator before it: ";", "&&" or "||"; pipeline)


def _tokenize(line: str) -> list[Word | str]:
    tokens: list[Word | str] = []
    word: Word | None = None
    i = 0
    n = len(line)

    def finish() -> None:
        nonlocal word
        if word is not None:
            tokens.append(word)
            word = None

    def current() -> Word:
        nonlocal word
        if word is None:
            word = Word()
        return word

    def read_variable(start: int) -> tuple[str, int]:
        # start points just after "$"
        if start < n and line[start] in "?#$!0123456789":
            return line[start], start + 1
        if start < n and line[start] == "{":
            end = line.find("}", start)
            if end < 0:
                raise ShellSyntaxError("bad substitution")
            return line[start + 1 : end], end + 1
        end = start
        while end < n and (line[end].isalnum() or line[end] == "_"):
            end += 1
        return line[start:end], end

    while i < n:
        ch = line[i]
        if ch in " \t":
            finish()
            i += 1
        elif ch == "#" and word is None:
            while i < n and line[i] != "\n":
                i += 1
        elif ch == "'":
            end = line.find("'", i + 1)
            if end < 0:
                raise ShellSyntaxError("unterminated '")
            w = current()
            w.add(line[i + 1 : end])
            w.quoted = True
            i = end + 1
        elif ch == '"':
            w = current()
            w.quoted = True
            i += 1
            buf = ""
            while True:
                if i >= n:
                    raise ShellSyntaxError('unterminated "')
                c = line[i]
                if c == '"':
                    i += 1
                    break
                if c == "\\" and i + 1 < n and line[i + 1] in '"\\$`\n':
                    buf += line[i + 1]
                    i += 2
                elif c == "$" and i + 1 < n and (line[i + 1].isalnum() or line[i + 1] in "_?{#$!"):
                    w.add(buf)
                    buf = ""
                    name, i = read_variable(i + 1)
                    w.add(name, variable=True)
                else:
                    buf += c
                    i += 1
            w.add(buf)
        elif ch == "\\":
            if i + 1 < n and line[i + 1] == "\n":
                i += 2
                continue
            if i + 1 < n:
                current().add(line[i + 1])
            i += 2
        elif ch == "$" and i + 1 < n and (line[i + 1].isalnum() or line[i + 1] in "_?{#$!"):
            name, i = read_variable(i + 1)
            current().add(name, variable=True)
        elif ch in "<>" or (ch == "&" and line.startswith("&>", i)):
            fd_prefix = ""
            if word is not None and len(word.segments) == 1 and not word.quoted:
                text = word.segments[0][1]
                if not word.segments[0][0] and text.isdigit():
                    fd_prefix = text
                    word = None
            finish()
            if line.startswith("&>", i):
                tokens.append("&>")
                i += 2
            elif line.startswith(">>", i):
                tokens.append(fd_prefix + ">>")
                i += 2
            elif line.startswith(">&", i):
                tokens.append(fd_prefix + ">&")
                i += 2
            else:
                tokens.append(fd_prefix + ch)
                i += 1
        else:
            op = next((o for o in _OPERATORS if line.startswith(o, i)), None)
            if op is not None:
                finish()
                tokens.append(";" if op == "\n" else op)
                i += len(op)
                continue
            w = current()
            if ch in "*?[":
                w.glob = True
            w.add(ch)
            i += 1
    finish()
    return tokens


def parse(line: str) -> CommandList:
    """Parse a command line into and-or lists of pipelines."""
    tokens = _tokenize(line)
    result: CommandList = []
    pipeline: Pipeline = []
    command = SimpleCommand()
    joiner = ";"
    i = 0

    def end_command() -> None:
        nonlocal command
        if command.words or command.redirects:
            pipeline.append(command)
        elif pipeline:
            raise ShellSyntaxError("syntax error: unexpected '|'")
        command = SimpleCommand()

    while i < len(tokens):
        tok = tokens[i]
        if isinstance(tok, Word):
            command.words.append(tok)
        elif tok in (";", "&", "&&", "||"):
            end_command()
            if pipeline:
                result.append((joiner, pipeline))
            elif tok in ("&&", "||"):
                raise ShellSyntaxError(f"syntax error: unexpected '{tok}'")
            pipeline = []
            joiner = tok if tok in ("&&", "||") else ";"
        elif tok == "|":
            if not command.words:
                raise ShellSyntaxError("syntax error: unexpected '|'")
            end_command()
        elif tok == ";;":
            raise ShellSyntaxError("syntax error: unexpected ';;'")
        else:
            fd = 1 if tok.lstrip("0123456789").startswith(">") or tok == "&>" else 0
            digits = tok[: len(tok) - len(tok.lstrip("0123456789"))]
            if digits:
                fd = int(digits)
            op = tok[len(digits) :]
            if i + 1 >= len(tokens) or not isinstance(tokens[i + 1], Word):
                raise ShellSyntaxError(f"syntax error: unexpected '{op}'")
            target_word = tokens[i + 1]
            assert isinstance(target_word, Word)
            i += 1
            if op == ">&":
                literal = "".join(text for _, text in target_word.segments)
                if not literal.isdigit():
                    raise ShellSyntaxError("bad fd")
                command.redirects.append(Redirect(fd, op, int(literal)))
            elif op == "&>":
                command.redirects.append(Redirect(1, ">", target_word))
                command.redirects.append(Redirect(2, ">&", 1))
            else:
                command.redirects.append(Redirect(fd, op, target_word))
        i += 1
    end_command()
    if pipeline:
        result.append((joiner, pipeline))
    elif joiner in ("&&", "||"):
        raise ShellSyntaxError("syntax error: unexpected end of file")
    return result


@dataclass
class CommandContext:
    """What a running command sees: the phone, its input, where its output goes, the shell."""

    phone: SimulatedPhone
    shell: Shell
    stdin: bytes
    out: Sink
    err: Sink

    async def print(self, text: str) -> None:
        """Write text to standard output."""
        await self.out(text.encode("utf-8"))

    async def error(self, text: str) -> None:
        """Write text to standard error."""
        await self.err(text.encode("utf-8"))


class _Buffer:
    def __init__(self) -> None:
        self.data = bytearray()

    async def __call__(self, chunk: bytes) -> None:
        self.data += chunk


async def _discard(_: bytes) -> None:
    return None


class Shell:
    """One shell process: its variables, working directory and last status."""

    def __init__(self, phone: SimulatedPhone, commands: dict[str, Command]) -> None:
        self.phone = phone
        self.commands = commands
        self.status = 0
        self.cwd = "/"
        self.env: dict[str, str] = {
            "PATH": "/product/bin:/apex/com.android.runtime/bin:/system/bin:/system/xbin:/odm/bin",
            "HOME": "/",
            "SHELL": SHELL,
            "EXTERNAL_STORAGE": "/sdcard",
            "ANDROID_DATA": "/data",
            "ANDROID_ROOT": "/system",
            "TMPDIR": "/data/local/tmp",
            "USER": "shell",
        }

    def _expand(self, word: Word) -> list[str]:
        text = ""
        for variable, value in word.segments:
            if not variable:
                text += value
            elif value == "?":
                text += str(self.status)
            elif value == "$":
                text += "4242"
            elif value == "#":
                text += "0"
            else:
                text += self.env.get(value, "")
        if not word.glob:
            return [text]
        matches = self._glob(text)
        return matches or [text]

    def _glob(self, pattern: str) -> list[str]:
        directory, leaf = posixpath.split(pattern)
        if any(c in directory for c in "*?["):
            return []  # wildcards only in the last component; enough for scripts
        base = directory or self.cwd
        try:
            entries = self.phone.fs.listdir(normalize(base, self.cwd))
        except FsError:
            return []
        names = [name for name, _ in entries if fnmatch.fnmatchcase(name, leaf) and not name.startswith(".")]
        return [posixpath.join(directory, name) if directory else name for name in sorted(names)]

    async def run(self, line: str, out: Sink, err: Sink, stdin: bytes = b"") -> int:
        """Run a command line; returns its exit status (``$?`` afterwards)."""
        try:
            commands = parse(line)
        except ShellSyntaxError as exc:
            await err(f"{SHELL}: {exc}\n".encode())
            self.status = 2
            return 2
        try:
            for joiner, pipeline in commands:
                if joiner == "&&" and self.status != 0:
                    continue
                if joiner == "||" and self.status == 0:
                    continue
                self.status = await self._pipeline(pipeline, out, err, stdin)
        except ShellExit as done:
            self.status = done.status
        return self.status

    async def _pipeline(self, pipeline: Pipeline, out: Sink, err: Sink, stdin: bytes) -> int:
        data = stdin
        status = 0
        for index, command in enumerate(pipeline):
            last = index == len(pipeline) - 1
            if last:
                status = await self._command(command, data, out, err)
            else:
                pipe = _Buffer()
                status = await self._command(command, data, pipe, err)
                data = bytes(pipe.data)
        return status

    async def _command(self, command: SimpleCommand, stdin: bytes, out: Sink, err: Sink) -> int:
        argv: list[str] = []
        for word in command.words:
            argv.extend(self._expand(word))
        sinks: dict[int, Sink] = {1: out, 2: err}
        files: list[tuple[str, bool, _Buffer]] = []
        for redirect in command.redirects:
            if isinstance(redirect.target, int):
                sinks[redirect.fd] = sinks.get(redirect.target, _discard)
                continue
            target = "".join(self._expand(redirect.target))
            if redirect.op == "<":
                try:
                    stdin = self.phone.fs.read(normalize(target, self.cwd))
                except FsError as exc:
                    await err(f"{SHELL}: {target}: {exc.reason}\n".encode())
                    return 1
                continue
            if target in ("/dev/null", "/dev/zero"):
                sinks[redirect.fd] = _discard
                continue
            buffer = _Buffer()
            files.append((target, redirect.op == ">>", buffer))
            sinks[redirect.fd] = buffer
        if not argv:
            status = 0
        else:
            name = posixpath.basename(argv[0]) if argv[0].startswith("/") else argv[0]
            handler = self.commands.get(name)
            if handler is None:
                await sinks[2](f"{SHELL}: {argv[0]}: inaccessible or not found\n".encode())
                status = 127
            else:
                ctx = CommandContext(self.phone, self, stdin, sinks[1], sinks[2])
                status = await handler(ctx, argv)
        for target, append, buffer in files:
            try:
                with self.phone.lock:
                    self.phone.fs.write(normalize(target, self.cwd), bytes(buffer.data), append=append)
            except FsError as exc:
                await err(f"{SHELL}: can't create {target}: {exc.reason}\n".encode())
                status = 1
        return status
