package dev.dreamumm.flink;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.apache.flink.types.Row;
import org.junit.jupiter.api.Test;

class WeightedVectorSumTest {

    private final WeightedVectorSum function = new WeightedVectorSum();

    private static byte[] floats(float... values) {
        ByteBuffer buffer = ByteBuffer.allocate(4 * values.length).order(ByteOrder.LITTLE_ENDIAN);
        for (float value : values) {
            buffer.putFloat(value);
        }
        return buffer.array();
    }

    private static float[] sumOf(Row row) {
        ByteBuffer buffer = ByteBuffer.wrap((byte[]) row.getField(0)).order(ByteOrder.LITTLE_ENDIAN);
        float[] values = new float[buffer.remaining() / 4];
        for (int k = 0; k < values.length; k++) {
            values[k] = buffer.getFloat();
        }
        return values;
    }

    private static void add(WeightedVectorSum function, WeightedVectorSum.Accumulator accumulator, double weight,
            byte[] vector, long timeMs, String version, long key) {
        function.accumulate(accumulator, weight, vector, timeMs, version, null, "video-" + key, false);
    }

    @Test
    void accumulateAddsWeightedVectors() {
        WeightedVectorSum.Accumulator accumulator = function.createAccumulator();
        add(function, accumulator, 0.5, floats(1f, 0f), 10L, "m1", 1L);
        add(function, accumulator, 0.25, floats(0f, 4f), 7L, "m1", 2L);

        Row value = function.getValue(accumulator);

        assertArrayEquals(new float[] {0.5f, 1f}, sumOf(value));
        assertEquals(0.75, (Double) value.getField(1), 1e-12);
        assertEquals(2L, value.getField(2));
        assertEquals(10L, value.getField(3));
        assertEquals("m1", value.getField(4));
    }

    @Test
    void newModelVersionRestartsSum() {
        WeightedVectorSum.Accumulator accumulator = function.createAccumulator();
        add(function, accumulator, 1.0, floats(1f, 0f), 10L, "m1", 1L);
        add(function, accumulator, 0.5, floats(0f, 1f, 0f), 20L, "m2", 2L);

        Row value = function.getValue(accumulator);

        assertArrayEquals(new float[] {0f, 0.5f, 0f}, sumOf(value));
        assertEquals(1L, value.getField(2));
        assertEquals("m2", value.getField(4));
        assertEquals(1L, value.getField(5));
    }

    @Test
    void decayDoesNotDependOnOrder() {
        function.configure(1_000.0, 0);
        WeightedVectorSum.Accumulator forward = function.createAccumulator();
        WeightedVectorSum.Accumulator backward = function.createAccumulator();
        add(function, forward, 1.0, floats(1f, 0f), 0L, "m1", 1L);
        add(function, forward, 1.0, floats(0f, 1f), 2_000L, "m1", 2L);
        add(function, backward, 1.0, floats(0f, 1f), 2_000L, "m1", 2L);
        add(function, backward, 1.0, floats(1f, 0f), 0L, "m1", 1L);

        // Two half-lives separate the events, so the older one weighs a quarter.
        assertArrayEquals(new float[] {0.25f, 1f}, sumOf(function.getValue(forward)), 1e-6f);
        assertArrayEquals(new float[] {0.25f, 1f}, sumOf(function.getValue(backward)), 1e-6f);
        assertEquals(1.25, (Double) function.getValue(forward).getField(1), 1e-9);
        assertEquals(1.25, (Double) function.getValue(backward).getField(1), 1e-9);
        assertEquals(2_000L, function.getValue(backward).getField(3));
    }

    @Test
    void duplicateInWindowIsCounted() {
        function.configure(0.0, 1_000);
        WeightedVectorSum.Accumulator accumulator = function.createAccumulator();
        add(function, accumulator, 1.0, floats(1f, 0f), 5_000L, "m1", 42L);
        add(function, accumulator, 1.0, floats(1f, 0f), 5_000L, "m1", 42L);
        add(function, accumulator, 1.0, floats(1f, 0f), 5_000L, "m1", 43L);

        Row value = function.getValue(accumulator);

        assertArrayEquals(new float[] {2f, 0f}, sumOf(value));
        assertEquals(2L, value.getField(2));
        assertEquals(1L, value.getField(6));
    }

    @Test
    void duplicateOutsideWindowIsSummed() {
        function.configure(0.0, 1_000);
        WeightedVectorSum.Accumulator accumulator = function.createAccumulator();
        add(function, accumulator, 1.0, floats(1f, 0f), 5_000L, "m1", 42L);
        add(function, accumulator, 1.0, floats(0f, 1f), 9_000L, "m1", 7L);
        add(function, accumulator, 1.0, floats(1f, 0f), 5_000L, "m1", 42L);

        Row value = function.getValue(accumulator);

        assertEquals(3L, value.getField(2));
        assertEquals(0L, value.getField(6));
        assertEquals(2, accumulator.recentKeys.length);
    }

    @Test
    void eventIdTakesPrecedenceOverVideo() {
        function.configure(0.0, 1_000);
        WeightedVectorSum.Accumulator accumulator = function.createAccumulator();
        function.accumulate(accumulator, 1.0, floats(1f, 0f), 5_000L, "m1", "id-1", "video-1", false);
        function.accumulate(accumulator, 1.0, floats(1f, 0f), 5_000L, "m1", "id-2", "video-1", false);
        function.accumulate(accumulator, 1.0, floats(1f, 0f), 5_000L, "m1", "id-1", "video-1", false);

        Row value = function.getValue(accumulator);

        assertEquals(2L, value.getField(2));
        assertEquals(1L, value.getField(6));
    }

    @Test
    void eraseClearsSumAndLaterOlderEvents() {
        WeightedVectorSum.Accumulator accumulator = function.createAccumulator();
        add(function, accumulator, 1.0, floats(1f, 0f), 10L, "m1", 1L);
        function.accumulate(accumulator, null, null, 20L, null, null, null, true);
        add(function, accumulator, 1.0, floats(1f, 0f), 15L, "m1", 2L);

        Row erased = function.getValue(accumulator);

        assertEquals(0, ((byte[]) erased.getField(0)).length);
        assertEquals(0L, erased.getField(2));
        assertEquals(0.0, (Double) erased.getField(1));

        add(function, accumulator, 0.5, floats(0f, 1f), 25L, "m1", 3L);
        Row after = function.getValue(accumulator);

        assertArrayEquals(new float[] {0f, 0.5f}, sumOf(after));
        assertEquals(1L, after.getField(2));
    }

    @Test
    void dimensionChangeWithinVersionIsRejected() {
        WeightedVectorSum.Accumulator accumulator = function.createAccumulator();
        add(function, accumulator, 1.0, floats(1f, 0f), 5L, "m1", 1L);

        assertThrows(IllegalArgumentException.class,
                () -> add(function, accumulator, 1.0, floats(1f, 0f, 0f), 6L, "m1", 2L));
    }

    @Test
    void truncatedVectorIsRejected() {
        WeightedVectorSum.Accumulator accumulator = function.createAccumulator();

        assertThrows(IllegalArgumentException.class,
                () -> add(function, accumulator, 1.0, new byte[] {1, 2, 3}, 5L, "m1", 1L));
    }
}
