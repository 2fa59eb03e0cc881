package dev.dreamumm.flink;

import java.time.Instant;
import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.functions.ScalarFunction;

/**
 * Reads {@code valid_from_ms} of a VideoEmbedding record in the Avro single-object format, as
 * the event time of the embedding versions that the job's temporal join looks up.
 *
 * <p>The caller passes the schema's 10-byte single-object header. A record of another schema,
 * a malformed record, a null {@code valid_from_ms} and a negative one all give time 0 (the Unix
 * epoch): the Python decoder dead-letters the malformed ones, and a version valid from time 0
 * applies to every event. Field order: video_id (string), vector (array of float),
 * model_version (string), produced_time_ms (long), valid_from_ms (union of null and long).
 */
public final class EmbeddingValidFrom extends ScalarFunction {

    /** Returns the version's start as an instant; never null. */
    public @DataTypeHint("TIMESTAMP_LTZ(3) NOT NULL") Instant eval(byte[] value, byte[] header) {
        return Instant.ofEpochMilli(validFromMs(value, header));
    }

    /** Returns valid_from_ms, or 0 when the record has none or cannot be read. */
    static long validFromMs(byte[] value, byte[] header) {
        if (value == null || header == null || value.length < header.length) {
            return 0L;
        }
        for (int i = 0; i < header.length; i++) {
            if (value[i] != header[i]) {
                return 0L;
            }
        }
        AvroBytes in = new AvroBytes(value, header.length);
        try {
            in.skipString();
            in.skipFloatArray();
            in.skipString();
            in.readLong();
            long branch = in.readLong();
            if (branch != 1) {
                return 0L;
            }
            long validFrom = in.readLong();
            return validFrom >= 0 && in.atEnd() ? validFrom : 0L;
        } catch (IndexOutOfBoundsException | IllegalStateException malformed) {
            return 0L;
        }
    }
}
