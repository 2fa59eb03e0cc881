package dev.dreamumm.flink;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import org.apache.flink.metrics.Counter;
import org.apache.flink.metrics.MetricGroup;
import org.apache.flink.table.functions.FunctionContext;
import org.apache.flink.table.functions.ScalarFunction;

/**
 * Normalises a user's running sum and encodes it as a UserInterest record in the Avro
 * single-object format, or returns null for a sum without a direction.
 *
 * <p>The normalisation is {@code operators.normalise_rows} in Java: divide by the largest
 * absolute component, then by the Euclidean norm, in double precision, and round to float32.
 * A sum with a NaN or infinite component, an all-zero sum or a total weight that is not
 * positive has no direction, so the function returns null and the upsert sink writes a
 * tombstone. The bytes are
 * those of {@code schemas/user_interest_encoder.py}, field by field in the schema's order; the
 * caller passes the schema's 10-byte single-object header, so the fingerprint has one source.
 */
public final class EncodeUserInterest extends ScalarFunction {

    private static final VarHandle FLOAT_LE =
            MethodHandles.byteArrayViewVarHandle(float[].class, ByteOrder.LITTLE_ENDIAN);
    private static final VarHandle DOUBLE_LE =
            MethodHandles.byteArrayViewVarHandle(double[].class, ByteOrder.LITTLE_ENDIAN);

    private transient Counter emitted;
    private transient Counter skipped;

    @Override
    public void open(FunctionContext context) {
        MetricGroup metrics = context.getMetricGroup().addGroup("dreamumm");
        emitted = metrics.counter("user_records_emitted");
        skipped = metrics.counter("user_records_without_direction");
    }

    /** Returns the encoded record, or null when the sum has no direction. */
    public byte[] eval(byte[] header, String userId, byte[] vectorSum, Double totalWeight, Long eventCount,
            Long lastEventTimeMs, String modelVersion, Long supersededEventCount, Long deduplicatedEventCount) {
        return encode(header, userId, vectorSum, totalWeight, eventCount, lastEventTimeMs, modelVersion,
                supersededEventCount, deduplicatedEventCount, System.currentTimeMillis());
    }

    /** Does the work of {@link #eval} with a given emission time, so that tests get fixed bytes. */
    byte[] encode(byte[] header, String userId, byte[] vectorSum, Double totalWeight, long eventCount,
            long lastEventTimeMs, String modelVersion, long supersededEventCount, long deduplicatedEventCount,
            long emitTimeMs) {
        float[] unit = unitVector(vectorSum);
        if (unit == null || totalWeight == null || !(totalWeight > 0)) {
            count(skipped);
            return null;
        }
        Writer out = new Writer(header.length + 64 + 4 * unit.length + userId.length() + modelVersion.length());
        out.bytes(header);
        out.string(userId);
        if (unit.length > 0) {
            out.varLong(unit.length);
            for (float value : unit) {
                out.floatLe(value);
            }
        }
        out.varLong(0);
        out.doubleLe(totalWeight);
        out.varLong(eventCount);
        out.varLong(lastEventTimeMs);
        out.varLong(emitTimeMs);
        out.string(modelVersion);
        out.varLong(supersededEventCount);
        out.varLong(deduplicatedEventCount);
        count(emitted);
        return out.toByteArray();
    }

    /** Returns the float32 unit vector of little-endian float32 bytes, or null without a direction. */
    static float[] unitVector(byte[] vectorSum) {
        if (vectorSum == null || vectorSum.length % Float.BYTES != 0) {
            return null;
        }
        int dimension = vectorSum.length / Float.BYTES;
        double[] values = new double[dimension];
        double scale = 0.0;
        for (int k = 0; k < dimension; k++) {
            double value = (float) FLOAT_LE.get(vectorSum, k * Float.BYTES);
            if (!Double.isFinite(value)) {
                return null;
            }
            values[k] = value;
            scale = Math.max(scale, Math.abs(value));
        }
        if (scale == 0.0) {
            return null;
        }
        double sumOfSquares = 0.0;
        for (int k = 0; k < dimension; k++) {
            values[k] /= scale;
            sumOfSquares += values[k] * values[k];
        }
        double norm = Math.sqrt(sumOfSquares);
        float[] unit = new float[dimension];
        for (int k = 0; k < dimension; k++) {
            unit[k] = (float) (values[k] / norm);
        }
        return unit;
    }

    private static void count(Counter counter) {
        if (counter != null) {
            counter.inc();
        }
    }

    /** A growable byte buffer with Avro's binary encodings of the types UserInterest uses. */
    private static final class Writer {
        private byte[] buffer;
        private int size;

        Writer(int capacity) {
            buffer = new byte[capacity];
        }

        void bytes(byte[] values) {
            ensure(values.length);
            System.arraycopy(values, 0, buffer, size, values.length);
            size += values.length;
        }

        void string(String value) {
            byte[] utf8 = value.getBytes(StandardCharsets.UTF_8);
            varLong(utf8.length);
            bytes(utf8);
        }

        /** Writes a long as a zig-zag, little-endian base-128 varint. */
        void varLong(long value) {
            ensure(10);
            long zigzag = (value << 1) ^ (value >> 63);
            while ((zigzag & ~0x7FL) != 0) {
                buffer[size++] = (byte) ((zigzag & 0x7F) | 0x80);
                zigzag >>>= 7;
            }
            buffer[size++] = (byte) zigzag;
        }

        void floatLe(float value) {
            ensure(Float.BYTES);
            FLOAT_LE.set(buffer, size, value);
            size += Float.BYTES;
        }

        void doubleLe(double value) {
            ensure(Double.BYTES);
            DOUBLE_LE.set(buffer, size, value);
            size += Double.BYTES;
        }

        byte[] toByteArray() {
            return Arrays.copyOf(buffer, size);
        }

        private void ensure(int extra) {
            if (size + extra > buffer.length) {
                buffer = Arrays.copyOf(buffer, Math.max(2 * buffer.length, size + extra));
            }
        }
    }
}
