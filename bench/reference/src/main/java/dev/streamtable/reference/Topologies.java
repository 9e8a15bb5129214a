package dev.streamtable.reference;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.LongNode;
import com.fasterxml.jackson.databind.node.NullNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeSet;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.GlobalKTable;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.Joined;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.KTable;
import org.apache.kafka.streams.kstream.KeyValueMapper;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.ValueJoiner;
import org.apache.kafka.streams.state.KeyValueStore;

/**
 * The reference topologies. Every key is a String, every value a JSON document ({@link JsonSerde}).
 * See PROTOCOL.md for the exact semantics of each one.
 *
 * <p>Topic names default to the names in {@link #spec(String)}; {@link #build(String, Properties, Map)}
 * accepts a map "default topic name -> actual topic name" to rename them (used by {@link BenchApp}).
 */
public final class Topologies {

    /** Exchanges that pass the {@code seed} filter. */
    public static final Set<String> US = Set.of("NASDAQ", "NYSE");

    /** Unicode code point order, i.e. the order of the UTF-8 bytes (and of Python's {@code sorted}). */
    public static final Comparator<String> CODE_POINT_ORDER = (a, b) -> {
        int i = 0;
        int j = 0;
        while (i < a.length() && j < b.length()) {
            int ca = a.codePointAt(i);
            int cb = b.codePointAt(j);
            if (ca != cb) {
                return Integer.compare(ca, cb);
            }
            i += Character.charCount(ca);
            j += Character.charCount(cb);
        }
        return Boolean.compare(i < a.length(), j < b.length());
    };

    private static final Serde<String> KEY = Serdes.String();
    private static final Serde<JsonNode> JSON = new JsonSerde();
    private static final JsonNodeFactory NODES = JsonNodeFactory.instance;

    /**
     * Static description of a topology: its input topics, output topics and named stores (in dump order).
     * {@code longStores} are the stores whose values are Long rather than JSON. A windowed topology
     * has {@code windowSizeMs > 0}: its output keys are time-windowed (that size) and its stores are
     * window stores.
     */
    public record Spec(String name, List<String> inputs, List<String> outputs, List<String> stores,
                       Set<String> longStores, long windowSizeMs) {
        public Spec(String name, List<String> inputs, List<String> outputs, List<String> stores,
                    Set<String> longStores) {
            this(name, inputs, outputs, stores, longStores, 0);
        }

        public boolean windowed() {
            return windowSizeMs > 0;
        }

        /** Session-windowed (windowSizeMs is {@link #SESSION}): keys and stores read as sessions. */
        public boolean session() {
            return windowSizeMs == SESSION;
        }
    }

    /** The {@code windowSizeMs} of a session-windowed topology's spec. */
    public static final long SESSION = -1;

    private static final Map<String, Spec> SPECS = new LinkedHashMap<>();

    static {
        add(new Spec("seed", List.of("positions"), List.of("seed-out"),
                List.of("positions-store", "us-holders"), Set.of()));
        add(new Spec("aggregate", List.of("positions"), List.of("aggregate-out"),
                List.of("positions-store", "client-totals"), Set.of()));
        add(new Spec("count", List.of("positions"), List.of("count-out"),
                List.of("positions-store", "ticker-counts"), Set.of("ticker-counts")));
        for (String j : List.of("join_inner", "join_left", "join_outer")) {
            add(new Spec(j, List.of("left", "right"), List.of("join-out"),
                    List.of("left-store", "right-store", "join-store"), Set.of()));
        }
        for (String j : List.of("fk_join", "fk_left_join")) {
            add(new Spec(j, List.of("orders", "products"), List.of("fk-out"),
                    List.of("orders-store", "products-store", "fk-store"), Set.of()));
        }
        for (String j : List.of("stream_table_join", "stream_table_left_join")) {
            add(new Spec(j, List.of("events", "right"), List.of("stj-out"),
                    List.of("right-store"), Set.of()));
        }
        for (String j : List.of("stream_global_join", "stream_global_left_join")) {
            add(new Spec(j, List.of("events", "globals"), List.of("sgj-out"),
                    List.of("globals-store"), Set.of()));
        }
        WindowedTopologies.SHAPES.forEach((name, shape) -> add(new Spec(name,
                List.of(WindowedTopologies.INPUT), List.of(WindowedTopologies.OUTPUT),
                List.of(WindowedTopologies.STORE), shape.op().equals("count")
                        ? Set.of(WindowedTopologies.STORE) : Set.of(), shape.sizeMs())));
        SessionTopologies.SHAPES.forEach((name, shape) -> add(new Spec(name,
                List.of(SessionTopologies.INPUT), List.of(SessionTopologies.OUTPUT),
                List.of(SessionTopologies.STORE), shape.op().equals("count")
                        ? Set.of(SessionTopologies.STORE) : Set.of(), SESSION)));
        for (String c : List.of("cogroup", "cogroup_rekeyed")) {
            add(new Spec(c, List.of(CogroupTopologies.BUYS, CogroupTopologies.SELLS),
                    List.of(CogroupTopologies.OUTPUT), List.of(CogroupTopologies.STORE), Set.of()));
        }
        CogroupTopologies.WINDOWED.forEach((name, w) -> add(new Spec(name,
                List.of(CogroupTopologies.BUYS, CogroupTopologies.SELLS), List.of(CogroupTopologies.OUTPUT),
                List.of(CogroupTopologies.STORE), Set.of(), w.session() ? SESSION : w.sizeOrGapMs())));
        StreamJoinTopologies.SHAPES.keySet().forEach(name -> add(new Spec(name,
                List.of(StreamJoinTopologies.LEFT, StreamJoinTopologies.RIGHT),
                List.of(StreamJoinTopologies.OUTPUT), List.of(), Set.of())));
    }

    private static void add(Spec spec) {
        SPECS.put(spec.name(), spec);
    }

    private Topologies() {
    }

    /** All topology names, in declaration order. */
    public static Set<String> names() {
        return SPECS.keySet();
    }

    /** The spec of {@code name}, or null if unknown. */
    public static Spec spec(String name) {
        return SPECS.get(name);
    }

    /** Builds {@code name} with the default topic names. */
    public static Topology build(String name, Properties props) {
        return build(name, props, Map.of());
    }

    /**
     * Builds {@code name}; {@code topics} maps a default topic name (e.g. "positions") to the topic to use.
     *
     * @throws IllegalArgumentException if the name is unknown
     */
    public static Topology build(String name, Properties props, Map<String, String> topics) {
        StreamsBuilder builder = new StreamsBuilder();
        TopicNames t = new TopicNames(topics);
        switch (name) {
            case "seed" -> seed(builder, t);
            case "aggregate" -> aggregate(builder, t);
            case "count" -> count(builder, t);
            case "join_inner", "join_left", "join_outer" -> tableJoin(builder, t, name);
            case "fk_join", "fk_left_join" -> fkJoin(builder, t, name.equals("fk_left_join"));
            case "stream_table_join", "stream_table_left_join" ->
                    streamTableJoin(builder, t, name.equals("stream_table_left_join"));
            case "stream_global_join", "stream_global_left_join" ->
                    streamGlobalJoin(builder, t, name.equals("stream_global_left_join"));
            case "cogroup", "cogroup_rekeyed" -> CogroupTopologies.build(builder, name.endsWith("rekeyed"));
            default -> {
                if (CogroupTopologies.WINDOWED.containsKey(name)) {
                    CogroupTopologies.buildWindowed(builder, name);
                } else if (SessionTopologies.SHAPES.containsKey(name)) {
                    SessionTopologies.build(builder, name, t.of(SessionTopologies.INPUT),
                            t.of(SessionTopologies.OUTPUT));
                } else if (WindowedTopologies.SHAPES.containsKey(name)) {
                    WindowedTopologies.build(builder, name, t.of(WindowedTopologies.INPUT),
                            t.of(WindowedTopologies.OUTPUT));
                } else if (StreamJoinTopologies.SHAPES.containsKey(name)) {
                    StreamJoinTopologies.build(builder, name, t.of(StreamJoinTopologies.LEFT),
                            t.of(StreamJoinTopologies.RIGHT), t.of(StreamJoinTopologies.OUTPUT));
                } else {
                    throw new IllegalArgumentException("unknown topology " + name);
                }
            }
        }
        return props == null ? builder.build() : builder.build(props);
    }

    private record TopicNames(Map<String, String> renames) {
        String of(String defaultName) {
            return renames.getOrDefault(defaultName, defaultName);
        }
    }

    // ------------------------------------------------------------------------------------------------
    // helpers

    private static Materialized<String, JsonNode, KeyValueStore<Bytes, byte[]>> store(String name) {
        return Materialized.<String, JsonNode, KeyValueStore<Bytes, byte[]>>as(name)
                .withKeySerde(KEY)
                .withValueSerde(JSON);
    }

    private static KTable<String, JsonNode> table(StreamsBuilder b, String topic, String storeName) {
        return b.table(topic, Consumed.with(KEY, JSON), store(storeName));
    }

    private static JsonNode orNull(JsonNode v) {
        return v == null ? NullNode.getInstance() : v;
    }

    /** Required field, as text; a missing field / JSON null is an error (NullPointerException as in v.get(f).asText()). */
    static String text(JsonNode v, String field) {
        JsonNode f = v.get(field);
        if (f == null) {
            throw new NullPointerException("field '" + field + "' missing in " + v);
        }
        return f.asText();
    }

    /** Optional reference field: missing or JSON null -> null, else asText(). */
    private static String optionalRef(JsonNode v, String field) {
        if (v == null) {
            return null;
        }
        JsonNode f = v.get(field);
        return f == null || f.isNull() ? null : f.asText();
    }

    private static ArrayNode stringArray(Iterable<String> values) {
        ArrayNode a = NODES.arrayNode();
        values.forEach(a::add);
        return a;
    }

    private static TreeSet<String> toSet(JsonNode array) {
        TreeSet<String> s = new TreeSet<>(CODE_POINT_ORDER);
        if (array != null) {
            array.forEach(e -> s.add(e.asText()));
        }
        return s;
    }

    // ------------------------------------------------------------------------------------------------
    // 1. seed

    private static void seed(StreamsBuilder b, TopicNames t) {
        table(b, t.of("positions"), "positions-store")
                .filter((k, v) -> US.contains(text(v, "exchange")))
                .groupBy((k, v) -> KeyValue.pair(text(v, "client"), (JsonNode) stringArray(List.of(k))),
                        Grouped.with(KEY, JSON))
                .reduce(
                        // adder: sorted union
                        (agg, v) -> {
                            TreeSet<String> s = toSet(agg);
                            s.addAll(toSet(v));
                            return stringArray(s);
                        },
                        // subtractor: agg minus v, null (delete) when empty
                        (agg, v) -> {
                            TreeSet<String> s = toSet(agg);
                            s.removeAll(toSet(v));
                            return s.isEmpty() ? null : stringArray(s);
                        },
                        store("us-holders"))
                .toStream()
                .to(t.of("seed-out"), Produced.with(KEY, JSON));
    }

    // ------------------------------------------------------------------------------------------------
    // 2. aggregate

    static JsonNode totals(long count, long total) {
        ObjectNode o = NODES.objectNode();
        o.put("count", count);
        o.put("total", total);
        return o;
    }

    private static void aggregate(StreamsBuilder b, TopicNames t) {
        table(b, t.of("positions"), "positions-store")
                .groupBy((k, v) -> {
                    JsonNode amount = v.get("amount");
                    if (amount == null || !amount.isIntegralNumber()) {
                        throw new IllegalArgumentException("field 'amount' missing or not an integer in " + v);
                    }
                    return KeyValue.pair(text(v, "client"), (JsonNode) LongNode.valueOf(amount.asLong()));
                }, Grouped.with(KEY, JSON))
                .aggregate(
                        () -> totals(0, 0),
                        (k, amount, agg) -> totals(agg.get("count").asLong() + 1,
                                agg.get("total").asLong() + amount.asLong()),
                        (k, amount, agg) -> {
                            long count = agg.get("count").asLong() - 1;
                            return count == 0 ? null : totals(count, agg.get("total").asLong() - amount.asLong());
                        },
                        store("client-totals"))
                .toStream()
                .to(t.of("aggregate-out"), Produced.with(KEY, JSON));
    }

    // ------------------------------------------------------------------------------------------------
    // 3. count

    private static void count(StreamsBuilder b, TopicNames t) {
        table(b, t.of("positions"), "positions-store")
                .groupBy((k, v) -> KeyValue.pair(text(v, "ticker"), v), Grouped.with(KEY, JSON))
                .count(Materialized.<String, Long, KeyValueStore<Bytes, byte[]>>as("ticker-counts")
                        .withKeySerde(KEY)
                        .withValueSerde(Serdes.Long()))
                .toStream()
                .mapValues(n -> n == null ? null : (JsonNode) LongNode.valueOf(n))
                .to(t.of("count-out"), Produced.with(KEY, JSON));
    }

    // ------------------------------------------------------------------------------------------------
    // 4. table-table joins

    private static void tableJoin(StreamsBuilder b, TopicNames t, String kind) {
        KTable<String, JsonNode> left = table(b, t.of("left"), "left-store");
        KTable<String, JsonNode> right = table(b, t.of("right"), "right-store");
        ValueJoiner<JsonNode, JsonNode, JsonNode> joiner = (l, r) -> {
            ObjectNode o = NODES.objectNode();
            o.set("l", orNull(l));
            o.set("r", orNull(r));
            return o;
        };
        KTable<String, JsonNode> joined = switch (kind) {
            case "join_inner" -> left.join(right, joiner, store("join-store"));
            case "join_left" -> left.leftJoin(right, joiner, store("join-store"));
            case "join_outer" -> left.outerJoin(right, joiner, store("join-store"));
            default -> throw new IllegalArgumentException(kind);
        };
        joined.toStream().to(t.of("join-out"), Produced.with(KEY, JSON));
    }

    // ------------------------------------------------------------------------------------------------
    // 5. foreign-key joins

    private static void fkJoin(StreamsBuilder b, TopicNames t, boolean leftJoin) {
        KTable<String, JsonNode> orders = table(b, t.of("orders"), "orders-store");
        KTable<String, JsonNode> products = table(b, t.of("products"), "products-store");
        java.util.function.Function<JsonNode, String> fk = v -> optionalRef(v, "product");
        ValueJoiner<JsonNode, JsonNode, JsonNode> joiner = (o, p) -> {
            ObjectNode n = NODES.objectNode();
            n.set("o", orNull(o));
            n.set("p", orNull(p));
            return n;
        };
        KTable<String, JsonNode> joined = leftJoin
                ? orders.leftJoin(products, fk, joiner, store("fk-store"))
                : orders.join(products, fk, joiner, store("fk-store"));
        joined.toStream().to(t.of("fk-out"), Produced.with(KEY, JSON));
    }

    // ------------------------------------------------------------------------------------------------
    // 6. stream-table joins

    private static void streamTableJoin(StreamsBuilder b, TopicNames t, boolean leftJoin) {
        KStream<String, JsonNode> events = b.stream(t.of("events"), Consumed.with(KEY, JSON));
        KTable<String, JsonNode> right = table(b, t.of("right"), "right-store");
        ValueJoiner<JsonNode, JsonNode, JsonNode> joiner = (e, r) -> {
            ObjectNode n = NODES.objectNode();
            n.set("e", orNull(e));
            n.set("r", orNull(r));
            return n;
        };
        Joined<String, JsonNode, JsonNode> joined = Joined.with(KEY, JSON, JSON);
        KStream<String, JsonNode> out = leftJoin
                ? events.leftJoin(right, joiner, joined)
                : events.join(right, joiner, joined);
        out.to(t.of("stj-out"), Produced.with(KEY, JSON));
    }

    // ------------------------------------------------------------------------------------------------
    // 7. stream-globaltable joins

    private static void streamGlobalJoin(StreamsBuilder b, TopicNames t, boolean leftJoin) {
        KStream<String, JsonNode> events = b.stream(t.of("events"), Consumed.with(KEY, JSON));
        GlobalKTable<String, JsonNode> globals =
                b.globalTable(t.of("globals"), Consumed.with(KEY, JSON), store("globals-store"));
        KeyValueMapper<String, JsonNode, String> ref = (k, v) -> optionalRef(v, "ref");
        ValueJoiner<JsonNode, JsonNode, JsonNode> joiner = (e, g) -> {
            ObjectNode n = NODES.objectNode();
            n.set("e", orNull(e));
            n.set("g", orNull(g));
            return n;
        };
        KStream<String, JsonNode> out = leftJoin
                ? events.leftJoin(globals, ref, joiner)
                : events.join(globals, ref, joiner);
        out.to(t.of("sgj-out"), Produced.with(KEY, JSON));
    }

    /** Used by the runner to list names for error messages. */
    static List<String> nameList() {
        return new ArrayList<>(SPECS.keySet());
    }
}
