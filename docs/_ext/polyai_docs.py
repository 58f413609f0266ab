"""This project's Sphinx helpers.

- ``{source}`path[::name]``` links to a file of the repository, at the line where ``name`` (a
  function, class or ``Class.method``; a test) is defined. A missing file or name is an error,
  so the Protocol coverage page cannot cite code or a test that does not exist.
- ``{fault-specs}`` renders the emulator's fault specifications from
  :data:`polyai_messaging.emulator.FAULT_HELP`, so the page lists exactly what the CLI accepts.
- Private paths resolve to public names. Every public class and function is documented under
  the package that exports it (``polyai_messaging.driver.SendText``), while its ``__module__``,
  which type annotations name, is the private module it lives in
  (``polyai_messaging.driver._inputs``); such a reference is sent to the public name.
"""

from __future__ import annotations

import ast
import builtins
import importlib
import inspect
from functools import cache
from pathlib import Path
from typing import Any

from docutils import nodes
from docutils.parsers.rst import Directive
from docutils.statemachine import StringList
from sphinx.addnodes import pending_xref
from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment
from sphinx.pycode import ModuleAnalyzer
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective, SphinxRole

LOGGER = logging.getLogger(__name__)

PUBLIC_MODULES = (
    "polyai_messaging.core",
    "polyai_messaging.driver",
    "polyai_messaging.runtime",
    "polyai_messaging.rest",
    "polyai_messaging.trio",
    "polyai_messaging.asyncio",
    "polyai_messaging.emulator",
    "polyai_messaging.testing",
)
"""Where each public name is documented: the first of these that exports it."""


# --- links to the code and the tests ----------------------------------------------------------


def _definitions(tree: ast.Module) -> dict[str, int]:
    """``name`` and ``Class.name`` -> line, for every function and class of a module."""
    found: dict[str, int] = {}

    def visit(body: list[ast.stmt], prefix: str) -> None:
        for node in body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                found.setdefault(prefix + node.name, node.lineno)
                if isinstance(node, ast.ClassDef):
                    visit(node.body, f"{prefix}{node.name}.")
            elif isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    if isinstance(target, ast.Name):
                        found.setdefault(prefix + target.id, node.lineno)

    visit(tree.body, "")
    return found


@cache
def _lines_of(path: Path) -> dict[str, int]:
    return _definitions(ast.parse(path.read_text(encoding="utf-8")))


class SourceRole(SphinxRole):
    """``{source}`path``` or ``{source}`path::name```: a link into the repository."""

    def run(self) -> tuple[list[nodes.Node], list[nodes.system_message]]:
        config = self.env.config
        path, _, name = self.text.partition("::")
        file = Path(config.polyai_root) / path
        url = f"{config.polyai_repository}/blob/main/{path}"
        if not file.is_file():
            return [], [self.inliner.reporter.error(f"{path}: no such file", line=self.lineno)]
        if name:
            line = _lines_of(file).get(name) if file.suffix == ".py" else None
            if line is None:
                error = f"{path}: nothing named {name!r} is defined there"
                return [], [self.inliner.reporter.error(error, line=self.lineno)]
            url += f"#L{line}"
        self.env.note_dependency(str(file))
        label = name or path
        return [nodes.reference(self.rawtext, "", nodes.literal(label, label), refuri=url)], []


# --- the fault specifications ----------------------------------------------------------------


class FaultSpecs(Directive):
    """A table of every fault specification the emulator accepts, with its description."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        table = nodes.table()
        group = nodes.tgroup(cols=2)
        table += group
        group += nodes.colspec(colwidth=3)
        group += nodes.colspec(colwidth=7)
        group += self._head("specification", "what it does")
        body = nodes.tbody()
        fault_help = importlib.import_module("polyai_messaging.emulator").FAULT_HELP
        for spec, description in fault_help.items():
            body += self._row(nodes.literal(spec, spec), nodes.Text(description))
        group += body
        return [table]

    def _head(self, *titles: str) -> nodes.thead:
        head = nodes.thead()
        head += self._row(*(nodes.Text(title) for title in titles))
        return head

    @staticmethod
    def _row(*cells: nodes.Node) -> nodes.row:
        row = nodes.row()
        for cell in cells:
            entry = nodes.entry()
            entry += nodes.paragraph("", "", cell)
            row += entry
        return row


# --- private paths to public names -----------------------------------------------------------


@cache
def _public_names() -> dict[int, str]:
    """``id(object)`` -> the public dotted name it is documented under."""
    names: dict[int, str] = {}
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            names.setdefault(id(getattr(module, name)), f"{module_name}.{name}")
    return names


def _resolve_object(target: str) -> Any:
    """The object a dotted path names, or ``None``."""
    parts = target.split(".")
    for split in range(len(parts) - 1, 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        try:
            for attribute in parts[split:]:
                obj = getattr(obj, attribute)
        except AttributeError:
            return None
        return obj
    return None


def _public_target(target: str) -> str | None:
    """The public name of the object ``target`` names (a private or re-exported path)."""
    if not target.startswith("polyai_messaging."):
        return None
    head, _, attribute = target.rpartition(".")
    whole = _resolve_object(target)
    public = _public_names().get(id(whole)) if whole is not None else None
    if public is not None and public != target:
        return public
    owner = _resolve_object(head) if head else None  # a method or attribute of a class
    owner_name = _public_names().get(id(owner)) if owner is not None else None
    if owner_name is not None and f"{owner_name}.{attribute}" != target:
        return f"{owner_name}.{attribute}"
    return None


def resolve_private(
    app: Sphinx, env: BuildEnvironment, node: pending_xref, contnode: nodes.Element
) -> nodes.Element | None:
    """Send a reference to a private or re-exported path, or to a public name given without
    its module (as a string annotation does), to the public name."""
    if node.get("refdomain") != "py":
        return None
    target = node["reftarget"]
    module = node.get("py:module")
    candidates = [target]
    if "." not in target and module:
        candidates.append(f"{module}.{target}")
    if not target.startswith("polyai_messaging."):
        # ``Update`` or ``Update.finished``, written where ``Update`` is in scope, read where
        # the docstring is shown (an inherited method documented under another package).
        first = target.partition(".")[0]
        exporters = [m for m in PUBLIC_MODULES if first in importlib.import_module(m).__all__]
        candidates += [f"{m}.{target}" for m in exporters[:1]]
    domain = env.get_domain("py")
    for candidate in candidates:
        public = _public_target(candidate) or candidate
        if public == target:
            continue
        retry = node.deepcopy()
        retry["reftarget"] = public
        retry.attributes.pop("refspecific", None)
        for key in ("py:module", "py:class"):
            retry[key] = None
        resolved = domain.resolve_xref(
            env, node["refdoc"], app.builder, node["reftype"], public, retry, contnode
        )
        if resolved is None:  # a type alias (documented as data) named as a class, say
            found = domain.resolve_any_xref(
                env, node["refdoc"], app.builder, public, retry, contnode
            )
            resolved = found[0][1] if found else None
        if resolved is not None:
            return resolved
    return None


# --- re-exported constants and attrs signatures ----------------------------------------------


@cache
def _attribute_docs(package: str) -> dict[str, tuple[Any, list[str]]]:
    """``name`` -> (value, docstring lines) for the documented module-level names a public
    package exports, written where they are defined: in the package's own private modules
    (``polyai_messaging.core._phases.TRANSITIONS``, say) or, for a name it re-exports
    (``polyai_messaging.asyncio.MAX_INBOUND_MESSAGE``), another public package's."""
    found: dict[str, tuple[Any, list[str]]] = {}
    module = importlib.import_module(package)
    homes = [package, *(home for home in PUBLIC_MODULES if home != package)]
    for name in getattr(module, "__all__", ()):
        value = getattr(module, name)
        for sub in (sub for home in homes for sub in sorted(_private_modules(home))):
            docs = ModuleAnalyzer.for_module(sub).find_attr_docs().get(("", name))
            if docs and getattr(importlib.import_module(sub), name, None) is value:
                found[name] = (value, list(docs))
                break
    return found


def _private_modules(package: str) -> list[str]:
    root = Path(importlib.import_module(package).__file__ or "").parent
    return [f"{package}.{path.stem}" for path in root.glob("_*.py") if path.stem != "__init__"]


class AutoConstants(SphinxDirective):
    """``autoconstants`` *package*: ``autodata`` for every constant in the package's
    ``__all__`` (autodoc's ``automodule`` skips a re-exported constant: its docstring is
    written in the private module that defines it)."""

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        package = self.arguments[0]
        module = importlib.import_module(package)
        lines = StringList()
        for name in module.__all__:
            value = getattr(module, name)
            if isinstance(value, type) or inspect.isroutine(value) or inspect.ismodule(value):
                continue  # automodule documents these
            lines.append(f".. autodata:: {package}.{name}", "<autoconstants>")
            lines.append("", "<autoconstants>")
        container = nodes.section()
        self.state.nested_parse(lines, self.content_offset, container)
        return list(container.children)


class AutoReexports(SphinxDirective):
    """``autoreexports`` *package*: what the package re-exports, by the package that documents
    it, each linked to its documentation."""

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        module = importlib.import_module(self.arguments[0])
        by_home: dict[str, list[str]] = {home: [] for home in PUBLIC_MODULES}
        own: list[str] = []
        for name in module.__all__:
            public = _public_names().get(id(getattr(module, name)))
            if public is None:
                own.append(name)
            else:
                by_home[public.rpartition(".")[0]].append(public)
        lines = StringList()
        for home, names in by_home.items():
            if names:
                refs = ", ".join(f":py:obj:`~{name}`" for name in names)
                lines.append(f"- From :py:mod:`{home}`: {refs}.", "<autoreexports>")
        for name in own:
            lines.append("", "<autoreexports>")
            lines.append(f".. autodata:: {self.arguments[0]}.{name}", "<autoreexports>")
        container = nodes.section()
        self.state.nested_parse(lines, self.content_offset, container)
        return list(container.children)


class ExceptionTree(SphinxDirective):
    """``exception-tree`` *class*: the public subclasses of an exception class, as a nested
    list, each linked to its documentation."""

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        public = _public_names()
        root = _resolve_object(self.arguments[0])
        lines = StringList()

        def visit(cls: type, depth: int) -> None:
            name = public.get(id(cls))
            if name is None:
                LOGGER.warning("%r is not a public name", cls, location=self.get_location())
                return
            lines.append(f"{'  ' * depth}- :py:exc:`~{name}`", "<exception-tree>")
            for sub in sorted(cls.__subclasses__(), key=lambda c: public.get(id(c), "~")):
                if id(sub) in public:
                    lines.append("", "<exception-tree>")
                    visit(sub, depth + 1)

        for package in PUBLIC_MODULES:  # every subclass is defined once its package is loaded
            importlib.import_module(package)
        visit(root, 0)
        container = nodes.section()
        self.state.nested_parse(lines, self.content_offset, container)
        return list(container.children)


def check_public_names(app: Sphinx, env: BuildEnvironment) -> None:
    """Every name a public package exports is documented (under that package or the first
    public package that exports it)."""
    documented = env.get_domain("py").objects
    for package in PUBLIC_MODULES:
        module = importlib.import_module(package)
        for name in module.__all__:
            public = _public_names().get(id(getattr(module, name)), f"{package}.{name}")
            if public not in documented and f"{package}.{name}" not in documented:
                LOGGER.warning("%s.%s is public but not documented", package, name)


def constant_docstring(
    app: Sphinx, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    """Give a re-exported constant the docstring written where it is defined; a constant with
    none is an error, rather than shown with its type's docstring."""
    if what not in {"data", "attribute"}:
        return
    package, _, attribute = name.rpartition(".")
    entry = _attribute_docs(package).get(attribute) if package in PUBLIC_MODULES else None
    if entry is not None:
        lines[:] = entry[1]
    elif _is_type_docstring(obj, lines):
        # Autodoc falls back on the value's own docstring: for a constant, its type's
        # (``str(object='') -> str``), which says nothing about the constant.
        LOGGER.warning("%s has no doc comment where it is defined", name, type="polyai")
        lines.clear()
    if what == "data" and len(repr(obj)) > 80:  # a table: its repr says nothing useful
        lines.extend(["", ":meta hide-value:"])


def _is_type_docstring(obj: Any, lines: list[str]) -> bool:
    """Whether ``lines`` are the docstring of ``obj``'s type rather than of ``obj``."""
    own = inspect.getdoc(type(obj))
    return bool(own) and "\n".join(lines).strip() == inspect.cleandoc(own or "").strip()


def attrs_signature(
    app: Sphinx,
    what: str,
    name: str,
    obj: Any,
    options: Any,
    signature: str | None,
    return_annotation: str | None,
) -> tuple[str | None, str | None] | None:
    """attrs' marker for a default made by a factory reads as ``<factory>``, as dataclasses'."""
    if signature and "=NOTHING" in signature:
        return signature.replace("=NOTHING", "=<factory>"), return_annotation
    return None


def builtins_are_builtins(app: Sphinx, doctree: nodes.document) -> None:
    """An annotation's ``type`` or ``list`` names the builtin, never an attribute of that name
    somewhere in the reference (Sphinx searches those for a name in an annotation)."""
    for node in doctree.findall(pending_xref):
        if node.get("refdomain") == "py" and node["reftarget"] in vars(builtins):
            # The domain searches fuzzily whenever the attribute is there, whatever its value.
            node.attributes.pop("refspecific", None)


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_config_value("polyai_repository", "", "env")
    app.add_config_value("polyai_root", "", "env")
    app.add_role("source", SourceRole())
    app.add_directive("fault-specs", FaultSpecs)
    app.connect("missing-reference", resolve_private)
    app.connect("doctree-read", builtins_are_builtins)
    app.connect("env-check-consistency", check_public_names)
    app.add_directive("autoconstants", AutoConstants)
    app.add_directive("autoreexports", AutoReexports)
    app.add_directive("exception-tree", ExceptionTree)
    app.connect("autodoc-process-docstring", constant_docstring)
    app.connect("autodoc-process-signature", attrs_signature)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
