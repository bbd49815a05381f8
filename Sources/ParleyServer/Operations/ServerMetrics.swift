import CoreMetrics
import ParleyProtocol
import Prometheus

/// The server's counters (swift-metrics API, Prometheus exposition at `/metrics`).
/// Each server owns its registry, so several servers (tests) can run in one process.
final class ServerMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    let accepted: CoreMetrics.Counter
    let deliveries: CoreMetrics.Counter
    let groupsCreated: CoreMetrics.Counter
    /// Resends of an id already stored, answered with the stored message's echo.
    let duplicateSubmissions: CoreMetrics.Counter
    private let connectionsGauge: CoreMetrics.Gauge
    private let residentMemory: CoreMetrics.Gauge
    private let openFiles: CoreMetrics.Gauge
    private let factory: PrometheusMetricsFactory

    init() {
        factory = PrometheusMetricsFactory(registry: registry)
        accepted = CoreMetrics.Counter(label: "parley_messages_accepted_total", factory: factory)
        deliveries = CoreMetrics.Counter(label: "parley_deliveries_total", factory: factory)
        groupsCreated = CoreMetrics.Counter(label: "parley_groups_created_total", factory: factory)
        duplicateSubmissions = CoreMetrics.Counter(label: "parley_duplicate_submissions_total", factory: factory)
        connectionsGauge = CoreMetrics.Gauge(label: "parley_connections", factory: factory)
        // The usual Prometheus process metric names, so standard dashboards apply.
        residentMemory = CoreMetrics.Gauge(label: "process_resident_memory_bytes", factory: factory)
        openFiles = CoreMetrics.Gauge(label: "process_open_fds", factory: factory)
    }

    func rejected(_ reason: ErrorCode) {
        CoreMetrics.Counter(
            label: "parley_messages_rejected_total",
            dimensions: [("reason", reason.rawValue)],
            factory: factory
        ).increment()
    }

    func connections(_ count: Int) { connectionsGauge.record(count) }

    /// The exposition text, with the process gauges sampled now.
    func exposition() -> String {
        if let bytes = ProcessResources.residentMemoryBytes() { residentMemory.record(bytes) }
        if let count = ProcessResources.openFileDescriptors() { openFiles.record(count) }
        return registry.emitToString()
    }
}
