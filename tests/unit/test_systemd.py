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


def test_every_value_in_a_unit_template_goes_through_the_unit_filter():
    """Issue 10: one `| unit` filter (line breaks refused, `%` doubled) for whatever reaches a unit;
    `| exec_arg` (which calls it) for Exec*= arguments. Jinja expressions without either are refused."""
    import re

    from bakery.render import templates_dir

    unfiltered = []
    for path in sorted((templates_dir() / "systemd").glob("*.j2")):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            for expr in re.findall(r"\{\{(.*?)\}\}", line):
                literal = re.fullmatch(r'\s*"[A-Za-z ]+" if \w+ else "[A-Za-z ]+"\s*', expr)  # two constants
                if not literal and not re.search(r"\|\s*(unit|exec_arg)\s*$", expr):
                    unfiltered.append(f"{path.name}:{n}: {{{{{expr}}}}}")
    assert not unfiltered, unfiltered
