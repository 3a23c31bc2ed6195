//! What the core counts, as data: a use case or a function's handler
//! reports a [`Metric`] to a [`Metrics`] port, and one adapter
//! (`adapters::emf`) writes it as CloudWatch Embedded Metric Format, stamped
//! with the injected clock.

/// Something worth a count on a dashboard or an alarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// A create refused because another client holds the order number
    /// (an alarm: two ERPs share a numbering).
    OrderNumberCollision,
    /// A webhook endpoint was disabled: it answered 410, or failed for a
    /// day (an alarm: an ERP stops hearing about its orders).
    WebhookEndpointDisabled,
}

/// Where metrics go. Recording never fails a request: a metric that cannot
/// be written is lost, not an error.
pub trait Metrics: Send + Sync + std::fmt::Debug {
    fn record(&self, metric: Metric);
}

impl<T: Metrics + ?Sized> Metrics for std::sync::Arc<T> {
    fn record(&self, metric: Metric) {
        (**self).record(metric);
    }
}
