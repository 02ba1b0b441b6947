"""Golden user-data per role and per feature: tests/cases/render/<case>/.

Each case has `args` (the render flags), an optional `bakery.yml`, and
`expected.txt` (the user-data with certificate bodies masked; an Ignition config with its
data URLs decoded below it).
BAKERY_UPDATE_GOLDEN=1 rewrites the expected files; review them with git diff.
"""

import gzip
import os

import pytest
from testkit.render_util import CASES, case_args, is_ignition, mask, readable_ignition, render


@pytest.mark.parametrize("case", sorted(p.name for p in CASES.iterdir() if p.is_dir()))
def test_golden(case, tmp_path, capsysbinary):
    d = CASES / case
    data = render(case_args(d), tmp_path / "state", capsysbinary)
    if data[:2] == b"\x1f\x8b":  # past Nova's raw limit, --gzip auto compresses: compare what cloud-init reads
        data = gzip.decompress(data)
    got = readable_ignition(data) if is_ignition(data) else mask(data.decode())
    expected = d / "expected.txt"
    if os.environ.get("BAKERY_UPDATE_GOLDEN") == "1":
        expected.write_text(got)
    assert expected.exists(), f"no golden for {case}: run with BAKERY_UPDATE_GOLDEN=1"
    assert got == expected.read_text()


@pytest.mark.parametrize("case", ["seed-default", "nfs-shares", "extra-parts", "ignition-seed-form", "butane-worker"])
def test_same_inputs_same_bytes(case, tmp_path, capsysbinary):
    args = case_args(CASES / case)
    first = render(args, tmp_path / "state", capsysbinary)
    second = render(args, tmp_path / "state", capsysbinary)
    assert first == second
