import pytest

from bakery.stack.values import (
    BadValue,
    ShortMount,
    ShortPort,
    count,
    duration_ns,
    image_reference,
    nano_cpus,
    port_range,
    short_mount,
    short_port,
    size_bytes,
)


@pytest.mark.parametrize(
    ("value", "ns"),
    [("10s", 10 * 10**9), ("1m30s", 90 * 10**9), ("500ms", 5 * 10**8), ("1h", 3600 * 10**9),
     ("1.5s", 15 * 10**8), ("0", 0), (2, 2 * 10**9), ("250us", 250_000)],
)
def test_duration(value, ns):
    assert duration_ns(value) == ns


@pytest.mark.parametrize("value", ["10", "ten", "10x", "s", True, "1m 30s", float("inf"), -1, None, [1]])
def test_bad_duration(value):
    with pytest.raises(BadValue, match="not a duration"):
        duration_ns(value)


@pytest.mark.parametrize(
    ("value", "size"),
    [("512m", 512 << 20), ("1g", 1 << 30), ("1GB", 1 << 30), ("64MiB", 64 << 20), ("100k", 100 << 10),
     (4096, 4096), ("1.5g", 3 << 29), ("2 kb", 2048)],
)
def test_size(value, size):
    assert size_bytes(value) == size


@pytest.mark.parametrize("value", ["12x", "lots", "-1m", False, -1, "1.2.3m", "", None])
def test_bad_size(value):
    with pytest.raises(BadValue, match="not a size"):
        size_bytes(value)


@pytest.mark.parametrize(("value", "nano"), [("0.5", 500_000_000), (2, 2_000_000_000), ("0.01", 10_000_000)])
def test_cpus(value, nano):
    assert nano_cpus(value) == nano


@pytest.mark.parametrize("value", ["half", 0, -1, "nan", "inf", True])
def test_bad_cpus(value):
    with pytest.raises(BadValue, match="CPUs"):
        nano_cpus(value)


@pytest.mark.parametrize("value", [float("inf"), "3", True, -1, 1.5])
def test_bad_count(value):
    with pytest.raises(BadValue, match="replica count"):
        count(value, "replica count")


@pytest.mark.parametrize(("text", "ports"), [("80", [80]), ("8000-8002", [8000, 8001, 8002])])
def test_port_range(text, ports):
    assert port_range(text) == ports


@pytest.mark.parametrize(("text", "message"), [("99999", "not a port number"), ("0", "not a port number"),
                                               ("90-80", "backwards"), ("http", "not a port number")])
def test_bad_port_range(text, message):
    with pytest.raises(BadValue, match=message):
        port_range(text)


@pytest.mark.parametrize(
    "value, ip, published, target, proto",
    [
        ("80", None, None, "80", None),
        (80, None, None, "80", None),
        ("8080:80", None, "8080", "80", None),
        ("127.0.0.1:8080:80", "127.0.0.1", "8080", "80", None),
        ("127.0.0.1::80", "127.0.0.1", None, "80", None),
        ("8000-8010:80-90/udp", None, "8000-8010", "80-90", "udp"),
        ("[::1]:80:80", "::1", "80", "80", None),
        ("53:53/sctp", None, "53", "53", "sctp"),
    ],
)
def test_port(value, ip, published, target, proto):
    assert short_port(value) == ShortPort(ip, published, target, proto)


@pytest.mark.parametrize("value", ["a:b", "80/xyz", "1:2:3:4", "", ":", "80:", "[::1]80"])
def test_bad_port(value):
    with pytest.raises(BadValue, match="not a port mapping|not a protocol"):
        short_port(value)


@pytest.mark.parametrize(
    "value, kind, source, target, mode",
    [
        ("/data", "anonymous", "", "/data", ""),
        ("data:/data", "volume", "data", "/data", ""),
        ("./html:/html:ro", "bind", "./html", "/html", "ro"),
        ("/srv:/srv:rw,z", "bind", "/srv", "/srv", "rw,z"),
        ("~/x:/x", "bind", "~/x", "/x", ""),
    ],
)
def test_mount(value, kind, source, target, mode):
    assert short_mount(value) == ShortMount(kind, source, target, mode)


@pytest.mark.parametrize(("value", "message"), [("a:b", "not a volume mapping"), ("a::/b", "not a volume mapping"),
                                                 ("a:/b:ro:x", "not a volume mapping"), (":/b", "empty source")])
def test_bad_mount(value, message):
    with pytest.raises(BadValue, match=message):
        short_mount(value)


@pytest.mark.parametrize("ref", [
    "nginx", "nginx:1.25", "library/nginx:latest", "localhost:5000/a/b:c", "[::1]:5000/a", "ghcr.io/org/app_1.x",
    "Registry.Example:443/x/y@sha256:" + "a" * 64, "a__b/c-d---e:Tag_1.0-rc"])
def test_image_references_docker_takes(ref):
    assert image_reference(ref) == ref


@pytest.mark.parametrize("ref", ["NGINX", "acme/api:", "a:t\u00e9", "a//b", "x:y:z", "ghcr.io/Org/app", ":tag", "a b",
                                 "a@sha256:ab",
                                 "/a", "a/", "a:" + "t" * 129, "a" * 256])
def test_image_references_docker_refuses(ref):
    with pytest.raises(BadValue, match="is not an image reference"):
        image_reference(ref)


@pytest.mark.parametrize("value", ["9" * 400 + "h", 1.0e300, "99999999999999999999999h", 99999999999999999999,
                                   "2562047h48m", 9223372036.854775807])
def test_a_duration_past_docker_s_int64_nanoseconds_is_refused(value):
    with pytest.raises(BadValue, match="too long a duration"):
        duration_ns(value)
    assert duration_ns("2562047h47m16s") == 2562047 * 3600 * 10**9 + 47 * 60 * 10**9 + 16 * 10**9


@pytest.mark.parametrize("ref", ["a@sha256:" + "a" * 40, "a@sha256:" + "A" * 64, "a@md5:" + "a" * 64, "a" * 238,
                                 "0" * 64, "x/" + "a" * 244])
def test_image_references_docker_refuses_once_normalized_or_by_digest(ref):
    with pytest.raises(BadValue):
        image_reference(ref)
    assert image_reference("a" * 237) and image_reference("a@sha512:" + "b" * 128)


def test_durations_are_exact_up_to_int64():
    assert duration_ns("2562047h47m16.854775807s") == duration_ns("9223372036854775807ns") == 2**63 - 1
    assert duration_ns("9007199254740993ns") == 9007199254740993
    with pytest.raises(BadValue, match="too long"):
        duration_ns("2562047h47m16.854775808s")
