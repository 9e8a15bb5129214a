"""Foreign-key KTable-KTable join (Kafka Streams KIP-213), inner and left.

The left table (key ``pk``) is joined to the right table (key ``fk``) through ``fk =
extractor(left value)``. Left and right need not be co-partitioned; the join runs in two
sub-topologies linked by two internal topics:

1. ``SubscriptionSend`` (left task): on each left change, subscribe ``pk`` at the new ``fk`` and
   unsubscribe it at the old one, through the *subscription* topic (keyed by ``fk``). Each
   subscription carries a hash of the left value it was sent for.
2. ``SubscriptionReceive`` + ``SubscriptionJoin`` (right task): keep subscriptions in a store
   keyed ``(fk, pk)``; answer each with the right table's current value, through the *response*
   topic, to the left task's partition.
3. ``ForeignTableJoin`` (right task): on each right change, answer every subscriber of that
   ``fk`` (a prefix scan of the subscription store).
4. ``ResponseJoin`` (left task): apply the joiner to the CURRENT left value; drop the response if
   its hash does not match the current left value (it answers a superseded value, e.g. after a
   foreign-key change), so results never go backwards.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable
from enum import IntEnum
from typing import Any

from streamtable.errors import SerializationError
from streamtable.processors._api import Change, GetterSpec, Node, TableMaterializer, TaskContext
from streamtable.serde import Serde


class Instruction(IntEnum):
    DELETE_KEY_NO_PROPAGATE = 0
    DELETE_KEY_AND_PROPAGATE = 1
    PROPAGATE_NULL_IF_NO_FK_VAL_AVAILABLE = 2
    PROPAGATE_ONLY_IF_FK_VAL_AVAILABLE = 3


Subscription = tuple[bytes | None, Instruction, Any, int]
"""``(hash of the left value or None, instruction, primary key, left partition)``."""
Response = tuple[bytes | None, Any, int]
"""``(hash, right value or None, left partition)``."""

_HEAD = struct.Struct(">BBBi")  # version, instruction or has-value flag, has-hash, partition
_VERSION = 1


def value_hash(serialized: bytes) -> bytes:
    return hashlib.blake2b(serialized, digest_size=16).digest()


class SubscriptionSerde:
    """Wire format of subscriptions: header, optional 16-byte hash, primary key bytes."""

    def __init__(self, pk_serde: Serde[Any]) -> None:
        self.pk_serde = pk_serde

    def serialize(self, value: Subscription) -> bytes:
        digest, instruction, pk, partition = value
        head = _HEAD.pack(_VERSION, int(instruction), digest is not None, partition)
        return head + (digest or b"") + self.pk_serde.serialize(pk)

    def deserialize(self, data: bytes) -> Subscription:
        version, instruction, has_hash, partition = _HEAD.unpack_from(data)
        if version != _VERSION:
            raise SerializationError(f"unknown subscription version {version}")
        at = _HEAD.size
        digest = data[at : at + 16] if has_hash else None
        at += 16 if has_hash else 0
        return digest, Instruction(instruction), self.pk_serde.deserialize(data[at:]), partition


class ResponseSerde:
    """Wire format of responses: header, optional hash, optional right value bytes."""

    def __init__(self, value_serde: Serde[Any]) -> None:
        self.value_serde = value_serde

    def serialize(self, value: Response) -> bytes:
        digest, foreign, partition = value
        head = _HEAD.pack(_VERSION, foreign is not None, digest is not None, partition)
        body = b"" if foreign is None else self.value_serde.serialize(foreign)
        return head + (digest or b"") + body

    def deserialize(self, data: bytes) -> Response:
        version, has_value, has_hash, partition = _HEAD.unpack_from(data)
        if version != _VERSION:
            raise SerializationError(f"unknown response version {version}")
        at = _HEAD.size
        digest = data[at : at + 16] if has_hash else None
        at += 16 if has_hash else 0
        foreign = self.value_serde.deserialize(data[at:]) if has_value else None
        return digest, foreign, partition


class CombinedKeySerde:
    """Keys ``(fk, pk)`` of the subscription store: ``len(fk) | fk | pk``, so all subscribers
    of one foreign key are one byte prefix."""

    def __init__(self, fk_serde: Serde[Any], pk_serde: Serde[Any]) -> None:
        self.fk_serde = fk_serde
        self.pk_serde = pk_serde

    def prefix(self, fk: Any) -> bytes:
        raw = self.fk_serde.serialize(fk)
        return struct.pack(">i", len(raw)) + raw

    def serialize(self, value: tuple[Any, Any]) -> bytes:
        return self.prefix(value[0]) + self.pk_serde.serialize(value[1])

    def deserialize(self, data: bytes) -> tuple[Any, Any]:
        (size,) = struct.unpack_from(">i", data)
        fk = self.fk_serde.deserialize(data[4 : 4 + size])
        return fk, self.pk_serde.deserialize(data[4 + size :])


class SubscriptionSend(Node):
    """Left side: turns left changes into subscribe / unsubscribe instructions keyed by fk."""

    def __init__(
        self,
        name: str,
        extractor: Callable[[Any], Any],
        left: bool,
        fk_serde: Serde[Any],
        value_serde: Serde[Any],
        result_store: str | None = None,
    ) -> None:
        super().__init__(name)
        self.extractor = extractor
        self.left = left
        self.fk_serde = fk_serde
        self.value_serde = value_serde
        self.result_store = result_store

    def init(self, ctx: TaskContext) -> None:
        super().init(ctx)
        self.result = None if self.result_store is None else ctx.store(self.result_store)

    def process(self, key: Any, value: Change, timestamp: int) -> None:
        new, old = value
        digest = None if new is None else value_hash(self.value_serde.serialize(new))
        partition = self.ctx.partition

        def send(fk: Any, instruction: Instruction) -> None:
            self.forward(fk, (digest, instruction, key, partition), timestamp)

        if self.left:
            # Every left row has a result: unsubscribe the old fk quietly, then ask the new one
            # (a null fk, or a deleted row, travels with a null key: answered "no match").
            if old is None and new is None:
                return
            old_fk = None if old is None else self.extractor(old)
            new_fk = None if new is None else self.extractor(new)
            if old_fk is not None and not self._same(new_fk, old_fk):
                send(old_fk, Instruction.DELETE_KEY_NO_PROPAGATE)
            send(new_fk, Instruction.PROPAGATE_NULL_IF_NO_FK_VAL_AVAILABLE)
            return
        old_fk = None if old is None else self.extractor(old)
        new_fk = None if new is None else self.extractor(new)
        if new_fk is None:
            # deleted, or no foreign key any more: retract the result, if there was one
            if old_fk is not None:
                send(old_fk, Instruction.DELETE_KEY_AND_PROPAGATE)
            return
        if old_fk is not None and not self._same(new_fk, old_fk):
            send(old_fk, Instruction.DELETE_KEY_NO_PROPAGATE)
        # Answered also without a match, even for a new row (Kafka Streams asks a new row's
        # answer only on a match): an earlier life of this row may still have a result, or
        # an answer on its way with this very value's hash (the row went y -> x -> deleted
        # -> y while the answer to the first y was in flight). The answers of one foreign key
        # come in order, so this one, last, sets the result; "no match" for a row without a
        # result changes nothing (ResultTable).
        send(new_fk, Instruction.PROPAGATE_NULL_IF_NO_FK_VAL_AVAILABLE)

    def _same(self, a: Any, b: Any) -> bool:
        if a is None or b is None:
            return a is b
        return self.fk_serde.serialize(a) == self.fk_serde.serialize(b)


class SubscriptionReceive(Node):
    """Right side: records subscriptions in the ``(fk, pk)`` store, then joins them."""

    def __init__(self, name: str, store: str) -> None:
        super().__init__(name)
        self.store_name = store

    def init(self, ctx: TaskContext) -> None:
        super().init(ctx)
        self.store = ctx.store(self.store_name)

    def process(self, key: Any, value: Subscription, timestamp: int) -> None:
        instruction = value[1]
        if key is None:
            if instruction != Instruction.PROPAGATE_NULL_IF_NO_FK_VAL_AVAILABLE:
                return
        elif instruction in (
            Instruction.DELETE_KEY_AND_PROPAGATE,
            Instruction.DELETE_KEY_NO_PROPAGATE,
        ):
            self.store.delete((key, value[2]))
        else:
            self.store.put((key, value[2]), value, timestamp)
        self.forward(key, value, timestamp)


class SubscriptionJoin(Node):
    """Right side: answers a subscription with the right table's current value."""

    def __init__(self, name: str, right: GetterSpec) -> None:
        super().__init__(name)
        self.right_spec = right

    def init(self, ctx: TaskContext) -> None:
        super().init(ctx)
        # The right table as its changes have been forwarded (to ForeignTableJoin), not with
        # its record cache's pending writes: a pending change answers every subscriber when
        # the cache flushes, and a row written and deleted again before that flush is never
        # forwarded, so an answer with it would never be withdrawn.
        self.right = self.right_spec.bind(ctx, forwarded=True)

    def process(self, key: Any, value: Subscription, timestamp: int) -> None:
        digest, instruction, pk, partition = value
        found = None if key is None else self.right(key)
        result_ts = timestamp if found is None else max(timestamp, found[1])
        foreign = None if found is None else found[0]
        if instruction == Instruction.DELETE_KEY_AND_PROPAGATE:
            self.forward(pk, (digest, None, partition), result_ts)
        elif instruction == Instruction.PROPAGATE_NULL_IF_NO_FK_VAL_AVAILABLE or (
            instruction == Instruction.PROPAGATE_ONLY_IF_FK_VAL_AVAILABLE and found is not None
        ):
            self.forward(pk, (digest, foreign, partition), result_ts)


class ForeignTableJoin(Node):
    """Right side: on a right-table change, answers every subscriber of that foreign key."""

    def __init__(self, name: str, subscriptions: str, key_serde: CombinedKeySerde) -> None:
        super().__init__(name)
        self.store_name = subscriptions
        self.key_serde = key_serde

    def init(self, ctx: TaskContext) -> None:
        super().init(ctx)
        self.store = ctx.store(self.store_name)

    def process(self, key: Any, value: Change, timestamp: int) -> None:
        if key is None:
            return
        new = value[0]
        for (_, pk), sub in self.store.prefix_scan_bytes(self.key_serde.prefix(key)):
            self.forward(pk, (sub[0], new, sub[3]), timestamp)


class ResponseJoin(Node):
    """Left side: joins a response with the current left value, dropping stale responses."""

    def __init__(
        self,
        name: str,
        left: GetterSpec,
        joiner: Callable[[Any, Any], Any],
        left_join: bool,
        value_serde: Serde[Any],
    ) -> None:
        super().__init__(name)
        self.left_spec = left
        self.joiner = joiner
        self.left_join = left_join
        self.value_serde = value_serde

    def init(self, ctx: TaskContext) -> None:
        super().init(ctx)
        # The left row as its changes have been forwarded (and subscribed): a pending change
        # sends its own subscription when its cache flushes, and a row written and deleted
        # again before that flush never does, so its answer would be the last word.
        self.left = self.left_spec.bind(ctx, forwarded=True)

    def process(self, key: Any, value: Response, timestamp: int) -> None:
        digest, foreign, _ = value
        found = self.left(key)
        current = None if found is None else found[0]
        current_hash = None if current is None else value_hash(self.value_serde.serialize(current))
        if digest != current_hash:
            return  # answers a left value that has since changed
        if foreign is None and (not self.left_join or current is None):
            result = None
        else:
            result = self.joiner(current, foreign)
        self.forward(key, result, timestamp)


class ResultTable(Node):
    """Materializes a stream of results as a table (FK join output, ``KStream.to_table``)."""

    def __init__(self, name: str, store: str, drop_absent_deletes: bool = False) -> None:
        super().__init__(name)
        self.store_name = store
        # FK join results: "no match" also answers rows that never had a result.
        self.drop_absent_deletes = drop_absent_deletes

    def init(self, ctx: TaskContext) -> None:
        super().init(ctx)
        self.store = ctx.store(self.store_name)
        self.materializer = TableMaterializer(self, self.store)

    def process(self, key: Any, value: Any, timestamp: int) -> None:
        if key is None:
            return
        if value is None and self.drop_absent_deletes and self.store.get(key) is None:
            return  # no row stays no row: nothing to write or forward
        self.materializer.put_and_forward(key, value, self.materializer.old(key), timestamp)
