package dev.dreamumm.flink;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.HexFormat;
import org.apache.flink.types.Row;
import org.junit.jupiter.api.Test;

class DecodeEmbeddingTest {

    private static final HexFormat HEX = HexFormat.of();
    /** Single-object header of schemas/video_embedding.avsc. */
    private static final byte[] HEADER = HEX.parseHex("c301e5cc9abacf49e473");
    // Records from schemas.AvroCodec.for_schema("video_embedding").encode with video "v-é", model
    // "m1", produced 5, and the vector and valid_from_ms in each name.
    private static final byte[] VECTOR_3_MINUS_4_0_0 =
            HEX.parseHex("c301e5cc9abacf49e47308762dc3a90800004040000080c0000000000000000000046d310a00");
    private static final byte[] TINY_VALID_FROM_7 =
            HEX.parseHex("c301e5cc9abacf49e47308762dc3a90800000000000000006042a20d0000000000046d310a020e");
    private static final byte[] TWO_DIMENSIONS =
            HEX.parseHex("c301e5cc9abacf49e47308762dc3a9040000803f0000000000046d310a00");
    private static final byte[] NAN_COMPONENT =
            HEX.parseHex("c301e5cc9abacf49e47308762dc3a9080000c07f00000000000000000000000000046d310a00");
    private static final byte[] ALL_ZEROS =
            HEX.parseHex("c301e5cc9abacf49e47308762dc3a9080000000000000000000000000000000000046d310a00");
    private static final byte[] USER_DELETION = HEX.parseHex("c301c19798cd30906db202750200");

    private final DecodeEmbedding function = new DecodeEmbedding();

    private static float[] floats(byte[] bytes) {
        ByteBuffer buffer = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        float[] values = new float[bytes.length / 4];
        for (int k = 0; k < values.length; k++) {
            values[k] = buffer.getFloat();
        }
        return values;
    }

    @Test
    void decodesAndNormalises() {
        Row row = function.eval(VECTOR_3_MINUS_4_0_0, HEADER, 4);

        assertEquals("v-é", row.getField(0));
        assertArrayEquals(new float[] {0.6f, -0.8f, 0f, 0f}, floats((byte[]) row.getField(1)), 1e-7f);
        assertEquals("m1", row.getField(2));
        assertNull(row.getField(3));
    }

    @Test
    void keepsDirectionOfTinyVector() {
        Row row = function.eval(TINY_VALID_FROM_7, HEADER, 4);

        assertArrayEquals(new float[] {0f, 0f, 1f, 0f}, floats((byte[]) row.getField(1)));
    }

    @Test
    void rejectsUnusableVectors() {
        assertEquals("invalid_embedding", function.eval(TWO_DIMENSIONS, HEADER, 4).getField(3));
        assertEquals("vector has 2 dimensions, expected 4 (embedding.dimension)",
                function.eval(TWO_DIMENSIONS, HEADER, 4).getField(4));
        assertEquals("vector contains NaN or infinite values", function.eval(NAN_COMPONENT, HEADER, 4).getField(4));
        assertEquals("vector is all zeros", function.eval(ALL_ZEROS, HEADER, 4).getField(4));
    }

    @Test
    void rejectsOtherRecordsWithReasons() {
        assertEquals("missing_value", function.eval(null, HEADER, 4).getField(3));
        assertEquals("unknown_schema", function.eval(USER_DELETION, HEADER, 4).getField(3));
        assertEquals("invalid_avro", function.eval(new byte[] {1, 2, 3}, HEADER, 4).getField(3));
        byte[] trailing = Arrays.copyOf(VECTOR_3_MINUS_4_0_0, VECTOR_3_MINUS_4_0_0.length + 1);
        assertEquals("invalid_avro", function.eval(trailing, HEADER, 4).getField(3));
    }

    @Test
    void rejectsEveryTruncation() {
        for (int length = 0; length < VECTOR_3_MINUS_4_0_0.length; length++) {
            Row row = function.eval(Arrays.copyOf(VECTOR_3_MINUS_4_0_0, length), HEADER, 4);
            String reason = (String) row.getField(3);
            assertTrue(reason.equals("invalid_avro") || reason.equals("unknown_schema"), "length " + length);
        }
    }

    @Test
    void rejectsInvalidUtf8() {
        byte[] record = VECTOR_3_MINUS_4_0_0.clone();
        record[HEADER.length + 3] = (byte) 0xFF;

        assertEquals("invalid_avro", function.eval(record, HEADER, 4).getField(3));
    }
}
