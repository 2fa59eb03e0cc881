package dev.dreamumm.flink;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.util.Arrays;
import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.annotation.FunctionHint;
import org.apache.flink.table.functions.AggregateFunction;
import org.apache.flink.types.Row;

/**
 * Running DreamUMM sum of one user: the sum of {@code weight * vector}, the sum of the
 * weights, the event count, the largest event time and the embedding model version summed.
 *
 * <p>Vectors arrive and leave as little-endian float32 bytes, the layout that the Python side
 * writes with numpy. The sum is kept in that layout too, as float32 bytes, so that the state of a
 * user stays near 4 * dimension bytes (a {@code float[]} would add null flags in Flink's binary
 * array format) and the result is a copy of the sum, not a conversion. The weights themselves are computed in Python by {@code operators},
 * and the normalisation of the sum happens there too: this class only adds.
 *
 * <p>Vectors of two embedding model versions do not share a space, so an event whose
 * vector has another model version than the running sum restarts the sum with that event.
 */
@FunctionHint(
        input = {@DataTypeHint("DOUBLE"), @DataTypeHint("BYTES"), @DataTypeHint("BIGINT"), @DataTypeHint("STRING")},
        output = @DataTypeHint("ROW<vector_sum BYTES, total_weight DOUBLE, event_count BIGINT, "
                + "last_event_time_ms BIGINT, model_version STRING, superseded_event_count BIGINT>"))
public final class WeightedVectorSum extends AggregateFunction<Row, WeightedVectorSum.Accumulator> {

    /** Reads and writes a little-endian float32 at a byte offset of a byte array. */
    private static final VarHandle FLOAT_LE =
            MethodHandles.byteArrayViewVarHandle(float[].class, ByteOrder.LITTLE_ENDIAN);

    /** Accumulator of one group; Flink stores it in keyed state as a structured type. */
    public static final class Accumulator {
        /** Running sum of weight * vector as little-endian float32 bytes; empty until the first event. */
        public byte[] vectorSum = new byte[0];
        /** Sum of the preference weights. */
        public double totalWeight;
        /** Number of events added. */
        public long eventCount;
        /** Largest event time added, in epoch milliseconds. */
        public long lastEventTimeMs = Long.MIN_VALUE;
        /** Embedding model version of the vectors summed; null until the first event. */
        public String modelVersion;
        /** Events summed under earlier model versions and dropped by a restart. */
        public long supersededEventCount;
    }

    @Override
    public Accumulator createAccumulator() {
        return new Accumulator();
    }

    /** Adds one event; a null argument is a caller bug and fails the job with the reason. */
    public void accumulate(
            Accumulator accumulator, Double weight, byte[] vector, Long eventTimeMs, String modelVersion) {
        if (weight == null || vector == null || eventTimeMs == null || modelVersion == null) {
            throw new IllegalArgumentException("WeightedVectorSum needs a weight, a vector, an event time and a "
                    + "model version, got " + weight + ", " + (vector == null ? "null" : vector.length + " bytes")
                    + ", " + eventTimeMs + ", " + modelVersion);
        }
        int dimension = dimensionOf(vector);
        if (!modelVersion.equals(accumulator.modelVersion)) {
            restart(accumulator, dimension, modelVersion);
        } else if (accumulator.vectorSum.length != vector.length) {
            throw new IllegalArgumentException("vector of " + dimension + " dimensions added to a sum of "
                    + accumulator.vectorSum.length / Float.BYTES + " dimensions of the same model version "
                    + modelVersion);
        }
        byte[] sum = accumulator.vectorSum;
        double a = weight;
        for (int offset = 0; offset < vector.length; offset += Float.BYTES) {
            float value = (float) ((float) FLOAT_LE.get(sum, offset) + a * (float) FLOAT_LE.get(vector, offset));
            FLOAT_LE.set(sum, offset, value);
        }
        accumulator.totalWeight += a;
        accumulator.eventCount += 1;
        accumulator.lastEventTimeMs = Math.max(accumulator.lastEventTimeMs, eventTimeMs);
    }

    /**
     * Combines partial sums, as two-phase (local-global) aggregation does. A partial sum of
     * another model version replaces the sum, as the later events of a restart would.
     */
    public void merge(Accumulator accumulator, Iterable<Accumulator> others) {
        for (Accumulator other : others) {
            if (other.eventCount == 0) {
                continue;
            }
            if (!other.modelVersion.equals(accumulator.modelVersion)) {
                restart(accumulator, other.vectorSum.length / Float.BYTES, other.modelVersion);
            } else if (accumulator.vectorSum.length != other.vectorSum.length) {
                throw new IllegalArgumentException("cannot merge sums of " + other.vectorSum.length / Float.BYTES
                        + " and " + accumulator.vectorSum.length / Float.BYTES + " dimensions");
            }
            for (int offset = 0; offset < other.vectorSum.length; offset += Float.BYTES) {
                float value = (float) FLOAT_LE.get(accumulator.vectorSum, offset)
                        + (float) FLOAT_LE.get(other.vectorSum, offset);
                FLOAT_LE.set(accumulator.vectorSum, offset, value);
            }
            accumulator.totalWeight += other.totalWeight;
            accumulator.eventCount += other.eventCount;
            accumulator.lastEventTimeMs = Math.max(accumulator.lastEventTimeMs, other.lastEventTimeMs);
            accumulator.supersededEventCount += other.supersededEventCount;
        }
    }

    @Override
    public Row getValue(Accumulator accumulator) {
        return Row.of(Arrays.copyOf(accumulator.vectorSum, accumulator.vectorSum.length), accumulator.totalWeight, accumulator.eventCount, accumulator.lastEventTimeMs,
                accumulator.modelVersion, accumulator.supersededEventCount);
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
}
