package dev.dreamumm.flink;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;
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

    @Test
    void accumulateAddsWeightedVectors() {
        WeightedVectorSum.Accumulator accumulator = function.createAccumulator();
        function.accumulate(accumulator, 0.5, floats(1f, 0f), 10L, "m1");
        function.accumulate(accumulator, 0.25, floats(0f, 4f), 7L, "m1");

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
        function.accumulate(accumulator, 1.0, floats(1f, 0f), 10L, "m1");
        function.accumulate(accumulator, 0.5, floats(0f, 1f, 0f), 20L, "m2");

        Row value = function.getValue(accumulator);

        assertArrayEquals(new float[] {0f, 0.5f, 0f}, sumOf(value));
        assertEquals(1L, value.getField(2));
        assertEquals("m2", value.getField(4));
        assertEquals(1L, value.getField(5));
    }

    @Test
    void mergeCombinesPartialSums() {
        WeightedVectorSum.Accumulator left = function.createAccumulator();
        WeightedVectorSum.Accumulator right = function.createAccumulator();
        function.accumulate(left, 1.0, floats(1f, 0f), 5L, "m1");
        function.accumulate(right, 2.0, floats(0f, 1f), 9L, "m1");

        function.merge(left, List.of(right));
        Row value = function.getValue(left);

        assertArrayEquals(new float[] {1f, 2f}, sumOf(value));
        assertEquals(3.0, (Double) value.getField(1), 1e-12);
        assertEquals(2L, value.getField(2));
        assertEquals(9L, value.getField(3));
    }

    @Test
    void dimensionChangeWithinVersionIsRejected() {
        WeightedVectorSum.Accumulator accumulator = function.createAccumulator();
        function.accumulate(accumulator, 1.0, floats(1f, 0f), 5L, "m1");

        assertThrows(IllegalArgumentException.class,
                () -> function.accumulate(accumulator, 1.0, floats(1f, 0f, 0f), 6L, "m1"));
    }

    @Test
    void truncatedVectorIsRejected() {
        WeightedVectorSum.Accumulator accumulator = function.createAccumulator();

        assertThrows(IllegalArgumentException.class,
                () -> function.accumulate(accumulator, 1.0, new byte[] {1, 2, 3}, 5L, "m1"));
    }
}
