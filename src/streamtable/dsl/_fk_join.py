"""The foreign-key table join's wiring (KIP-213): subscriptions out, responses back.

The left table's task sends a subscription for each row to the partition of its foreign key;
the right table's task stores the subscriptions and answers them, on a new subscription and on
every change of the right row; the left task joins each answer with its current row and drops
answers about superseded values.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from streamtable.processors import fk_join as fk
from streamtable.serde import Serde
from streamtable.topology._nodes import (
    InternalTopicSpec,
    ProcessorSpec,
    SinkSpec,
    SourceSpec,
    StoreSpec,
)
from streamtable.topology._partitioner import partition_for

if TYPE_CHECKING:
    from streamtable.dsl._table import KTable


def _subscription_partition(key_serde: Serde[Any], key: Any, value: Any, partitions: int) -> int:
    if key is None:  # a left join's null foreign key: answered with "no match", any partition
        return int(value[3]) % partitions
    return partition_for(key_serde.serialize(key), partitions)


def _response_partition(key: Any, value: Any, partitions: int) -> int:
    return int(value[2])


@dataclass(frozen=True)
class FkJoinWiring:
    """Adds one FK join of ``this`` (left) with ``other`` (right) to their builder's graph.

    Every name of the join's nodes, topics and stores derives from ``base``.
    """

    base: str
    this: KTable
    other: KTable
    subscription_serde: fk.SubscriptionSerde
    response_serde: fk.ResponseSerde

    @classmethod
    def of(cls, base: str, this: KTable, other: KTable) -> FkJoinWiring:
        return cls(
            base,
            this,
            other,
            fk.SubscriptionSerde(this.key_serde),
            fk.ResponseSerde(other.value_serde),
        )

    @property
    def output_store(self) -> str:
        return f"{self.base}-OUTPUT-STATE-STORE"

    @property
    def subscription_topic(self) -> str:
        return f"{self.base}-SUBSCRIPTION-REGISTRATION-topic"

    @property
    def response_topic(self) -> str:
        return f"{self.base}-SUBSCRIPTION-RESPONSE-topic"

    def add_subscription_send(self, foreign_key: Callable[[Any], Any], left: bool) -> None:
        """Left task: send a subscription per change to its foreign key's partition."""
        this, other = self.this, self.other
        g = this._graph
        send = f"{self.base}-SUBSCRIPTION-SEND"
        g.add_processor(
            ProcessorSpec(
                send,
                (this._node,),
                partial(
                    fk.SubscriptionSend, send, foreign_key, left, other.key_serde, this.value_serde
                ),
            )
        )
        g.old_value_parents[send] = (this._node,)
        g.old_value_demands.add(send)
        g.old_value_demands.add(other._node)
        g.sinks.append(
            SinkSpec(
                f"{send}-SINK",
                send,
                self.subscription_topic,
                other.key_serde,
                self.subscription_serde,
                internal=True,
                partitioner=partial(_subscription_partition, other.key_serde),
            )
        )
        g.add_internal_topic(
            InternalTopicSpec(self.subscription_topic, "subscription", other._topics)
        )

    def add_subscription_answer(self) -> None:
        """Right task: receive, store and answer subscriptions; answer on right changes."""
        this, other = self.this, self.other
        g = other._graph
        sub_store = f"{self.base}-SUBSCRIPTION-STATE-STORE"
        combined = fk.CombinedKeySerde(other.key_serde, this.key_serde)
        g.add_store(StoreSpec(sub_store, combined, self.subscription_serde, cached=False))
        receive = f"{self.base}-SUBSCRIPTION-RECEIVE"
        g.add_source(
            SourceSpec(
                f"{receive}-SOURCE",
                self.subscription_topic,
                other.key_serde,
                self.subscription_serde,
                True,
            )
        )
        g.add_processor(
            ProcessorSpec(
                receive,
                (f"{receive}-SOURCE",),
                partial(fk.SubscriptionReceive, receive, sub_store),
                (sub_store,),
            )
        )
        sub_join = f"{self.base}-SUBSCRIPTION-JOIN"
        g.add_processor(
            ProcessorSpec(
                sub_join,
                (receive,),
                partial(fk.SubscriptionJoin, sub_join, other._getter),
                (other._getter.store,),
            )
        )
        foreign = f"{self.base}-FOREIGN-TABLE-JOIN"
        g.add_processor(
            ProcessorSpec(
                foreign,
                (other._node,),
                partial(fk.ForeignTableJoin, foreign, sub_store, combined),
                (sub_store,),
            )
        )
        self._add_response_sinks(sub_join, foreign)

    def _add_response_sinks(self, *parents: str) -> None:
        g = self.this._graph
        for parent in parents:
            g.sinks.append(
                SinkSpec(
                    f"{parent}-SINK",
                    parent,
                    self.response_topic,
                    self.this.key_serde,
                    self.response_serde,
                    internal=True,
                    partitioner=_response_partition,
                )
            )
        g.add_internal_topic(InternalTopicSpec(self.response_topic, "response", self.this._topics))

    def add_response_join(self, joiner: Callable[[Any, Any], Any], left: bool) -> str:
        """Left task: join each response with the current left row; returns the node's name."""
        this = self.this
        g = this._graph
        response = f"{self.base}-RESPONSE-JOIN"
        g.add_source(
            SourceSpec(
                f"{response}-SOURCE", self.response_topic, this.key_serde, self.response_serde, True
            )
        )
        g.add_processor(
            ProcessorSpec(
                response,
                (f"{response}-SOURCE",),
                partial(fk.ResponseJoin, response, this._getter, joiner, left, this.value_serde),
                (this._getter.store,),
            )
        )
        return response
