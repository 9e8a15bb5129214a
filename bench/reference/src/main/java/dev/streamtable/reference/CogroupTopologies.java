package dev.streamtable.reference;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.kstream.Consumed;
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

    private CogroupTopologies() {
    }

    static void build(StreamsBuilder b, boolean rekeyed) {
        KStream<String, JsonNode> buys = b.stream(BUYS, Consumed.with(KEY, JSON));
        KStream<String, JsonNode> sells = b.stream(SELLS, Consumed.with(KEY, JSON));
        KGroupedStream<String, JsonNode> groupedBuys = rekeyed
                ? buys.groupBy((k, v) -> v == null ? k : Topologies.text(v, "to"), Grouped.with(KEY, JSON))
                : buys.groupByKey(Grouped.with(KEY, JSON));
        groupedBuys
                .<JsonNode>cogroup((k, v, agg) -> sums(agg.get("b").asLong() + v.get("n").asLong(),
                        agg.get("s").asLong(), "b"))
                .cogroup(sells.groupByKey(Grouped.with(KEY, JSON)),
                        (k, v, agg) -> sums(agg.get("b").asLong(),
                                agg.get("s").asLong() + v.get("n").asLong(), "s"))
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
