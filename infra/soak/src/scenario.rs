//! Which order meets which fault: fixed by the order's index, so every run of
//! the same size has the same mix (the partner's random faults come on top).

/// The order number of the `index`th order.
pub fn order_number(index: usize) -> String {
    format!("soak-{index:06}")
}

fn index_of(order_number: &str) -> Option<usize> {
    order_number.strip_prefix("soak-")?.parse().ok()
}

/// The partner refuses these orders' shipments (`Success: false`) every time.
pub fn refused(order_number: &str) -> bool {
    index_of(order_number).is_some_and(|index| index % 40 == 7)
}

/// The tracking number the warehouse reports for the order.
pub fn tracking_number(index: usize) -> String {
    format!("SOAK{index:08}CN")
}

/// How the warehouse reports an order's events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Events {
    /// In order, one at a time.
    InOrder,
    /// Each event twice, both at once.
    Duplicated,
    /// `handed_over` before `shipped`, `picked` after `packed`.
    Reordered,
    /// All five at once.
    Concurrent,
    /// Allocated, then cancelled: never shipped, no callback.
    Cancelled,
}

/// The plan for one order.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Two identical creates at once (one 201, one 200).
    pub concurrent_create: bool,
    /// The same number with different content after the create (409).
    pub conflicting_replay: bool,
    /// The identical order again after the create (200).
    pub identical_replay: bool,
    pub events: Events,
    /// The ERP replays the callback while its attempts may be in flight.
    pub erp_replay: bool,
    /// The order carries an inline label (stored in S3 before the order).
    pub label: bool,
}

impl Plan {
    pub fn for_index(index: usize) -> Self {
        let events = if index % 25 == 11 {
            Events::Cancelled
        } else {
            match index % 7 {
                0 => Events::Duplicated,
                1 => Events::Reordered,
                2 => Events::Concurrent,
                _ => Events::InOrder,
            }
        };
        Self {
            concurrent_create: index.is_multiple_of(10),
            conflicting_replay: index % 20 == 3,
            identical_replay: index % 10 == 5,
            events,
            erp_replay: index % 10 == 4 && events != Events::Cancelled,
            // Every 4th, some of them created twice at once (index 10, 30 …).
            label: index % 4 == 2,
        }
    }

    /// The order's callback becomes due.
    pub fn due(self) -> bool {
        self.events != Events::Cancelled
    }
}
