"""The service's topology: US holders per client, and the weekly digest jobs.

share-holders (table, validated) -> filter(US venue) -> group_by(client)
    -> aggregate client -> {position id: {ticker, exchange, amount}}   store us-share-holders
    -> digest processor (clients, instruments, digest requests: GlobalKTables)
    -> <app id>-digests
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import streamtable as st
from us_shareholders import records
from us_shareholders.digest import (
    CLIENTS_STORE,
    HOLDERS_STORE,
    INSTRUMENTS_STORE,
    PROGRESS_STORE,
    REQUESTS_STORE,
    DigestControl,
    DigestProcessor,
)
from us_shareholders.schedule import DigestSchedule
from us_shareholders.venues import VenueMatcher

Held = tuple[str, dict[str, Any]]


@dataclass(frozen=True)
class TopologySettings:
    positions_topic: str
    clients_topic: str
    instruments_topic: str | None
    digests_topic: str
    requests_topic: str
    venues: VenueMatcher
    schedule: DigestSchedule


def _held(key: str, position: dict[str, Any]) -> tuple[str, Held]:
    return position["client"], (
        key,
        {
            "ticker": position["ticker"],
            "exchange": position["exchange"],
            "amount": position["amount"],
        },
    )


def _add(client: str, held: Held, agg: dict[str, Any]) -> dict[str, Any]:
    return {**agg, held[0]: held[1]}


def _subtract(client: str, held: Held, agg: dict[str, Any]) -> dict[str, Any] | None:
    rest = {pid: pos for pid, pos in agg.items() if pid != held[0]}
    return rest or None  # a client without US positions is no holder


def _empty() -> dict[str, Any]:
    return {}


def build_topology(settings: TopologySettings, control: DigestControl) -> st.Topology:
    builder = st.StreamsBuilder()
    is_us = settings.venues.is_us
    holders = (
        builder.table(
            settings.positions_topic,
            key_serde=st.serde.STRING,
            value_serde=records.POSITION,
            store="share-holder-store",
            reject_null_keys=True,
        )
        .filter(lambda key, position: is_us(position["exchange"]))
        .group_by(_held, key_serde=st.serde.STRING)
        .aggregate(_empty, _add, _subtract, store=HOLDERS_STORE, value_serde=st.serde.JSON)
    )
    builder.global_table(
        settings.clients_topic,
        key_serde=st.serde.STRING,
        value_serde=records.CLIENT,
        store=CLIENTS_STORE,
    )
    builder.global_table(
        settings.requests_topic,
        key_serde=st.serde.STRING,
        value_serde=records.DIGEST_REQUEST,
        store=REQUESTS_STORE,
    )
    stores = [HOLDERS_STORE, PROGRESS_STORE, CLIENTS_STORE, REQUESTS_STORE]
    if settings.instruments_topic:
        builder.global_table(
            settings.instruments_topic,
            key_serde=st.serde.STRING,
            value_serde=records.INSTRUMENT,
            store=INSTRUMENTS_STORE,
        )
        stores.append(INSTRUMENTS_STORE)
    builder.add_state_store(PROGRESS_STORE, key_serde=st.serde.INT, value_serde=st.serde.JSON)
    schedule = settings.schedule
    positions_topic = settings.positions_topic
    with_instruments = bool(settings.instruments_topic)
    (
        holders.to_stream()
        .process(
            lambda: DigestProcessor(schedule, control, with_instruments, positions_topic),
            stores=stores,
            key_serde=st.serde.STRING,
            value_serde=st.serde.JSON,
        )
        .to(settings.digests_topic, key_serde=st.serde.STRING, value_serde=st.serde.JSON)
    )
    return builder.build()
