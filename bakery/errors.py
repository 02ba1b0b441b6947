"""One exception hierarchy for everything a user can cause or meet.

The CLI turns a BakeryError into one line on stderr and its exit code; any
other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

from collections.abc import Sequence

# Exit codes that mean something to scripts.
EXIT_OK = 0
EXIT_FAILED = 1  # the operation ran and failed (deploy rolled back, boot timed out)
EXIT_USAGE = 2  # bad input: a file, a flag, a value
EXIT_STRICT = 3  # only warnings, but --strict was given
EXIT_ENVIRONMENT = 4  # something the machine lacks: no engine, not root, no cloud
EXIT_INTERRUPTED = 130

PathPart = str | int


def format_path(path: Sequence[PathPart]) -> str:
    """`("services", "web", "ports", 0)` -> `services.web.ports[0]`."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif out:
            out += f".{part}"
        else:
            out = str(part)
    return out


def format_location(
    source: str | None, line: int | None, column: int | None, path: Sequence[PathPart]
) -> str:
    """`file:line:col yaml.path`, with whatever parts are known."""
    where = ""
    if source:
        where = source
        if line is not None:
            where += f":{line}"
            if column is not None:
                where += f":{column}"
    if path:
        where = f"{where} {format_path(path)}".strip()
    return where


class BakeryError(Exception):
    """Base of every error bakery raises on purpose."""

    exit_code = EXIT_FAILED


class UserError(BakeryError):
    """Bad input. Carries where it is, the rule broken, and the fix."""

    exit_code = EXIT_USAGE

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        line: int | None = None,
        column: int | None = None,
        path: Sequence[PathPart] = (),
        fix: str | None = None,
        problems: Sequence[UserError] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        # Several mistakes in one input, in file order: `message` is the summary line and each
        # problem is printed on a line of its own (and listed in JSON errors).
        self.problems = tuple(problems)
        self.source = source
        self.line = line
        self.column = column
        self.path = tuple(path)
        self.fix = fix

    def location(self) -> str:
        return format_location(self.source, self.line, self.column, self.path)

    def __str__(self) -> str:
        loc = self.location()
        text = f"{loc}: {self.message}" if loc else self.message
        if self.fix:
            text += f" ({self.fix})"
        return "\n".join([text, *(f"  {p}" for p in self.problems)])

    def as_dict(self) -> dict[str, object]:
        """The error as data, for `--output json`."""
        return {"message": self.message, "source": self.source, "line": self.line, "column": self.column,
                "path": format_path(self.path) or None, "fix": self.fix,
                "problems": [p.as_dict() for p in self.problems]}


MAX_LISTED = 20  # a file with more mistakes than this is not worth reading further


def gather(problems: Sequence[UserError], cls: type[UserError] = UserError, source: str | None = None,
           limit: int = MAX_LISTED) -> UserError:
    """One error for several problems of one file: in file order, repeats dropped, at most `limit` listed.

    A single problem is returned as it is, so one mistake still reads as one line.
    """
    seen: set[tuple[object, ...]] = set()
    unique: list[UserError] = []
    for p in problems:
        ident = (p.line, p.column, p.path, p.message)
        if ident not in seen:
            seen.add(ident)
            unique.append(p)
    if not unique:
        raise ValueError("gather() needs at least one problem")
    # sorted() is stable: problems without a position keep their order, first.
    unique = sorted(unique, key=lambda p: (p.line or 0, p.column or 0))
    if len(unique) == 1:
        return unique[0]
    summary = f"{len(unique)} problems"
    if len(unique) > limit:
        summary += f" (the first {limit} are listed; {len(unique) - limit} more)"
    return cls(summary, source=source, problems=unique[:limit])


class ConfigError(UserError):
    """The cluster definition (bakery.yml) is wrong."""


class ComposeError(UserError):
    """A compose file is wrong or cannot be converted."""


class StrictError(BakeryError):
    """Warnings were raised and --strict asked to fail on them."""

    exit_code = EXIT_STRICT


class EnvironmentMissing(BakeryError):
    """The machine lacks something: an engine, root, a cloud, a tool."""

    exit_code = EXIT_ENVIRONMENT


class EngineError(BakeryError):
    """The Docker engine refused or failed an operation."""


class CloudError(BakeryError):
    """The cloud refused or failed an operation."""
