package dev.dreamumm.flink;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.util.HexFormat;
import org.junit.jupiter.api.Test;

class EncodeUserInterestTest {

    private static final HexFormat HEX = HexFormat.of();
    /** Single-object header of schemas/user_interest.avsc. */
    private static final byte[] HEADER = HEX.parseHex("c30153488fad85fb83d2");

    private static byte[] encode(byte[] vectorSum, double totalWeight) {
        return new EncodeUserInterest().encode(HEADER, "user-ä-7", vectorSum, totalWeight, 300L,
                1_650_585_600_123L, "content-v2", 70L, 5L, 1_733_360_000_000L);
    }

    @Test
    void writesTheBytesOfThePythonEncoder() {
        // The expected bytes come from schemas/user_interest_encoder.py, after operators.normalise_rows,
        // for the sum [3, -4, 0.5, 0.001] and the same fields.
        byte[] expected = HEX.parseHex("c30153488fad85fb83d212757365722dc3a42d370874d6183f9bc84bbf9bc8cb3da7ac5039"
                + "000000000000000440d804f6818ce9896080f0f4c4f26414636f6e74656e742d76328c010a");

        assertArrayEquals(expected, encode(HEX.parseHex("00004040000080c00000003f6f12833a"), 2.5));
    }

    @Test
    void returnsNullWithoutDirection() {
        byte[] zeros = new byte[8];
        byte[] nan = HEX.parseHex("0000c07f0000803f");
        byte[] unit = HEX.parseHex("0000803f00000000");

        assertNull(encode(zeros, 1.0));
        assertNull(encode(nan, 1.0));
        assertNull(encode(unit, 0.0));
        assertEquals(2, EncodeUserInterest.unitVector(unit).length);
    }

    @Test
    void keepsTheDirectionOfTinyAndHugeSums() {
        float[] tiny = EncodeUserInterest.unitVector(HEX.parseHex("01000000" + "01000000"));
        float[] huge = EncodeUserInterest.unitVector(HEX.parseHex("ffff7f7f" + "ffff7f7f"));

        assertEquals((float) Math.sqrt(0.5), tiny[0]);
        assertEquals((float) Math.sqrt(0.5), huge[1]);
    }
}
