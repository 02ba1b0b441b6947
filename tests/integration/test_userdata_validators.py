"""Every rendered artefact passes the real validators.

- each #cloud-config part: Debian's `cloud-init schema --config-file`, plus a
  check of top-level keys (cloud-init 22.4 does not reject unknown ones);
- each systemd unit and the docker.service drop-in: `systemd-analyze verify`
  with no warnings (unknown keys only warn, so stderr must be clean);
- each shell script: `sh -n` and shellcheck; the join agent: py_compile;
- each `--format ignition` case: Debian's `ignition-validate` (Ignition's own parser and
  checks), its units through `systemd-analyze verify`, its sh join agent through `sh -n`
  and shellcheck.

BAKERY_REQUIRE_VALIDATORS=1 (CI) turns a missing tool into a failure.
"""

from __future__ import annotations

import json
import os
import py_compile
import subprocess
from pathlib import Path

import pytest
import testkit
import yaml
from testkit import need_tool, require_or_skip
from testkit.render_util import (
    CASES,
    case_args,
    cloud_config_parts,
    ignition_files,
    ignition_units,
    render,
    written_files,
)

pytestmark = pytest.mark.validators

def _format(case: str) -> str:
    args = (CASES / case / "args").read_text().split()
    return args[args.index("--format") + 1] if "--format" in args else "cloud-init"


ALL_CASES = sorted(p.name for p in CASES.iterdir() if p.is_dir() and _format(p.name) == "cloud-init")
IGNITION_CASES = sorted(p.name for p in CASES.iterdir() if p.is_dir() and _format(p.name) == "ignition")
KNOWN_TOP_LEVEL = {"bootcmd", "write_files", "runcmd", "apt", "packages", "merge_how"}
# The shell scripts bakery writes (the join agent is Python).
SCRIPTS = ("/usr/local/lib/bakery/bootstrap", "/usr/local/lib/bakery/nfs-mount")
DOCKER_UNIT = Path("/lib/systemd/system/docker.service")


def _render_case(case: str, tmp_path: Path, capsysbinary) -> list[str]:
    return cloud_config_parts(render(case_args(CASES / case), tmp_path / "state", capsysbinary))


@pytest.mark.parametrize("case", ALL_CASES)
def test_cloud_init_schema(case, tmp_path, capsysbinary):
    cloud_init = need_tool("cloud-init")
    for i, part in enumerate(_render_case(case, tmp_path, capsysbinary)):
        f = tmp_path / f"part{i}.yaml"
        f.write_text(part)
        res = subprocess.run([cloud_init, "schema", "--config-file", str(f)], capture_output=True, text=True)
        assert res.returncode == 0, res.stdout + res.stderr
        assert "Valid cloud-config" in res.stdout
        keys = set(yaml.safe_load(part))
        if i == 0:  # bakery's own part; operator parts may use any module
            assert keys <= KNOWN_TOP_LEVEL, keys - KNOWN_TOP_LEVEL


def _cloud_init_units(case: str, tmp_path: Path, capsysbinary) -> dict[str, str]:
    files = written_files(_render_case(case, tmp_path, capsysbinary)[0])
    return {p.removeprefix("/etc/systemd/system/"): e["content"] for p, e in files.items()
            if p.startswith("/etc/systemd/system/")}


def _ignition_units(case: str, tmp_path: Path, capsysbinary) -> dict[str, str]:
    out = {}
    for name, unit in ignition_units(render(case_args(CASES / case), tmp_path / "state", capsysbinary)).items():
        if "contents" in unit:
            out[name] = unit["contents"]
        for d in unit.get("dropins", []):
            out[f"{name}.d/{d['name']}"] = d["contents"]
    return out


@pytest.mark.parametrize("case", ALL_CASES + IGNITION_CASES)
def test_systemd_units_verify(case, tmp_path, capsysbinary):
    analyze = need_tool("systemd-analyze")
    if not DOCKER_UNIT.exists():
        need_tool("dockerd", "BAKERY_REQUIRE_VALIDATORS")  # units reference docker.service
    units = tmp_path / "units"
    targets = []
    found = (_ignition_units if case in IGNITION_CASES else _cloud_init_units)(case, tmp_path, capsysbinary)
    for name, content in found.items():
        dest = units / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(content)
        if dest.parent == units:
            targets.append(str(dest))
    assert targets
    targets.append(str(DOCKER_UNIT))  # with our drop-in applied
    env = dict(os.environ, SYSTEMD_UNIT_PATH=f"{units}:")
    res = subprocess.run([analyze, "verify", "--man=no", *targets], capture_output=True, text=True, env=env)
    output = res.stdout + res.stderr
    assert res.returncode == 0, output
    problems = [line for line in output.splitlines() if str(units) in line or "Unknown" in line]
    assert not problems, output


@pytest.mark.parametrize("case", ALL_CASES)
def test_scripts_parse(case, tmp_path, capsysbinary):
    sh = need_tool("sh")
    shellcheck = need_tool("shellcheck")
    files = written_files(_render_case(case, tmp_path, capsysbinary)[0])
    scripts = [path for path in SCRIPTS if path in files]
    assert scripts[0] == "/usr/local/lib/bakery/bootstrap"
    for path in scripts:
        script = tmp_path / Path(path).name
        script.write_text(files[path]["content"])
        res = subprocess.run([sh, "-n", str(script)], capture_output=True, text=True)
        assert res.returncode == 0, f"{path}: {res.stderr}"
        res = subprocess.run([shellcheck, "-s", "sh", "-e", "SC1091", str(script)], capture_output=True, text=True)
        assert res.returncode == 0, f"{path}: {res.stdout}"
    agent = files.get("/usr/local/lib/bakery/bakery-join")
    if agent:
        src = tmp_path / "bakery-join.py"
        src.write_text(agent["content"])
        py_compile.compile(str(src), doraise=True)


SYSTEM_PYTHON = Path("/usr/bin/python3")


@pytest.mark.parametrize("first_line", ["## template: jinja\n#cloud-config", "#cloud-config"])
def test_operator_parts_add_to_bakerys_lists_under_real_cloud_init(first_line, tmp_path, capsysbinary):
    """cloud-init's own handlers merge the parts: an operator's runcmd/write_files (plain or a jinja
    template) come after bakery's, which stay. A jinja part without Merge-Type replaced them."""
    need_tool("cloud-init")
    if subprocess.run([SYSTEM_PYTHON, "-c", "import cloudinit"], capture_output=True).returncode:
        require_or_skip("BAKERY_REQUIRE_VALIDATORS", f"{SYSTEM_PYTHON} cannot import cloudinit")
    part = tmp_path / "extra.cfg"
    part.write_text(f"{first_line}\nruncmd:\n  - echo operator {{{{ v1.local_hostname }}}}\n"
                    "write_files:\n  - path: /etc/operator\n    content: hi\n")
    (tmp_path / "ud").write_bytes(render(["--role", "worker", "--name", "w1", "--gzip", "never", "--part",
                                          str(part)], tmp_path / "state", capsysbinary))
    script = Path(testkit.__file__).parent / "cloudinit_merge.py"
    res = subprocess.run([SYSTEM_PYTHON, script, tmp_path / "ud"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    merged = json.loads(res.stdout)
    assert merged["runcmd"][0] == ["/bin/sh", "/usr/local/lib/bakery/bootstrap"], merged["runcmd"]
    assert merged["runcmd"][-1] == ("echo operator node1" if "jinja" in first_line
                                    else "echo operator {{ v1.local_hostname }}")
    paths = [f["path"] for f in merged["write_files"]]
    assert "/usr/local/lib/bakery/bootstrap" in paths and paths[-1] == "/etc/operator"


@pytest.mark.parametrize("case", IGNITION_CASES)
def test_ignition_validate(case, tmp_path, capsysbinary):
    validate = need_tool("ignition-validate")
    config = tmp_path / "config.ign"
    config.write_bytes(render(case_args(CASES / case), tmp_path / "state", capsysbinary))
    res = subprocess.run([validate, str(config)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    assert not (res.stdout + res.stderr).strip(), res.stdout + res.stderr  # warnings too


@pytest.mark.parametrize("case", IGNITION_CASES)
def test_ignition_join_agent_parses(case, tmp_path, capsysbinary):
    sh, shellcheck = need_tool("sh"), need_tool("shellcheck")
    files = ignition_files(render(case_args(CASES / case), tmp_path / "state", capsysbinary))
    agent = files.get("/opt/bakery/bakery-join.sh")
    if agent is None:
        assert "/etc/bakery/join.json" not in files  # only a node that never joins has none
        return
    src = tmp_path / "bakery-join.sh"
    src.write_text(agent["content"])
    for cmd in ([sh, "-n", str(src)], [shellcheck, "-s", "sh", str(src)]):
        res = subprocess.run(cmd, capture_output=True, text=True)
        assert res.returncode == 0, res.stdout + res.stderr
    env = tmp_path / "join.env"
    env.write_text(files["/etc/bakery/join.env"]["content"])
    res = subprocess.run([shellcheck, "-s", "sh", "-e", "SC2034", str(env)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout
