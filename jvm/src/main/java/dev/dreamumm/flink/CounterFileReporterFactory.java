package dev.dreamumm.flink;

import java.util.Properties;
import org.apache.flink.metrics.reporter.MetricReporter;
import org.apache.flink.metrics.reporter.MetricReporterFactory;

/** Creates {@link CounterFileReporter}s; Flink finds it as a plugin through the service file. */
public final class CounterFileReporterFactory implements MetricReporterFactory {

    @Override
    public MetricReporter createMetricReporter(Properties properties) {
        return new CounterFileReporter();
    }
}
