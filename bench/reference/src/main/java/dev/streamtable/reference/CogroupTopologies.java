package dev.streamtable.reference;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.StreamsBuilder;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.kstream.CogroupedKStream;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.KTable;
import org.apache.kafka.streams.kstream.SessionWindows;
import org.apache.kafka.streams.kstream.SlidingWindows;
import org.apache.kafka.streams.kstream.TimeWindows;
import org.apache.kafka.streams.kstream.Windowed;
import org.apache.kafka.streams.kstream.WindowedSerdes;
import org.apache.kafka.streams.state.SessionStore;
import org.apache.kafka.streams.state.WindowStore;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.KGroupedStream;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;

/**
 * The cogroup reference topologies: {@code stream("buys")} and {@code stream("sells")} (values
 * {@code {"n", "to"}}) cogrouped into {@code cog-store}, {@code {"b": sum of buys' n, "s": sum of
 * sells' n, "last": "b" or "s"}}, written to {@code cog-out}. {@code cogroup_rekeyed} groups the
 * buys by their {@code to} (repartitioned). See PROTOCOL.md.
 */
final class CogroupTopologies {

    static final String BUYS = "buys";
    static final String SELLS = "sells";
    static final String OUTPUT = "cog-out";
    static final String STORE = "cog-store";

    private static final Serde<String> KEY = Serdes.String();
    private static final Serde<JsonNode> JSON = new JsonSerde();
    private static final JsonNodeFactory NODES = JsonNodeFactory.instance;

    /**
     * The windowed cogroups: name -> kind "time" (size, advance, grace ms), "sliding" (time
     * difference, 0, grace) or "session" (gap, 0, grace).
     */
    record WindowedShape(String kind, long sizeOrGapMs, long advanceMs, long graceMs) {
        boolean session() {
            return kind.equals("session");
        }
    }

    static final Map<String, WindowedShape> WINDOWED = new LinkedHashMap<>();

    static {
        WINDOWED.put("cogroup_tumbling", new WindowedShape("time", 10_000, 10_000, 3_000));
        WINDOWED.put("cogroup_hopping", new WindowedShape("time", 10_000, 4_000, 2_000));
        WINDOWED.put("cogroup_session", new WindowedShape("session", 5_000, 0, 2_000));
        WINDOWED.put("cogroup_sliding", new WindowedShape("sliding", 10_000, 0, 3_000));
    }

    private CogroupTopologies() {
    }

    /**
     * {@code buys} and {@code sells} (both grouped by key) cogrouped per window or session into
     * {@code cog-store} (a window or session store) with the aggregators of {@link #build}; a
     * session merger adds the sums and keeps the second's "last" (the first's when it has none).
     * Sliding windows' keys are time-windowed with the time difference as the window size.
     */
    static void buildWindowed(StreamsBuilder b, String name) {
        WindowedShape w = WINDOWED.get(name);
        CogroupedKStream<String, JsonNode> cogrouped = cogrouped(b, false);
        KTable<Windowed<String>, JsonNode> table;
        Serde<Windowed<String>> keys;
        if (w.session()) {
            table = cogrouped.windowedBy(SessionWindows.ofInactivityGapAndGrace(
                            Duration.ofMillis(w.sizeOrGapMs()), Duration.ofMillis(w.graceMs())))
                    .aggregate(() -> sums(0, 0, null),
                            (k, one, two) -> sums(one.get("b").asLong() + two.get("b").asLong(),
                                    one.get("s").asLong() + two.get("s").asLong(),
                                    two.get("last").isNull() ? one.get("last").textValue() : two.get("last").textValue()),
                            Materialized.<String, JsonNode, SessionStore<Bytes, byte[]>>as(STORE)
                                    .withKeySerde(KEY).withValueSerde(JSON));
            keys = WindowedSerdes.sessionWindowedSerdeFrom(String.class);
        } else if (w.kind().equals("sliding")) {
            table = cogrouped.windowedBy(SlidingWindows.ofTimeDifferenceAndGrace(
                            Duration.ofMillis(w.sizeOrGapMs()), Duration.ofMillis(w.graceMs())))
                    .aggregate(() -> sums(0, 0, null),
                            Materialized.<String, JsonNode, WindowStore<Bytes, byte[]>>as(STORE)
                                    .withKeySerde(KEY).withValueSerde(JSON));
            keys = WindowedSerdes.timeWindowedSerdeFrom(String.class, w.sizeOrGapMs());
        } else {
            table = cogrouped.windowedBy(TimeWindows.ofSizeAndGrace(Duration.ofMillis(w.sizeOrGapMs()),
                            Duration.ofMillis(w.graceMs())).advanceBy(Duration.ofMillis(w.advanceMs())))
                    .aggregate(() -> sums(0, 0, null),
                            Materialized.<String, JsonNode, WindowStore<Bytes, byte[]>>as(STORE)
                                    .withKeySerde(KEY).withValueSerde(JSON));
            keys = WindowedSerdes.timeWindowedSerdeFrom(String.class, w.sizeOrGapMs());
        }
        table.toStream().to(OUTPUT, Produced.with(keys, JSON));
    }

    private static CogroupedKStream<String, JsonNode> cogrouped(StreamsBuilder b, boolean rekeyed) {
        KStream<String, JsonNode> buys = b.stream(BUYS, Consumed.with(KEY, JSON));
        KStream<String, JsonNode> sells = b.stream(SELLS, Consumed.with(KEY, JSON));
        KGroupedStream<String, JsonNode> groupedBuys = rekeyed
                ? buys.groupBy((k, v) -> v == null ? k : Topologies.text(v, "to"), Grouped.with(KEY, JSON))
                : buys.groupByKey(Grouped.with(KEY, JSON));
        return groupedBuys
                .<JsonNode>cogroup((k, v, agg) -> sums(agg.get("b").asLong() + v.get("n").asLong(),
                        agg.get("s").asLong(), "b"))
                .cogroup(sells.groupByKey(Grouped.with(KEY, JSON)),
                        (k, v, agg) -> sums(agg.get("b").asLong(),
                                agg.get("s").asLong() + v.get("n").asLong(), "s"));
    }

    static void build(StreamsBuilder b, boolean rekeyed) {
        cogrouped(b, rekeyed)
                .aggregate(() -> sums(0, 0, null), Materialized.<String, JsonNode,
                        org.apache.kafka.streams.state.KeyValueStore<org.apache.kafka.common.utils.Bytes, byte[]>>as(STORE)
                        .withKeySerde(KEY).withValueSerde(JSON))
                .toStream()
                .to(OUTPUT, Produced.with(KEY, JSON));
    }

    private static JsonNode sums(long b, long s, String last) {
        ObjectNode o = NODES.objectNode();
        o.put("b", b);
        o.put("s", s);
        if (last == null) {
            o.putNull("last");
        } else {
            o.put("last", last);
        }
        return o;
    }
}
