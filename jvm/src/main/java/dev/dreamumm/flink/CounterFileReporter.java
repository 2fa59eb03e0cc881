package dev.dreamumm.flink;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.HashMap;
import java.util.Map;
import java.util.TreeMap;
import org.apache.flink.metrics.Counter;
import org.apache.flink.metrics.Metric;
import org.apache.flink.metrics.MetricConfig;
import org.apache.flink.metrics.MetricGroup;
import org.apache.flink.metrics.reporter.MetricReporter;
import org.apache.flink.metrics.reporter.Scheduled;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Writes the totals of the pipeline's counters (those in a metric group named
 * {@value #GROUP}) to a JSON file, summed over subtasks and operators by counter name.
 *
 * <p>A counter's last value is kept when its task ends, so a bounded job's file contains the
 * job's final totals once the cluster has shut down. The tests read those totals. Each
 * process writes {@code counters-<pid>.json} in the folder of the reporter's {@code dir}
 * option, so the TaskManagers of a cluster do not overwrite each other. After a failover the
 * restarted tasks count again from zero while the retired counts stay, so the totals then
 * include records processed twice: exact accounting after failures comes from the topics.
 */
public final class CounterFileReporter implements MetricReporter, Scheduled {

    /** Name of the metric group that marks a counter as one of the pipeline's. */
    public static final String GROUP = "dreamumm";

    private static final Logger LOG = LoggerFactory.getLogger(CounterFileReporter.class);

    private final Map<Counter, String> live = new HashMap<>();
    private final Map<String, Long> retired = new HashMap<>();
    private Path file;

    @Override
    public void open(MetricConfig config) {
        String dir = config.getString("dir", null);
        if (dir == null || dir.isEmpty()) {
            throw new IllegalArgumentException("the counter file reporter needs the option 'dir' "
                    + "(metrics.reporter.<name>.dir), the folder to write counters-<pid>.json to");
        }
        try {
            Files.createDirectories(Path.of(dir));
        } catch (IOException error) {
            throw new UncheckedIOException("cannot create the counter folder " + dir, error);
        }
        file = Path.of(dir, "counters-" + ProcessHandle.current().pid() + ".json");
    }

    @Override
    public void close() {
        report();
    }

    @Override
    public void notifyOfAddedMetric(Metric metric, String metricName, MetricGroup group) {
        if (metric instanceof Counter && isPipelineMetric(group)) {
            synchronized (this) {
                live.put((Counter) metric, metricName);
            }
        }
    }

    @Override
    public void notifyOfRemovedMetric(Metric metric, String metricName, MetricGroup group) {
        synchronized (this) {
            String name = live.remove(metric);
            if (name != null) {
                retired.merge(name, ((Counter) metric).getCount(), Long::sum);
            }
        }
    }

    @Override
    public void report() {
        if (file == null) {
            return;
        }
        Map<String, Long> totals;
        synchronized (this) {
            totals = new TreeMap<>(retired);
            for (Map.Entry<Counter, String> entry : live.entrySet()) {
                totals.merge(entry.getValue(), entry.getKey().getCount(), Long::sum);
            }
        }
        StringBuilder json = new StringBuilder("{\"updated_ms\": ").append(System.currentTimeMillis())
                .append(", \"counters\": {");
        String separator = "";
        for (Map.Entry<String, Long> entry : totals.entrySet()) {
            json.append(separator).append('"').append(escape(entry.getKey())).append("\": ").append(entry.getValue());
            separator = ", ";
        }
        json.append("}}\n");
        try {
            // The job's driver may have removed the folder since open().
            Files.createDirectories(file.getParent());
            Path temporary = file.resolveSibling(file.getFileName() + ".tmp");
            Files.writeString(temporary, json, StandardCharsets.UTF_8);
            Files.move(temporary, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException error) {
            LOG.warn("could not write the pipeline counters to {}", file, error);
        }
    }

    private static boolean isPipelineMetric(MetricGroup group) {
        for (String component : group.getScopeComponents()) {
            if (GROUP.equals(component)) {
                return true;
            }
        }
        return false;
    }

    private static String escape(String name) {
        return name.replace("\\", "\\\\").replace("\"", "\\\"");
    }
}
