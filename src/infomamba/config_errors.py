"""What the command line's parser rejects, said in one place: the file and key at fault and the nearest
accepted key (or the type expected), instead of jsonargparse's usage listing of every option (about 100 lines)
with a YAML parser's "<unicode string>" where the file's name belongs; and which keys the user gave
(`given_keys`)."""
from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

# jsonargparse's words for a key that no option has: in a config file, on the command line, and in the subcommand's
# config that --print_config checks (a key in a group named from the group: `unknown_key`).
UNKNOWN_KEY = re.compile(r"(?:Group '([^']+)' )?does not accept option '([^']+)'|Option '([^']+)' is not accepted"
                         r"|unrecognized arguments: --([\w.]+)")
# ... for a value of the wrong type: the key, the type (or a union's types) expected and the value given.
WRONG_TYPE = re.compile(r'Parser key "([^"]+)":')
EXPECTED = re.compile(r"Subtypes: \[(.*)\]|Expected a <class '(\w+)'>")
GIVEN = re.compile(r"(?:Got|Given) value: (.*)")
# A YAML flow mapping written without the space after a colon ({k_max:5}), which YAML reads as one string.
CRAMPED_MAPPING = re.compile(r"^\{.*:[^\s}]")


def config_files(argv: Iterable[str]) -> list[Path]:
    """The files given to --config / -c, in order."""
    files, take = [], False
    for arg in argv:
        if take:
            files.append(Path(arg))
        take = arg in ("--config", "-c")
        if arg.startswith("--config="):
            files.append(Path(arg.split("=", 1)[1]))
    return files


def yaml_problem(path: Path) -> str | None:
    """One line on why `path` cannot be read as a config (where, and what was expected), or None if it can: it must
    be YAML holding a mapping of options (an empty file, a comment alone or a list had been jsonargparse's
    "Unexpected config:", naming no file)."""
    import yaml

    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return f"--config {path}: no such file"
    except (OSError, UnicodeDecodeError) as err:
        return f"--config {path}: cannot be read ({err})"
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        return f"--config {path}: not valid YAML: {where}{problem}"
    if not isinstance(loaded, Mapping):
        found = "no options (it is empty)" if loaded is None else f"a YAML {type(loaded).__name__}"
        return f"--config {path}: {found}; expected a mapping of options (trainer:, model:, data:)"
    return None


def flat_items(tree: Mapping, prefix: str = "") -> dict[str, object]:
    """The values of a nested mapping by dotted key, inner and leaf ones."""
    items = {}
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        items[dotted] = value
        if isinstance(value, Mapping):
            items |= flat_items(value, f"{dotted}.")
    return items


def where_given(key: str, files: Iterable[Path], value: str | None = None) -> str:
    """Where `key` was given: in the first --config file that sets it (to `value`, as the parser wrote it, when
    given: the command line may set the same key again, and the value is whose the error is), else on the command
    line."""
    import yaml

    for path in files:
        tree = yaml.safe_load(path.read_text(encoding="utf-8"))
        items = flat_items(tree) if isinstance(tree, Mapping) else {}
        if key in items and (value is None or str(items[key]) == value):
            return f"in {path}"
    return "on the command line"


def unknown_key(message: str) -> str | None:
    """The whole dotted key of a parser error about a key no option has, as the accepted keys and `where_given` name
    it: --print_config's check says "Group 'model' does not accept option 'encoder.dim'" of model.encoder.dim. None
    for any other error."""
    found = UNKNOWN_KEY.search(message)
    return None if found is None else ".".join(group for group in found.groups() if group)


def unknown_key_message(message: str, accepted: Iterable[str], files: Iterable[Path]) -> str | None:
    """For a parser error about a key no option has: which file (or the command line) gave it and the nearest
    accepted key; None for any other error."""
    key = unknown_key(message)
    if key is None:
        return None
    near = difflib.get_close_matches(key, sorted(accepted), n=1, cutoff=0.6)
    hint = f"; did you mean {near[0]}?" if near else ""
    return f"unknown key {key} {where_given(key, files)}{hint}"


def wrong_type_message(message: str, files: Iterable[Path]) -> str | None:
    """For a parser error about a value of the wrong type: the key, where it was given (the --config file that sets
    it, else the command line), the type expected and the value, in one line (`mapping_hint` added). None for any
    other error."""
    found = WRONG_TYPE.search(message)
    expected, given = EXPECTED.search(message), GIVEN.search(message)
    if found is None or expected is None or given is None:
        return None
    key, value = found.group(1), given.group(1).strip()
    kinds = expected_kinds(expected.group(1) or f"<class '{expected.group(2)}'>")
    named = [kind.replace("NoneType", "null") for kind in kinds]
    wanted = f"one of {', '.join(named)}" if "Literal[" in message else " or ".join(named)
    return f"{key} {where_given(key, files, value)}: expected {wanted}, got {value!r}{mapping_hint(value, kinds)}"


def expected_kinds(subtypes: str) -> list[str]:
    """The types a union's subtypes name, in order, a Literal's values each in its place: trainer.precision's union of
    Literals and None had been said as "expected null" alone."""
    kinds = []
    for cls, literal in re.findall(r"<class '(\w+)'>|Literal\[([^\]]*)\]", subtypes):
        kinds += [cls] if cls else [value.strip() for value in literal.split(",")]
    return kinds


def mapping_hint(value: str, kinds: list[str]) -> str:
    """How to write `value` where a dict (one of `kinds`) is expected and it is a YAML flow mapping without the space
    after a colon ({k_max:5} is one string to YAML); else ""."""
    if "dict" not in kinds or not CRAMPED_MAPPING.match(value):
        return ""
    spaced = re.sub(r":(?=\S)", ": ", value)
    return f" (a YAML mapping needs a space after each colon: {spaced})"


def parse_error_message(message: str, accepted: Iterable[str], files: Iterable[Path]) -> str | None:
    """One line for a parser error the CLI can say better than jsonargparse (`unknown_key_message`,
    `wrong_type_message`), or None."""
    return unknown_key_message(message, accepted, files) or wrong_type_message(message, files)


def given_keys(argv: list[str], prefix: str) -> set[str]:
    """The dotted keys under `prefix` (e.g. "model") that `argv` gives: as --prefix.a.b options, and as leaves of
    the `prefix` section of its --config files (a dict-valued option counts as one key)."""
    import yaml

    keys = set()
    for path in config_files(argv):
        tree = yaml.safe_load(path.read_text(encoding="utf-8"))
        section = tree.get(prefix) if isinstance(tree, Mapping) else None
        if isinstance(section, Mapping):
            keys |= {f"{prefix}.{key}" for key in _leaves(section)}
    for arg in argv:
        if arg.startswith(f"--{prefix}."):
            keys.add(arg[2:].split("=", 1)[0])
    return keys


def _leaves(tree: Mapping, dotted: str = "") -> set[str]:
    """Dotted keys of the leaves of a nested mapping, a mapping under a key that names a dict option (ending in
    "options") counted as one leaf."""
    found = set()
    for key, value in tree.items():
        name = f"{dotted}{key}"
        if isinstance(value, Mapping) and value and not str(key).endswith("options"):
            found |= _leaves(value, f"{name}.")
        else:
            found.add(name)
    return found
