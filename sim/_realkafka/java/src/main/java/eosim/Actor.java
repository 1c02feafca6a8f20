package eosim;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import org.apache.kafka.clients.consumer.ConsumerGroupMetadata;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.ApiException;
import org.apache.kafka.common.errors.AuthorizationException;
import org.apache.kafka.common.errors.InvalidPidMappingException;
import org.apache.kafka.common.errors.InvalidTxnStateException;
import org.apache.kafka.common.errors.OutOfOrderSequenceException;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.apache.kafka.common.errors.RetriableException;
import org.apache.kafka.common.errors.TimeoutException;
import org.apache.kafka.common.errors.UnsupportedVersionException;
import org.apache.kafka.common.protocol.Errors;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * One real Kafka Java client (KafkaProducer or KafkaConsumer), driven by sim/_realkafka/java.py: the
 * Java lane's counterpart of the confluent-kafka actor process in sim/_realkafka/driver.py.
 *
 * <p>stdin, one JSON object a line: first {"kind", "config"} (Java keys), then calls {"id", "method",
 * "args"} named as confluent-kafka's methods. stdout, one JSON object a line: {"id", "status" (ok,
 * kafka, raise), "result", "reports"}. A failed call's result is [code, text, fatal, retriable,
 * abortable], with Kafka's error code or librdkafka's local code for what Java reports without one.
 * Delivery reports wait in a queue and ship with poll, flush, commit and abort, where librdkafka
 * serves them; confluent-kafka's other calls never run a delivery callback.
 */
public final class Actor {
    static final int STATE = -172; // librdkafka _STATE: an API call in the wrong state
    static final int NOT_CONFIGURED = -145; // librdkafka _NOT_CONFIGURED: a transactional call without transactional.id
    static final int TIMED_OUT = -185; // librdkafka _TIMED_OUT: a call's own deadline passed
    static final long OFFSET_INVALID = -1001;
    static final Set<String> SERVES_REPORTS = Set.of("poll", "flush", "commit_transaction", "abort_transaction");

    final ObjectMapper json = new ObjectMapper();
    final PrintStream out;
    final List<ArrayNode> reports = new ArrayList<>();
    final Set<Integer> reported = java.util.concurrent.ConcurrentHashMap.newKeySet();
    KafkaProducer<byte[], byte[]> producer;
    KafkaConsumer<byte[], byte[]> consumer;

    Actor(PrintStream out) {
        this.out = out;
    }

    public static void main(String[] argv) throws Exception {
        PrintStream out = new PrintStream(System.out, false, StandardCharsets.UTF_8);
        System.setOut(System.err); // only replies go to stdout
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        new Actor(out).serve(in);
    }

    void serve(BufferedReader in) throws Exception {
        warmUp();
        String first = in.readLine(); // a spare JVM waits here, warmed up, until it gets its client
        if (first == null) return;
        JsonNode start = json.readTree(first);
        if (start.hasNonNull("log")) { // slf4j-simple writes to whatever System.err is at the time
            System.setErr(new PrintStream(new java.io.FileOutputStream(start.get("log").asText(), true), true,
                    StandardCharsets.UTF_8));
        }
        Properties props = new Properties();
        start.get("config").fields().forEachRemaining(e -> props.put(e.getKey(), e.getValue().asText()));
        try {
            if (start.get("kind").asText().equals("producer")) {
                producer = new KafkaProducer<>(props, new ByteArraySerializer(), new ByteArraySerializer());
            } else {
                consumer = new KafkaConsumer<>(props, new ByteArrayDeserializer(), new ByteArrayDeserializer());
            }
        } catch (Exception e) {
            reply(0, "raise", raised(e), false);
            return;
        }
        reply(0, "ok", null, false);
        // KafkaConsumer is single-threaded: its calls run in order on one thread. KafkaProducer is
        // thread-safe: produce and begin_transaction run in order on this thread (as the confluent actor
        // runs its RETURNS_AT_ONCE calls), every other call gets a thread, so a nowait commit and the
        // next steps overlap.
        ExecutorService consumerThread = Executors.newSingleThreadExecutor();
        for (String line; (line = in.readLine()) != null; ) {
            JsonNode call = json.readTree(line);
            String method = call.get("method").asText();
            Runnable run = () -> handle(call.get("id").asInt(), method, call.get("args"));
            if (consumer != null) consumerThread.execute(run);
            else if (method.equals("produce") || method.equals("begin_transaction")) run.run();
            else new Thread(run).start();
        }
        Runtime.getRuntime().halt(0); // the driver is done with us: no close, as after a crash
    }

    /** Build and close a producer and a consumer while the JVM waits as a spare: loading and compiling
     * their classes (~1 s on a loaded machine) would otherwise delay the actor's first calls. */
    static void warmUp() {
        Properties props = new Properties();
        props.put("bootstrap.servers", "127.0.0.1:9");
        props.put("client.id", "eosim-warm-up");
        props.put("group.id", "eosim-warm-up");
        props.put("transactional.id", "eosim-warm-up");
        new KafkaProducer<>(props, new ByteArraySerializer(), new ByteArraySerializer()).close(Duration.ZERO);
        props.remove("transactional.id");
        new KafkaConsumer<>(props, new ByteArrayDeserializer(), new ByteArrayDeserializer()).close(Duration.ZERO);
    }

    void handle(int id, String method, JsonNode args) {
        boolean serves = SERVES_REPORTS.contains(method);
        try {
            reply(id, "ok", call(method, args), serves);
        } catch (KafkaException | IllegalStateException e) {
            reply(id, "kafka", error(e), serves);
        } catch (Exception e) {
            reply(id, "raise", raised(e), serves);
        }
    }

    Object call(String method, JsonNode a) throws Exception {
        switch (method) {
            case "produce": {
                int token = a.get(4).asInt(-1);
                Integer partition = a.get(3).asInt() < 0 ? null : a.get(3).asInt();
                producer.send(new ProducerRecord<>(a.get(0).asText(), partition, bytes(a.get(2)), bytes(a.get(1))),
                        (metadata, e) -> {
                            // One report per record, as confluent-kafka gives: a send refused after its record
                            // was appended (a fenced producer) completes it twice, once in send, once aborted.
                            if (token < 0 || !reported.add(token)) return;
                            ArrayNode report = json.createArrayNode().add(token);
                            // The report carries the code only, as a confluent-kafka delivery report does.
                            report.add(e == null ? null : json.valueToTree(List.of(code(e), String.valueOf(e),
                                    false, false, false)));
                            report.add(json.valueToTree(List.of(metadata.topic(), metadata.partition(),
                                    metadata.hasOffset() ? metadata.offset() : -1)));
                            synchronized (reports) {
                                reports.add(report);
                                reports.notifyAll();
                            }
                        });
                return null;
            }
            case "flush":
                producer.flush();
                return 0;
            case "poll": {
                long deadline = System.currentTimeMillis() + millis(a.get(0));
                synchronized (reports) {
                    while (reports.isEmpty() && System.currentTimeMillis() < deadline) {
                        reports.wait(Math.max(1, deadline - System.currentTimeMillis()));
                    }
                    return reports.size();
                }
            }
            case "init_transactions":
                producer.initTransactions();
                return null;
            case "begin_transaction":
                producer.beginTransaction();
                return null;
            case "send_offsets_to_transaction": {
                JsonNode m = a.get(1);
                producer.sendOffsetsToTransaction(offsets(a.get(0)), new ConsumerGroupMetadata(
                        m.get("group_id").asText(), m.get("generation_id").asInt(), m.get("member_id").asText(),
                        Optional.ofNullable(m.get("group_instance_id").isNull() ? null : m.get("group_instance_id").asText())));
                return null;
            }
            case "commit_transaction":
                producer.commitTransaction();
                return null;
            case "abort_transaction":
                producer.abortTransaction();
                return null;
            case "assign": {
                List<TopicPartition> tps = new ArrayList<>();
                a.get(0).forEach(tp -> tps.add(tp(tp)));
                consumer.assign(tps);
                for (JsonNode tp : a.get(0)) {
                    long offset = tp.get(2).asLong();
                    if (offset >= 0) consumer.seek(tp(tp), offset);
                    else if (offset == -2) consumer.seekToBeginning(List.of(tp(tp)));
                    else if (offset == -1) consumer.seekToEnd(List.of(tp(tp)));
                    // OFFSET_STORED / OFFSET_INVALID: the committed offset, else auto.offset.reset
                }
                return null;
            }
            case "subscribe": {
                List<String> topics = new ArrayList<>();
                a.get(0).forEach(t -> topics.add(t.asText()));
                consumer.subscribe(topics);
                return null;
            }
            case "consume": {
                // Up to n records within the timeout; the driver sets max.poll.records=1 so that no
                // record is taken from the consumer (moving its position) without being returned.
                int n = a.get(0).asInt();
                long deadline = System.currentTimeMillis() + millis(a.get(1));
                ArrayNode records = json.createArrayNode();
                while (records.size() < n) {
                    long remaining = deadline - System.currentTimeMillis();
                    if (remaining <= 0) break;
                    for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(remaining))) {
                        records.addArray().add(r.topic()).add(r.partition()).add(r.offset())
                                .add(text(r.key())).add(text(r.value()));
                    }
                }
                return records;
            }
            case "commit": {
                Map<TopicPartition, OffsetAndMetadata> offsets = a.get(0).isNull() ? consumed() : offsets(a.get(0));
                if (a.get(1).asBoolean()) {
                    consumer.commitAsync(offsets, null);
                    return null;
                }
                consumer.commitSync(offsets);
                return tps(offsets);
            }
            case "committed": {
                Set<TopicPartition> tps = new HashSet<>();
                a.get(0).forEach(tp -> tps.add(tp(tp)));
                Map<TopicPartition, OffsetAndMetadata> committed = a.get(1).asDouble() < 0
                        ? consumer.committed(tps) : consumer.committed(tps, Duration.ofMillis(millis(a.get(1))));
                ArrayNode result = json.createArrayNode();
                for (TopicPartition tp : tps) {
                    OffsetAndMetadata o = committed.get(tp);
                    result.add(tpNode(tp, o == null ? OFFSET_INVALID : o.offset()));
                }
                return result;
            }
            case "position": {
                ArrayNode result = json.createArrayNode();
                for (JsonNode tp : a.get(0)) result.add(tpNode(tp(tp), consumer.position(tp(tp))));
                return result;
            }
            case "assignment": {
                ArrayNode result = json.createArrayNode();
                for (TopicPartition tp : consumer.assignment()) result.add(tpNode(tp, OFFSET_INVALID));
                return result;
            }
            case "consumer_group_metadata": {
                ConsumerGroupMetadata m = consumer.groupMetadata();
                ObjectNode node = json.createObjectNode();
                node.put("group_id", m.groupId()).put("generation_id", m.generationId()).put("member_id", m.memberId());
                node.put("group_instance_id", m.groupInstanceId().orElse(null));
                return node;
            }
            case "close":
                consumer.close();
                return null;
            default:
                throw new IllegalArgumentException("no such method: " + method);
        }
    }

    /** What commit() without offsets commits: the position of every assigned partition that has one. */
    Map<TopicPartition, OffsetAndMetadata> consumed() {
        Map<TopicPartition, OffsetAndMetadata> offsets = new LinkedHashMap<>();
        for (TopicPartition tp : consumer.assignment()) {
            try {
                offsets.put(tp, new OffsetAndMetadata(consumer.position(tp, Duration.ZERO)));
            } catch (TimeoutException e) {
                // no position yet: nothing to commit for it
            }
        }
        return offsets;
    }

    // --- errors -----------------------------------------------------------------------------------

    /** [code, text, fatal, retriable, abortable] in confluent-kafka's KafkaError shape. */
    List<Object> error(Exception e) {
        ApiException api = apiCause(e);
        boolean fatal = api instanceof ProducerFencedException || api instanceof OutOfOrderSequenceException
                || api instanceof InvalidPidMappingException || api instanceof InvalidTxnStateException
                || api instanceof AuthorizationException || api instanceof UnsupportedVersionException;
        boolean retriable = api instanceof RetriableException;
        boolean abortable = producer != null && api != null && !fatal && !retriable;
        return List.of(code(e), String.valueOf(e), fatal, retriable, abortable);
    }

    /** Kafka's code for an ApiException (a wrapped one too: "Cannot execute transactional method
     * because we are in an error state"), librdkafka's local code for what Java reports without one. */
    static int code(Exception e) {
        ApiException api = apiCause(e);
        if (api instanceof TimeoutException) return TIMED_OUT;
        if (api != null) return Errors.forException(api).code();
        // IllegalStateException: the call is not allowed in the producer's state; on a producer without
        // transactional.id, librdkafka names it _NOT_CONFIGURED ("Transactional method invoked on a
        // non-transactional producer", TransactionManager.ensureTransactional).
        return String.valueOf(e.getMessage()).contains("non-transactional") ? NOT_CONFIGURED : STATE;
    }

    static ApiException apiCause(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof ApiException) return (ApiException) t;
        }
        return null;
    }

    static List<Object> raised(Exception e) {
        String type = e instanceof IllegalArgumentException || e instanceof org.apache.kafka.common.config.ConfigException
                ? "ValueError" : e.getClass().getSimpleName();
        return List.of(type, String.valueOf(e.getMessage()));
    }

    // --- values -----------------------------------------------------------------------------------

    void reply(int id, String status, Object result, boolean serves) {
        ObjectNode node = json.createObjectNode().put("id", id).put("status", status);
        node.set("result", json.valueToTree(result));
        synchronized (reports) {
            node.set("reports", json.valueToTree(serves ? reports : List.of()));
            if (serves) reports.clear();
            synchronized (out) {
                out.println(node);
                out.flush();
            }
        }
    }

    static long millis(JsonNode seconds) {
        double s = seconds.asDouble();
        return s < 0 ? Long.MAX_VALUE / 2 : (long) (s * 1000);
    }

    static byte[] bytes(JsonNode value) {
        return value == null || value.isNull() ? null : value.asText().getBytes(StandardCharsets.UTF_8);
    }

    static String text(byte[] value) {
        return value == null ? null : new String(value, StandardCharsets.UTF_8);
    }

    static TopicPartition tp(JsonNode tp) {
        return new TopicPartition(tp.get(0).asText(), tp.get(1).asInt());
    }

    ArrayNode tpNode(TopicPartition tp, long offset) {
        return json.createArrayNode().add(tp.topic()).add(tp.partition()).add(offset);
    }

    static Map<TopicPartition, OffsetAndMetadata> offsets(JsonNode tps) {
        Map<TopicPartition, OffsetAndMetadata> offsets = new LinkedHashMap<>();
        tps.forEach(tp -> offsets.put(tp(tp), new OffsetAndMetadata(tp.get(2).asLong())));
        return offsets;
    }

    ArrayNode tps(Map<TopicPartition, OffsetAndMetadata> offsets) {
        ArrayNode result = json.createArrayNode();
        offsets.forEach((tp, o) -> result.add(tpNode(tp, o.offset())));
        return result;
    }
}
