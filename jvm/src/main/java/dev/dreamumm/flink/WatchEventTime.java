package dev.dreamumm.flink;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.time.Instant;
import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.functions.ScalarFunction;

/**
 * Extracts the event time of a WatchEvent record value, for the watermark of the events source.
 *
 * <p>The value is a WatchEvent version 1 or 2 in the Avro single-object format of
 * {@code schemas/codec.py}: the marker {@code C3 01}, the little-endian CRC-64-AVRO fingerprint
 * of the writer schema, then the Avro binary record. The function reads only the fields before
 * {@code event_time_ms}, which both versions share, and allocates nothing while parsing.
 *
 * <p>The result is the event time when the record parses, the time is not negative and it is
 * at most {@code maxAheadMs} after the Kafka append time. Otherwise the result is
 * {@link Instant#EPOCH}, which never moves a watermark forward. The function does not throw on
 * any record bytes, because dead-lettering such rows is the job's work downstream: the Python
 * decoder rejects malformed records and negative times, and a time too far ahead needs a SQL
 * rule. In SQL, with the append time as a metadata column of the same table:
 *
 * <pre>{@code
 * event_time AS watch_event_time(record_value, append_time, 3600000),
 * WATERMARK FOR event_time AS event_time - INTERVAL '5' SECOND
 * }</pre>
 */
public final class WatchEventTime extends ScalarFunction {

    /** Fingerprint of {@code schemas/watch_event.avsc}, as bytes 2 to 9 of the header read little-endian. */
    static final long WATCH_EVENT_V1_FINGERPRINT = 0x9dd41ba8f469341cL;
    /** Fingerprint of {@code schemas/watch_event_v2.avsc}, read the same way. */
    static final long WATCH_EVENT_V2_FINGERPRINT = 0x273d4dd81159256fL;

    /** Result of {@link #eventTimeMs} for a value that is not a WatchEvent version 1 or 2 record. */
    static final long NO_EVENT_TIME = Long.MIN_VALUE;

    private static final int HEADER_SIZE = 10;
    private static final int MAX_VARINT_BYTES = 10;
    private static final VarHandle LONG_LE =
            MethodHandles.byteArrayViewVarHandle(long[].class, ByteOrder.LITTLE_ENDIAN);

    /**
     * Returns the event time of {@code value}, or {@link Instant#EPOCH} when it is unusable.
     *
     * @param value the Kafka record value
     * @param appendTime the Kafka append time of the record
     * @param maxAheadMs how far in milliseconds the event time may be after the append time
     * @throws IllegalArgumentException if {@code maxAheadMs} is negative
     */
    public @DataTypeHint("TIMESTAMP_LTZ(3) NOT NULL") Instant eval(
            byte[] value, @DataTypeHint("TIMESTAMP_LTZ(3)") Instant appendTime, long maxAheadMs) {
        if (maxAheadMs < 0) {
            throw new IllegalArgumentException("maxAheadMs must be 0 or more milliseconds, got " + maxAheadMs);
        }
        long eventTimeMs = eventTimeMs(value);
        if (eventTimeMs < 0 || appendTime == null || isAhead(eventTimeMs, appendTime.toEpochMilli(), maxAheadMs)) {
            return Instant.EPOCH;
        }
        return Instant.ofEpochMilli(eventTimeMs);
    }

    /**
     * Returns whether {@code eventTimeMs} is more than {@code maxAheadMs} after {@code appendTimeMs}.
     * {@code maxAheadMs} must not be negative.
     */
    static boolean isAhead(long eventTimeMs, long appendTimeMs, long maxAheadMs) {
        long limit = appendTimeMs + maxAheadMs;
        if (limit < appendTimeMs) {
            limit = Long.MAX_VALUE; // The sum overflowed, so no long is ahead of it.
        }
        return eventTimeMs > limit;
    }

    /**
     * Returns the {@code event_time_ms} field of a WatchEvent version 1 or 2 value, or
     * {@link #NO_EVENT_TIME} when the value is null, has another header, or ends or breaks
     * before the field. A record whose event time is {@code Long.MIN_VALUE} also returns
     * {@link #NO_EVENT_TIME}; both are negative, so {@link #eval} treats them alike.
     */
    static long eventTimeMs(byte[] value) {
        if (value == null || value.length < HEADER_SIZE || value[0] != (byte) 0xC3 || value[1] != 0x01) {
            return NO_EVENT_TIME;
        }
        long fingerprint = (long) LONG_LE.get(value, 2);
        if (fingerprint != WATCH_EVENT_V1_FINGERPRINT && fingerprint != WATCH_EVENT_V2_FINGERPRINT) {
            return NO_EVENT_TIME;
        }
        int position = skipString(value, HEADER_SIZE); // user_id
        position = skipString(value, position); // video_id
        position = skipBytes(value, position, Double.BYTES); // watch_time_ms
        position = skipOptionalLong(value, position); // duration_ms
        int end = varLongEnd(value, position); // event_time_ms
        if (end < 0) {
            return NO_EVENT_TIME;
        }
        return readVarLong(value, position, end);
    }

    // Each skip helper returns the position after the item, or -1 when the item is invalid or
    // runs past the array. A position of -1 passes through the next helper, so a caller checks once.

    private static int skipString(byte[] value, int position) {
        int end = varLongEnd(value, position);
        if (end < 0) {
            return -1;
        }
        long length = readVarLong(value, position, end);
        if (length < 0 || length > value.length - end) {
            return -1;
        }
        return end + (int) length;
    }

    private static int skipBytes(byte[] value, int position, int count) {
        if (position < 0 || count > value.length - position) {
            return -1;
        }
        return position + count;
    }

    /** Skips a {@code ["null", "long"]} union: the branch index 0 or 1, then a long for branch 1. */
    private static int skipOptionalLong(byte[] value, int position) {
        int end = varLongEnd(value, position);
        if (end < 0) {
            return -1;
        }
        long branch = readVarLong(value, position, end);
        if (branch == 0) {
            return end;
        }
        if (branch != 1) {
            return -1;
        }
        return varLongEnd(value, end);
    }

    /**
     * Returns the position after the varint at {@code position}, or -1 when the varint runs
     * past the array, is longer than 10 bytes, or has a 10th byte that carries bits beyond the
     * 64th. NOTE: fastavro, which the Python decoder falls back to, wraps such a 10th byte to
     * 64 bits and accepts the record, so the Python decoder may keep an event that gets EPOCH here.
     */
    private static int varLongEnd(byte[] value, int position) {
        if (position < 0) {
            return -1;
        }
        int limit = Math.min(value.length, position + MAX_VARINT_BYTES);
        for (int index = position; index < limit; index++) {
            int unsigned = value[index] & 0xFF;
            if (unsigned < 0x80) {
                boolean fitsIn64Bits = index - position < MAX_VARINT_BYTES - 1 || unsigned <= 1;
                return fitsIn64Bits ? index + 1 : -1;
            }
        }
        return -1;
    }

    /** Decodes the zig-zag varint in {@code [position, end)}, which {@link #varLongEnd} checked. */
    private static long readVarLong(byte[] value, int position, int end) {
        long zigzag = 0;
        int shift = 0;
        for (int index = position; index < end; index++) {
            zigzag |= (long) (value[index] & 0x7F) << shift;
            shift += 7;
        }
        return (zigzag >>> 1) ^ -(zigzag & 1);
    }
}
