package dev.dreamumm.flink;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.Arrays;
import java.util.HexFormat;
import org.junit.jupiter.api.Test;

class WatchEventTimeTest {

    private static final HexFormat HEX = HexFormat.of();

    // Golden values from the Python codec, printed from the repository root by:
    //
    //   .venv/bin/python -c '
    //   from schemas import WATCH_EVENT, WATCH_EVENT_V2, AvroCodec
    //   v1, v2 = AvroCodec.for_schema(WATCH_EVENT), AvroCodec.for_schema(WATCH_EVENT_V2)
    //   print(v1.header.hex(), v2.header.hex())
    //   rec = {"user_id": "user-ä-7", "video_id": "4711", "watch_time_ms": 12345.5, "duration_ms": 30000,
    //          "event_time_ms": 1_651_314_030_792, "event_id": "e-1", "attributes": {"tab": "1"}}
    //   print(v1.encode(rec).hex())
    //   print(v2.encode({**rec, "duration_ms": None, "client_platform": "ios"}).hex())'
    //
    // tests/schemas/test_jvm_fingerprints.py checks that the Java constants still match the .avsc files.
    private static final String V1_HEADER = "c3011c3469f4a81bd49d";
    private static final String V2_HEADER = "c3016f255911d84d3d27";
    private static final byte[] V1_RECORD = HEX.parseHex("c3011c3469f4a81bd49d12757365722dc3a42d37083437313100000000c01c"
            + "c84002e0d40390e3e39f8f600206652d310206746162023100");
    private static final byte[] V2_RECORD = HEX.parseHex("c3016f255911d84d3d2712757365722dc3a42d37083437313100000000c01c"
            + "c8400090e3e39f8f600206652d3102067461620231000206696f73");
    private static final long GOLDEN_EVENT_TIME_MS = 1_651_314_030_792L;
    /** Length of V1_RECORD up to the end of event_time_ms: header, two strings, double, union, varint. */
    private static final int V1_EVENT_TIME_END = 10 + 10 + 5 + 8 + 4 + 6;

    private static final long HOUR_MS = 3_600_000L;
    private static final Instant APPEND_TIME = Instant.ofEpochMilli(GOLDEN_EVENT_TIME_MS);

    private final WatchEventTime function = new WatchEventTime();

    /** Builds a WatchEvent version 1 prefix up to event_time_ms, with the given event time varint bytes. */
    private static byte[] record(String header, Long durationMs, byte[] eventTimeVarint) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.writeBytes(HEX.parseHex(header));
        writeString(out, "u");
        writeString(out, "v");
        out.writeBytes(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putDouble(1000.0).array());
        if (durationMs == null) {
            out.write(0);
        } else {
            out.write(2);
            out.writeBytes(varLong(durationMs));
        }
        out.writeBytes(eventTimeVarint);
        out.write(0); // event_id: null
        out.write(0); // attributes: empty map
        return out.toByteArray();
    }

    private static byte[] record(long eventTimeMs) {
        return record(V1_HEADER, 30_000L, varLong(eventTimeMs));
    }

    private static void writeString(ByteArrayOutputStream out, String value) {
        byte[] utf8 = value.getBytes(StandardCharsets.UTF_8);
        out.writeBytes(varLong(utf8.length));
        out.writeBytes(utf8);
    }

    private static byte[] varLong(long value) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        long zigzag = (value << 1) ^ (value >> 63);
        while ((zigzag & ~0x7FL) != 0) {
            out.write((int) ((zigzag & 0x7F) | 0x80));
            zigzag >>>= 7;
        }
        out.write((int) zigzag);
        return out.toByteArray();
    }

    private Instant eval(byte[] value) {
        return function.eval(value, APPEND_TIME, HOUR_MS);
    }

    @Test
    void fingerprintsMatchPythonHeaders() {
        byte[] v1 = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN)
                .putLong(WatchEventTime.WATCH_EVENT_V1_FINGERPRINT).array();
        byte[] v2 = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN)
                .putLong(WatchEventTime.WATCH_EVENT_V2_FINGERPRINT).array();

        assertEquals(V1_HEADER, "c301" + HEX.formatHex(v1));
        assertEquals(V2_HEADER, "c301" + HEX.formatHex(v2));
    }

    @Test
    void readsVersion1Record() {
        assertEquals(Instant.ofEpochMilli(GOLDEN_EVENT_TIME_MS), eval(V1_RECORD));
    }

    @Test
    void readsVersion2RecordWithNullDuration() {
        assertEquals(Instant.ofEpochMilli(GOLDEN_EVENT_TIME_MS), eval(V2_RECORD));
    }

    @Test
    void readsNullAndPresentDuration() {
        assertEquals(Instant.ofEpochMilli(5_000L), eval(record(V1_HEADER, null, varLong(5_000L))));
        assertEquals(Instant.ofEpochMilli(5_000L), eval(record(V2_HEADER, null, varLong(5_000L))));
        assertEquals(Instant.ofEpochMilli(5_000L), eval(record(V1_HEADER, -1L, varLong(5_000L))));
        assertEquals(Instant.ofEpochMilli(5_000L), eval(record(V1_HEADER, Long.MAX_VALUE, varLong(5_000L))));
    }

    @Test
    void negativeTimeReturnsEpoch() {
        assertEquals(-1L, WatchEventTime.eventTimeMs(record(-1L)));
        assertEquals(Instant.EPOCH, eval(record(-1L)));
        assertEquals(Instant.EPOCH, eval(record(-GOLDEN_EVENT_TIME_MS)));
        assertEquals(Instant.EPOCH, eval(record(Long.MIN_VALUE)));
        assertEquals(Instant.EPOCH, eval(record(0L)));
    }

    @Test
    void futureTimeBeyondMaxAheadReturnsEpoch() {
        long limit = GOLDEN_EVENT_TIME_MS + HOUR_MS;

        assertEquals(Instant.ofEpochMilli(limit), eval(record(limit)));
        assertEquals(Instant.EPOCH, eval(record(limit + 1)));
        assertEquals(Instant.EPOCH, eval(record(Long.MAX_VALUE)));
        assertEquals(Instant.ofEpochMilli(GOLDEN_EVENT_TIME_MS), function.eval(V1_RECORD, APPEND_TIME, 0L));
        assertEquals(Instant.EPOCH, function.eval(record(GOLDEN_EVENT_TIME_MS + 1), APPEND_TIME, 0L));
    }

    @Test
    void hugeMaxAheadDoesNotOverflow() {
        assertEquals(Instant.ofEpochMilli(Long.MAX_VALUE),
                function.eval(record(Long.MAX_VALUE), APPEND_TIME, Long.MAX_VALUE));
    }

    @Test
    void olderTimeIsKept() {
        assertEquals(Instant.ofEpochMilli(1L), eval(record(1L)));
    }

    @Test
    void negativeMaxAheadIsRejected() {
        IllegalArgumentException error = assertThrows(IllegalArgumentException.class,
                () -> function.eval(V1_RECORD, APPEND_TIME, -1L));
        assertEquals("maxAheadMs must be 0 or more milliseconds, got -1", error.getMessage());
    }

    @Test
    void missingValueOrAppendTimeReturnsEpoch() {
        assertEquals(Instant.EPOCH, eval(null));
        assertEquals(Instant.EPOCH, eval(new byte[0]));
        assertEquals(Instant.EPOCH, function.eval(V1_RECORD, null, HOUR_MS));
    }

    @Test
    void truncatedRecordReturnsEpoch() {
        for (int length = 0; length <= V1_RECORD.length; length++) {
            Instant expected = length >= V1_EVENT_TIME_END ? Instant.ofEpochMilli(GOLDEN_EVENT_TIME_MS) : Instant.EPOCH;
            assertEquals(expected, eval(Arrays.copyOf(V1_RECORD, length)), "first " + length + " bytes");
        }
    }

    @Test
    void unknownHeaderReturnsEpoch() {
        for (int index = 0; index < 10; index++) {
            byte[] value = V1_RECORD.clone();
            value[index] ^= 0x10;
            assertEquals(Instant.EPOCH, eval(value), "header byte " + index + " changed");
        }
        assertEquals(Instant.EPOCH, eval(record("c301" + "00".repeat(8), null, varLong(5_000L))));
    }

    @Test
    void tenByteVarintOverflowReturnsEpoch() {
        byte[] maxLong = HEX.parseHex("feffffffffffffffff01");
        byte[] overflow = HEX.parseHex("feffffffffffffffff02");
        byte[] elevenBytes = HEX.parseHex("feffffffffffffffff8100");

        assertEquals(Long.MAX_VALUE, WatchEventTime.eventTimeMs(record(V1_HEADER, null, maxLong)));
        assertEquals(WatchEventTime.NO_EVENT_TIME, WatchEventTime.eventTimeMs(record(V1_HEADER, null, overflow)));
        assertEquals(WatchEventTime.NO_EVENT_TIME, WatchEventTime.eventTimeMs(record(V1_HEADER, null, elevenBytes)));
        assertEquals(Instant.EPOCH, function.eval(record(V1_HEADER, null, overflow), APPEND_TIME, Long.MAX_VALUE));
    }

    @Test
    void badStringLengthReturnsEpoch() {
        byte[] value = record(5_000L);
        int userIdLength = 10;

        value[userIdLength] = 0x01; // -1
        assertEquals(WatchEventTime.NO_EVENT_TIME, WatchEventTime.eventTimeMs(value));
        value[userIdLength] = 0x7E; // 63 bytes, past the end of the record
        assertEquals(WatchEventTime.NO_EVENT_TIME, WatchEventTime.eventTimeMs(value));
        byte[] hugeLength = HEX.parseHex(V1_HEADER + "feffffffffffffffff01");
        assertEquals(WatchEventTime.NO_EVENT_TIME, WatchEventTime.eventTimeMs(hugeLength));
        byte[] lengthPastIntRange = HEX.parseHex(V1_HEADER + "8080808080" + "01");
        assertEquals(WatchEventTime.NO_EVENT_TIME, WatchEventTime.eventTimeMs(lengthPastIntRange));
        assertEquals(Instant.EPOCH, eval(value));
    }

    @Test
    void badDurationBranchReturnsEpoch() {
        byte[] value = record(V1_HEADER, null, varLong(5_000L));
        int durationBranch = 10 + 2 + 2 + 8;

        // The bytes after the branch index are a valid event time, so each check also rules out a
        // parse that reads on past an invalid branch.
        for (byte branch : new byte[] {0x04, 0x01, 0x03}) { // branches 2, -1 and -2
            value[durationBranch] = branch;
            assertEquals(WatchEventTime.NO_EVENT_TIME, WatchEventTime.eventTimeMs(value), "branch byte " + branch);
            assertEquals(Instant.EPOCH, eval(value), "branch byte " + branch);
        }
    }

    @Test
    void unterminatedVarintReturnsEpoch() {
        byte[] value = record(5_000L);
        Arrays.fill(value, 10, value.length, (byte) 0x80);

        assertEquals(WatchEventTime.NO_EVENT_TIME, WatchEventTime.eventTimeMs(value));
        assertEquals(Instant.EPOCH, eval(value));
    }
}
