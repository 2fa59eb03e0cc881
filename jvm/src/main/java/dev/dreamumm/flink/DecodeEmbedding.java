package dev.dreamumm.flink;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.ByteBuffer;
import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.functions.ScalarFunction;
import org.apache.flink.types.Row;

/**
 * Decodes a VideoEmbedding record in the Avro single-object format, checks its vector and
 * L2-normalises it, or returns the dead-letter reason.
 *
 * <p>It runs in the JVM so that no Python operator sits between the embeddings source and the
 * temporal join: Python operators of apache-flink 2.2.1 pass a source's idle status on at once,
 * while records they still buffer have not reached the join, so the join could fire events
 * before the embeddings they need. The caller passes the schema's 10-byte single-object header
 * and the configured dimension. Field order: video_id (string), vector (array of float),
 * model_version (string), produced_time_ms (long), valid_from_ms (union of null and long).
 * Reasons are those of {@code jobs/dead_letters.py}: missing_value, unknown_schema, invalid_avro
 * and invalid_embedding.
 */
public final class DecodeEmbedding extends ScalarFunction {

    private static final VarHandle FLOAT_LE =
            MethodHandles.byteArrayViewVarHandle(float[].class, ByteOrder.LITTLE_ENDIAN);

    /** Returns (video_id, vector as little-endian float32 bytes, model_version, reason, detail). */
    public @DataTypeHint("ROW<video_id STRING, vector BYTES, model_version STRING, reason STRING, detail STRING>")
    Row eval(byte[] value, byte[] header, Integer dimension) {
        if (value == null) {
            return rejected("missing_value", "record has no value (a tombstone)");
        }
        if (value.length < header.length || value[0] != header[0] || value[1] != header[1]) {
            return rejected("invalid_avro", "value is not an Avro single-object record (no C3 01 marker)");
        }
        for (int i = 2; i < header.length; i++) {
            if (value[i] != header[i]) {
                return rejected("unknown_schema", "record was written with a schema whose fingerprint is not "
                        + "the VideoEmbedding schema's");
            }
        }
        AvroBytes in = new AvroBytes(value, header.length);
        String videoId;
        double[] vector;
        String modelVersion;
        try {
            videoId = in.readString();
            vector = in.readFloatArray();
            modelVersion = in.readString();
            in.readLong();
            long branch = in.readLong();
            if (branch == 1) {
                in.readLong();
            } else if (branch != 0) {
                return rejected("invalid_avro", "body is not a valid VideoEmbedding: valid_from_ms has union branch "
                        + branch);
            }
            if (!in.atEnd()) {
                return rejected("invalid_avro", "body is not a valid VideoEmbedding: bytes after the last field");
            }
        } catch (IndexOutOfBoundsException | IllegalStateException | CharacterCodingException malformed) {
            return rejected("invalid_avro", "body is not a valid VideoEmbedding: " + malformed.getMessage());
        }
        String problem = vectorProblem(vector, dimension);
        if (problem != null) {
            return rejected("invalid_embedding", problem);
        }
        return Row.of(videoId, unitBytes(vector), modelVersion, null, null);
    }

    /** Returns why the vector is unusable, or null; the messages follow jobs/validation.py. */
    static String vectorProblem(double[] vector, int dimension) {
        if (vector.length != dimension) {
            return "vector has " + vector.length + " dimensions, expected " + dimension + " (embedding.dimension)";
        }
        boolean nonZero = false;
        for (double component : vector) {
            if (!Double.isFinite(component)) {
                return "vector contains NaN or infinite values";
            }
            nonZero |= component != 0.0;
        }
        return nonZero ? null : "vector is all zeros";
    }

    /** Returns the vector scaled to unit length, in double precision, as little-endian float32 bytes. */
    static byte[] unitBytes(double[] vector) {
        double scale = 0.0;
        for (double component : vector) {
            scale = Math.max(scale, Math.abs(component));
        }
        double sumOfSquares = 0.0;
        for (double component : vector) {
            double scaled = component / scale;
            sumOfSquares += scaled * scaled;
        }
        double norm = Math.sqrt(sumOfSquares);
        byte[] bytes = new byte[vector.length * Float.BYTES];
        for (int k = 0; k < vector.length; k++) {
            FLOAT_LE.set(bytes, k * Float.BYTES, (float) (vector[k] / scale / norm));
        }
        return bytes;
    }

    private static Row rejected(String reason, String detail) {
        return Row.of(null, null, null, reason, detail);
    }

    static String utf8(byte[] data, int offset, int length) throws CharacterCodingException {
        return StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT)
                .decode(ByteBuffer.wrap(data, offset, length))
                .toString();
    }
}
