"""report.render: one heading per subject, short unless verbose; Finding kinds and subjects."""

from __future__ import annotations

import pytest

from bakery.report import Report, render, subject_of


def sample() -> Report:
    r = Report()
    r.info("kept exactly: image", source="c.yml", line=3, column=5, path=("services", "web"), kind="kept")
    r.warn("dropped", source="c.yml", line=9, column=7, path=("services", "web", "pid"), kind="lost", fix="do x")
    r.info("rewritten as y", source="c.yml", line=4, column=7, path=("services", "web", "environment", 0),
           kind="rewritten")
    r.warn("version obsolete", source="c.yml", line=1, column=10, path=("version",), fix="remove it")
    r.warn("ipam gateway dropped", source="c.yml", line=20, column=3, path=("networks", "front", "ipam"))
    r.warn("outside", source="base.yml", line=2, column=3, path=("services", "base", "volumes", 0),
           subject="service api")
    return r


def test_short_shows_warnings_grouped_file_first_then_services_then_networks():
    assert render(sample().findings) == [
        "file:",
        "  warning: c.yml:1:10 version: version obsolete (remove it)",
        "service api:",
        "  warning: base.yml:2:3 services.base.volumes[0]: outside",
        "service web:",
        "  warning: c.yml:9:7 pid: dropped (do x)",
        "network front:",
        "  warning: c.yml:20:3 ipam: ipam gateway dropped",
    ]


def test_verbose_adds_rewrites_in_file_order_and_what_was_kept_last():
    lines = render(sample().findings, verbose=True)
    web = lines[lines.index("service web:") + 1:lines.index("network front:")]
    assert web == [
        "  info: c.yml:4:7 environment[0]: rewritten as y",
        "  warning: c.yml:9:7 pid: dropped (do x)",
        "  info: c.yml:3:5: kept exactly: image",
    ]


@pytest.mark.parametrize(
    "path, subject",
    [(("services", "web", "image"), "service web"), (("networks", "n"), "network n"),
     (("volumes", "v", "x"), "volume v"), (("version",), None), (("services",), None), ((), None)],
)
def test_subject_of(path, subject):
    assert subject_of(path) == subject


def test_json_has_kind_subject_and_fix_and_keeps_the_old_fields():
    [d, *_] = sample().to_json()
    assert set(d) == {"severity", "message", "code", "source", "line", "column", "path", "fix", "kind", "subject"}
    assert (d["kind"], d["subject"], d["path"]) == ("kept", "service web", "services.web")
    assert Report().to_json() == []
    r = Report()
    r.warn("w")
    assert r.to_json()[0]["kind"] == "warning" and r.to_json()[0]["subject"] is None


def _many(n: int) -> Report:
    r = Report()
    for i in range(n):
        r.warn("start order ignored", source="c.yml", line=10 * i + 5, column=7,
               path=("services", f"svc{i}", "depends_on"), kind="approximated", fix="use healthchecks")
    r.warn("pid dropped", source="c.yml", line=3, column=7, path=("services", "svc3", "pid"), kind="lost")
    return r


def test_a_warning_alike_in_many_services_is_printed_once_with_a_count_and_its_first_place():
    assert render(_many(12).findings) == [
        "service svc3:",
        "  warning: c.yml:3:7 pid: pid dropped",
        "12 services alike (svc0, svc1, svc2, svc3, svc4 and 7 more), one of them shown (-v lists each):",
        "  warning: c.yml:5:7 services.svc0.depends_on: start order ignored (use healthchecks)",
    ]


def test_a_few_alike_stay_under_their_services_and_verbose_lists_each():
    short = render(_many(3).findings)
    assert short.count("  warning: c.yml:5:7 depends_on: start order ignored (use healthchecks)") == 1
    assert [line for line in short if line.endswith(":") and not line.startswith(" ")] == [
        "service svc0:", "service svc1:", "service svc2:", "service svc3:"]
    verbose = render(_many(12).findings, verbose=True)
    assert sum("start order ignored" in line for line in verbose) == 12
    assert not any("alike" in line for line in verbose)


def test_services_alike_are_named_in_natural_order():
    lines = render(_many(11).findings)
    assert "(svc0, svc1, svc2, svc3, svc4 and 6 more)" in lines[2]


def test_alike_at_keys_below_that_name_other_things_and_in_version_1_files():
    r = Report()
    for i in range(5):
        r.warn("restart dropped", source="c.yml", line=i + 1, column=3,
               path=("services", f"s{i}", "depends_on", f"s{i + 1}", "restart"), kind="lost")
        r.warn("pid dropped", source="v1.yml", line=i + 1, column=3, path=(f"w{i}", "pid"),
               subject=f"service w{i}", kind="lost")
    lines = render(r.findings)
    assert lines == [
        "5 services alike (s0, s1, s2, s3, s4), one of them shown (-v lists each):",
        "  warning: c.yml:1:3 services.s0.depends_on.s1.restart: restart dropped",
        "5 services alike (w0, w1, w2, w3, w4), one of them shown (-v lists each):",
        "  warning: v1.yml:1:3 w0.pid: pid dropped",
    ]


def test_alike_names_sort_the_same_every_run_and_a_huge_number_in_a_name_is_no_error():
    r = Report()
    for name in ["svc01", "svc1", "a" + "9" * 5000, "svc001", "svc2"]:
        r.warn("privileged dropped", path=("services", name, "privileged"), kind="lost")
    heading = render(r.findings)[0]
    assert heading.startswith("5 services alike (a999") and "9, svc001, svc01, svc1, svc2)" in heading
