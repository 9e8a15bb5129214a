package dev.streamtable.reference;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.LongNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.time.Duration;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.TopologyTestDriver;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.EmitStrategy;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.KTable;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.SessionWindowedDeserializer;
import org.apache.kafka.streams.kstream.SessionWindows;
import org.apache.kafka.streams.kstream.Suppressed;
import org.apache.kafka.streams.kstream.Suppressed.BufferConfig;
import org.apache.kafka.streams.kstream.Windowed;
import org.apache.kafka.streams.kstream.WindowedSerdes;
import org.apache.kafka.streams.state.KeyValueIterator;
import org.apache.kafka.streams.state.SessionStore;

/**
 * The session-windowed reference topologies: a count, a reduce (sum of amounts) or an aggregate
 * (count, total and the amounts in order) per key and session, from the stream {@code trades}
 * (key: a string, value: {@code {"client": "...", "amount": n}}) to {@code ses-out} (key: Kafka
 * Streams' session-windowed serde over strings, value: JSON), materialized in the session store
 * {@code ses-store}. See PROTOCOL.md.
 */
final class SessionTopologies {

    static final String INPUT = "trades";
    static final String OUTPUT = "ses-out";
    static final String STORE = "ses-store";
    /** The bounds of the {@code findSessions} dump: earliest session end, latest session start. */
    static final long FIND_EARLIEST_END = 20_000;
    static final long FIND_LATEST_START = 60_000;

    private static final Serde<String> KEY = Serdes.String();
    private static final Serde<JsonNode> JSON = new JsonSerde();
    private static final JsonNodeFactory NODES = JsonNodeFactory.instance;

    /**
     * One session topology: the inactivity gap and grace (milliseconds; grace 0 = {@code
     * ofInactivityGapWithNoGrace}), the store's retention (0: Kafka Streams' default, gap + grace),
     * the operation ("count", "reduce" or "aggregate") and how results are emitted ("update":
     * every update; "final": {@code emitStrategy(onWindowClose())}; "suppress":
     * {@code suppress(untilWindowCloses(unbounded()))}).
     */
    record Shape(long gapMs, long graceMs, long retentionMs, String op, String emit) {
        Shape(long gapMs, long graceMs, long retentionMs, String op) {
            this(gapMs, graceMs, retentionMs, op, "update");
        }

        Shape emitting(String how) {
            return new Shape(gapMs, graceMs, retentionMs, op, how);
        }

        EmitStrategy strategy() {
            return emit.equals("final") ? EmitStrategy.onWindowClose() : EmitStrategy.onWindowUpdate();
        }

        SessionWindows windows() {
            return graceMs == 0
                    ? SessionWindows.ofInactivityGapWithNoGrace(Duration.ofMillis(gapMs))
                    : SessionWindows.ofInactivityGapAndGrace(Duration.ofMillis(gapMs), Duration.ofMillis(graceMs));
        }
    }

    /** name -> shape, in declaration order. */
    static final Map<String, Shape> SHAPES = new LinkedHashMap<>();

    static {
        SHAPES.put("ses_count", new Shape(5_000, 2_000, 0, "count"));
        SHAPES.put("ses_count_no_grace", new Shape(3_000, 0, 0, "count"));
        SHAPES.put("ses_reduce", new Shape(5_000, 3_000, 0, "reduce"));
        SHAPES.put("ses_reduce_no_grace", new Shape(4_000, 0, 0, "reduce"));
        SHAPES.put("ses_aggregate", new Shape(4_000, 1_000, 0, "aggregate"));
        SHAPES.put("ses_aggregate_retained", new Shape(4_000, 2_000, 60_000, "aggregate"));
        Map<String, Shape> base = new LinkedHashMap<>(SHAPES);
        for (String how : new String[] {"final", "suppress"}) {
            base.forEach((name, shape) -> SHAPES.put(name + "_" + how, shape.emitting(how)));
        }
    }

    private SessionTopologies() {
    }

    /** Adds the session topology {@code name} to {@code b}, reading {@code input}, writing {@code output}. */
    static void build(StreamsBuilder b, String name, String input, String output) {
        Shape s = SHAPES.get(name);
        if (s == null) {
            throw new IllegalArgumentException("unknown session topology " + name);
        }
        KStream<String, JsonNode> trades = b.stream(input, Consumed.with(KEY, JSON));
        KTable<Windowed<String>, JsonNode> result = switch (s.op()) {
            case "count" -> trades.groupByKey(Grouped.with(KEY, JSON))
                    .windowedBy(s.windows())
                    .emitStrategy(s.strategy())
                    .count(store(s, Serdes.Long()))
                    .mapValues(n -> n == null ? null : (JsonNode) LongNode.valueOf(n));
            case "reduce" -> trades
                    .map((k, v) -> KeyValue.pair(Topologies.text(v, "client"), (JsonNode) LongNode.valueOf(amount(v))))
                    .groupByKey(Grouped.with(KEY, JSON))
                    .windowedBy(s.windows())
                    .emitStrategy(s.strategy())
                    .reduce((agg, v) -> LongNode.valueOf(agg.asLong() + v.asLong()), store(s, JSON));
            case "aggregate" -> trades.groupBy((k, v) -> Topologies.text(v, "client"), Grouped.with(KEY, JSON))
                    .windowedBy(s.windows())
                    .emitStrategy(s.strategy())
                    .aggregate(
                            () -> amounts(0, 0, NODES.arrayNode()),
                            (k, v, agg) -> amounts(agg.get("count").asLong() + 1, agg.get("total").asLong() + amount(v),
                                    ((ArrayNode) agg.get("amounts").deepCopy()).add(amount(v))),
                            (k, one, two) -> amounts(one.get("count").asLong() + two.get("count").asLong(),
                                    one.get("total").asLong() + two.get("total").asLong(),
                                    ((ArrayNode) one.get("amounts").deepCopy()).addAll((ArrayNode) two.get("amounts"))),
                            store(s, JSON));
            default -> throw new IllegalArgumentException("unknown session operation " + s.op());
        };
        if (s.emit().equals("suppress")) {
            result = result.suppress(Suppressed.untilWindowCloses(BufferConfig.unbounded()));
        }
        result.toStream().to(output, Produced.with(WindowedSerdes.sessionWindowedSerdeFrom(String.class), JSON));
    }

    private static <V> Materialized<String, V, SessionStore<Bytes, byte[]>> store(Shape s, Serde<V> values) {
        Materialized<String, V, SessionStore<Bytes, byte[]>> m =
                Materialized.<String, V, SessionStore<Bytes, byte[]>>as(STORE)
                        .withKeySerde(KEY)
                        .withValueSerde(values);
        return s.retentionMs() > 0 ? m.withRetention(Duration.ofMillis(s.retentionMs())) : m;
    }

    private static long amount(JsonNode v) {
        JsonNode amount = v.get("amount");
        if (amount == null || !amount.isIntegralNumber()) {
            throw new IllegalArgumentException("field 'amount' missing or not an integer in " + v);
        }
        return amount.asLong();
    }

    private static JsonNode amounts(long count, long total, ArrayNode amounts) {
        ObjectNode o = NODES.objectNode();
        o.put("count", count);
        o.put("total", total);
        o.set("amounts", amounts);
        return o;
    }

    /**
     * A session-windowed key (Kafka Streams' {@code SessionWindowedDeserializer} over strings) as
     * {"key": ..., "start": ms, "end": ms, "bytes": "<hex of the serialized key>"}.
     */
    static JsonNode sessionKey(String topic, byte[] bytes) {
        try (SessionWindowedDeserializer<String> d = new SessionWindowedDeserializer<>(new StringDeserializer())) {
            Windowed<String> w = d.deserialize(topic, bytes);
            ObjectNode o = NODES.objectNode();
            o.put("key", w.key());
            o.put("start", w.window().start());
            o.put("end", w.window().end());
            o.put("bytes", HexFormat.of().formatHex(bytes));
            return o;
        }
    }

    /**
     * A session store as {"fetch": [[key, start, end, value], ...] (from {@code fetch(key)} for each
     * of {@code fetchKeys}, in that order), "find": [...] (from {@code findSessions(key,
     * FIND_EARLIEST_END, FIND_LATEST_START)}, likewise)}.
     */
    static JsonNode sessionStore(TopologyTestDriver driver, String name, boolean longValues, List<String> fetchKeys) {
        try {
            SessionStore<String, Object> store = driver.getSessionStore(name);
            if (store == null) {
                return DifferentialRunner.errorNode("no session store named " + name);
            }
            ArrayNode fetched = NODES.arrayNode();
            ArrayNode found = NODES.arrayNode();
            for (String key : fetchKeys) {
                try (KeyValueIterator<Windowed<String>, Object> it = store.fetch(key)) {
                    addRows(fetched, it, longValues);
                }
                try (KeyValueIterator<Windowed<String>, Object> it =
                             store.findSessions(key, FIND_EARLIEST_END, FIND_LATEST_START)) {
                    addRows(found, it, longValues);
                }
            }
            ObjectNode out = NODES.objectNode();
            out.set("fetch", fetched);
            out.set("find", found);
            return out;
        } catch (Exception e) {
            e.printStackTrace();
            return DifferentialRunner.errorNode(DifferentialRunner.describe(e));
        }
    }

    private static void addRows(ArrayNode rows, KeyValueIterator<Windowed<String>, Object> it, boolean longValues) {
        while (it.hasNext()) {
            KeyValue<Windowed<String>, Object> kv = it.next();
            rows.addArray().add(kv.key.key()).add(kv.key.window().start()).add(kv.key.window().end())
                    .add(DifferentialRunner.toJson(kv.value, longValues));
        }
    }
}
