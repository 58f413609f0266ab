"""Sphinx configuration: MyST Markdown pages, the API reference from the docstrings, furo.

Build (warnings are errors, as in CI)::

    sphinx-build -W --keep-going -b html docs docs/_build/html
"""

from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))
sys.path.insert(0, str(DOCS.parent / "src"))

import polyai_messaging  # noqa: E402

project = "polyai-messaging"
author = "The polyai-messaging contributors"
copyright = "2026, The polyai-messaging contributors"
release = polyai_messaging.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinxcontrib.mermaid",
    "sphinxarg.ext",
    "polyai_docs",
]

# --- sources --------------------------------------------------------------------------------
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build", "_ext", "README.md"]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3
myst_fence_as_directive = ["mermaid"]

# --- cross-references: every name of this project must resolve --------------------------------
nitpicky = True
# Names of other projects: without network access at build time there is no intersphinx
# inventory to resolve them against, so they are shown unlinked.
nitpick_ignore_regex = [
    (
        r"py:.*",
        r"(builtins|typing|typing_extensions|collections|contextlib|enum|ssl|logging"
        r"|argparse|types|datetime|asyncio|decimal|pathlib|random|socket|json|re|io)(\..*)?",
    ),
    (
        r"py:.*",
        r"(trio|trio_websocket|anyio|httpx|websockets|attrs|attr|cattrs|immutables"
        r"|hypercorn|sniffio|transitions|pytest|_pytest)(\..*)?",
    ),
    (
        r"py:.*",
        r"(str|int|float|bool|bytes|object|None|type|tuple|list|dict|set|frozenset"
        r"|BaseException|Exception|ValueError|TypeError|OSError|KeyError|TimeoutError"
        r"|Ellipsis|NoneType|T|_T|_S_co|_Self|Self|Any|Final|Literal|Callable|Awaitable"
        r"|Iterable|Iterator|AsyncIterator|Mapping|Sequence|MutableMapping)",
    ),
    (r"py:.*", r"(ssl\.SSLContext|SSLContext|Path|Namespace|ArgumentParser|trustme\..*)"),
    (r"py:.*", r"(AbstractAsyncContextManager|AbstractContextManager|datetime|timedelta)"),
    # Private helper types that appear in public signatures: shown, not linked.
    (
        r"py:.*",
        r"(polyai_messaging\.[\w.]+\._\w+\.)?(Gaps|IdMemory|LogStore|ReplayLog|AccessToken|SocketConnection"
        r"|_Tokens)",
    ),
    # Type variables of generic helpers.
    (r"py:.*", r"~?(polyai_messaging\.[\w.]+\.)?_(S|P)"),
]

# --- the API reference ----------------------------------------------------------------------
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented_params"
autodoc_typehints_format = "short"
autodoc_class_signature = "mixed"
autodoc_default_options = {"members": True, "undoc-members": True}
napoleon_google_docstring = False
napoleon_numpy_docstring = False
python_use_unqualified_type_names = True
add_module_names = False

# --- output ---------------------------------------------------------------------------------
html_theme = "furo"
html_title = f"polyai-messaging {release}"
html_static_path: list[str] = []
mermaid_output_format = "raw"

# --- this project ---------------------------------------------------------------------------
# There is no public repository yet: links to the code and tests point at this placeholder.
polyai_repository = "https://github.com/polyai-messaging/polyai-messaging"
polyai_root = str(DOCS.parent)
