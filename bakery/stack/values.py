"""The one place where stack value syntaxes become numbers.

Sizes are docker's RAMInBytes (`512m`, `64MiB`, `1.5g`: binary units), durations
are Go durations (`1m30s`, `500ms`; a plain number is seconds, as compose takes
it), CPU counts become nano-CPUs, ports are checked against 0-65535, the short port
(`[IP:][PUBLISHED:]TARGET[/PROTO]`) and volume (`SOURCE:/TARGET[:MODE]`) syntaxes are read
into their parts (compose's converter and `stack.load` both read them here), classic-Swarm
hint patterns (`web*`, `/re/`) become regexes and name their node label. A bad value
raises `BadValue` with the rule and the fix; `stack.load` adds the file, line and
YAML path.
"""

from __future__ import annotations

import fnmatch
import math
import re
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache


class BadValue(ValueError):
    def __init__(self, message: str, fix: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix


_SIZE = re.compile(r"^(\d+(?:\.\d+)?) ?([kKmMgGtTpP])?[iI]?[bB]?\Z")
_SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
MAX_PORT = 65535
PROPAGATIONS = ("shared", "rshared", "slave", "rslave", "private", "rprivate")  # a bind mount's


def version_key(v: str) -> tuple[int, int]:
    """`"3.10"` -> (3, 10): stack versions in order."""
    major, _, minor = v.partition(".")
    return int(major), int(minor or 0)


# Docker's image reference grammar (distribution/reference, regexp.go): what the engine accepts as
# a service's image; anything else fails at deploy with "invalid reference format".
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = r"(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*" \
          r"[a-zA-Z0-9]))*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
_REFERENCE = re.compile(
    rf"(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
    r"(?::[\w][\w.-]{0,127})?(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?",
    re.ASCII)  # Go's \w: ASCII only


_DIGEST_HEX = {"sha256": 64, "sha384": 96, "sha512": 128}  # go-digest's algorithms
_LOWER_HEX = re.compile(r"[0-9a-f]+")


def image_reference(value: str) -> str:
    """`value` if Docker takes it as an image reference (NAME[:TAG][@DIGEST], a lowercase name of at
    most 255 characters once normalized as docker.io/library/NAME, not a bare 64-hex ID, a digest of
    a known algorithm with its length of lowercase hex), else BadValue."""
    name, _, digest = value.partition("@")
    tagless = name.rsplit(":", 1)[0] if ":" in name.rsplit("/", 1)[-1] else name
    first, _, rest = tagless.partition("/")
    domain = bool(rest) and ("." in first or ":" in first or first == "localhost" or first != first.lower())
    full = tagless if domain else f"docker.io/{tagless}" if rest else f"docker.io/library/{tagless}"
    algorithm, _, encoded = digest.partition(":")
    bad_digest = bool(digest) and (len(encoded) != _DIGEST_HEX.get(algorithm)
                                   or _LOWER_HEX.fullmatch(encoded) is None)
    image_id = len(tagless) == 64 and _LOWER_HEX.fullmatch(tagless) is not None
    if _REFERENCE.fullmatch(value) is None or len(full) > 255 or bad_digest or image_id:
        raise BadValue(f"{value!r} is not an image reference Docker accepts",
                       "write NAME[:TAG][@DIGEST] with a lowercase name (an empty tag or a stray ':' or '/' "
                       "is often an unset variable)")
    return value


def size_bytes(value: object) -> int:
    """`"512m"` -> 536870912; `"64MiB"`, `"1GB"` and a number of bytes too."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    match = _SIZE.match(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise BadValue(f"{value!r} is not a size", "use 512m, 2g or a number of bytes")
    return int(float(match.group(1)) * _SIZE_UNITS[(match.group(2) or "").lower()])


def duration_ns(value: object) -> int:
    """`"1m30s"` -> 90_000_000_000. Plain numbers are seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value >= 0:
        return _in_range(value * 10**9, value)
    if not isinstance(value, str):
        raise BadValue(f"{value!r} is not a duration", "use 10s, 1m30s or 500ms")
    return _duration_text(value)


_MAX_NS = 2**63 - 1  # Go's time.Duration, which Docker reads durations into


def _in_range(ns: float | Fraction, value: object) -> int:
    if not ns <= _MAX_NS:  # also inf and nan
        raise BadValue(f"{value!r} is too long a duration for Docker", "at most 2562047h47m16.854775807s")
    return int(round(ns))


@lru_cache(maxsize=4096)  # a file repeats a few durations ("5s", "10s") in every service
def _duration_text(value: str) -> int:
    text = value.strip()
    if text == "0":
        return 0
    pos, total = 0, Fraction(0)
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            break
        total += Fraction(match.group(1)) * _NS[match.group(2)]  # exact: no float rounding near int64
        pos = match.end()
    if pos == 0 or pos != len(text):
        raise BadValue(f"{value!r} is not a duration", "use 10s, 1m30s or 500ms")
    return _in_range(total, value)


def nano_cpus(value: object) -> int:
    """`"0.5"` -> 500_000_000."""
    try:
        cpus = float(str(value)) if not isinstance(value, bool) else -1.0
    except ValueError:
        cpus = -1.0
    if not (math.isfinite(cpus) and cpus > 0):
        raise BadValue(f"{value!r} is not a number of CPUs", "use a positive number such as 0.5 or 2")
    if round(cpus * 10**9) < 1:
        raise BadValue(f"{value!r} is less than a billionth of a CPU, the smallest share swarm takes",
                       "use 0.000000001 or more")
    return int(round(cpus * 10**9))


def count(value: object, what: str, *, minimum: int = 0) -> int:
    """A whole number (replicas, parallelism, retries): `.inf`, `"3"` and `true` are refused."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise BadValue(f"{value!r} is not a valid {what}", f"use a whole number of at least {minimum}")
    return value


def ratio(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise BadValue(f"{value!r} is not a valid {what}", "use a number from 0 to 1")
    return float(value)


def port_number(value: object, *, zero: bool = False) -> int:
    """One port: 1-65535 (0 only where it means "none")."""
    text = str(value).strip() if not isinstance(value, bool) else ""
    number = int(text) if text.isdigit() else -1
    if not (0 if zero else 1) <= number <= MAX_PORT:
        raise BadValue(f"{value!r} is not a port number", f"use a number from 1 to {MAX_PORT}")
    return number


def port_range(text: str) -> list[int]:
    """`"8000-8010"` -> [8000, ..., 8010]; a single port -> [port]."""
    lo, sep, hi = text.partition("-")
    first, last = port_number(lo), port_number(hi) if sep else port_number(lo)
    if last < first:
        raise BadValue(f"port range {text!r} runs backwards", f"write {last}-{first}")
    return list(range(first, last + 1))


_PORT_NUM = re.compile(r"^\d+(-\d+)?\Z")
PROTOCOLS = ("tcp", "udp", "sctp")


@dataclass(frozen=True)
class ShortPort:
    """A port in the short syntax, its parts as written (ranges kept: `port_range` expands them)."""

    ip: str | None
    published: str | None
    target: str
    proto: str | None

    def short(self) -> str:
        """The short syntax again, without the host IP (swarm publishes on every address)."""
        text = f"{self.published}:{self.target}" if self.published else self.target
        return f"{text}/{self.proto}" if self.proto else text


def short_port(value: object) -> ShortPort:
    """`"127.0.0.1:8080:80/udp"` -> ShortPort("127.0.0.1", "8080", "80", "udp"); `[::1]:80:80` too."""
    bad = BadValue(f"{value!r} is not a port mapping", "write [HOST_IP:]PUBLISHED:TARGET[/PROTO] or TARGET")
    text, _, proto = str(value).strip().partition("/")
    if proto and proto not in PROTOCOLS:
        raise BadValue(f"{value!r}: {proto!r} is not a protocol", "use tcp, udp or sctp")
    ip: str | None = None
    if text.startswith("["):
        ip, _, text = text[1:].partition("]")
        text = text.removeprefix(":")
        if ":" not in text:
            raise bad
    parts = text.split(":")
    if len(parts) == 3 and ip is None:
        ip, parts = parts[0], parts[1:]
    if len(parts) > 2 or (ip is not None and len(parts) != 2):
        raise bad
    target = parts[-1]
    published = parts[0] if len(parts) == 2 else None
    if not _PORT_NUM.match(target) or (published and not _PORT_NUM.match(published)):
        raise bad
    return ShortPort(ip or None, published or None, target, proto or None)


@dataclass(frozen=True)
class ShortMount:
    """A volume in the short syntax: `SOURCE:/TARGET[:MODE]` or `/TARGET`."""

    kind: str  # bind (the source is a path), volume (a volume's name), anonymous (no source)
    source: str
    target: str
    mode: str  # as written: ro, rw, z, nocopy, rshared, ... comma-separated


def short_mount(value: object) -> ShortMount:
    """`"./html:/html:ro"` -> ShortMount("bind", "./html", "/html", "ro")."""
    parts = str(value).split(":")
    if len(parts) == 1:
        return ShortMount("anonymous", "", parts[0], "")
    if len(parts) > 3 or not parts[1].startswith("/"):
        raise BadValue(f"{value!r} is not a volume mapping", "write SOURCE:/TARGET[:MODE] or /TARGET")
    if not parts[0]:
        raise BadValue(f"{value!r} has an empty source or target",
                       "write SOURCE:/TARGET[:MODE] (is a variable in it unset?)")
    kind = "bind" if parts[0].startswith(("/", ".", "~")) else "volume"
    return ShortMount(kind, parts[0], parts[1], parts[2] if len(parts) == 3 else "")


HINT_LABEL_PREFIX = "bakery.hint."
_HINT = re.compile(r"^\s*(?P<key>[A-Za-z0-9_.\-/]+)\s*(?P<op>==|!=)\s*(?P<value>.*?)\s*$")


def hint_parts(text: str) -> tuple[str, str, str] | None:
    """`"node==web*"` -> ("node", "==", "web*"); None if it is not KEY==VALUE or KEY!=VALUE."""
    match = _HINT.match(text)
    return None if match is None else (match.group("key"), match.group("op"), match.group("value"))


def hint_pattern(value: str) -> re.Pattern[str] | None:
    """A classic-Swarm value as a regex: `/re/` searched (classic Swarm's regexp.MatchString),
    a glob (`*`, `?`, `[...]`) matched whole; None for a plain value. Case-insensitive, as
    swarm mode compares."""
    if len(value) >= 2 and value.startswith("/") and value.endswith("/"):
        try:
            return re.compile(value[1:-1], re.IGNORECASE)
        except re.error as exc:
            raise BadValue(f"bad regular expression {value}: {exc}", "fix the regular expression") from None
    if any(c in value for c in "*?["):
        return re.compile(r"\A" + fnmatch.translate(value), re.IGNORECASE)
    return None


def hint_matches(pattern: re.Pattern[str], have: str | None) -> bool:
    """Whether a node's value (hostname, engine label; None: the node has no such label) matches."""
    return have is not None and pattern.search(have) is not None


def hint_label(key: str, op: str, value: str) -> str:
    """The node label that stands for a pattern hint: `bakery.hint.<12 hex>`, from the hint's
    key, operator and value, so converting the same hint again names the same label."""
    import hashlib  # only for pattern hints: not on every convert's import path

    digest = hashlib.sha256(f"{key}{op}{value}".encode()).hexdigest()[:12]
    return f"{HINT_LABEL_PREFIX}{digest}"
