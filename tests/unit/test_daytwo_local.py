"""The local day-two driver's checks that need no booted node: the roll journal, images to roll to."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bakery import fleet
from bakery.errors import UserError
from bakery.fleet import Refused
from bakery.providers.local import daytwo


@pytest.mark.parametrize("text", ["garbage", "[]", '{"pairs": [1, 2], "image": "x"}', '{"pairs": {}}',
                                  '{"pairs": {"a": 1}, "image": "x"}'])
def test_a_damaged_journal_is_named_never_half_read(tmp_path: Path, text: str) -> None:
    path = tmp_path / "roll.json"
    path.write_text(text)
    with pytest.raises(UserError, match=r"roll.json is not the journal of a roll bakery can read") as err:
        fleet.read_journal(path, "prod")
    assert "remove" in (err.value.fix or "")


@pytest.mark.parametrize("pairs", [{"worker-1": "seed"}, {"worker-1": "manager-4"}, {"manager-1": "worker-4"},
                                   {"worker-1": "worker-1"}, {"worker-1": "worker-3", "worker-2": "worker-3"},
                                   {"../x": "worker-3"}, {"worker-1": "worker-3", "worker-3": "worker-4"}])
def test_replacements_bakery_never_chooses_are_refused(tmp_path: Path, pairs: dict) -> None:
    path = tmp_path / "roll.json"
    path.write_text(json.dumps({"cluster": "prod", "image": "x", "pairs": pairs}))
    with pytest.raises(UserError, match="replacements bakery never chooses"):
        fleet.read_journal(path, "prod")


def test_the_journal_belongs_to_one_cluster_and_is_private(tmp_path: Path) -> None:
    path = tmp_path / "roll.json"
    written = fleet.write_journal(path, "prod", "img", ["worker-1"], {"seed": "manager-3", "worker-1": "worker-3"})
    assert path.stat().st_mode & 0o777 == 0o600
    assert fleet.read_journal(path, "prod") == {k: written[k] for k in ("pairs", "only", "image")}
    with pytest.raises(UserError, match="journal of a roll of cluster 'prod', not 'other'"):
        fleet.read_journal(path, "other")


def test_a_journal_from_before_the_cluster_key_is_read(tmp_path: Path) -> None:
    """Journals written before this release carry no cluster name: they are taken as this cluster's."""
    path = tmp_path / "roll.json"
    path.write_text(json.dumps({"image": "x", "only": [], "pairs": {"worker-1": "worker-3"}}))
    assert fleet.read_journal(path, "prod")["pairs"] == {"worker-1": "worker-3"}


def baked(root: Path, images: list[str]) -> Path:
    (root / "etc/bakery").mkdir(parents=True)
    (root / "etc/bakery/baked").write_text(json.dumps({"images": [{"ref": i, "id": "sha256:x"} for i in images]}))
    return root


def test_only_a_baked_image_is_rolled_to(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    good = baked(cache / "baked-1" / "rootfs", ["app:1"])
    assert daytwo.resolve_image(cache, "baked-1") == str(good.resolve())
    for odd in ("/", str(tmp_path / "nothing"), str(tmp_path)):
        with pytest.raises(UserError, match="not a baked image"):
            daytwo.resolve_image(cache, odd)


def test_the_default_image_must_keep_the_clusters_application_images(tmp_path: Path) -> None:
    old = baked(tmp_path / "baked-old" / "rootfs", ["app:1", "db:2"])
    new = baked(tmp_path / "baked-new" / "rootfs", ["app:1"])
    with pytest.raises(Refused, match=r"lacks application images the cluster's nodes have: db:2") as err:
        daytwo._check_images(str(old), str(new))
    assert "--image baked-old" in (err.value.fix or "")
    daytwo._check_images(str(new), str(old))  # more images is fine


def test_a_record_left_before_the_swarm_formed_is_made_anew_and_an_older_one_converged(tmp_path: Path) -> None:
    """A first `up` stopped (Ctrl-C) before any manager answered: re-running `up` starts it again rather than
    converging a swarm that never was. Records written before the field existed count as formed."""
    from bakery.commands.up import _unformed
    from bakery.providers.local.state import ClusterRecord, NodeRecord, record_path

    path = record_path(tmp_path, "c1")
    rec = ClusterRecord(cluster="c1", workdir=str(tmp_path / "w"), formed=False,
                        nodes=[NodeRecord(name="seed", role="seed", dir=str(tmp_path / "n"), image="")])
    rec.save(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert _unformed(tmp_path, "c1")
    data = json.loads(path.read_text())
    del data["formed"]
    path.write_text(json.dumps(data))
    assert not _unformed(tmp_path, "c1")


def test_down_keeps_the_lock_file(tmp_path: Path) -> None:
    """Removing it while another run waits on it would let two runs each hold "the" lock."""
    from bakery.providers.local.state import ClusterRecord, record_path

    ClusterRecord(cluster="c1", workdir=str(tmp_path / "w")).save(record_path(tmp_path, "c1"))
    with daytwo.exclusive(tmp_path, "c1"):
        pass
    daytwo.journal_path(tmp_path, "c1").write_text("{}")
    daytwo.forget_day_two(tmp_path, "c1")
    assert not daytwo.journal_path(tmp_path, "c1").exists()
    assert (record_path(tmp_path, "c1").parent / "day2.lock").exists()


@pytest.mark.parametrize("argv", [["up", "--timeout", "nan"], ["up", "--drain-timeout", "-5"],
                                  ["roll", "--timeout", "inf"], ["roll", "--drain-timeout", "soon"]])
def test_timeouts_are_finite_seconds(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """nan would never time out; a negative one would give up before the first look."""
    from bakery import cli

    with pytest.raises(SystemExit) as exited:  # argparse's own exit: usage and the line
        cli.main(argv)
    assert exited.value.code == 2 and "seconds" in capsys.readouterr().err


def test_a_local_up_refuses_to_reissue_a_node_rendered_for_another_machine(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`bakery render --name worker-1` (a cloud node of cluster default), then `bakery up --provider
    local`: the local worker-1 would get new certificates and the rendered node's user-data would no
    longer match. Refused before anything is made; another --cluster is the way."""
    from bakery.cli import main

    conf, state = tmp_path / "bakery.yml", tmp_path / "state"
    conf.write_text("docker: {install: none}\nswarm: {seed: 10.0.0.10}\n")
    assert main(["render", "--role", "worker", "--name", "worker-1", "--address", "10.0.0.21", "--config",
                 str(conf), "--state-dir", str(state), "-o", str(tmp_path / "w1")]) == 0
    meta = (state / "default" / "nodes" / "worker-1" / "meta.json").read_text()
    capsys.readouterr()
    assert main(["up", "--provider", "local", "--managers", "1", "--workers", "1", "--state-dir", str(state)]) == 2
    err = capsys.readouterr().err
    assert "worker-1 (10.0.0.21" in err and "--cluster NAME" in err, err
    assert (state / "default" / "nodes" / "worker-1" / "meta.json").read_text() == meta
    assert not (state / "default" / "local").exists()  # nothing was made
