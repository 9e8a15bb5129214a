package dev.streamtable.reference;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import org.apache.kafka.common.errors.SerializationException;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serializer;

/**
 * Jackson JsonNode serde.
 *
 * <p>serialize: JsonNode -> compact UTF-8 JSON bytes; Java null -> null (a tombstone).
 * deserialize: bytes -> JsonNode; null -> null. A JSON {@code null} literal is never produced by
 * {@link #serializer()} for a Java null, but if one arrives as bytes it deserializes to Java null too,
 * so "null" and a tombstone are indistinguishable downstream.
 *
 * <p>Has a public no-arg constructor so it can be used as {@code default.value.serde}.
 */
public final class JsonSerde implements Serde<JsonNode> {

    /** Shared, thread-safe after configuration. */
    public static final ObjectMapper MAPPER = new ObjectMapper();

    private static final Serializer<JsonNode> SERIALIZER = new JsonSerializer();
    private static final Deserializer<JsonNode> DESERIALIZER = new JsonDeserializer();

    public JsonSerde() {
    }

    @Override
    public Serializer<JsonNode> serializer() {
        return SERIALIZER;
    }

    @Override
    public Deserializer<JsonNode> deserializer() {
        return DESERIALIZER;
    }

    /** JsonNode -> UTF-8 bytes. */
    public static final class JsonSerializer implements Serializer<JsonNode> {
        @Override
        public byte[] serialize(String topic, JsonNode data) {
            if (data == null) {
                return null;
            }
            try {
                return MAPPER.writeValueAsBytes(data);
            } catch (IOException e) {
                throw new SerializationException("cannot serialize JSON for topic " + topic, e);
            }
        }
    }

    /** UTF-8 bytes -> JsonNode. */
    public static final class JsonDeserializer implements Deserializer<JsonNode> {
        @Override
        public JsonNode deserialize(String topic, byte[] data) {
            if (data == null) {
                return null;
            }
            try {
                JsonNode node = MAPPER.readTree(data);
                return node == null || node.isNull() || node.isMissingNode() ? null : node;
            } catch (IOException e) {
                throw new SerializationException("cannot deserialize JSON from topic " + topic, e);
            }
        }
    }
}
