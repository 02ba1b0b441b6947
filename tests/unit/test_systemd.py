import shutil
import subprocess

import pytest

from bakery.systemd import escape_path, exec_arg, mount_unit_name, unit_value

CASES = [
    ("/mnt/docker-nfs", "mnt-docker\\x2dnfs"),
    ("/srv/.hidden/a_b:c", "srv-.hidden-a_b:c"),
    ("/mnt/é x", "mnt-\\xc3\\xa9\\x20x"),
    ("/.dot", "\\x2edot"),
    ("//a//b/", "a-b"),
    ("/", "-"),
]


@pytest.mark.parametrize("path, escaped", CASES)
def test_escape_path(path, escaped):
    assert escape_path(path) == escaped
    assert mount_unit_name(path) == escaped + ".mount"


@pytest.mark.parametrize("path", [p for p, _ in CASES])
def test_agrees_with_systemd_escape(path):
    tool = shutil.which("systemd-escape")
    if tool is None:
        pytest.skip("systemd-escape is not installed")
    assert escape_path(path) == subprocess.run([tool, "--path", path], capture_output=True, text=True,
                                               check=True).stdout.strip()


@pytest.mark.parametrize("value, arg", [
    ("/mnt/docker-nfs", "/mnt/docker-nfs"),
    ("/mnt/50%off", '"/mnt/50%%off"'),
    ("/mnt/$HOME", '"/mnt/$$HOME"'),
    ('/mnt/a"b\\c', '"/mnt/a\\"b\\\\c"'),
    ("/mnt/é", '"/mnt/é"'),
    ("", '""'),
])
def test_exec_arg(value, arg):
    assert exec_arg(value) == arg


def test_unit_value_doubles_percent_and_exec_arg_builds_on_it():
    assert unit_value("srv:/100%/data") == "srv:/100%%/data"
    for value in ("/mnt/a\nExecStartPre=x", "/mnt/a\rb"):
        for escape in (unit_value, exec_arg):
            with pytest.raises(ValueError, match="line break"):
                escape(value)
