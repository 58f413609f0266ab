"""Probe: what an idle session holds in memory, by owner.

Not a benchmark (it prints no target): a tool for finding who holds each session's memory. N
sessions are opened against an emulator in another process (heartbeats every 2 s) and held
idle; tracemalloc compares what is allocated before they open and once every heartbeat cycle
has started, per session:

* by the file that allocated each block (its innermost frame);
* by the first frame outside the standard library's plumbing, from the innermost out
  (``--owner``: which library's code asked for it);
* the largest allocating tracebacks (``--tracebacks N``, 6 frames each).

It also counts, per session, the objects the collector tracks (``gc.get_objects``), by type.

Run: ``python bench/_mem_probe.py --adapter trio --sessions 200``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import tracemalloc
from collections import Counter
from typing import Any

import anyio
from _common import cli_emulator, client_for, emit, hold_sessions, rss_bytes

from polyai_messaging.runtime import SessionRuntime

INTERVAL = 2
_PLUMBING = ("/contextlib.py", "/abc.py", "/functools.py", "/typing.py", "/<frozen")


def _short(filename: str) -> str:
    parts = filename.split("/site-packages/", 1)
    if len(parts) == 2:
        return parts[1]
    parts = filename.split("/src/", 1)
    if len(parts) == 2:
        return parts[1]
    return filename.rsplit("/", 2)[-1]


def _owner(trace: tracemalloc.Traceback, library: bool) -> str:
    """The innermost frame outside the standard library (``library``: in this library)."""
    for frame in reversed(list(trace)):  # innermost first (a Traceback lists it last)
        name = frame.filename
        if library and "polyai_messaging/" not in name:
            continue
        if "/site-packages/" in name or "/src/" in name or not name.endswith(_PLUMBING):
            return f"{_short(name)}:{frame.lineno}"
    return "(elsewhere)"


def _task_root(trace: tracemalloc.Traceback) -> str:
    """The outermost frame outside the loops' and the standard library's machinery: the
    function of the task that allocated (or that called in)."""
    for frame in trace:  # outermost first
        name = frame.filename
        if "/trio/_core/" in name or "/anyio/" in name or "_mem_probe.py" in name:
            continue
        if "/asyncio/" in name and "polyai_messaging" not in name:
            continue
        if "/site-packages/" in name or "/src/" in name or not name.endswith(_PLUMBING):
            return f"{_short(name)}:{frame.lineno}"
    return "(elsewhere)"


_SKIPPED_EDGES = frozenset(
    {
        "_parent", "_parent_task", "_parent_nursery", "_eventual_parent_nursery", "_runner",
        "_loop", "loop", "_parent_cancel_status", "_parent_scope", "_host_task", "f_back",
        "f_globals", "f_builtins", "__globals__", "__builtins__",
    }
)  # fmt: skip
"""Edges that lead out of a session, to what its tasks run inside (the caller's nursery, the
loop): not followed."""


def _labelled(obj: Any) -> list[tuple[str, Any]]:
    """``obj``'s referents, named where a name is known (attributes, keys, locals)."""
    out: list[tuple[str, Any]] = []
    if isinstance(obj, dict):
        for key, value in obj.items():
            out.append(("<key>", key))
            out.append((f"[{str(key)[:30]}]", value))
        return out
    if isinstance(obj, (list, tuple, set, frozenset)) or type(obj).__name__ == "deque":
        return [(f"[{i}]", item) for i, item in enumerate(obj)]
    if isinstance(obj, asyncio.Task):
        # Not its done callbacks, which lead to whoever started it (a task group of many).
        return [("coro", obj.get_coro())]
    frame = getattr(obj, "cr_frame", None) or getattr(obj, "gi_frame", None)
    frame = frame or getattr(obj, "ag_frame", None)
    if frame is not None:
        named = {id(v): k for k, v in frame.f_locals.items()}
        return [(named.get(id(r), "<stack>"), r) for r in gc.get_referents(obj)]
    names: dict[int, str] = {}
    attributes = getattr(obj, "__dict__", None)
    if isinstance(attributes, dict):
        for key, value in attributes.items():
            names[id(value)] = key
    for kind in type(obj).__mro__:
        for slot in kind.__dict__.get("__slots__", ()):
            value = getattr(obj, slot, None)
            if value is not None:
                names[id(value)] = slot
    if isinstance(attributes, dict):
        # The dict's own size is the object's; its values are the object's attributes.
        out.append(("__dict__", attributes))
    for referent in gc.get_referents(obj):
        if referent is attributes:
            continue
        out.append((names.get(id(referent), "?"), referent))
    return out


def _reach(root: Any, blocked: set[int]) -> dict[int, tuple[Any, int | None, str]]:
    """Everything reachable from ``root`` without passing ``blocked`` objects or the skipped
    edges: ``id -> (object, parent id, edge)`` (a breadth-first tree)."""
    import types  # noqa: PLC0415

    seen: dict[int, tuple[Any, int | None, str]] = {id(root): (root, None, "root")}
    queue = [root]
    while queue:
        following = []
        for obj in queue:
            for edge, child in _labelled(obj):
                if edge in _SKIPPED_EDGES or id(child) in seen or id(child) in blocked:
                    continue
                if isinstance(child, (type, types.ModuleType, types.CodeType)):
                    continue
                seen[id(child)] = (child, id(obj), edge)
                following.append(child)
        queue = following
    return seen


def walk(root: Any, other: Any, blocked: set[int], top: int, depth: int) -> None:
    """One session's exclusive objects (reachable from ``root`` and not from ``other``), by
    type and as a tree of the largest subtrees."""
    mine = _reach(root, blocked)
    theirs = _reach(other, blocked)
    own = {key: value for key, value in mine.items() if key not in theirs}
    if id(root) not in own:
        path, key = [], id(root)
        while key is not None:
            obj, key, edge = theirs[key]
            path.append(f"{edge}: {type(obj).__qualname__}")
        print("    the other session reaches this one:", " <- ".join(path))
        return
    sizes = {key: sys.getsizeof(value[0]) for key, value in own.items()}
    by_type: Counter[str] = Counter()
    counts: Counter[str] = Counter()
    for key, (obj, _, _) in own.items():
        by_type[type(obj).__qualname__] += sizes[key]
        counts[type(obj).__qualname__] += 1
    print(f"    one session's own objects: {len(own)}, {sum(sizes.values()) / 1024:.2f} KiB")
    for name, size in by_type.most_common(top):
        print(f"      {size:7d}  {counts[name]:4d}  {name}")
    subtree = dict(sizes)
    children: dict[int, list[int]] = {}
    order = list(own)
    for key in reversed(order):  # breadth-first order, so children come after their parent
        parent = own[key][1]
        if parent is not None and parent in own:
            subtree[parent] += subtree[key]
            children.setdefault(parent, []).append(key)

    def show(key: int, level: int) -> None:
        obj, _, edge = own[key]
        name = type(obj).__qualname__
        print(f"      {'  ' * level}{subtree[key]:6d} {sizes[key]:5d}  .{edge}: {name}")
        if level < depth:
            for child in sorted(children.get(key, []), key=lambda k: -subtree[k]):
                if subtree[child] >= 200:
                    show(child, level + 1)

    show(id(root), 0)


async def probe(arguments: argparse.Namespace) -> dict[str, Any]:
    backend = arguments.adapter
    count = arguments.sessions
    sessions: list[SessionRuntime] = []
    release = anyio.Event()
    with cli_emulator("--heartbeat-interval", str(INTERVAL)) as emulator:
        async with client_for(emulator) as client:
            async with client.open(backend) as warm_up:
                await warm_up.wait_reply()
            gc.collect()
            existing = gc.get_objects()
            existing.extend(gc.get_referents(*existing))
            tracked_before = Counter(type(o).__qualname__ for o in existing if gc.is_tracked(o))
            tracemalloc.start(arguments.frames)
            before = tracemalloc.take_snapshot()
            rss_before = rss_bytes()
            async with anyio.create_task_group() as group:
                group.start_soon(hold_sessions, client, backend, count, sessions, release)
                while len(sessions) < count:
                    await anyio.sleep(0.1)
                await anyio.sleep(2 * INTERVAL + 0.5)
                gc.collect()
                after = tracemalloc.take_snapshot()
                rss_after = rss_bytes()
                tracemalloc.stop()
                tracked = Counter(type(o).__qualname__ for o in gc.get_objects())
                if arguments.walk:
                    blocked = {id(o) for o in existing}
                    roots = [_session_task(backend, session) for session in sessions[:2]]
                    walk(roots[0], roots[1], blocked, arguments.top, arguments.walk)
                release.set()
    filters = [tracemalloc.Filter(False, tracemalloc.__file__)]
    before, after = before.filter_traces(filters), after.filter_traces(filters)
    by_file = after.compare_to(before, "filename")
    total = sum(d.size_diff for d in by_file)
    print(f"  {backend}: {count} sessions")
    print(
        f"    traced {total / count / 1024:.2f} KiB per session; RSS "
        f"{(rss_after - rss_before) / count / 1024:.1f} KiB per session (tracemalloc's own "
        "included)"
    )
    print("    by file (bytes per session, blocks per session):")
    for diff in by_file[: arguments.top]:
        name = _short(diff.traceback[0].filename)
        print(f"      {diff.size_diff / count:8.0f}  {diff.count_diff / count:6.1f}  {name}")
    diffs = after.compare_to(before, "traceback")
    for library in (None, False, True):
        owners: Counter[str] = Counter()
        blocks: Counter[str] = Counter()
        for diff in diffs:
            if library is None:
                owner = _task_root(diff.traceback)
            else:
                owner = _owner(diff.traceback, library)
            owners[owner] += diff.size_diff
            blocks[owner] += diff.count_diff
        whose = {None: "task's root", False: "innermost non-stdlib", True: "library's innermost"}
        print(f"    by {whose[library]} line (bytes per session, blocks per session):")
        for owner, size in owners.most_common(arguments.top):
            print(f"      {size / count:8.0f}  {blocks[owner] / count:6.1f}  {owner}")
    if arguments.tracebacks:
        print("    largest tracebacks:")
        for diff in diffs[: arguments.tracebacks]:
            print(f"      {diff.size_diff / count:8.0f}  {diff.count_diff / count:6.1f}")
            for frame in list(reversed(list(diff.traceback)))[:8]:
                print(f"                {_short(frame.filename)}:{frame.lineno}")
    grown = tracked - tracked_before
    print(f"    tracked objects per session: {sum(grown.values()) / count:.1f}")
    for name, n in grown.most_common(arguments.top):
        print(f"      {n / count:7.2f}  {name}")
    return {
        "adapter": backend,
        "sessions": count,
        "traced_kib_per_session": round(total / count / 1024, 2),
        "tracked_per_session": round(sum(grown.values()) / count, 1),
    }


def _session_task(backend: str, session: Any) -> Any:
    """The task that runs ``async with open_session(...)`` for ``session``."""
    if backend == "trio":
        return session._nursery._parent_task
    return session._tasks._parent_task


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--adapter", choices=("trio", "asyncio"), default="trio")
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--frames", type=int, default=12, help="traceback depth traced")
    parser.add_argument("--tracebacks", type=int, default=0, help="largest tracebacks shown")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument(
        "--walk", type=int, default=0, help="walk one session's objects, a tree this deep"
    )
    arguments = parser.parse_args()
    emit(anyio.run(probe, arguments, backend=arguments.adapter))
    return 0


if __name__ == "__main__":
    sys.exit(main())
