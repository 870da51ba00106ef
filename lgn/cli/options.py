"""Command-line options generated from a configuration dataclass's fields (their defaults, help and choices),
so a setting is described once, in the library, and every command that exposes it agrees."""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from typing import Any

from .common import flag


def _value_type(field: dataclasses.Field, owner: type) -> Any:
    """The field's scalar type without ``| None``; a tuple field's parser of comma-separated values."""
    hint = typing.get_type_hints(owner)[field.name]
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
    if typing.get_origin(hint) is tuple:
        return _comma_list(typing.get_args(hint)[0])
    return hint


def _comma_list(element: type):
    def parse(text: str) -> tuple:
        return tuple(element(word) for word in text.split(","))

    parse.__name__ = f"comma-separated {element.__name__}"  # argparse names it in its message
    return parse


def add_config_options(
    parser: argparse.ArgumentParser,
    config: type,
    skip: tuple[str, ...] = (),
    defaults: Any = None,
    decided_later: dict[str, str] | None = None,
) -> None:
    """One option per field of ``config`` that is meant for the command line, except those in ``skip``.

    Booleans that default to True become ``--no-NAME`` switches. Values are passed through unchanged: the
    configuration validates them when the command builds it (:func:`config_from_args`). The options named in
    ``decided_later`` default to None (the command decides) and show the text given there as their default.
    """
    for field in dataclasses.fields(config):
        if field.name in skip or not field.metadata.get("cli", True):
            continue
        default = getattr(defaults, field.name) if defaults is not None else field.default
        help_text = field.metadata.get("help", "").replace("%", "%%")  # argparse formats help with %
        kind = _value_type(field, config)
        if kind is bool:
            name = flag(field.name) if not default else f"--no-{field.name.replace('_', '-')}"
            action = "store_false" if default else "store_true"
            parser.add_argument(name, dest=field.name, action=action, default=default, help=help_text)
            continue
        if decided_later and field.name in decided_later:
            default, shown = None, f" (default: {decided_later[field.name]})"
        else:
            shown = f" (default: {_text(default)})" if default is not None else ""
        parser.add_argument(
            flag(field.name),
            dest=field.name,
            type=kind,
            default=default,
            choices=field.metadata.get("choices"),
            help=help_text + shown,
            metavar=None if field.metadata.get("choices") else field.name.upper(),
        )


GIVEN = "given_options"


class _Noted(argparse.Action):
    """An option that, when it appears on the command line, adds its destination to ``namespace.given_options``."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        super().__call__(parser, namespace, values, option_string)
        setattr(namespace, GIVEN, (*getattr(namespace, GIVEN, ()), self.dest))


class _NotedStore(_Noted, argparse._StoreAction):
    pass


class _NotedStoreTrue(_Noted, argparse._StoreTrueAction):
    pass


class _NotedStoreFalse(_Noted, argparse._StoreFalseAction):
    pass


def note_given_options(parser: argparse.ArgumentParser) -> None:
    """Make the value options and switches added to ``parser`` after this call record, in
    ``args.given_options`` (a tuple of destinations, empty by default), that they were given on the command
    line: what the user said, told apart from a default even where the two are equal (``lgn train --resume``
    refuses a given setting that contradicts the resumed run's, the default value included)."""
    parser.set_defaults(**{GIVEN: ()})
    for name, action in ((None, _NotedStore), ("store", _NotedStore), ("store_true", _NotedStoreTrue),
                         ("store_false", _NotedStoreFalse)):  # fmt: skip
        parser.register("action", name, action)


def _text(value: Any) -> str:
    """A value as its option is spelled: tuples comma-separated."""
    return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)


def config_from_args(config: type, args: argparse.Namespace, **overrides: Any):
    """A ``config`` built from the parsed options (fields the command does not expose keep their defaults)."""
    names = {f.name for f in dataclasses.fields(config)}
    values = {k: v for k, v in vars(args).items() if k in names}
    values.update(overrides)
    return config(**values)


def command_line(program: str, cfg: Any, skip: tuple[str, ...] = ()) -> str:
    """The shortest command that rebuilds ``cfg``: ``program`` with an option for each field that differs
    from the default (except those in ``skip``)."""
    import shlex

    words = [program]
    for field in dataclasses.fields(cfg):
        value = getattr(cfg, field.name)
        if field.name in skip or value == field.default or not field.metadata.get("cli", True):
            continue
        if isinstance(value, bool):
            words.append(flag(field.name) if value else f"--no-{field.name.replace('_', '-')}")
        else:
            words += [flag(field.name), shlex.quote(_text(value))]
    return " ".join(words)
