"""Generated decoders for the hot path: one straight-line function per event type.

cattrs' generated structure functions call one hook per field and build each object through
keyword arguments; at the rate frames arrive that is most of the cost of decoding. Here each
event type gets one function, generated from its attrs fields, that checks JSON types inline
(``type(v) is str``) and builds the event and its payload directly. A field whose type is not a
JSON scalar, an optional scalar, a nested attrs class, an optional one or a tuple of them is
handed to the hook the cattrs converter has for that type.

The functions only decide *whether* a frame is valid. On a bad envelope they raise
:class:`RemoteProtocolError` with its path; on a bad payload they raise some other exception,
and :mod:`._wire` asks the detailed cattrs converter to explain it. cattrs stays the reference:
``tests/test_decoders.py`` checks that both accept the same frames and build equal events.
"""

from __future__ import annotations

import sys
import typing
from collections.abc import Callable, Mapping
from datetime import datetime
from types import NoneType, UnionType
from typing import Any

import attrs

from ._errors import RemoteProtocolError

__all__ = [
    "SHARED_BELOW",
    "EventDecoder",
    "Hook",
    "builder",
    "compile_envelope_decoder",
    "compile_event_decoder",
    "tuple_item",
]

Hook = Callable[[Any, Any], Any]
"""A cattrs structure hook: ``hook(value, type) -> structured value``."""

EventDecoder = Callable[[dict[str, Any]], Any]
"""A generated decoder: a frame already parsed into a dict, to its event."""

_SCALARS: Mapping[type, str] = {str: "str", int: "int", bool: "bool"}
_SHARED_TEXT = frozenset(
    {
        "message_id",
        "agent_id",
        "agent_name",
        "agent_avatar_url",
        "avatar_url",
        "level",
        "state",
        "reason",
        "queue_name",
        "language_code",
        "content_type",
        "title",
        "call_to_action_text",
    }
)
"""String fields whose values repeat from event to event (every chunk of a reply carries its
``message_id``; agents, queues, reasons and enum-like values recur; cards are reused):
interned, so that a long conversation holds one copy of each value."""
SHARED_BELOW = "polyai_messaging.shared_below"
"""attrs field metadata key: a string field whose values shorter than this many characters are
shared as they are decoded (its short values recur; its long ones rarely do)."""
FRAGMENT_MEMORY = 4096
"""How many distinct short values (see :data:`SHARED_BELOW`) are remembered for sharing.

Not ``sys.intern``: its table is process-wide and keeps a slot for every string ever interned
until it is next resized (by a lot, once per growth). This one is bounded, and forgotten whole
when full."""
_fragments: dict[str, str] = {}
_fragments_get = _fragments.get
_MISSING = object()


def _fragment(text: str) -> str:
    """``text``, remembered for sharing (the empty string is shared by Python already)."""
    if len(_fragments) >= FRAGMENT_MEMORY:
        _fragments.clear()
    _fragments[text] = text
    return text


def _mismatch() -> TypeError:
    # Only a signal to ask cattrs for the explanation; its text is never shown.
    return TypeError("wrong type")


_ENVELOPE = """\
    e_id = o.get('id')
    if type(e_id) is not str and e_id is not None:  # usually a string: one test
        raise _RemoteProtocolError('expected string', path='id')
    e_sequence = o.get('sequence')
    if type(e_sequence) is int:  # usually: one test
        if not 0 <= e_sequence <= _max_sequence:
            raise _RemoteProtocolError(f'expected int in [0, {_max_sequence}]', path='sequence')
    elif e_sequence is not None:
        raise _RemoteProtocolError('expected int', path='sequence')
    e_timestamp = o.get('timestamp')
    if e_timestamp is not None:
        try:
            e_timestamp = _fromisoformat(e_timestamp)
        except (TypeError, ValueError):
            e_timestamp = _timestamp(e_timestamp)
    e_metadata = o.get('metadata')
    if e_metadata is not None:
        e_metadata = _metadata(e_metadata)
"""
_ENVELOPE_FIELDS = (
    "'id': e_id, 'sequence': e_sequence, 'timestamp': e_timestamp, 'metadata': e_metadata"
)
_EVENT_FIELDS = (
    ("id", "e_id"),
    ("sequence", "e_sequence"),
    ("timestamp", "e_timestamp"),
    ("metadata", "e_metadata"),
    ("payload", "payload"),
    ("rejected", "()"),
)
_PAYLOAD = """\
    p = o.get('payload')
    if p is None:
        p = {}
    elif type(p) is not dict:
        raise _RemoteProtocolError('expected object', path='payload')
"""


class _Generator:
    """Accumulates generated functions and the names they refer to, then compiles them."""

    def __init__(self, hook_for: Callable[[Any], Hook], custom: frozenset[type]) -> None:
        self.hook_for = hook_for
        self.custom = custom
        self.namespace: dict[str, Any] = {
            "_MISSING": _MISSING,
            "_NO_ITEMS": [],
            "_mismatch": _mismatch,
            # The common case of a timestamp; anything else goes to the ``timestamp`` given.
            "_fromisoformat": datetime.fromisoformat,
            "_intern": sys.intern,
            "_fragments_get": _fragments_get,
            "_fragment": _fragment,
            "_RemoteProtocolError": RemoteProtocolError,
        }
        self.sources: list[str] = []
        self.nested: dict[type, str] = {}

    def name(self, prefix: str, value: Any) -> str:
        name = f"{prefix}{len(self.namespace)}"
        self.namespace[name] = value
        return name

    def define(self, name: str, *body: str) -> None:
        self.sources.append("\n".join([f"def {name}(o):", *(part.rstrip("\n") for part in body)]))

    def compile(self, entry: str) -> Any:
        code = compile("\n\n".join(self.sources), f"<generated {entry}>", "exec")
        # Generated from attrs field metadata only, as attrs and cattrs generate their own.
        exec(code, self.namespace)  # noqa: S102
        return self.namespace[entry]

    # --- fields ---------------------------------------------------------------------------

    def inlined(self, cls: Any) -> bool:
        return isinstance(cls, type) and attrs.has(cls) and cls not in self.custom

    def check(self, tp: Any, var: str, pad: str) -> list[str]:
        """Lines that check ``var`` against ``tp`` and replace it with its structured value."""
        scalar = _SCALARS.get(tp)
        if scalar is not None:
            return [f"{pad}if type({var}) is not {scalar}:", f"{pad}    raise _mismatch()"]
        inner = _optional_of(tp)
        if inner is not None:
            scalar = _SCALARS.get(inner)
            if scalar is not None:
                return [
                    f"{pad}if {var} is not None and type({var}) is not {scalar}:",
                    f"{pad}    raise _mismatch()",
                ]
            if self.inlined(inner):
                decoder = self.decoder(inner)
                return [f"{pad}if {var} is not None:", f"{pad}    {var} = {decoder}({var})"]
        if self.inlined(tp):
            return [f"{pad}{var} = {self.decoder(tp)}({var})"]
        item = tuple_item(tp)
        if item is not None and self.inlined(item):
            return [
                f"{pad}if type({var}) is not list:",
                f"{pad}    raise _mismatch()",
                f"{pad}{var} = tuple([{self.decoder(item)}(i) for i in {var}]) if {var} else ()",
            ]
        hook, hint = self.name("_hook", self.hook_for(tp)), self.name("_type", tp)
        return [f"{pad}{var} = {hook}({var}, {hint})"]

    def fields(self, cls: type, source: str, prefix: str, target: str) -> list[str]:
        """Lines that read every field of ``cls`` from the dict ``source`` into ``target``."""
        hints = typing.get_type_hints(cls)
        lines: list[str] = []
        names: list[tuple[attrs.Attribute[Any], str]] = []
        for field in attrs.fields(cls):
            var = f"{prefix}{field.name}"
            names.append((field, var))
            if field.default is attrs.NOTHING:
                lines.append(f"    {var} = {source}[{field.name!r}]")
                lines += self.check(hints[field.name], var, "    ")
            elif _passes_check(hints[field.name], field.default):
                # The default is itself valid: read it as the value, and check once.
                lines.append(f"    {var} = {source}.get({field.name!r}, {self.default(field)})")
                lines += self.check(hints[field.name], var, "    ")
            elif field.default == () and self.inlined(tuple_item(hints[field.name])):
                # An array of objects defaulting to (): an absent one reads as an empty list,
                # which the check turns into () (the list is never changed, so one serves all).
                lines.append(f"    {var} = {source}.get({field.name!r}, _NO_ITEMS)")
                lines += self.check(hints[field.name], var, "    ")
            else:
                lines.append(f"    {var} = {source}.get({field.name!r}, _MISSING)")
                lines.append(f"    if {var} is _MISSING:")
                lines.append(f"        {var} = {self.default(field)}")
                lines.append("    else:")
                lines += self.check(hints[field.name], var, "        ")
            hint = hints[field.name]
            if field.name in _SHARED_TEXT and hint is str and field.default is attrs.NOTHING:
                lines.append(f"    {var} = _intern({var})")  # checked above: a str
            elif field.name in _SHARED_TEXT and str in (hint, _optional_of(hint)):
                lines.append(f"    if type({var}) is str:")
                lines.append(f"        {var} = _intern({var})")
            elif SHARED_BELOW in field.metadata and hint is str:
                # Short values of this field recur (a streamed fragment is a word or two).
                lines.append(f"    if len({var}) < {int(field.metadata[SHARED_BELOW])}:")
                lines.append(f"        shared = _fragments_get({var})")
                lines.append(f"        {var} = _fragment({var}) if shared is None else shared")
        return lines + self.build(cls, names, target)

    def default(self, field: attrs.Attribute[Any]) -> str:
        default: Any = field.default
        if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
            return f"{self.name('_factory', default.factory)}()"
        return self.name("_default", default)

    def build(
        self, cls: type, names: list[tuple[attrs.Attribute[Any], str]], target: str
    ) -> list[str]:
        """Lines that build ``cls`` from the checked values into ``target``."""
        if not names and _direct_class(cls):
            # Instances of a frozen class without fields are all equal: share one.
            return [f"    {target} = {self.name('_empty', cls())}"]
        if _direct_class(cls):
            # All fields are known and checked: each goes straight into its slot, exactly what
            # attrs' own __init__ would write, without its keyword handling.
            return self.fill(cls, target, [(field.name, var) for field, var in names])
        arguments = ", ".join(f"{field.alias}={var}" for field, var in names)
        return [f"    {target} = {self.name('_cls', cls)}({arguments})"]

    def fill(self, cls: type, target: str, values: list[tuple[str, str]]) -> list[str]:
        """Lines that build a ``cls`` into ``target`` by filling its slots with ``values``."""
        building = self.name("_builder", builder(cls))
        return [
            f"    {target} = {building}()",
            *(f"    {target}.{name} = {var}" for name, var in values),
            f"    {target}.__class__ = {self.name('_cls', cls)}",
        ]

    def decoder(self, cls: type) -> str:
        """The name of a generated function that decodes a JSON object into ``cls``."""
        known = self.nested.get(cls)
        if known is not None:
            return known
        name = f"decode_{cls.__name__}_{len(self.nested)}"
        self.nested[cls] = name
        lines = self.fields(cls, "o", "v_", "built")
        self.define(
            name,
            "    if type(o) is not dict:",
            "        raise _mismatch()",
            *lines,
            "    return built",
        )
        return name


_BUILDERS: dict[type, type] = {}


def builder(cls: type) -> type:
    """A subclass of slotted class ``cls`` whose instances are filled, then become ``cls``'s.

    A frozen class refuses attribute stores, so its slots are otherwise written through their
    descriptors, one call per field. The subclass adds no slot and accepts plain stores (which
    the interpreter specializes); having the same layout, a filled instance turns into a ``cls``
    instance by ``__class__`` assignment, indistinguishable from one ``__init__`` built.
    """
    found = _BUILDERS.get(cls)
    if found is None:
        namespace = {
            "__slots__": (),
            "__init__": object.__init__,
            # Both, or the interpreter keeps calling through the class for every store.
            "__setattr__": object.__setattr__,
            "__delattr__": object.__delattr__,
        }
        found = _BUILDERS[cls] = type(f"_Building{cls.__name__}", (cls,), namespace)
    return found


def _direct_class(cls: type) -> bool:
    """Whether filling every slot is equivalent to calling ``__init__``."""
    if "__slots__" not in cls.__dict__ or hasattr(cls, "__attrs_post_init__"):
        return False
    if hasattr(cls, "__attrs_pre_init__"):
        return False
    return all(
        field.validator is None and field.converter is None and field.init
        for field in attrs.fields(cls)
    )


def _passes_check(tp: Any, default: Any) -> bool:
    """Whether ``default`` passes the inline check of a scalar or optional scalar ``tp``."""
    if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
        return False
    scalar = tp if tp in _SCALARS else _optional_of(tp)
    if scalar not in _SCALARS:
        return False
    return type(default) is scalar or (default is None and scalar is not tp)


def _optional_of(tp: Any) -> Any:
    if isinstance(tp, UnionType) or typing.get_origin(tp) is typing.Union:
        args = [arg for arg in typing.get_args(tp) if arg is not NoneType]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return args[0]
    return None


def tuple_item(tp: Any) -> Any:
    """The item type of ``tuple[X, ...]``, else ``None``."""
    args = typing.get_args(tp)
    if typing.get_origin(tp) is tuple and len(args) == 2 and args[1] is Ellipsis:
        return args[0]
    return None


def compile_event_decoder(
    cls: type,
    *,
    hook_for: Callable[[Any], Hook],
    custom: frozenset[type],
    timestamp: Callable[[Any], Any],
    metadata: Callable[[Any], Any],
    max_sequence: int,
) -> EventDecoder:
    """The decoder of event class ``cls`` (fields: the envelope, ``payload`` and ``rejected``).

    ``rejected`` is not read from the frame: a decoded event has rejected nothing (``()``).

    ``hook_for`` gives the cattrs hook of a type the generator does not inline; attrs classes
    in ``custom`` have their own hook and are not inlined either. ``timestamp`` and ``metadata``
    structure those envelope fields, raising :class:`RemoteProtocolError` on bad input.
    """
    expected = {"id", "sequence", "timestamp", "metadata", "payload", "rejected"}
    # The envelope is generated once for all types, so every event class must have its shape.
    names = {field.name for field in attrs.fields(cls)}
    if names != expected or not _direct_class(cls):
        raise TypeError(f"{cls.__name__}: an event class has exactly the fields {expected}")
    generator = _Generator(hook_for, custom)
    generator.namespace.update(_timestamp=timestamp, _metadata=metadata, _max_sequence=max_sequence)
    payload_type = typing.get_type_hints(cls)["payload"]
    lines = generator.fields(payload_type, "p", "p_", "payload")
    name = f"decode_{cls.__name__}"
    generator.define(
        name,
        _ENVELOPE,
        _PAYLOAD,
        *lines,
        *generator.fill(cls, "event", list(_EVENT_FIELDS)),
        "    return event",
    )
    decoder: EventDecoder = generator.compile(name)
    return decoder


def compile_envelope_decoder(
    *, timestamp: Callable[[Any], Any], metadata: Callable[[Any], Any], max_sequence: int
) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    """The envelope part alone, as keyword arguments (for batches and unknown types)."""
    generator = _Generator(lambda tp: None, frozenset())  # type: ignore[arg-type, return-value]
    generator.namespace.update(_timestamp=timestamp, _metadata=metadata, _max_sequence=max_sequence)
    generator.define("decode_envelope", _ENVELOPE, f"    return {{{_ENVELOPE_FIELDS}}}")
    envelope: Callable[[Mapping[str, Any]], dict[str, Any]] = generator.compile("decode_envelope")
    return envelope
