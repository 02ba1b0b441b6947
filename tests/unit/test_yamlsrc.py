import pytest

from bakery.errors import UserError
from bakery.yamlsrc import loads


def test_positions_are_recorded():
    doc = loads("a:\n  b: 1\n  c:\n    - x\n    - y\n", "f.yml")
    assert doc.data == {"a": {"b": 1, "c": ["x", "y"]}}
    assert doc.where(("a", "c", 1)).line == 5
    assert doc.where(("a", "b")).column == 6
    assert doc.where_key(("a", "b")).column == 3


@pytest.mark.parametrize(
    "text, line, needle",
    [
        ("a: 1\na: 2\n", 2, "duplicate key 'a'"),
        ("a:\n\tb: 1\n", 2, "invalid YAML"),
        ("a: [1, 2\n", 1, "invalid YAML in the [ ] list that starts here"),
        ("a: 1\n---\nb: 2\n", 3, "more than one YAML document"),
    ],
)
def test_errors_point_at_the_line(text, line, needle):
    with pytest.raises(UserError) as exc:
        loads(text, "f.yml")
    assert exc.value.line == line
    assert needle in str(exc.value)
    assert str(exc.value).startswith(f"f.yml:{line}")


def test_merge_keys_and_anchors():
    doc = loads("base: &b {x: 1, y: 2}\nsvc:\n  <<: *b\n  y: 3\n")
    assert doc.data["svc"] == {"x": 1, "y": 3}


def test_yes_no_keys_keep_their_text():
    assert loads("on: 1\n").data == {"on": 1}


def test_empty_document():
    assert loads("").data is None


def twenty_lines(line3: str) -> str:
    """A 20-line file whose third line is `line3`."""
    return "a: 1\nb: 2\n" + line3 + "\n" + "".join(f"k{i}: {i}\n" for i in range(4, 21))


@pytest.mark.parametrize(
    "text, line, column, needles",
    [
        # An unclosed '[' or '"' is noticed lines later (often at the end): point at where it opened.
        (twenty_lines("c: [1, 2"), 3, 4, ["in the [ ] list that starts here", "but got ':' at line 4, column 3",
                                          "close the list with ']'"]),
        (twenty_lines("c: {x: 1"), 3, 4, ["in the { } mapping that starts here", "at line 4, column 3"]),
        (twenty_lines('c: "abc'), 3, 4, ["in the quoted text that starts here", "at the end of the file",
                                         "close the quote"]),
        (twenty_lines("c: 'abc"), 3, 4, ["in the quoted text that starts here", "at the end of the file"]),
        ("a: [1, 2\n", 1, 4, ["at the end of the file"]),
        ("a: 1\nb\nc: 2\n", 2, 1, ["in the key that starts here", "put ': ' after the key"]),
        # Bad indentation deep in a file: the line itself, and where its mapping started.
        ("services:\n  web:\n    image: x\n  ports:\n    - 1\n   bad: 2\n", 6, 4,
         ["while parsing a block mapping that starts at line 2, column 3", "indent this line"]),
        ("a:\n  b: 1\n  c: 2\n   d: 3\n", 4, 5, ["mapping values are not allowed here", "quote a value"]),
        ("a:\n\tb: 1\n", 2, 1, ["replace the tab characters"]),
        ("a: @x\n", 1, 4, ["quote a value that starts with a character YAML reserves"]),
        ("a: *x\n", 1, 4, ["found undefined alias 'x'", "define the anchor"]),
        ("a: &x 1\nb: &x 2\n", 2, 4, ["first occurrence at line 1, column 4, second occurrence here"]),
        ("a: 1\nb: x\x00y\n", 2, 5, ["character #x0000 is not allowed"]),
        ("a: 1\nb: x\ud800\n", 2, 5, ["character #xd800 is not allowed"]),
    ],
)
def test_syntax_errors_point_where_the_user_looks(text, line, column, needles):
    with pytest.raises(UserError) as exc:
        loads(text, "f.yml")
    message = str(exc.value)
    assert (exc.value.line, exc.value.column) == (line, column), message
    assert message.startswith(f"f.yml:{line}:{column}: invalid YAML"), message
    for needle in needles:
        assert needle in message


@pytest.mark.parametrize(
    "text, line, column, needle",
    [
        ("a: !!int 12abc\n", 1, 4, "cannot read '12abc' as !!int"),
        ("a: !!float .infx\n", 1, 4, "cannot read '.infx' as !!float"),
        ("a: !!timestamp nope\n", 1, 4, "cannot read 'nope' as !!timestamp"),
        ("a: !!timestamp 2020-13-45\n", 1, 4, "cannot read '2020-13-45' as !!timestamp"),
        ("a: !!bool maybe\n", 1, 4, "cannot read 'maybe' as !!bool"),
        ("a: !!map x\n", 1, 4, "cannot read 'x' as !!map: expected a mapping node"),
        ("x: 1\nimage: " + "1" * 5000 + "\n", 2, 8, "as !!int"),
        ("a: !foo x\n", 1, 4, "unknown tag !foo"),
        ("a: !!python/object:os.system x\n", 1, 4, "unknown tag !!python/object:os.system"),
        ("a: !reset [1]\n", 1, 4, "unsupported tag !reset on a list"),
        ("a: !foo {x: 1}\n", 1, 4, "unsupported tag !foo on a mapping"),
        ("a: !!int [1]\n", 1, 4, "unsupported tag !!int on a list"),
        ("a: " + "[" * 500 + "]" * 500 + "\n", 1, 103, "nested more than 100 levels deep"),
        ("a: " + "[" * 1000 + "]" * 1000 + "\n", 1, 104, "nested more than 100 levels deep"),  # past libyaml's
        ("a: " + "{b: " * 300 + "\n", 1, 404, "nested more than 100 levels deep"),  # unclosed
        ("[" * 1000, 1, 101, "nested more than 100 levels deep"),
        ("a:\n" + "".join(" " * i + f"k{i}:\n" for i in range(1, 200)), 101, 101, "nested more than 100 levels"),
        ("a: &a\n  b: *a\n", 1, 4, "recursive alias"),  # at the anchored mapping
    ],
)
def test_bad_values_are_located_errors_never_tracebacks(text, line, column, needle):
    with pytest.raises(UserError) as exc:
        loads(text, "f.yml")
    assert (exc.value.line, exc.value.column) == (line, column), str(exc.value)
    assert needle in str(exc.value)
    assert exc.value.fix


def test_deep_nesting_without_libyaml(monkeypatch):
    """The pure-Python composer recurses; its RecursionError becomes the same located error."""
    import yaml

    from bakery import yamlsrc

    monkeypatch.setattr(yamlsrc, "_Loader", yaml.SafeLoader)
    with pytest.raises(UserError) as exc:
        loads("[" * 5000 + "]" * 5000, "f.yml")
    assert (exc.value.line, exc.value.column) == (1, 101)
    assert "nested more than 100 levels deep" in str(exc.value)


def test_every_value_problem_at_once_in_file_order():
    text = "a: 1\nb: !!int x\na: 2\nc:\n  d: !foo 1\n  d: 2\n"
    with pytest.raises(UserError) as exc:
        loads(text, "f.yml")
    err = exc.value
    assert err.message == "4 problems" and err.source == "f.yml"
    assert [(p.line, p.path) for p in err.problems] == [(2, ("b",)), (3, ("a",)), (5, ("c", "d")),
                                                         (6, ("c", "d"))]
    assert str(err).splitlines()[1] == "  f.yml:2:4 b: cannot read 'x' as !!int " \
                                       "(correct the value, or quote it without the tag to make it text)"


@pytest.mark.parametrize(
    "text, plain",
    [
        ("restart: no\n", {("restart",): "no"}),
        ('restart: "no"\n', {}),
        ("v: 1.10\nw: [On, 2020-01-01]\n", {("v",): "1.10", ("w", 0): "On", ("w", 1): "2020-01-01"}),
        ("a: ~\nb: text\n", {}),
    ],
)
def test_unquoted_non_text_keeps_its_source_text(text, plain):
    """So a schema error can say `quote it: restart: "no"` in the user's own words."""
    assert loads(text).plain == plain


@pytest.mark.parametrize("text", ["a: " + "[" * 10_000, "a: " + "{k: [" * 3_000, "x: 1\nb: [" + "[" * 200 + "'"])
def test_deep_unclosed_flow_is_refused_before_the_quadratic_scanner(text, monkeypatch):
    """The pure-Python scanner that words syntax errors is quadratic in flow nesting (10,000 '[' took 35 s):
    a text nested past the limit is refused by one linear pass, and the scanner never sees it."""
    from bakery import yamlsrc

    monkeypatch.setattr(yamlsrc, "_python_error", lambda text: pytest.fail("the slow scanner was asked"))
    with pytest.raises(UserError, match="nested more than 100 levels deep"):
        loads(text, "f.yml")


@pytest.mark.parametrize("text", ["a: '[[[[' \nb: [\n", 'a: "{{{\\"[[[["\nb: {\n', "a: 1 # [[[[[[\nb: [\n"])
def test_brackets_in_quotes_and_comments_do_not_count(text):
    with pytest.raises(UserError) as exc:
        loads(text, "f.yml")
    assert "levels deep" not in exc.value.message and "invalid YAML" in exc.value.message
