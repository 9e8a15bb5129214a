package dev.streamtable.reference;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.NullNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.JoinWindows;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.StreamJoined;
import org.apache.kafka.streams.kstream.ValueJoiner;

/**
 * The stream-stream join reference topologies: {@code stream("left")} joined with
 * {@code stream("right")} within {@link JoinWindows} (inner, left or outer), the joiner
 * {@code (l, r) -> {"l": l, "r": r}} (a missing side is JSON null), written to {@code ssj-out}.
 * See PROTOCOL.md.
 */
final class StreamJoinTopologies {

    static final String LEFT = "left";
    static final String RIGHT = "right";
    static final String OUTPUT = "ssj-out";

    private static final Serde<String> KEY = Serdes.String();
    private static final Serde<JsonNode> JSON = new JsonSerde();
    private static final JsonNodeFactory NODES = JsonNodeFactory.instance;

    /**
     * One topology: the join ("join", "left" or "outer"), the windows (milliseconds; before and
     * after, which differ for asymmetric windows) and whether the left stream is re-keyed first
     * (to its value's "to" field, so repartitioned).
     */
    record Shape(String op, long beforeMs, long afterMs, long graceMs, boolean rekeyLeft) {
        JoinWindows windows() {
            return JoinWindows.ofTimeDifferenceAndGrace(Duration.ofMillis(beforeMs), Duration.ofMillis(graceMs))
                    .before(Duration.ofMillis(beforeMs))
                    .after(Duration.ofMillis(afterMs));
        }
    }

    /** name -> shape, in declaration order. */
    static final Map<String, Shape> SHAPES = new LinkedHashMap<>();

    static {
        SHAPES.put("ssj_inner", new Shape("join", 5_000, 5_000, 2_000, false));
        SHAPES.put("ssj_left", new Shape("left", 5_000, 5_000, 2_000, false));
        SHAPES.put("ssj_outer", new Shape("outer", 5_000, 5_000, 2_000, false));
        SHAPES.put("ssj_inner_asym", new Shape("join", 1_000, 4_000, 1_500, false));
        SHAPES.put("ssj_left_asym", new Shape("left", 1_000, 4_000, 1_500, false));
        SHAPES.put("ssj_outer_asym", new Shape("outer", 4_000, 0, 3_000, false));
        SHAPES.put("ssj_left_rekeyed", new Shape("left", 3_000, 3_000, 1_000, true));
        SHAPES.put("ssj_outer_rekeyed", new Shape("outer", 3_000, 3_000, 1_000, true));
    }

    private StreamJoinTopologies() {
    }

    /** Adds the stream-stream join topology {@code name} to {@code b}. */
    static void build(StreamsBuilder b, String name, String left, String right, String output) {
        Shape s = SHAPES.get(name);
        if (s == null) {
            throw new IllegalArgumentException("unknown stream-stream join topology " + name);
        }
        KStream<String, JsonNode> l = b.stream(left, Consumed.with(KEY, JSON));
        KStream<String, JsonNode> r = b.stream(right, Consumed.with(KEY, JSON));
        if (s.rekeyLeft()) {
            l = l.selectKey((k, v) -> v == null ? k : Topologies.text(v, "to"));
        }
        ValueJoiner<JsonNode, JsonNode, JsonNode> joiner = StreamJoinTopologies::pair;
        StreamJoined<String, JsonNode, JsonNode> joined = StreamJoined.with(KEY, JSON, JSON);
        KStream<String, JsonNode> out = switch (s.op()) {
            case "join" -> l.join(r, joiner, s.windows(), joined);
            case "left" -> l.leftJoin(r, joiner, s.windows(), joined);
            case "outer" -> l.outerJoin(r, joiner, s.windows(), joined);
            default -> throw new IllegalArgumentException("unknown join " + s.op());
        };
        out.to(output, Produced.with(KEY, JSON));
    }

    private static JsonNode pair(JsonNode l, JsonNode r) {
        ObjectNode o = NODES.objectNode();
        o.set("l", l == null ? NullNode.getInstance() : l);
        o.set("r", r == null ? NullNode.getInstance() : r);
        return o;
    }
}
