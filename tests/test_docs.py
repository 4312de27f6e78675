"""The documentation runs: every ``python`` block of README.md and docs/*.md,
and every ``sklearn-cf`` command line they show.

* Python: per file, the blocks are executed in order in one namespace (as a
  reader pasting them into one Python session would), inside a temporary
  working folder, with matplotlib's Agg backend. One test per file, so a
  failure names the file and the first line of the block that failed (the
  traceback's line numbers are the Markdown file's own).
* Shell: every ``sklearn-cf ...`` (or ``python -m sklearn_cf ...``) command
  line of a shell block, and every ``$ sklearn-cf ...`` line of an output
  block, is parsed (never run) with the real parser,
  :func:`sklearn_cf.cli.build_parser`, with abbreviations turned off, so an
  option the documentation names and the parser no longer has fails, naming
  the file and the line.

Blocks that only show a signature, output or a shell command are fenced as
``text``, ``bash``... and are not executed.
"""

import argparse
import contextlib
import io
import re
import shlex
import traceback
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL_LANGUAGES = {"bash", "sh", "shell", "console", "zsh"}
FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")


def _name(path):
    return path.relative_to(ROOT).as_posix()


def code_blocks(path):
    """The fenced code blocks of a Markdown file, in order.

    Returns a list of ``(language, first_line, lines)``: the fence's language
    (lowercase, "" when none), the 1-based line number of the block's first
    line of code, and its lines with the fence's indentation removed.
    """
    blocks = []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if match is None:
            i += 1
            continue
        indent, fence = len(match["indent"]), match["fence"]
        info = match["info"].strip().split()
        language = info[0].lower() if info else ""
        start, i = i + 1, i + 1
        body = []
        while i < len(lines):
            close = FENCE.match(lines[i])
            if (close is not None and close["fence"][0] == fence[0]
                    and len(close["fence"]) >= len(fence) and not close["info"].strip()):
                break
            line = lines[i]
            body.append(line[indent:] if line[:indent].strip() == "" else line.lstrip())
            i += 1
        blocks.append((language, start + 1, body))
        i += 1
    return blocks


def _files_with(languages):
    return [path for path in DOC_FILES
            if any(lang in languages for lang, _, _ in code_blocks(path))]


# ---------------------------------------------------------------------------
# Python blocks


@contextlib.contextmanager
def _isolated_globals():
    """Undo what documentation blocks change for the whole process: the
    scikit-learn configuration (metadata routing), torch's thread count,
    strategies registered by name, warning filters and open figures."""
    import sklearn
    import torch

    from sklearn_cf import strategies

    threads = torch.get_num_threads()
    # One torch thread: on a shared 2-core machine two threads that wait for
    # a busy core made these small fits several times slower.
    torch.set_num_threads(1)
    names = set(strategies.available_strategies())
    with sklearn.config_context(), warnings.catch_warnings():
        try:
            yield
        finally:
            torch.set_num_threads(threads)
            for name in set(strategies.available_strategies()) - names:
                strategies.unregister_strategy(name)       # a plugin a block registered
            import matplotlib.pyplot as plt

            plt.close("all")


def _name_of(path):
    try:
        return _name(path)
    except ValueError:                                     # a file outside the project
        return path.name


def run_python_blocks(path):
    """Execute the python blocks of ``path`` in order, in one namespace, in
    the current folder; return the namespace.

    Raises ``AssertionError`` naming the file and the first line of the block
    that failed, with the traceback (whose line numbers are the file's).
    """
    name = _name_of(path)
    namespace = {"__name__": "__main__"}
    for language, first_line, lines in code_blocks(path):
        if language != "python":
            continue
        # Padding keeps the Markdown file's line numbers in tracebacks.
        source = "\n" * (first_line - 1) + "\n".join(lines) + "\n"
        try:
            exec(compile(source, name, "exec"), namespace)
        except Exception as exc:  # noqa: BLE001 - reported with its traceback
            raise AssertionError(
                f"{name}: the python block at line {first_line} failed: "
                f"{type(exc).__name__}: {exc}\n\n{traceback.format_exc()}") from None
    return namespace


@pytest.mark.parametrize(
    "path", _files_with({"python"}), ids=_name)
def test_python_blocks_run(path, tmp_path, monkeypatch):
    """The file's python blocks run, in order, in one namespace."""
    import matplotlib

    matplotlib.use("Agg")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.chdir(tmp_path)
    with _isolated_globals():
        try:
            run_python_blocks(path)
        except AssertionError as exc:
            pytest.fail(str(exc), pytrace=False)


def test_a_failing_block_is_named(tmp_path, monkeypatch):
    """A failure names the file and the first line of the block; blocks share
    one namespace and run in the working folder; other languages are skipped."""
    monkeypatch.chdir(tmp_path)
    doc = tmp_path / "page.md"
    doc.write_text(
        "# Page\n\n```python\nx = 1\nopen('made.txt', 'w').close()\n```\n\n"
        "```text\nnot python\n```\n\n"
        "- a list\n\n  ```python\n  y = x + 1\n  ```\n\n"
        "```python\nz = y\nundefined_name\n```\n", encoding="utf-8")
    with pytest.raises(AssertionError) as info:
        run_python_blocks(doc)
    message = str(info.value)
    assert message.startswith("page.md: the python block at line 19 failed: NameError")
    assert 'File "page.md", line 20' in message
    assert (tmp_path / "made.txt").exists()


# ---------------------------------------------------------------------------
# Command lines


def _strict(parser):
    """``parser`` and its sub-commands' parsers with abbreviations turned off,
    so that ``--month`` does not pass for ``--month-column``."""
    parser.allow_abbrev = False
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                _strict(sub)
    return parser


def _logical_lines(lines):
    """Join backslash continuations; yield ``(line_number_offset, text)``."""
    current, start = [], None
    for offset, line in enumerate(lines):
        if start is None:
            start = offset
        if line.rstrip().endswith("\\"):
            current.append(line.rstrip()[:-1])
            continue
        current.append(line)
        yield start, " ".join(current)
        current, start = [], None
    if current:
        yield start, " ".join(current)


def _shell_variables(lines):
    """Values for ``$NAME`` in a block: ``NAME=value`` assignments and the
    first value of ``for NAME in a b c``."""
    values = {}
    for line in lines:
        for name, value in re.findall(r"(?:^|[\s;])([A-Za-z_]\w*)=(\S+)", line):
            values.setdefault(name, value.strip("'\""))
        for name, first in re.findall(r"\bfor\s+(\w+)\s+in\s+(\S+)", line):
            values.setdefault(name, first.rstrip(";"))
    return values


def _commands(text, variables):
    """The argument lists of the ``sklearn-cf`` commands in one logical
    shell line (after the program name); comments, pipes, redirections and
    what follows ``;``/``&&`` are dropped."""
    text = re.sub(r"\$\{?([A-Za-z_]\w*)\}?",
                  lambda m: variables.get(m[1], m[0]), text)
    text = re.sub(r"(^|\s)\d?(>>|>|<)&?\s*[^\s;|&]+", " ", text)  # redirections
    lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        tokens = list(lexer)
    except ValueError:
        return []
    separators = {";", "&&", "||", "|", "&", "(", ")", ";;"}
    commands, i = [], 0
    while i < len(tokens):
        if tokens[i] == "sklearn-cf":
            start = i + 1
        elif tokens[i:i + 3] == ["python", "-m", "sklearn_cf"]:
            start = i + 3
        else:
            i += 1
            continue
        args, j = [], start
        while j < len(tokens) and tokens[j] not in separators:
            args.append(tokens[j])
            j += 1
        commands.append(args)
        i = j
    return commands


def _prose_lines(path):
    """``(line_number, line)`` of a Markdown file outside its code blocks."""
    in_block = None
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fence = FENCE.match(line)
        if fence is not None:
            if in_block is None:
                in_block = fence["fence"]
            elif fence["fence"][0] == in_block[0] and not fence["info"].strip():
                in_block = None
            continue
        if in_block is None:
            yield number, line


def _inline_commands(path):
    """``(line_number, text)`` of the inline code spans of the prose (outside
    code blocks) that are a command: `` `sklearn-cf compare --data ...` ``."""
    return [(number, span) for number, line in _prose_lines(path)
            for span in re.findall(r"`(sklearn-cf [^`]+)`", line)]


def _option_tables(path):
    """``(line_number, cell)`` of the first cell of every row of a Markdown
    table whose first column is headed "option" (the option tables)."""
    found, in_table = [], False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not line.lstrip().startswith("|"):
            in_table = False
        elif not in_table and cells[0].lower() == "option":
            in_table = True
        elif in_table and not set(cells[0]) <= set("-: "):
            found.append((number, cells[0]))
    return found


def documented_options(path):
    """``(line_number, text, command, options)`` for options named outside
    command lines: an inline span `` `sklearn-cf compare --data` `` (the
    options of that command) and the first cell of an option table (the
    options of any command, ``command`` None)."""
    found = []
    for number, text in _inline_commands(path):
        words = text.split()
        command = words[1] if len(words) > 1 and not words[1].startswith("-") else None
        options = [w.split("=")[0] for w in words if w.startswith("--")]
        if command is not None and options:
            found.append((number, text, command, options))
    for number, cell in _option_tables(path):
        options = re.findall(r"(?<![\w-])(--[a-z][\w-]*)", cell)
        if options:
            found.append((number, cell, None, options))
    return found


def command_lines(path):
    """``(line_number, text, args)`` for every documented ``sklearn-cf``
    command of a file: in shell blocks every line; in other blocks (output,
    a report) lines typed at a ``$`` prompt or starting with ``sklearn-cf``."""
    found = []
    for language, first_line, lines in code_blocks(path):
        if language == "python":
            continue
        shell = language in SHELL_LANGUAGES
        variables = _shell_variables(lines)
        for offset, text in _logical_lines(lines):
            stripped = text.strip()
            if stripped.startswith("$ "):
                stripped = stripped[2:]
            elif not shell and not stripped.startswith("sklearn-cf "):
                continue
            if stripped.startswith("#"):
                continue
            for args in _commands(stripped, variables):
                found.append((first_line + offset, stripped, args))
    return found


@pytest.mark.parametrize(
    "path", [p for p in DOC_FILES if command_lines(p)], ids=_name)
def test_command_lines_parse(path):
    """Every documented ``sklearn-cf`` command line parses."""
    failures = command_line_failures(path)
    assert not failures, "documented command lines that do not parse:\n" + "\n".join(failures)


def command_line_failures(path):
    """One message per documented command line of ``path`` that the parser
    refuses: ``file:line: the line`` and argparse's error."""
    from sklearn_cf.cli import build_parser

    name = _name_of(path)
    failures = []
    for line, text, args in command_lines(path):
        parser = _strict(build_parser())
        err, out = io.StringIO(), io.StringIO()
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
                parser.parse_args(args)
        except SystemExit as exc:
            if exc.code not in (0, None):              # 0: --help
                message = err.getvalue().strip().splitlines()
                failures.append(f"{name}:{line}: {text}\n    {message[-1] if message else exc}")
    return failures


def _options_by_command():
    from sklearn_cf.cli import build_parser

    commands = {}
    for action in build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                commands[name] = {option for sub_action in sub._actions
                                  for option in sub_action.option_strings}
    return commands


@pytest.mark.parametrize(
    "path", [p for p in DOC_FILES if documented_options(p)], ids=_name)
def test_documented_options_exist(path):
    """Options named in the prose (`` `sklearn-cf update --rollback` ``) and
    in option tables exist: in that command, or (tables) in some command."""
    failures = option_failures(path)
    assert not failures, "documented options that do not exist:\n" + "\n".join(failures)


def option_failures(path):
    """One message per documented option of ``path`` that no parser has."""
    commands = _options_by_command()
    every = set().union(*commands.values())
    name = _name_of(path)
    failures = []
    for line, text, command, options in documented_options(path):
        if command is not None and command not in commands:
            failures.append(f"{name}:{line}: {text}\n    no command {command!r}")
            continue
        known = commands[command] if command is not None else every
        missing = [option for option in options if option not in known]
        if missing:
            failures.append(f"{name}:{line}: {text}\n    no option {', '.join(missing)}"
                            + (f" in sklearn-cf {command}" if command else ""))
    return failures


# ---------------------------------------------------------------------------
# Links


def anchors(path):
    """The anchors of a Markdown file's headings, as GitHub makes them:
    lowercase, punctuation dropped, spaces as hyphens, ``-1``, ``-2`` for
    repeated headings."""
    seen, found = {}, set()
    for _, line in _prose_lines(path):
        match = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if match is None:
            continue
        slug = re.sub(r"[^\w\- ]", "", match[1].strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


@pytest.mark.parametrize("path", DOC_FILES, ids=_name)
def test_links_resolve(path):
    """Relative links lead to a file that exists and, with ``#anchor``, to
    one of its headings (a section moved to another page breaks no link)."""
    name = _name(path)
    failures = []
    for number, line in _prose_lines(path):
        for target in re.findall(r"\]\(([^)\s]+)\)", line):
            if re.match(r"[a-z]+:", target):               # http:, mailto:...
                continue
            file, _, anchor = target.partition("#")
            linked = (path.parent / file).resolve() if file else path
            if not linked.exists():
                failures.append(f"{name}:{number}: {target}: no such file")
            elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
                failures.append(f"{name}:{number}: {target}: no heading #{anchor}")
    assert not failures, "broken links:\n" + "\n".join(failures)


def test_the_checks_find_what_they_check():
    """The collectors see the blocks and commands they are meant to check."""
    readme = code_blocks(ROOT / "README.md")
    assert sum(lang == "python" for lang, _, _ in readme) >= 4
    commands = [args for path in DOC_FILES for _, _, args in command_lines(path)]
    assert any(args[:1] == ["update"] for args in commands)
    assert any(args[:1] == ["compare"] for args in commands)


def test_a_wrong_option_is_reported(tmp_path):
    """An option the parser lacks fails, naming the file and the line;
    continuation lines, variables, loops, comments and redirections are
    understood; inline commands and option tables are checked too."""
    doc = tmp_path / "doc.md"
    doc.write_text(
        "Run `sklearn-cf update --rolback` to undo.\n\n"
        "```bash\nS=naive,replay   # the strategies\n"
        "for seed in 0 1; do sklearn-cf compare --strategies $S --seed $seed; done\n"
        "sklearn-cf compare --data x.csv \\\n    --month-colum month > log.txt 2>&1\n"
        "sklearn-cf update --help | less\n"
        "```\n\n"
        "| option | meaning |\n| --- | --- |\n| `--epochs N` | |\n| `--epoch N` | |\n",
        encoding="utf-8")
    assert [(line, args) for line, _, args in command_lines(doc)] == [
        (5, ["compare", "--strategies", "naive,replay", "--seed", "0"]),
        (6, ["compare", "--data", "x.csv", "--month-colum", "month"]),
        (8, ["update", "--help"]),
    ]
    failures = command_line_failures(doc)
    assert len(failures) == 1 and failures[0].startswith("doc.md:6: sklearn-cf compare")
    assert "--month-colum" in failures[0]
    failures = option_failures(doc)
    assert len(failures) == 2
    assert failures[0].startswith("doc.md:1: sklearn-cf update --rolback")
    assert failures[1].startswith("doc.md:14: `--epoch N`")
