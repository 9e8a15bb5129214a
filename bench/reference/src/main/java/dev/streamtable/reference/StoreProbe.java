package dev.streamtable.reference;

import com.fasterxml.jackson.databind.JsonNode;
import java.time.Instant;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Consumer;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StoreQueryParameters;
import org.apache.kafka.streams.errors.InvalidStateStoreException;
import org.apache.kafka.streams.state.QueryableStoreTypes;
import org.apache.kafka.streams.state.ReadOnlyKeyValueStore;

/**
 * The bench latency part's store probe (bench/latency.py; the same as bench/latency_probe.py): a
 * daemon thread that reads each probe key through interactive queries ({@code streams.store(...)
 * .get(key)}, which reads through the record cache) in a loop, 1 ms between rounds, and prints
 * {@code SEEN <element> <wall-clock ns>} for each element of a key's value (a JSON array: the seed
 * topology's position ids) seen for the first time. Not ready (before RUNNING, during a rebalance):
 * tries again after 100 ms.
 */
final class StoreProbe implements Runnable {

    private final KafkaStreams streams;
    private final String store;
    private final Map<String, Set<String>> known = new LinkedHashMap<>();
    private final Consumer<String> say;
    private volatile boolean stopped;

    StoreProbe(KafkaStreams streams, String store, List<String> keys, Consumer<String> say) {
        this.streams = streams;
        this.store = store;
        this.say = say;
        for (String key : keys) {
            known.put(key, new HashSet<>());
        }
    }

    Thread start() {
        Thread thread = new Thread(this, "bench-store-probe");
        thread.setDaemon(true);
        thread.start();
        return thread;
    }

    void stop() {
        stopped = true;
    }

    private static long wallNs() {
        Instant now = Instant.now();
        return now.getEpochSecond() * 1_000_000_000L + now.getNano();
    }

    @Override
    public void run() {
        while (!stopped) {
            try {
                ReadOnlyKeyValueStore<String, JsonNode> view = streams.store(
                        StoreQueryParameters.fromNameAndType(store, QueryableStoreTypes.keyValueStore()));
                for (Map.Entry<String, Set<String>> entry : known.entrySet()) {
                    JsonNode value = view.get(entry.getKey());
                    long seenNs = wallNs();
                    if (value == null || !value.isArray()) {
                        continue;
                    }
                    for (JsonNode element : value) {
                        if (entry.getValue().add(element.asText())) {
                            say.accept("SEEN " + element.asText() + " " + seenNs);
                        }
                    }
                }
                Thread.sleep(1);
            } catch (InvalidStateStoreException e) {
                pause(100);
            } catch (InterruptedException e) {
                return;
            }
        }
    }

    private static void pause(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
