package dev.streamtable.reference;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.LongNode;
import com.fasterxml.jackson.databind.node.NullNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.databind.node.TextNode;
import java.io.BufferedReader;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.io.PrintStream;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.attribute.BasicFileAttributes;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.TestInputTopic;
import org.apache.kafka.streams.TestOutputTopic;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.TopologyTestDriver;
import org.apache.kafka.streams.state.KeyValueIterator;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.ValueAndTimestamp;
import org.apache.kafka.streams.test.TestRecord;

/**
 * Differential test runner: JSON-lines cases on stdin, one JSON-line result per case on stdout.
 * See PROTOCOL.md for the exact protocol.
 */
public final class DifferentialRunner {

    private static final ObjectMapper MAPPER = JsonSerde.MAPPER;
    private static final JsonNodeFactory NODES = JsonNodeFactory.instance;

    /**
     * Where the per-case state dirs go: $STREAMTABLE_DIFF_STATE_BASE, else /dev/shm when writable
     * (RocksDB open/close on tmpfs roughly halves the per-case cost), else java.io.tmpdir.
     */
    private static final Path STATE_BASE = stateBase();

    private static Path stateBase() {
        String env = System.getenv("STREAMTABLE_DIFF_STATE_BASE");
        if (env != null && !env.isBlank()) {
            return Path.of(env);
        }
        Path shm = Path.of("/dev/shm");
        if (Files.isDirectory(shm) && Files.isWritable(shm)) {
            return shm;
        }
        return Path.of(System.getProperty("java.io.tmpdir"));
    }

    private final Writer out;
    private int caseNumber = 0;

    private DifferentialRunner(Writer out) {
        this.out = out;
    }

    public static void main(String[] args) throws IOException {
        // stdout carries the protocol only: anything else printing to System.out goes to stderr.
        PrintStream realOut = new PrintStream(new FileOutputStream(FileDescriptor.out), false, StandardCharsets.UTF_8);
        System.setOut(System.err);
        Writer out = new OutputStreamWriter(realOut, StandardCharsets.UTF_8);
        DifferentialRunner runner = new DifferentialRunner(out);
        try (BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8))) {
            String line;
            while ((line = in.readLine()) != null) {
                if (line.isBlank()) {
                    continue;
                }
                runner.emit(runner.runLine(line));
            }
        }
        out.flush();
        System.exit(0);
    }

    private void emit(ObjectNode result) throws IOException {
        out.write(MAPPER.writeValueAsString(result));
        out.write('\n');
        out.flush();
    }

    private ObjectNode runLine(String line) {
        JsonNode c;
        try {
            c = MAPPER.readTree(line);
        } catch (IOException e) {
            return fatal(NullNode.getInstance(), "bad input line: " + describe(e));
        }
        if (c == null || !c.isObject()) {
            return fatal(NullNode.getInstance(), "bad input line: not a JSON object");
        }
        JsonNode id = c.has("case") ? c.get("case") : NullNode.getInstance();
        String name = c.path("topology").asText("");
        Topologies.Spec spec = Topologies.spec(name);
        if (spec == null) {
            return fatal(id, "unknown topology " + name);
        }
        JsonNode records = c.get("records");
        if (records != null && !records.isNull() && !records.isArray()) {
            return fatal(id, "records must be an array");
        }
        JsonNode fetchKeys = c.get("fetch_keys");
        if (fetchKeys != null && !fetchKeys.isNull() && !fetchKeys.isArray()) {
            return fatal(id, "fetch_keys must be an array of strings");
        }
        List<String> keys = new ArrayList<>();
        if (fetchKeys != null && fetchKeys.isArray()) {
            fetchKeys.forEach(k -> keys.add(k.asText()));
        }
        JsonNode cache = c.get("cache_max_bytes");
        if (cache != null && !cache.isNull() && !cache.canConvertToExactIntegral()) {
            return fatal(id, "cache_max_bytes must be an integer");
        }
        Long cacheMaxBytes = cache == null || cache.isNull() ? null : cache.asLong();
        JsonNode config = c.get("config");
        if (config != null && !config.isNull() && !config.isObject()) {
            return fatal(id, "config must be an object");
        }
        try {
            return runCase(id, spec, records == null ? NODES.arrayNode() : records, keys, cacheMaxBytes,
                    config == null || config.isNull() ? NODES.objectNode() : config);
        } catch (Exception | Error e) {
            e.printStackTrace();
            return fatal(id, describe(e));
        }
    }

    private static ObjectNode fatal(JsonNode id, String message) {
        ObjectNode r = NODES.objectNode();
        r.set("case", id);
        r.put("fatal", message);
        return r;
    }

    /** "{@code <exception class>: <message>}", i.e. Throwable.toString(). */
    static String describe(Throwable e) {
        return e.getClass().getName() + ": " + e.getMessage();
    }

    private static Throwable rootCause(Throwable e) {
        Throwable c = e;
        while (c.getCause() != null && c.getCause() != c) {
            c = c.getCause();
        }
        return c;
    }

    private ObjectNode runCase(JsonNode id, Topologies.Spec spec, JsonNode records, List<String> fetchKeys,
                               Long cacheMaxBytes, JsonNode config) throws IOException {
        int n = caseNumber++;
        Files.createDirectories(STATE_BASE);
        Path stateDir = Files.createTempDirectory(STATE_BASE, "streamtable-diff-");
        Properties props = new Properties();
        props.put(StreamsConfig.APPLICATION_ID_CONFIG, "diff-" + n);
        props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, "unused:9092");
        props.put(StreamsConfig.STATE_DIR_CONFIG, stateDir.toString());
        props.put(StreamsConfig.DEFAULT_KEY_SERDE_CLASS_CONFIG, Serdes.StringSerde.class.getName());
        props.put(StreamsConfig.DEFAULT_VALUE_SERDE_CLASS_CONFIG, JsonSerde.class.getName());
        // Emit-final checks for closed windows at most once per this much wall-clock time, which
        // the driver never advances: 0 checks after every record (as Kafka Streams' own tests do).
        props.put(StreamsConfig.InternalConfig.EMIT_INTERVAL_MS_KSTREAMS_WINDOWED_AGGREGATION, 0L);
        if (cacheMaxBytes != null) {
            props.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, cacheMaxBytes);
        }
        // Extra configs, e.g. the internal "__emit.interval.ms.kstreams.outer.join.spurious.results.fix__".
        config.fields().forEachRemaining(e -> props.put(e.getKey(),
                e.getValue().isIntegralNumber() ? (Object) e.getValue().asLong() : e.getValue().asText()));
        // A fresh Topology per case: a Topology is rewritten by the driver for its application id.
        Topology topology = Topologies.build(spec.name(), props);

        ArrayNode outputs = NODES.arrayNode();
        ObjectNode stores = NODES.objectNode();
        long dropped = 0;
        TopologyTestDriver driver = null;
        try {
            driver = new TopologyTestDriver(topology, props, Instant.ofEpochMilli(0));
            Map<String, TestOutputTopic<byte[], JsonNode>> outTopics = new LinkedHashMap<>();
            for (String topic : spec.outputs()) {
                outTopics.put(topic, driver.createOutputTopic(topic, new ByteArrayDeserializer(),
                        new JsonSerde.JsonDeserializer()));
            }
            Map<String, TestInputTopic<String, JsonNode>> inTopics = new HashMap<>();

            for (int i = 0; i < records.size(); i++) {
                JsonNode rec = records.get(i);
                try {
                    pipe(driver, inTopics, rec);
                } catch (Exception e) {
                    System.err.println("case " + id + " record " + i + ": " + describe(e));
                    ObjectNode err = NODES.objectNode();
                    err.put("error", describe(e));
                    err.put("index", i);
                    err.put("cause", describe(rootCause(e)));
                    outputs.add(err);
                }
                readOutputs(spec, outTopics, i, outputs);
            }

            for (String store : spec.stores()) {
                boolean longValues = spec.longStores().contains(store);
                stores.set(store, spec.windowed()
                        ? WindowedDumps.windowStore(driver, store, longValues, fetchKeys)
                        : spec.session()
                        ? SessionTopologies.sessionStore(driver, store, longValues, fetchKeys)
                        : dumpStore(driver, store, longValues));
            }
            dropped = WindowedDumps.droppedRecords(driver);
        } finally {
            if (driver != null) {
                try {
                    driver.close();
                } catch (Exception e) {
                    System.err.println("case " + id + ": error closing the driver: " + describe(e));
                }
            }
            deleteRecursively(stateDir);
        }

        ObjectNode result = NODES.objectNode();
        result.set("case", id);
        result.set("outputs", outputs);
        result.set("stores", stores);
        result.put("dropped_records", dropped);
        return result;
    }

    /** Appends what the output topics hold after input record {@code i}. */
    private static void readOutputs(Topologies.Spec spec, Map<String, TestOutputTopic<byte[], JsonNode>> outTopics,
                                    int i, ArrayNode outputs) {
        StringDeserializer strings = new StringDeserializer();
        for (Map.Entry<String, TestOutputTopic<byte[], JsonNode>> e : outTopics.entrySet()) {
            for (TestRecord<byte[], JsonNode> r : e.getValue().readRecordsToList()) {
                ObjectNode o = NODES.objectNode();
                o.put("after", i);
                o.put("topic", e.getKey());
                if (r.key() == null) {
                    o.set("key", NullNode.getInstance());
                } else if (spec.windowed()) {
                    o.set("key", WindowedDumps.windowedKey(e.getKey(), r.key(), spec.windowSizeMs()));
                } else if (spec.session()) {
                    o.set("key", SessionTopologies.sessionKey(e.getKey(), r.key()));
                } else {
                    o.set("key", TextNode.valueOf(strings.deserialize(e.getKey(), r.key())));
                }
                o.set("value", r.value() == null ? NullNode.getInstance() : r.value());
                o.put("ts", r.timestamp());
                outputs.add(o);
            }
        }
    }

    private static void pipe(TopologyTestDriver driver, Map<String, TestInputTopic<String, JsonNode>> inTopics,
                             JsonNode rec) {
        if (rec == null || !rec.isObject()) {
            throw new IllegalArgumentException("record must be a JSON object");
        }
        JsonNode topicNode = rec.get("topic");
        if (topicNode == null || !topicNode.isTextual()) {
            throw new IllegalArgumentException("record has no string 'topic'");
        }
        JsonNode keyNode = rec.get("key");
        String key;
        if (keyNode == null || keyNode.isNull()) {
            key = null;
        } else if (keyNode.isTextual()) {
            key = keyNode.asText();
        } else {
            throw new IllegalArgumentException("key must be a string or null");
        }
        JsonNode valueNode = rec.get("value");
        JsonNode value = valueNode == null || valueNode.isNull() ? null : valueNode;
        JsonNode tsNode = rec.get("ts");
        long ts;
        if (tsNode == null || tsNode.isNull()) {
            ts = 0L;
        } else if (tsNode.canConvertToExactIntegral() && tsNode.canConvertToLong()) {
            ts = tsNode.asLong();
        } else {
            throw new IllegalArgumentException("ts must be an integer (epoch ms)");
        }
        TestInputTopic<String, JsonNode> topic = inTopics.computeIfAbsent(topicNode.asText(),
                t -> driver.createInputTopic(t, new StringSerializer(), new JsonSerde.JsonSerializer()));
        topic.pipeInput(key, value, ts);
    }

    private static JsonNode dumpStore(TopologyTestDriver driver, String name, boolean longValues) {
        try {
            List<KeyValue<String, Object>> rows = new ArrayList<>();
            KeyValueStore<String, ValueAndTimestamp<Object>> timestamped = driver.getTimestampedKeyValueStore(name);
            if (timestamped != null) {
                try (KeyValueIterator<String, ValueAndTimestamp<Object>> it = timestamped.all()) {
                    while (it.hasNext()) {
                        KeyValue<String, ValueAndTimestamp<Object>> kv = it.next();
                        rows.add(KeyValue.pair(kv.key, kv.value == null ? null : kv.value.value()));
                    }
                }
            } else {
                KeyValueStore<String, Object> plain = driver.getKeyValueStore(name);
                if (plain == null) {
                    return errorNode("no key-value store named " + name);
                }
                try (KeyValueIterator<String, Object> it = plain.all()) {
                    while (it.hasNext()) {
                        rows.add(it.next());
                    }
                }
            }
            rows.sort((a, b) -> Topologies.CODE_POINT_ORDER.compare(a.key, b.key));
            ArrayNode arr = NODES.arrayNode();
            for (KeyValue<String, Object> kv : rows) {
                ArrayNode pair = arr.addArray();
                pair.add(kv.key);
                pair.add(toJson(kv.value, longValues));
            }
            return arr;
        } catch (Exception e) {
            e.printStackTrace();
            return errorNode(describe(e));
        }
    }

    static JsonNode toJson(Object v, boolean longValue) {
        if (v == null) {
            return NullNode.getInstance();
        }
        if (v instanceof JsonNode j) {
            return j;
        }
        if (longValue || v instanceof Long) {
            return LongNode.valueOf(((Number) v).longValue());
        }
        return MAPPER.valueToTree(v);
    }

    static JsonNode errorNode(String message) {
        ObjectNode e = NODES.objectNode();
        e.put("error", message);
        return e;
    }

    private static void deleteRecursively(Path dir) {
        try {
            Files.walkFileTree(dir, new SimpleFileVisitor<>() {
                @Override
                public FileVisitResult visitFile(Path file, BasicFileAttributes attrs) throws IOException {
                    Files.deleteIfExists(file);
                    return FileVisitResult.CONTINUE;
                }

                @Override
                public FileVisitResult postVisitDirectory(Path d, IOException exc) throws IOException {
                    Files.deleteIfExists(d);
                    return FileVisitResult.CONTINUE;
                }
            });
        } catch (IOException e) {
            System.err.println("warning: could not delete " + dir + ": " + e);
        }
    }
}
