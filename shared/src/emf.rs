//! What every CloudWatch Embedded Metric Format line carries besides its
//! metrics (the lines themselves are built where they are counted:
//! `intake/metrics.rs`, the dispatcher's `metrics.rs`, the adapters' capacity
//! lines).

/// The `level` of an EMF line. The functions log JSON, and Lambda then drops
/// every application line below the function's `ApplicationLogLevel`, reading
/// a line without a `level` as INFO: set to WARN, it would drop the metric
/// lines, and the alarms built on them would never fire. FATAL is the one
/// level no setting drops.
pub const LEVEL: &str = "FATAL";
