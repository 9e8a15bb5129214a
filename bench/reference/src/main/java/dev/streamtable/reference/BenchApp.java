package dev.streamtable.reference;

import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.processor.StateRestoreListener;

/**
 * Benchmark app: runs the {@code seed} topology against a real cluster. See PROTOCOL.md.
 *
 * <pre>
 * BenchApp --bootstrap HOST:PORT --application-id ID --input TOPIC --output TOPIC
 *          [--state-dir DIR] [--guarantee at_least_once|exactly_once_v2]
 *          [--commit-interval-ms N] [--cache-max-bytes N] [--threads N] [--describe true]
 *          [--topology seed|w6] [--probe-store STORE --probe-keys K1,K2]
 * </pre>
 *
 * {@code --topology w6} runs bench W6's windowed counts and sums ({@link W6Topology}) instead of
 * the seed topology. {@code --probe-store} starts a {@link StoreProbe} over that store's probe keys
 * (bench/latency.py), which prints {@code SEEN <element> <wall-clock ns>} lines.
 *
 * stdout: {@code STATE <state>}, {@code RESTORE_START <store> <partition> <start> <end>},
 * {@code RESTORED <store> <partition> <records>}. SIGTERM/SIGINT: close(30s), exit 0.
 * If the client itself reaches ERROR it is closed and the process exits 1.
 */
public final class BenchApp {

    private static final List<String> REQUIRED = List.of("bootstrap", "application-id", "input", "output");
    private static final Set<String> KNOWN = Set.of("bootstrap", "application-id", "input", "output", "state-dir",
            "guarantee", "commit-interval-ms", "cache-max-bytes", "threads", "describe", "topology",
            "probe-store", "probe-keys");

    private static final PrintStream OUT = new PrintStream(new java.io.FileOutputStream(java.io.FileDescriptor.out),
            true, StandardCharsets.UTF_8);

    private BenchApp() {
    }

    private static void usage(String problem) {
        System.err.println("error: " + problem);
        System.err.println("usage: java -cp ... dev.streamtable.reference.BenchApp"
                + " --bootstrap HOST:PORT --application-id ID --input TOPIC --output TOPIC"
                + " [--state-dir DIR] [--guarantee at_least_once|exactly_once_v2]"
                + " [--commit-interval-ms N] [--cache-max-bytes N] [--threads N (default 1)] [--describe true]"
                + " [--topology seed|w6] [--probe-store STORE --probe-keys K1,K2]");
        System.exit(2);
    }

    private static synchronized void say(String line) {
        OUT.println(line);
        OUT.flush();
    }

    static Map<String, String> parse(String[] args) {
        Map<String, String> flags = new LinkedHashMap<>();
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (!a.startsWith("--") || a.length() == 2) {
                usage("unexpected argument '" + a + "'");
            }
            String name = a.substring(2);
            String value;
            int eq = name.indexOf('=');
            if (eq >= 0) {
                value = name.substring(eq + 1);
                name = name.substring(0, eq);
            } else {
                if (i + 1 >= args.length) {
                    usage("missing value for --" + name);
                }
                value = args[++i];
            }
            if (!KNOWN.contains(name)) {
                usage("unknown flag --" + name);
            }
            flags.put(name, value);
        }
        for (String r : REQUIRED) {
            if (!flags.containsKey(r) || flags.get(r).isEmpty()) {
                usage("--" + r + " is required");
            }
        }
        return flags;
    }

    private static long number(Map<String, String> flags, String name, long min) {
        try {
            long v = Long.parseLong(flags.get(name));
            if (v < min) {
                usage("--" + name + " must be >= " + min);
            }
            return v;
        } catch (NumberFormatException e) {
            usage("--" + name + " must be an integer");
            return 0; // unreachable
        }
    }

    public static void main(String[] args) throws Exception {
        System.setOut(System.err); // stdout carries only the STATE/RESTORE lines
        Map<String, String> flags = parse(args);

        Properties props = new Properties();
        props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, flags.get("bootstrap"));
        props.put(StreamsConfig.APPLICATION_ID_CONFIG, flags.get("application-id"));
        props.put(StreamsConfig.DEFAULT_KEY_SERDE_CLASS_CONFIG, Serdes.StringSerde.class.getName());
        props.put(StreamsConfig.DEFAULT_VALUE_SERDE_CLASS_CONFIG, JsonSerde.class.getName());
        props.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");
        if (flags.containsKey("state-dir")) {
            props.put(StreamsConfig.STATE_DIR_CONFIG, flags.get("state-dir"));
        }
        String guarantee = flags.getOrDefault("guarantee", StreamsConfig.AT_LEAST_ONCE);
        if (!guarantee.equals(StreamsConfig.AT_LEAST_ONCE) && !guarantee.equals(StreamsConfig.EXACTLY_ONCE_V2)) {
            usage("--guarantee must be at_least_once or exactly_once_v2");
        }
        props.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, guarantee);
        if (flags.containsKey("commit-interval-ms")) {
            props.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, number(flags, "commit-interval-ms", 0));
        }
        if (flags.containsKey("cache-max-bytes")) {
            props.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, number(flags, "cache-max-bytes", 0));
        }
        props.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG,
                flags.containsKey("threads") ? (int) number(flags, "threads", 1) : 1);

        String shape = flags.getOrDefault("topology", "seed");
        Topology topology;
        if (shape.equals("w6")) {
            org.apache.kafka.streams.StreamsBuilder builder = new org.apache.kafka.streams.StreamsBuilder();
            W6Topology.build(builder, flags.get("input"), flags.get("output"));
            topology = builder.build(props);
        } else if (shape.equals("seed")) {
            topology = Topologies.build("seed", props,
                    Map.of("positions", flags.get("input"), "seed-out", flags.get("output")));
        } else {
            usage("--topology must be seed or w6");
            return;
        }
        if (Boolean.parseBoolean(flags.getOrDefault("describe", "false"))) {
            System.err.println(topology.describe());
        }

        KafkaStreams streams = new KafkaStreams(topology, props);
        CountDownLatch stop = new CountDownLatch(1);
        AtomicBoolean failed = new AtomicBoolean(false);

        streams.setStateListener((newState, oldState) -> {
            say("STATE " + newState);
            if (newState == KafkaStreams.State.ERROR) {
                failed.set(true);
                stop.countDown();
            }
        });
        streams.setGlobalStateRestoreListener(new StateRestoreListener() {
            @Override
            public void onRestoreStart(TopicPartition tp, String storeName, long startingOffset, long endingOffset) {
                say("RESTORE_START " + storeName + " " + tp.partition() + " " + startingOffset + " " + endingOffset);
            }

            @Override
            public void onBatchRestored(TopicPartition tp, String storeName, long batchEndOffset, long numRestored) {
            }

            @Override
            public void onRestoreEnd(TopicPartition tp, String storeName, long totalRestored) {
                say("RESTORED " + storeName + " " + tp.partition() + " " + totalRestored);
            }
        });

        AtomicInteger signals = new AtomicInteger();
        installSignalHandler("TERM", stop, signals);
        installSignalHandler("INT", stop, signals);

        StoreProbe probe = null;
        if (flags.containsKey("probe-store")) {
            String keys = flags.getOrDefault("probe-keys", "");
            if (keys.isEmpty()) {
                usage("--probe-store needs --probe-keys");
            }
            probe = new StoreProbe(streams, flags.get("probe-store"), List.of(keys.split(",")), BenchApp::say);
        }
        streams.start();
        if (probe != null) {
            probe.start();
        }
        stop.await();
        if (probe != null) {
            probe.stop();
        }

        boolean clean = streams.close(Duration.ofSeconds(30));
        if (!clean) {
            System.err.println("warning: KafkaStreams.close did not finish within 30s");
        }
        OUT.flush();
        System.exit(failed.get() && signals.get() == 0 ? 1 : 0);
    }

    /**
     * Replaces the JVM's default handler (which would run shutdown hooks and exit 143) so that the main
     * thread can close the streams client and exit 0.
     */
    private static void installSignalHandler(String name, CountDownLatch stop, AtomicInteger signals) {
        try {
            sun.misc.Signal.handle(new sun.misc.Signal(name), sig -> {
                if (signals.incrementAndGet() > 1) {
                    System.err.println("second SIG" + name + ": exiting immediately");
                    Runtime.getRuntime().halt(1);
                }
                stop.countDown();
            });
        } catch (IllegalArgumentException e) {
            System.err.println("warning: cannot handle SIG" + name + ": " + e.getMessage());
        }
    }
}
