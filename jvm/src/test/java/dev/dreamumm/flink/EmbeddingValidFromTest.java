package dev.dreamumm.flink;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Arrays;
import java.util.HexFormat;
import org.junit.jupiter.api.Test;

class EmbeddingValidFromTest {

    private static final HexFormat HEX = HexFormat.of();
    /** Single-object header of schemas/video_embedding.avsc. */
    private static final byte[] HEADER = HEX.parseHex("c301e5cc9abacf49e473");
    // Both records come from schemas.AvroCodec.for_schema("video_embedding").encode, with video
    // "v-1", vector [1.0, 0.5], model "m", produced 1700000000000 and the valid_from_ms shown.
    private static final byte[] VALID_FROM_1650000000123 =
            HEX.parseHex("c301e5cc9abacf49e47306762d31040000803f0000003f00026d80a0abfef96202f6d1cfba8560");
    private static final byte[] VALID_FROM_NULL =
            HEX.parseHex("c301e5cc9abacf49e47306762d31040000803f0000003f00026d80a0abfef96200");

    @Test
    void readsValidFrom() {
        assertEquals(1_650_000_000_123L, EmbeddingValidFrom.validFromMs(VALID_FROM_1650000000123, HEADER));
    }

    @Test
    void nullValidFromIsEpoch() {
        assertEquals(0L, EmbeddingValidFrom.validFromMs(VALID_FROM_NULL, HEADER));
    }

    @Test
    void malformedRecordsAreEpoch() {
        byte[] otherSchema = VALID_FROM_1650000000123.clone();
        otherSchema[5] ^= 1;
        byte[] trailing = Arrays.copyOf(VALID_FROM_1650000000123, VALID_FROM_1650000000123.length + 1);

        assertEquals(0L, EmbeddingValidFrom.validFromMs(null, HEADER));
        assertEquals(0L, EmbeddingValidFrom.validFromMs(otherSchema, HEADER));
        assertEquals(0L, EmbeddingValidFrom.validFromMs(trailing, HEADER));
        for (int length = 0; length < VALID_FROM_1650000000123.length; length++) {
            byte[] truncated = Arrays.copyOf(VALID_FROM_1650000000123, length);
            assertEquals(0L, EmbeddingValidFrom.validFromMs(truncated, HEADER), "length " + length);
        }
    }

    @Test
    void overlongVarintIsEpoch() {
        byte[] record = new byte[HEADER.length + 12];
        System.arraycopy(HEADER, 0, record, 0, HEADER.length);
        Arrays.fill(record, HEADER.length, record.length, (byte) 0xFF);

        assertEquals(0L, EmbeddingValidFrom.validFromMs(record, HEADER));
    }
}
