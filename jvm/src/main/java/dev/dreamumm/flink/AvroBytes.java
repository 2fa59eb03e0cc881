package dev.dreamumm.flink;

/**
 * A cursor over Avro binary data that reads longs and skips strings and float arrays, for
 * functions that need one field of a record without decoding the rest.
 *
 * <p>Malformed input raises {@link IndexOutOfBoundsException} (data ends early) or
 * {@link IllegalStateException} (a varint longer than 10 bytes, a negative length).
 */
final class AvroBytes {

    private final byte[] data;
    private int position;

    AvroBytes(byte[] data, int position) {
        this.data = data;
        this.position = position;
    }

    /** Reads a zig-zag varint long. */
    long readLong() {
        long raw = 0;
        int shift = 0;
        while (true) {
            if (shift > 63) {
                throw new IllegalStateException("varint longer than 10 bytes at offset " + position);
            }
            byte next = data[position++];
            raw |= (long) (next & 0x7F) << shift;
            if ((next & 0x80) == 0) {
                break;
            }
            shift += 7;
        }
        return (raw >>> 1) ^ -(raw & 1);
    }

    void skipString() {
        skip(readLong());
    }

    /** Reads a string, rejecting bytes that are not valid UTF-8. */
    String readString() throws java.nio.charset.CharacterCodingException {
        long length = readLong();
        int start = position;
        skip(length);
        return DecodeEmbedding.utf8(data, start, (int) length);
    }

    /** Reads an array of floats, in one or more blocks, as doubles. */
    double[] readFloatArray() {
        double[] values = new double[0];
        while (true) {
            long count = readLong();
            if (count == 0) {
                return values;
            }
            if (count < 0) {
                readLong();
                count = -count;
            }
            int start = position;
            skip(count * Float.BYTES);
            int old = values.length;
            values = java.util.Arrays.copyOf(values, old + (int) count);
            for (int k = 0; k < count; k++) {
                values[old + k] = Float.intBitsToFloat(
                        (data[start] & 0xFF) | (data[start + 1] & 0xFF) << 8 | (data[start + 2] & 0xFF) << 16
                                | (data[start + 3] & 0xFF) << 24);
                start += Float.BYTES;
            }
        }
    }

    /** Skips an array of floats in one or more blocks; a negative block count is followed by its byte size. */
    void skipFloatArray() {
        while (true) {
            long count = readLong();
            if (count == 0) {
                return;
            }
            if (count < 0) {
                readLong();
                count = -count;
            }
            skip(count * Float.BYTES);
        }
    }

    boolean atEnd() {
        return position == data.length;
    }

    private void skip(long length) {
        if (length < 0 || length > data.length - position) {
            throw new IllegalStateException("length " + length + " at offset " + position + " runs past the record");
        }
        position += (int) length;
    }
}
