package dev.dreamumm.flink;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.util.Arrays;
import org.apache.flink.metrics.Counter;
import org.apache.flink.metrics.MetricGroup;
import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.annotation.FunctionHint;
import org.apache.flink.table.functions.AggregateFunction;
import org.apache.flink.table.functions.FunctionContext;
import org.apache.flink.types.Row;

/**
 * Running DreamUMM sum of one user: the sum of {@code weight * vector}, the sum of the
 * weights, the event count, the largest event time and the embedding model version summed.
 *
 * <p>Vectors arrive and leave as little-endian float32 bytes, the layout that the Python side
 * writes with numpy. The sum is kept in that layout too, so that the state of a user stays near
 * 4 * dimension bytes and the result is a copy of the sum, not a conversion. The weights are
 * computed in Python by {@code operators}, and the normalisation happens in
 * {@link EncodeUserInterest}: this class only adds.
 *
 * <p>Rules, each independent of the order in which a user's events arrive:
 * <ul>
 *   <li>Model version: vectors of two embedding model versions do not share a space, so an event
 *       of another version than the running sum restarts the sum with that event.
 *   <li>Recency: with a half-life h (job parameter {@value #HALF_LIFE_PARAMETER}, 0 for none), the
 *       sum is {@code sum_j a_j 2^(-(T - t_j) / h) x_j}, where T is the largest event time summed.
 *       A newer event rescales the sum to its own time, and an older one is added already
 *       discounted, so any arrival order gives the same sum up to float32 rounding.
 *   <li>Duplicates: an event whose deduplication key and event time equal those of an event summed
 *       earlier is counted as a duplicate and not added. The key is the event id when the producer
 *       set one, otherwise the video id, so without ids the stated key is (user, video, event
 *       time). Keys are kept as 64-bit hashes for the events that are at most the deduplication
 *       window (job parameter {@value #DEDUP_WINDOW_PARAMETER}, in ms) older than the user's newest
 *       event. A duplicate of an older event is not recognised and is summed again.
 *   <li>Erasure: a row with {@code erase = TRUE} deletes the user's sum, counts and keys, and every
 *       later-arriving event at or before the erasure's time is erased on arrival.
 * </ul>
 *
 * <p>The function has no {@code merge}, so the planner never splits it into local and global
 * phases: the recency and deduplication rules need all of a user's events in one place.
 */
@FunctionHint(
        input = {@DataTypeHint("DOUBLE"), @DataTypeHint("BYTES"), @DataTypeHint("BIGINT"), @DataTypeHint("STRING"),
                @DataTypeHint("STRING"), @DataTypeHint("STRING"), @DataTypeHint("BOOLEAN")},
        output = @DataTypeHint("ROW<vector_sum BYTES, total_weight DOUBLE, event_count BIGINT, "
                + "last_event_time_ms BIGINT, model_version STRING, superseded_event_count BIGINT, "
                + "deduplicated_event_count BIGINT>"))
public final class WeightedVectorSum extends AggregateFunction<Row, WeightedVectorSum.Accumulator> {

    /** Job parameter with the recency half-life in milliseconds; 0 or absent sums without decay. */
    public static final String HALF_LIFE_PARAMETER = "dreamumm.recency-half-life-ms";
    /** Job parameter with the deduplication window in milliseconds; 0 turns deduplication off. */
    public static final String DEDUP_WINDOW_PARAMETER = "dreamumm.dedup-window-ms";

    /** Reads and writes a little-endian float32 at a byte offset of a byte array. */
    private static final VarHandle FLOAT_LE =
            MethodHandles.byteArrayViewVarHandle(float[].class, ByteOrder.LITTLE_ENDIAN);

    private static final long[] NO_KEYS = new long[0];

    private double halfLifeMs;
    private long dedupWindowMs;
    private transient Counter contributed;
    private transient Counter deduplicated;
    private transient Counter erased;
    private transient Counter erasures;

    /** Accumulator of one group; Flink stores it in keyed state as a structured type. */
    public static final class Accumulator {
        /** Running sum of weight * vector as little-endian float32 bytes; empty until the first event. */
        public byte[] vectorSum = new byte[0];
        /** Sum of the preference weights, discounted like the vectors when a half-life is set. */
        public double totalWeight;
        /** Number of events summed since the last restart or erasure. */
        public long eventCount;
        /** Largest event time summed, in epoch milliseconds; the time the decayed sum refers to. */
        public long lastEventTimeMs = Long.MIN_VALUE;
        /** Embedding model version of the vectors summed; null until the first event. */
        public String modelVersion;
        /** Events summed under earlier model versions and dropped by a restart. */
        public long supersededEventCount;
        /** Events not summed because they duplicated an event summed earlier. */
        public long deduplicatedEventCount;
        /** Events at or before this time (epoch ms) are erased on arrival; Long.MIN_VALUE when never erased. */
        public long erasedThroughMs = Long.MIN_VALUE;
        /** Pairs (event time, deduplication key) of the events in the deduplication window. */
        public long[] recentKeys = NO_KEYS;
        /** Largest event time among the pairs in {@link #recentKeys}. */
        public long newestKeyTimeMs = Long.MIN_VALUE;
    }

    @Override
    public void open(FunctionContext context) {
        halfLifeMs = Double.parseDouble(context.getJobParameter(HALF_LIFE_PARAMETER, "0"));
        dedupWindowMs = Long.parseLong(context.getJobParameter(DEDUP_WINDOW_PARAMETER, "0"));
        if (!(halfLifeMs >= 0) || Double.isInfinite(halfLifeMs) || dedupWindowMs < 0) {
            throw new IllegalArgumentException("invalid job parameters: " + HALF_LIFE_PARAMETER + " = " + halfLifeMs
                    + " and " + DEDUP_WINDOW_PARAMETER + " = " + dedupWindowMs + " must be finite and >= 0");
        }
        MetricGroup metrics = context.getMetricGroup().addGroup("dreamumm");
        contributed = metrics.counter("events_contributed");
        deduplicated = metrics.counter("events_deduplicated");
        erased = metrics.counter("events_erased");
        erasures = metrics.counter("user_erasures");
    }

    /** Sets the rules without a Flink context, for tests. */
    void configure(double halfLifeMs, long dedupWindowMs) {
        this.halfLifeMs = halfLifeMs;
        this.dedupWindowMs = dedupWindowMs;
    }

    @Override
    public Accumulator createAccumulator() {
        return new Accumulator();
    }

    /**
     * Adds one event, or erases the user when {@code erase} is true. An event needs a weight, a
     * vector, an event time and a model version. A missing one is a bug in the calling SQL, so it
     * fails the job. {@code eventId} may be null.
     */
    public void accumulate(Accumulator accumulator, Double weight, byte[] vector, Long eventTimeMs,
            String modelVersion, String eventId, String videoId, Boolean erase) {
        if (eventTimeMs == null) {
            throw new IllegalArgumentException("WeightedVectorSum needs an event time, got null");
        }
        if (Boolean.TRUE.equals(erase)) {
            erase(accumulator, eventTimeMs);
            return;
        }
        if (weight == null || vector == null || modelVersion == null) {
            throw new IllegalArgumentException("WeightedVectorSum needs a weight, a vector and a model version, got "
                    + weight + ", " + (vector == null ? "null" : vector.length + " bytes") + ", " + modelVersion);
        }
        if (eventTimeMs <= accumulator.erasedThroughMs) {
            // Accepted and erased at once. It counts as contributed, so that read = contributed +
            // dead-lettered + deduplicated stays true with erasures.
            increment(contributed);
            increment(erased);
            return;
        }
        if (dedupWindowMs > 0 && isDuplicate(accumulator, eventTimeMs, dedupKey(eventId, videoId))) {
            accumulator.deduplicatedEventCount += 1;
            increment(deduplicated);
            return;
        }
        int dimension = dimensionOf(vector);
        if (!modelVersion.equals(accumulator.modelVersion)) {
            restart(accumulator, dimension, modelVersion);
        } else if (accumulator.vectorSum.length != vector.length) {
            throw new IllegalArgumentException("vector of " + dimension + " dimensions added to a sum of "
                    + accumulator.vectorSum.length / Float.BYTES + " dimensions of the same model version "
                    + modelVersion);
        }
        add(accumulator, weight, vector, eventTimeMs);
        increment(contributed);
    }

    @Override
    public Row getValue(Accumulator accumulator) {
        return Row.of(Arrays.copyOf(accumulator.vectorSum, accumulator.vectorSum.length), accumulator.totalWeight,
                accumulator.eventCount, accumulator.lastEventTimeMs, accumulator.modelVersion,
                accumulator.supersededEventCount, accumulator.deduplicatedEventCount);
    }

    private void add(Accumulator accumulator, double weight, byte[] vector, long eventTimeMs) {
        byte[] sum = accumulator.vectorSum;
        double a = weight;
        if (halfLifeMs > 0 && accumulator.eventCount > 0) {
            if (eventTimeMs > accumulator.lastEventTimeMs) {
                // Move the sum's reference time forward to this event: discount what is there.
                double factor = Math.pow(2.0, -(eventTimeMs - (double) accumulator.lastEventTimeMs) / halfLifeMs);
                for (int offset = 0; offset < sum.length; offset += Float.BYTES) {
                    FLOAT_LE.set(sum, offset, (float) ((float) FLOAT_LE.get(sum, offset) * factor));
                }
                accumulator.totalWeight *= factor;
            } else {
                a *= Math.pow(2.0, -(accumulator.lastEventTimeMs - (double) eventTimeMs) / halfLifeMs);
            }
        }
        for (int offset = 0; offset < vector.length; offset += Float.BYTES) {
            float value = (float) ((float) FLOAT_LE.get(sum, offset) + a * (float) FLOAT_LE.get(vector, offset));
            FLOAT_LE.set(sum, offset, value);
        }
        accumulator.totalWeight += a;
        accumulator.eventCount += 1;
        accumulator.lastEventTimeMs = Math.max(accumulator.lastEventTimeMs, eventTimeMs);
    }

    /**
     * Returns true when (time, key) is in the window; otherwise records it, drops pairs that left
     * the window, and returns false.
     */
    private boolean isDuplicate(Accumulator accumulator, long eventTimeMs, long dedupKey) {
        long[] keys = accumulator.recentKeys;
        for (int i = 0; i < keys.length; i += 2) {
            if (keys[i] == eventTimeMs && keys[i + 1] == dedupKey) {
                return true;
            }
        }
        long newest = Math.max(accumulator.newestKeyTimeMs, eventTimeMs);
        long oldestKept = newest - dedupWindowMs;
        if (eventTimeMs < oldestKept) {
            return false;
        }
        int kept = 0;
        for (int i = 0; i < keys.length; i += 2) {
            if (keys[i] >= oldestKept) {
                kept += 2;
            }
        }
        long[] next = new long[kept + 2];
        int position = 0;
        for (int i = 0; i < keys.length; i += 2) {
            if (keys[i] >= oldestKept) {
                next[position++] = keys[i];
                next[position++] = keys[i + 1];
            }
        }
        next[position] = eventTimeMs;
        next[position + 1] = dedupKey;
        accumulator.recentKeys = next;
        accumulator.newestKeyTimeMs = newest;
        return false;
    }

    /** Returns a 64-bit FNV-1a hash of the event id, or of the video id when there is none. */
    static long dedupKey(String eventId, String videoId) {
        String id = eventId != null ? eventId : videoId;
        long hash = 0xcbf29ce484222325L ^ (eventId != null ? 'e' : 'v');
        hash *= 0x100000001b3L;
        if (id != null) {
            for (int i = 0; i < id.length(); i++) {
                hash ^= id.charAt(i);
                hash *= 0x100000001b3L;
            }
        }
        return hash;
    }

    private void erase(Accumulator accumulator, long throughMs) {
        if (accumulator.eventCount > 0) {
            increment(erased, accumulator.eventCount);
        }
        increment(erasures);
        long erasedThrough = Math.max(accumulator.erasedThroughMs, throughMs);
        Accumulator empty = new Accumulator();
        accumulator.vectorSum = empty.vectorSum;
        accumulator.totalWeight = 0.0;
        accumulator.eventCount = 0;
        accumulator.lastEventTimeMs = empty.lastEventTimeMs;
        accumulator.modelVersion = null;
        accumulator.supersededEventCount = 0;
        accumulator.deduplicatedEventCount = 0;
        accumulator.recentKeys = NO_KEYS;
        accumulator.newestKeyTimeMs = Long.MIN_VALUE;
        accumulator.erasedThroughMs = erasedThrough;
    }

    private static void restart(Accumulator accumulator, int dimension, String modelVersion) {
        accumulator.supersededEventCount += accumulator.eventCount;
        accumulator.vectorSum = new byte[dimension * Float.BYTES];
        accumulator.totalWeight = 0.0;
        accumulator.eventCount = 0;
        accumulator.lastEventTimeMs = Long.MIN_VALUE;
        accumulator.modelVersion = modelVersion;
    }

    private static int dimensionOf(byte[] vector) {
        if (vector.length == 0 || vector.length % 4 != 0) {
            throw new IllegalArgumentException(
                    "vector of " + vector.length + " bytes is not a non-empty sequence of float32 values");
        }
        return vector.length / 4;
    }

    private static void increment(Counter counter) {
        increment(counter, 1);
    }

    private static void increment(Counter counter, long count) {
        if (counter != null) {
            counter.inc(count);
        }
    }
}
