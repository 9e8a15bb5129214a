package dev.streamtable.reference;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.LongNode;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.EmitStrategy;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.KGroupedStream;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.KTable;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.SlidingWindows;
import org.apache.kafka.streams.kstream.Suppressed;
import org.apache.kafka.streams.kstream.Suppressed.BufferConfig;
import org.apache.kafka.streams.kstream.TimeWindowedKStream;
import org.apache.kafka.streams.kstream.TimeWindows;
import org.apache.kafka.streams.kstream.Windowed;
import org.apache.kafka.streams.kstream.WindowedSerdes;
import org.apache.kafka.streams.state.WindowStore;

/**
 * The windowed reference topologies: a count, a reduce (sum of amounts) or an aggregate (count and
 * total) per key in tumbling or hopping {@link TimeWindows} or in {@link SlidingWindows} with a
 * grace period, from the stream
 * {@code trades} (key: a string, value: {@code {"client": "...", "amount": n}}) to {@code win-out}
 * (key: Kafka Streams' time-windowed serde over strings, value: JSON), materialized in the window
 * store {@code win-store}. See PROTOCOL.md.
 */
final class WindowedTopologies {

    static final String INPUT = "trades";
    static final String OUTPUT = "win-out";
    static final String STORE = "win-store";

    private static final Serde<String> KEY = Serdes.String();
    private static final Serde<JsonNode> JSON = new JsonSerde();

    /** The time limit of the {@code _limit} variants' {@code suppress(untilTimeLimit(...))}. */
    static final long TIME_LIMIT_MS = 5_000;

    /** The record bound of the hopping {@code _limit} variants' buffers (emit early when full). */
    static final long LIMIT_MAX_RECORDS = 3;

    /**
     * One windowed topology: the windows (milliseconds), the store's retention (0: Kafka Streams'
     * default, size + grace), the operation ("count", "reduce" or "aggregate") and how results are
     * emitted ("update": every update; "final": {@code emitStrategy(onWindowClose())};
     * "suppress": {@code suppress(untilWindowCloses(unbounded()))}; "limit":
     * {@code suppress(untilTimeLimit(5 s, ...))}, unbounded for tumbling windows, at most 3 records
     * emitted early when full for hopping ones). {@code sliding}: {@link SlidingWindows} with time
     * difference {@code sizeMs} instead ({@code advanceMs} unused; retention 0: 2 * difference +
     * grace).
     */
    record Shape(long sizeMs, long advanceMs, long graceMs, long retentionMs, String op, String emit,
                 boolean sliding) {
        Shape(long sizeMs, long advanceMs, long graceMs, long retentionMs, String op, String emit) {
            this(sizeMs, advanceMs, graceMs, retentionMs, op, emit, false);
        }

        TimeWindowedKStream<String, JsonNode> windowedBy(KGroupedStream<String, JsonNode> grouped) {
            if (sliding) {
                return grouped.windowedBy(SlidingWindows.ofTimeDifferenceAndGrace(
                        Duration.ofMillis(sizeMs), Duration.ofMillis(graceMs)));
            }
            return grouped.windowedBy(TimeWindows.ofSizeAndGrace(Duration.ofMillis(sizeMs), Duration.ofMillis(graceMs))
                    .advanceBy(Duration.ofMillis(advanceMs)));
        }

        Shape emitting(String how) {
            return new Shape(sizeMs, advanceMs, graceMs, retentionMs, op, how, sliding);
        }
    }

    /** name -> shape, in declaration order. */
    static final Map<String, Shape> SHAPES = new LinkedHashMap<>();

    static {
        Map<String, Shape> base = new LinkedHashMap<>();
        base.put("win_tumbling_count", new Shape(10_000, 10_000, 3_000, 0, "count", "update"));
        base.put("win_hopping_count", new Shape(10_000, 4_000, 2_000, 0, "count", "update"));
        base.put("win_tumbling_reduce", new Shape(10_000, 10_000, 3_000, 0, "reduce", "update"));
        base.put("win_hopping_reduce", new Shape(10_000, 4_000, 2_000, 0, "reduce", "update"));
        base.put("win_tumbling_aggregate", new Shape(10_000, 10_000, 3_000, 150_000, "aggregate", "update"));
        base.put("win_hopping_aggregate", new Shape(10_000, 4_000, 2_000, 0, "aggregate", "update"));
        SHAPES.putAll(base);
        for (String how : new String[] {"final", "suppress", "limit"}) {
            base.forEach((name, shape) -> SHAPES.put(name + "_" + how, shape.emitting(how)));
        }
        Map<String, Shape> sliding = new LinkedHashMap<>();
        sliding.put("sli_count", new Shape(5_000, 5_000, 2_000, 0, "count", "update", true));
        sliding.put("sli_reduce", new Shape(4_000, 4_000, 3_000, 0, "reduce", "update", true));
        sliding.put("sli_aggregate", new Shape(5_000, 5_000, 1_000, 30_000, "aggregate", "update", true));
        SHAPES.putAll(sliding);
        for (String how : new String[] {"final", "suppress"}) {
            sliding.forEach((name, shape) -> SHAPES.put(name + "_" + how, shape.emitting(how)));
        }
    }

    private WindowedTopologies() {
    }

    /** Adds the windowed topology {@code name} to {@code b}, reading {@code input}, writing {@code output}. */
    static void build(StreamsBuilder b, String name, String input, String output) {
        Shape s = SHAPES.get(name);
        if (s == null) {
            throw new IllegalArgumentException("unknown windowed topology " + name);
        }
        KStream<String, JsonNode> trades = b.stream(input, Consumed.with(KEY, JSON));
        KTable<Windowed<String>, JsonNode> result = switch (s.op()) {
            case "count" -> count(trades, s);
            case "reduce" -> reduce(trades, s);
            case "aggregate" -> aggregate(trades, s);
            default -> throw new IllegalArgumentException("unknown windowed operation " + s.op());
        };
        result = switch (s.emit()) {
            case "update", "final" -> result;
            case "suppress" -> result.suppress(Suppressed.untilWindowCloses(BufferConfig.unbounded()));
            case "limit" -> result.suppress(Suppressed.untilTimeLimit(Duration.ofMillis(TIME_LIMIT_MS),
                    s.advanceMs() == s.sizeMs() ? BufferConfig.unbounded()
                            : BufferConfig.maxRecords(LIMIT_MAX_RECORDS).emitEarlyWhenFull()));
            default -> throw new IllegalArgumentException("unknown emit " + s.emit());
        };
        result.toStream().to(output,
                Produced.with(WindowedSerdes.timeWindowedSerdeFrom(String.class, s.sizeMs()), JSON));
    }

    private static <V> Materialized<String, V, WindowStore<Bytes, byte[]>> store(Shape s, Serde<V> values) {
        Materialized<String, V, WindowStore<Bytes, byte[]>> m =
                Materialized.<String, V, WindowStore<Bytes, byte[]>>as(STORE)
                        .withKeySerde(KEY)
                        .withValueSerde(values);
        return s.retentionMs() > 0 ? m.withRetention(Duration.ofMillis(s.retentionMs())) : m;
    }

    private static EmitStrategy strategy(Shape s) {
        return s.emit().equals("final") ? EmitStrategy.onWindowClose() : EmitStrategy.onWindowUpdate();
    }

    private static long amount(JsonNode v) {
        JsonNode amount = v.get("amount");
        if (amount == null || !amount.isIntegralNumber()) {
            throw new IllegalArgumentException("field 'amount' missing or not an integer in " + v);
        }
        return amount.asLong();
    }

    /** Records per input key and window. */
    private static KTable<Windowed<String>, JsonNode> count(KStream<String, JsonNode> trades, Shape s) {
        return s.windowedBy(trades.groupByKey(Grouped.with(KEY, JSON)))
                .emitStrategy(strategy(s))
                .count(store(s, Serdes.Long()))
                .mapValues(n -> n == null ? null : (JsonNode) LongNode.valueOf(n));
    }

    /** Sum of amounts per client (re-keyed by map, so repartitioned) and window. */
    private static KTable<Windowed<String>, JsonNode> reduce(KStream<String, JsonNode> trades, Shape s) {
        return s.windowedBy(trades.map((k, v) -> KeyValue.pair(Topologies.text(v, "client"), (JsonNode) LongNode.valueOf(amount(v))))
                .groupByKey(Grouped.with(KEY, JSON)))
                .emitStrategy(strategy(s))
                .reduce((agg, v) -> LongNode.valueOf(agg.asLong() + v.asLong()), store(s, JSON));
    }

    /** {"count": n, "total": sum of amounts} per client (groupBy, so repartitioned) and window. */
    private static KTable<Windowed<String>, JsonNode> aggregate(KStream<String, JsonNode> trades, Shape s) {
        return s.windowedBy(trades.groupBy((k, v) -> Topologies.text(v, "client"), Grouped.with(KEY, JSON)))
                .emitStrategy(strategy(s))
                .aggregate(
                        () -> Topologies.totals(0, 0),
                        (k, v, agg) -> Topologies.totals(agg.get("count").asLong() + 1,
                                agg.get("total").asLong() + amount(v)),
                        store(s, JSON));
    }
}
