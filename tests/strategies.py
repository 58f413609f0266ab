"""Shared hypothesis strategies: realistic, *valid* server journals and ways to deliver them.

A journal is what one PolyAI Messaging session's server would send, in its natural live order:
``SESSION_START`` first, the join echo and ``POLY_AGENT_JOINED``, ``THINKING`` before every
agent reply, replies whole or as (possibly concurrent) chunk streams, whole replies sometimes
naming their sender or offering call actions, user-message echoes carrying
``metadata.custom.client_event_id`` (resends included), handoffs (server- and client-managed,
failed, timed out), queue statuses, language changes, catalogue system messages, unknown types,
and maybe a ``SESSION_END``. Journaled events have consecutive
sequences from 1 and unique ids; transient events (typing, heartbeat echoes, live notices) have
``sequence: null``.

Alongside the frames, the builder records what a correct client must conclude
(:class:`Expected`), so suites can check correctness as well as confluence.

Delivery strategies (:func:`deliveries`) turn a journal into frames *as received*: any
permutation, random grouping into ``EVENT_BATCH`` frames (sometimes with the Appendix B inner
form), bare events, and duplicated events.

Usable from any suite: ``from strategies import journals, deliveries, project``.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

from polyai_messaging.core import KNOWN_TYPES, Conversation
from polyai_messaging.core._phases import Phase, is_expected, next_phase

__all__ = [
    "CATALOGUE",
    "Expected",
    "ExpectedMessage",
    "Journal",
    "batch_frame",
    "deliveries",
    "dumps",
    "examples",
    "journals",
    "project",
]

Frame = dict[str, Any]


def examples(count: int) -> int:
    """``count`` scaled by ``$POLYAI_TEST_DEPTH`` (default 1): e.g. 20 for a long soak run.

    The defaults keep the whole suite at a few seconds.
    """
    return max(1, round(count * float(os.environ.get("POLYAI_TEST_DEPTH", "1"))))


BASE_TIME = datetime(2024, 2, 12, 12, 0, 0, tzinfo=UTC)
PLUS_ONE = timezone(timedelta(hours=1))

CATALOGUE: tuple[str, ...] = (
    "Unknown event type or invalid message format",
    "Event type not allowed: EVENT_TYPE_POLY_AGENT_MESSAGE",
    "Our system is experiencing high load. Please try again in a moment.",
    "Sorry, I'm unable to start a conversation right now. Please try again later.",
    "Sorry, I'm having trouble responding right now. Please try again.",
    "Sorry, I encountered an error. Please try again.",
    "Error: Session not found",
    "Error: Unable to retrieve session",
    "Error: Connector not found",
    "Error: Conversation not found",
    "Error: Conversation ID not found in session",
    "Sorry, we could not connect you to an agent. Please try again.",
    "Failed to forward message to live agent",
    "Sorry, handoff could not be initiated.",
)
"""Every exact ``message`` string the server documents."""

LEVELS = ("SYSTEM_MESSAGE_LEVEL_INFO", "SYSTEM_MESSAGE_LEVEL_WARNING", "SYSTEM_MESSAGE_LEVEL_ERROR")
LANGUAGES = ("en-US", "fr-FR", "de-DE", "es-ES", "ar-EG", "ja-JP")
UNKNOWN_TYPES = (
    "EVENT_TYPE_SESSION_IDLE_WARNING",
    "EVENT_TYPE_SHOW_CSAT_REQUEST",
    "EVENT_TYPE_USER_READ_MESSAGE",
    "EVENT_TYPE_LINK_TO_WEBRTC_CONVERSATION",
)
WORDS = ("Hello", "there", "I can", "help", "with", "your", "booking", "é", "日本", "🙂", " ", "")


@dataclass
class ExpectedMessage:
    role: str
    """``user``, ``agent``, ``live_agent`` or ``system``."""
    key: str
    sequence: int
    """The first sequence that carried it: its place in the transcript."""
    text: str
    complete: bool
    suggestions: tuple[str, ...] = ()
    attachment_urls: tuple[str, ...] = ()
    client_event_id: str | None = None
    agent_name: str | None = None
    """The sender's name the message itself gives (whole agent messages)."""
    call_actions: tuple[tuple[str | None, str | None], ...] = ()
    """``(title, contact_number)`` of each call action, ``None`` where absent."""


@dataclass
class Expected:
    """What a correct client concludes from the whole journal, whatever the delivery."""

    cursor: int = 0
    phase: Phase = Phase.CONNECTING
    agent_name: str | None = None
    live_agent: tuple[str | None, str | None, str | None] | None = None
    language: str | None = None
    end_reason: str | None = None
    queue_name: str | None = None
    queue_position: int | None = None
    client_handoff_reason: str | None = None
    streaming: bool | None = None
    anomalies: int = 0
    messages: list[ExpectedMessage] = field(default_factory=list)
    client_event_ids: set[str] = field(default_factory=set)
    known_events: int = 0
    """Sequenced events of a known type (``events_applied``)."""


@dataclass
class Journal:
    frames: list[Frame]
    """Every event in natural live order, transient ones included."""
    expected: Expected

    @property
    def sequenced(self) -> list[Frame]:
        return [f for f in self.frames if f.get("sequence") is not None]

    @property
    def transient(self) -> list[Frame]:
        return [f for f in self.frames if f.get("sequence") is None]


def dumps(frame: Frame) -> str:
    """A frame as the server sends it: compact JSON."""
    return json.dumps(frame, separators=(",", ":"), ensure_ascii=False)


# --- the journal builder -----------------------------------------------------------------------


class _Builder:
    """Appends events as the server would, tracking what a correct client should conclude."""

    def __init__(self, draw: st.DrawFn) -> None:
        self.draw = draw
        self.frames: list[Frame] = []
        self.expected = Expected()
        self.sequence = 0
        self.transient_count = 0
        self.message_count = 0
        self.client_count = 0
        self.by_key: dict[str, ExpectedMessage] = {}
        self.live_id: str | None = None

    # envelope ------------------------------------------------------------------------------

    def _uuid(self, kind: int, number: int) -> str:
        return str(uuid.UUID(int=(kind << 64) | number))

    def _timestamp(self, seconds: int) -> str:
        moment = BASE_TIME + timedelta(seconds=seconds, microseconds=self.draw(st.integers(0, 999)))
        style = self.draw(st.sampled_from(("Z", "Z", "ms", "us", "ns", "offset")))
        if style == "Z":
            return moment.replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")
        if style == "ms":
            return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
        if style == "us":
            return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        if style == "ns":
            return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z"
        return moment.astimezone(PLUS_ONE).isoformat()

    def emit(
        self,
        kind: str,
        payload: dict[str, Any] | None = None,
        *,
        custom: dict[str, str] | None = None,
    ) -> Frame:
        """A journaled event: next sequence, fresh id, a timestamp."""
        self.sequence += 1
        frame: Frame = {
            "id": self._uuid(1, self.sequence),
            "sequence": self.sequence,
            "timestamp": self._timestamp(self.sequence),
            "type": kind,
            "payload": {} if payload is None else payload,
        }
        if self.draw(st.integers(0, 9)) == 0:
            del frame["timestamp"]  # replayed inner events may lack it
        if custom:
            frame["metadata"] = {"custom": custom}
        self.frames.append(frame)
        self.expected.cursor = self.sequence
        if kind in KNOWN_TYPES:
            self.expected.known_events += 1
        return frame

    def transient(self, kind: str, payload: dict[str, Any], *, with_id: bool = True) -> None:
        """A transient event: ``sequence: null`` (or absent, for heartbeat echoes)."""
        self.transient_count += 1
        frame: Frame = {"type": kind, "payload": payload}
        if with_id:
            frame["id"] = self._uuid(2, self.transient_count)
            frame["sequence"] = None
            frame["timestamp"] = self._timestamp(self.sequence)
        self.frames.append(frame)

    # phases ----------------------------------------------------------------------------------

    def phase_event(self, kind: str, payload: dict[str, Any] | None = None) -> Frame:
        if not is_expected(self.expected.phase, kind):
            self.expected.anomalies += 1
        self.expected.phase = next_phase(self.expected.phase, kind)
        return self.emit(kind, payload)

    # messages --------------------------------------------------------------------------------

    def _message(self, role: str, key: str, **fields: Any) -> ExpectedMessage:
        """The expected message ``key``, created at the event just emitted (its sequence)."""
        message = self.by_key.get(key)
        if message is None:
            message = ExpectedMessage(
                role=role, key=key, sequence=self.sequence, text="", complete=False, **fields
            )
            self.by_key[key] = message
            self.expected.messages.append(message)
        return message

    def _attachments(self) -> list[dict[str, str]]:
        count = self.draw(st.integers(0, 2))
        out = []
        for _ in range(count):
            self.message_count += 1
            n = self.message_count
            out.append(
                {
                    "title": f"Card {n}",
                    "preview_image_url": f"https://example.com/thumb/{n}.png",
                    "content_url": f"https://example.com/content/{n}",
                    "content_type": self.draw(
                        st.sampled_from(
                            ("ATTACHMENT_CONTENT_TYPE_URL", "ATTACHMENT_CONTENT_TYPE_IMAGE")
                        )
                    ),
                    "call_to_action_text": "Open",
                }
            )
        return out

    def _suggestions(self) -> list[dict[str, str]]:
        count = self.draw(st.integers(0, 2))
        return [{"message_text": f"Option {self.draw(st.integers(1, 99))}"} for _ in range(count)]

    def _agent_extras(self) -> dict[str, Any]:
        """Optional fields the SDKs read on a whole agent message: its sender, call actions."""
        extras: dict[str, Any] = {}
        if self.draw(st.booleans()):
            name = self.draw(st.sampled_from(("Ada", "Grace", "Alan")))
            extras.update(agent_name=name, avatar_url=f"https://example.com/{name}.png")
        if self.draw(st.integers(0, 3)) == 0:
            action = st.fixed_dictionaries(
                {},
                optional={
                    "title": st.sampled_from(("Reservations", "Front desk")),
                    "contact_number": st.sampled_from(("+44 20 7946 0000", "999")),
                },
            )
            extras["chat_call_actions"] = self.draw(st.lists(action, min_size=1, max_size=2))
        return extras

    def _text(self) -> str:
        return "".join(self.draw(st.lists(st.sampled_from(WORDS), max_size=4)))

    def agent_reply(self) -> None:
        """``THINKING`` then one whole message, or one to three concurrent chunk streams."""
        self.emit("EVENT_TYPE_POLY_AGENT_THINKING")
        streaming = bool(self.expected.streaming)
        if not streaming or self.draw(st.integers(0, 9)) == 0:
            self.message_count += 1
            key = f"msg_{self.message_count}"
            payload = {
                "message_id": key,
                "text": self._text(),
                "attachments": self._attachments(),
                "response_suggestions": self._suggestions(),
                **self._agent_extras(),
            }
            self.emit("EVENT_TYPE_POLY_AGENT_MESSAGE", payload)
            message = self._message("agent", key)
            message.text = payload["text"]
            message.agent_name = payload.get("agent_name")
            message.call_actions = tuple(
                (action.get("title"), action.get("contact_number"))
                for action in payload.get("chat_call_actions", ())
            )
            message.complete = True
            message.suggestions = tuple(s["message_text"] for s in payload["response_suggestions"])
            message.attachment_urls = tuple(a["content_url"] for a in payload["attachments"])
            return
        self.streams(self.draw(st.integers(1, 3)))

    def streams(self, count: int) -> None:
        """``count`` concurrent streams, chunks interleaved, each in ``chunk_index`` order."""
        plans: list[list[Frame]] = []
        for _ in range(count):
            self.message_count += 1
            key = f"msg_{self.message_count}"
            size = self.draw(st.integers(1, 4))
            finished = self.draw(st.integers(0, 7)) != 0
            chunks = []
            for index in range(1, size + 1):
                final = finished and index == size
                chunks.append(
                    {
                        "message_id": key,
                        "text": "" if final and self.draw(st.booleans()) else self._text(),
                        "attachments": self._attachments(),
                        "response_suggestions": self._suggestions(),
                        "chunk_index": index,
                        "is_complete": final,
                    }
                )
            plans.append(chunks)
        order = self.draw(
            st.permutations([i for i, plan in enumerate(plans) for _ in plan]),
        )
        cursors = [0] * len(plans)
        for which in order:
            plan = plans[which]
            chunk = plan[cursors[which]]
            cursors[which] += 1
            self.emit("EVENT_TYPE_POLY_AGENT_MESSAGE_CHUNK", chunk)
            if chunk["chunk_index"] == 1:
                message = self._message("agent", chunk["message_id"])
                message.text = "".join(c["text"] for c in plan)
                message.complete = plan[-1]["is_complete"]
                message.suggestions = tuple(
                    s["message_text"] for c in plan for s in c["response_suggestions"]
                )
                message.attachment_urls = tuple(
                    a["content_url"] for c in plan for a in c["attachments"]
                )
        for plan in plans:
            # A replay may also hold the consolidated message for a finished stream.
            if plan[-1]["is_complete"] and self.draw(st.integers(0, 3)) == 0:
                key = plan[0]["message_id"]
                message = self.by_key[key]
                consolidated = {
                    "message_id": key,
                    "text": message.text,
                    "attachments": [a for c in plan for a in c["attachments"]],
                    "response_suggestions": [s for c in plan for s in c["response_suggestions"]],
                }
                self.emit("EVENT_TYPE_POLY_AGENT_MESSAGE", consolidated)

    def user_message(self, *, routed_to_live: bool = False) -> None:
        """A user echo; sometimes resent (same ``client_event_id``, new ``message_id``)."""
        self.client_count += 1
        text = self._text() or "hi"
        style = self.draw(
            st.sampled_from(("client_event_id", "client_event_id", "local_id", "none"))
        )
        custom: dict[str, str] = {}
        client_event_id = None
        if style != "none":
            client_event_id = f"cev-{self.client_count}"
            custom[style] = client_event_id
            if self.draw(st.booleans()):
                custom["draft"] = "yes"
        copies = self.draw(st.integers(1, 3)) if client_event_id else 1
        for _ in range(copies):
            self.message_count += 1
            server_id = f"umsg_{self.message_count}"
            self.emit(
                "EVENT_TYPE_USER_MESSAGE",
                {"text": text, "message_id": server_id},
                custom=custom or None,
            )
            key = f"client:{client_event_id}" if client_event_id else server_id
            message = self._message("user", key, client_event_id=client_event_id)
            message.text = text
            message.complete = True
        if client_event_id:
            self.expected.client_event_ids.add(client_event_id)
        if routed_to_live:
            self.live_reply()
        elif self.expected.phase is not Phase.ACTIVE:
            # Nobody to answer: the server reports it (a documented system message).
            frame = self.emit(
                "EVENT_TYPE_SYSTEM_MESSAGE",
                {"level": "SYSTEM_MESSAGE_LEVEL_ERROR", "message": "Error: Conversation not found"},
                custom=custom or None,
            )
            message = self._message("system", f"event:{frame['id']}")
            message.text = "Error: Conversation not found"
            message.complete = True
        elif self.draw(st.integers(0, 4)) != 0:
            self.agent_reply()

    def live_reply(self) -> None:
        assert self.live_id is not None
        self.transient(
            "EVENT_TYPE_LIVE_AGENT_TYPING",
            {"state": "TYPING_STATE_STARTED", "agent_id": self.live_id},
        )
        self.message_count += 1
        key = f"msg_live_{self.message_count}"
        payload = {
            "message_id": key,
            "agent_id": self.live_id,
            "text": self._text(),
            "attachments": self._attachments(),
            "response_suggestions": [],
        }
        self.emit("EVENT_TYPE_LIVE_AGENT_MESSAGE", payload)
        message = self._message("live_agent", key)
        message.text = payload["text"]
        message.complete = True
        message.attachment_urls = tuple(a["content_url"] for a in payload["attachments"])
        if self.draw(st.booleans()):
            self.transient(
                "EVENT_TYPE_LIVE_AGENT_TYPING",
                {"state": "TYPING_STATE_STOPPED", "agent_id": self.live_id},
            )

    def system_message(self, *, sequenced: bool = True) -> None:
        text = self.draw(st.sampled_from(CATALOGUE))
        level = self.draw(st.sampled_from(LEVELS))
        payload = {"level": level, "message": text}
        if not sequenced:
            self.transient("EVENT_TYPE_SYSTEM_MESSAGE", payload)
            return
        frame = self.emit("EVENT_TYPE_SYSTEM_MESSAGE", payload)
        message = self._message("system", f"event:{frame['id']}")
        message.text = text
        message.complete = True

    def join(self) -> None:
        self.emit("EVENT_TYPE_REQUEST_POLY_AGENT_JOIN")
        name = self.draw(st.sampled_from(("Ada", "Grace", "Alan")))
        self.phase_event(
            "EVENT_TYPE_POLY_AGENT_JOINED",
            {"agent_name": name, "agent_avatar_url": f"https://example.com/{name}.png"},
        )
        self.expected.agent_name = name
        self.agent_reply()

    def ensure_active(self) -> None:
        if self.expected.phase is not Phase.ACTIVE:
            self.join()

    def server_handoff(self) -> None:
        self.ensure_active()
        self.phase_event("EVENT_TYPE_POLY_AGENT_TRIGGERED_HANDOFF")
        self.emit("EVENT_TYPE_POLY_AGENT_LEFT")
        self.phase_event("EVENT_TYPE_HANDOFF_ACCEPTED")
        for _ in range(self.draw(st.integers(0, 3))):
            name = "General Support"
            position = self.draw(st.integers(1, 9))
            alias = self.draw(st.booleans())
            payload: dict[str, Any] = {
                "queue_name": name,
                "position" if alias else "position_in_queue": position,
                "estimated_wait_seconds": position * 60,
            }
            self.phase_event("EVENT_TYPE_HANDOFF_QUEUE_STATUS", payload)
            self.expected.queue_name = name
            self.expected.queue_position = position
        outcome = self.draw(st.sampled_from(("live", "live", "failed", "timeout")))
        if outcome == "failed":
            self.phase_event("EVENT_TYPE_HANDOFF_FAILED")
            return
        if outcome == "timeout":
            self.phase_event("EVENT_TYPE_HANDOFF_TIMEOUT")
            return
        self.live_id = f"agent_{self.draw(st.integers(1, 99))}"
        name = self.draw(st.sampled_from(("Sarah", "Tom")))
        avatar = f"https://example.com/avatars/{name}.png"
        if self.draw(st.booleans()):
            payload = {"agent": {"id": self.live_id, "name": name, "avatar_url": avatar}}
        else:
            payload = {"agent_id": self.live_id, "agent_name": name, "avatar_url": avatar}
        self.phase_event("EVENT_TYPE_LIVE_AGENT_JOINED", payload)
        self.expected.live_agent = (self.live_id, name, avatar)
        for _ in range(self.draw(st.integers(1, 3))):
            self.user_message(routed_to_live=True)
        if self.draw(st.booleans()):
            self.emit("EVENT_TYPE_LIVE_AGENT_LEFT")

    def client_handoff(self) -> None:
        self.ensure_active()
        self.phase_event("EVENT_TYPE_POLY_AGENT_TRIGGERED_HANDOFF")
        reason = self.draw(
            st.sampled_from(("COMPLEX_QUERY", "AGENT_DECISION", "POLICY", "NEW_ONE"))
        )
        self.phase_event(
            "EVENT_TYPE_CLIENT_HANDOFF_REQUIRED", {"reason": reason, "queue_name": "Support Queue"}
        )
        self.expected.client_handoff_reason = reason
        self.emit("EVENT_TYPE_POLY_AGENT_LEFT")

    def anomaly(self) -> None:
        """A phase event the table does not expect here (still a valid journal entry)."""
        kind = self.draw(
            st.sampled_from(
                (
                    "EVENT_TYPE_HANDOFF_ACCEPTED",
                    "EVENT_TYPE_LIVE_AGENT_JOINED",
                    "EVENT_TYPE_HANDOFF_TIMEOUT",
                    "EVENT_TYPE_POLY_AGENT_TRIGGERED_HANDOFF",
                )
            )
        )
        if is_expected(self.expected.phase, kind):
            return
        payload: dict[str, Any] = {}
        if kind == "EVENT_TYPE_LIVE_AGENT_JOINED":
            self.live_id = "agent_x"
            payload = {"agent": {"id": "agent_x", "name": "X"}}
            self.expected.live_agent = ("agent_x", "X", None)
        self.phase_event(kind, payload)

    def end(self) -> None:
        how = self.draw(st.sampled_from(("user", "natural", "abandoned", "unknown")))
        if how == "user":
            self.emit("EVENT_TYPE_USER_END_SESSION")
            reason = "REASON_USER_END"
        else:
            reason = {
                "natural": "REASON_NATURAL_END",
                "abandoned": "REASON_USER_ABANDONED",
                "unknown": "REASON_SOMETHING_NEW",
            }[how]
        self.phase_event("EVENT_TYPE_SESSION_END", {"reason": reason})
        self.expected.end_reason = reason


ACTIONS = (
    "user",
    "user",
    "streams",
    "language",
    "system",
    "notice",
    "unknown",
    "server_handoff",
    "client_handoff",
    "heartbeat",
    "thinking",
)


@st.composite
def journals(
    draw: st.DrawFn,
    *,
    max_actions: int = 8,
    allow_anomalies: bool = True,
    allow_end: bool = True,
) -> Journal:
    """A realistic valid journal (see the module docstring)."""
    builder = _Builder(draw)
    streaming = draw(st.booleans())
    builder.expected.streaming = streaming
    capabilities: dict[str, Any] = {
        "streaming": streaming,
        "max_message_size_bytes": 131072,
        "max_reconnect_attempts": 5,
        "heartbeat_interval_seconds": 30,
    }
    if draw(st.booleans()):
        capabilities["context_id"] = "ctx-123"
    builder.emit("EVENT_TYPE_SESSION_START", {"capabilities": capabilities})
    if draw(st.integers(0, 6)) != 0:
        builder.join()
    for action in draw(st.lists(st.sampled_from(ACTIONS), max_size=max_actions)):
        if action == "user":
            builder.user_message(routed_to_live=False)
        elif action == "streams":
            builder.ensure_active()
            builder.emit("EVENT_TYPE_POLY_AGENT_THINKING")
            builder.streams(draw(st.integers(1, 3)))
        elif action == "language":
            language = draw(st.sampled_from(LANGUAGES))
            builder.emit("EVENT_TYPE_LANGUAGE_CHANGED", {"language_code": language})
            builder.expected.language = language
        elif action == "system":
            builder.system_message()
        elif action == "notice":
            builder.system_message(sequenced=False)
        elif action == "unknown":
            builder.emit(draw(st.sampled_from(UNKNOWN_TYPES)), {"whatever": [1, 2]})
        elif action == "server_handoff":
            builder.server_handoff()
        elif action == "client_handoff":
            builder.client_handoff()
        elif action == "heartbeat":
            builder.transient("EVENT_TYPE_HEARTBEAT", {}, with_id=draw(st.booleans()))
        elif action == "thinking":
            builder.ensure_active()
            builder.agent_reply()
        if allow_anomalies and draw(st.integers(0, 15)) == 0:
            builder.anomaly()
    if allow_end and draw(st.integers(0, 2)) == 0:
        builder.end()
    return Journal(frames=builder.frames, expected=builder.expected)


# --- delivery: permutations, batches, duplicates --------------------------------------------


def inner_form(frame: Frame) -> Frame:
    """Protocol Appendix B: the payload under the type-derived key instead of ``payload``."""
    key = frame["type"].removeprefix("EVENT_TYPE_").lower()
    out = {k: v for k, v in frame.items() if k != "payload"}
    out[key] = frame.get("payload", {})
    return out


def batch_frame(events: Iterable[Frame], *, batch_id: str | None = None) -> Frame:
    """An ``EVENT_BATCH`` frame (its own envelope has ``sequence: null``)."""
    frame: Frame = {"type": "EVENT_TYPE_EVENT_BATCH", "payload": {"events": list(events)}}
    if batch_id is not None:
        frame["id"] = batch_id
        frame["sequence"] = None
        frame["timestamp"] = "2024-02-12T12:00:00Z"
    return frame


@st.composite
def deliveries(draw: st.DrawFn, events: Sequence[Frame], *, duplicates: bool = True) -> list[Frame]:
    """``events`` as received: permuted, duplicated, grouped into batch frames or bare."""
    items = list(events)
    if duplicates and items:
        extra = draw(st.lists(st.sampled_from(items), max_size=max(1, len(items) // 3)))
        items.extend(extra)
    items = draw(st.permutations(items))
    frames: list[Frame] = []
    position = 0
    batch_number = 0
    while position < len(items):
        size = draw(st.integers(1, 8))
        group = items[position : position + size]
        position += size
        if len(group) == 1 and draw(st.booleans()):
            frames.append(group[0])
            continue
        batch_number += 1
        if draw(st.integers(0, 4)) == 0:
            group = [inner_form(event) for event in group]
        batch_id = f"batch-{batch_number}" if draw(st.booleans()) else None
        frames.append(batch_frame(group, batch_id=batch_id))
    return frames


# --- projection ------------------------------------------------------------------------------


def project(conversation: Conversation) -> dict[str, Any]:
    """Every order-independent fact of a conversation (transient parts left out)."""
    return {
        "transcript": conversation.transcript,
        "streams": conversation.streams,
        "cursor": conversation.cursor,
        "gaps": conversation.gaps,
        "phase": conversation.phase,
        "agent": conversation.agent,
        "live_agent": conversation.live_agent,
        "capabilities": conversation.capabilities,
        "queue": conversation.queue,
        "language": conversation.language,
        "client_handoff": conversation.client_handoff,
        "end_reason": conversation.end_reason,
        "events_applied": conversation.events_applied,
        "anomalies": conversation.anomalies,
        "suggestions": conversation.suggestions,
        "agent_joined": conversation.agent_joined,
        "timeline": conversation.timeline,
    }
