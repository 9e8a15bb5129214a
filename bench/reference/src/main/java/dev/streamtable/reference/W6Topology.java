package dev.streamtable.reference;

import com.fasterxml.jackson.databind.JsonNode;
import java.time.Duration;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.KGroupedStream;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.TimeWindows;
import org.apache.kafka.streams.kstream.WindowedSerdes;
import org.apache.kafka.streams.state.WindowStore;

/**
 * The benchmark's W6 topology (bench/w6.py): trades keyed by client ({@code {"client": "...",
 * "amount": n}}, event time in the record timestamp) counted and summed per client in 1-minute
 * tumbling windows (to {@code <output>}) and in 5-minute windows hopping by 1 minute (to
 * {@code <output>-hopping}), each {@code {"count": n, "total": sum}}, keyed by Kafka Streams'
 * time-windowed serde over strings. Grace: {@link #GRACE_MS} for both.
 */
final class W6Topology {

    static final long GRACE_MS = 10_000;

    private static final Serde<String> KEY = Serdes.String();
    private static final Serde<JsonNode> JSON = new JsonSerde();

    private W6Topology() {
    }

    static void build(StreamsBuilder b, String input, String output) {
        KGroupedStream<String, JsonNode> byClient =
                b.stream(input, Consumed.with(KEY, JSON)).groupByKey(Grouped.with(KEY, JSON));
        TimeWindows tumbling = TimeWindows.ofSizeAndGrace(Duration.ofMinutes(1), Duration.ofMillis(GRACE_MS));
        TimeWindows hopping = TimeWindows.ofSizeAndGrace(Duration.ofMinutes(5), Duration.ofMillis(GRACE_MS))
                .advanceBy(Duration.ofMinutes(1));
        totals(byClient, tumbling, "w6-tumbling", output);
        totals(byClient, hopping, "w6-hopping", output + "-hopping");
    }

    private static void totals(KGroupedStream<String, JsonNode> byClient, TimeWindows windows, String store,
            String output) {
        byClient.windowedBy(windows)
                .aggregate(
                        () -> Topologies.totals(0, 0),
                        (k, v, agg) -> Topologies.totals(agg.get("count").asLong() + 1,
                                agg.get("total").asLong() + v.get("amount").asLong()),
                        Materialized.<String, JsonNode, WindowStore<Bytes, byte[]>>as(store)
                                .withKeySerde(KEY).withValueSerde(JSON))
                .toStream()
                .to(output, Produced.with(WindowedSerdes.timeWindowedSerdeFrom(String.class, windows.size()), JSON));
    }
}
