package dev.streamtable.reference;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import org.apache.kafka.common.Metric;
import org.apache.kafka.common.MetricName;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.TopologyTestDriver;
import org.apache.kafka.streams.kstream.TimeWindowedDeserializer;
import org.apache.kafka.streams.kstream.Windowed;
import org.apache.kafka.streams.state.KeyValueIterator;
import org.apache.kafka.streams.state.ValueAndTimestamp;
import org.apache.kafka.streams.state.WindowStore;
import org.apache.kafka.streams.state.WindowStoreIterator;

/** What the runner prints for windowed topologies: windowed keys, window stores, dropped records. */
final class WindowedDumps {

    private static final JsonNodeFactory NODES = JsonNodeFactory.instance;

    private record Row(String key, long start, long end, Object value) {
    }

    private static final Comparator<Row> ORDER = Comparator.comparing(Row::key, Topologies.CODE_POINT_ORDER)
            .thenComparingLong(Row::start);

    private WindowedDumps() {
    }

    /**
     * A time-windowed key (Kafka Streams' {@code TimeWindowedDeserializer} over strings) as
     * {"key": ..., "start": ms, "end": ms, "bytes": "<hex of the serialized key>"}.
     */
    static JsonNode windowedKey(String topic, byte[] bytes, long windowSizeMs) {
        try (TimeWindowedDeserializer<String> d = new TimeWindowedDeserializer<>(new StringDeserializer(), windowSizeMs)) {
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
     * A window store as {"all": [[key, start, end, value], ...] (from {@code all()}, sorted by key in
     * code point order then start), "fetch": [[key, start, value], ...] (from {@code fetch(key, 0,
     * Long.MAX_VALUE)} for each of {@code fetchKeys}, in that order)}.
     */
    static JsonNode windowStore(TopologyTestDriver driver, String name, boolean longValues, List<String> fetchKeys) {
        try {
            WindowStore<String, ValueAndTimestamp<Object>> store = driver.getTimestampedWindowStore(name);
            if (store == null) {
                return DifferentialRunner.errorNode("no window store named " + name);
            }
            List<Row> rows = new ArrayList<>();
            try (KeyValueIterator<Windowed<String>, ValueAndTimestamp<Object>> it = store.all()) {
                while (it.hasNext()) {
                    KeyValue<Windowed<String>, ValueAndTimestamp<Object>> kv = it.next();
                    rows.add(new Row(kv.key.key(), kv.key.window().start(), kv.key.window().end(),
                            kv.value == null ? null : kv.value.value()));
                }
            }
            rows.sort(ORDER);
            ArrayNode all = NODES.arrayNode();
            for (Row r : rows) {
                all.addArray().add(r.key()).add(r.start()).add(r.end())
                        .add(DifferentialRunner.toJson(r.value(), longValues));
            }
            ArrayNode fetched = NODES.arrayNode();
            for (String key : fetchKeys) {
                try (WindowStoreIterator<ValueAndTimestamp<Object>> it =
                             store.fetch(key, Instant.ofEpochMilli(0), Instant.ofEpochMilli(Long.MAX_VALUE))) {
                    while (it.hasNext()) {
                        KeyValue<Long, ValueAndTimestamp<Object>> kv = it.next();
                        fetched.addArray().add(key).add(kv.key)
                                .add(DifferentialRunner.toJson(kv.value == null ? null : kv.value.value(), longValues));
                    }
                }
            }
            ObjectNode out = NODES.objectNode();
            out.set("all", all);
            out.set("fetch", fetched);
            return out;
        } catch (Exception e) {
            e.printStackTrace();
            return DifferentialRunner.errorNode(DifferentialRunner.describe(e));
        }
    }

    /** The sum over tasks of Kafka Streams' {@code dropped-records-total} (stream-task-metrics). */
    static long droppedRecords(TopologyTestDriver driver) {
        double total = 0;
        for (Map.Entry<MetricName, ? extends Metric> e : driver.metrics().entrySet()) {
            MetricName m = e.getKey();
            if (m.name().equals("dropped-records-total") && m.group().equals("stream-task-metrics")
                    && e.getValue().metricValue() instanceof Number n) {
                total += n.doubleValue();
            }
        }
        return Math.round(total);
    }
}
