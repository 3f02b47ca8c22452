"""The simulated shell's parser and interpreter, without adb in between."""

from __future__ import annotations

import asyncio
import shlex

import pytest

from workers.simulator.commands import COMMANDS
from workers.simulator.phone import SimulatedPhone
from workers.simulator.shell import Shell, ShellSyntaxError, parse


def run(line: str, phone: SimulatedPhone | None = None) -> tuple[int, str, str]:
    phone = phone or SimulatedPhone()
    out, err = bytearray(), bytearray()

    async def go() -> int:
        async def o(data: bytes) -> None:
            out.extend(data)

        async def e(data: bytes) -> None:
            err.extend(data)

        return await Shell(phone, COMMANDS).run(line, o, e)

    status = asyncio.run(go())
    return status, out.decode(), err.decode()


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("echo a b", "a b\n"),
        ("echo 'a  b' \"c  d\"", "a  b c  d\n"),
        ("echo a'b'\"c\"\\ d", "abc d\n"),
        ("false; echo $?", "1\n"),
        ("true && echo yes || echo no", "yes\n"),
        ("false && echo yes || echo no", "no\n"),
        ("echo one | grep -c o", "1\n"),
        ("echo -n x; echo y", "xy\n"),
        ("echo hi > /sdcard/f; echo more >> /sdcard/f; cat /sdcard/f", "hi\nmore\n"),
        ("cat /nope 2>/dev/null; echo $?", "1\n"),
        ("cat /nope 2>&1 | grep -c 'No such'", "1\n"),
        ("echo ${EXTERNAL_STORAGE}/x", "/sdcard/x\n"),
        ("sh -c 'exit 4'; echo $?", "4\n"),
        ("test -d /sdcard && echo dir", "dir\n"),
        ("[ a = a ] && echo same", "same\n"),
        ("touch /sdcard/a.mp4 /sdcard/b.mp4; ls /sdcard/*.mp4", "/sdcard/a.mp4\n/sdcard/b.mp4\n"),
        ("echo a # comment", "a\n"),
    ],
)
def test_lines(line: str, expected: str) -> None:
    assert run(line)[1] == expected


def test_quoted_words_survive_shlex_quote() -> None:
    text = 'it\'s "quoted" $HOME ; && | > `x` 😀'
    assert run("echo " + shlex.quote(text))[1] == text + "\n"


def test_errors_look_like_toybox() -> None:
    assert run("nope") == (127, "", "/system/bin/sh: nope: inaccessible or not found\n")
    assert run("/system/bin/nope")[0] == 127
    assert run("rm /sdcard/none")[2] == "rm: /sdcard/none: No such file or directory\n"
    assert run("echo 'open")[0] == 2
    with pytest.raises(ShellSyntaxError):
        parse("| x")
    assert run("exit 7; echo never") == (7, "", "")
