//! Fixed-size ring buffer used by the windowed features.

/// A ring buffer of `f64` with O(1) push.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub(crate) struct Ring {
    buf: Box<[f64]>,
    head: usize,
    len: usize,
}

impl Ring {
    pub(crate) fn new(cap: usize) -> Self {
        Ring {
            buf: vec![0.0; cap.max(1)].into_boxed_slice(),
            head: 0,
            len: 0,
        }
    }
    /// Push `x`; returns the value that fell out when full.
    pub(crate) fn push(&mut self, x: f64) -> Option<f64> {
        let cap = self.buf.len();
        let out = if self.len == cap {
            Some(self.buf[self.head])
        } else {
            self.len += 1;
            None
        };
        self.buf[self.head] = x;
        self.head = (self.head + 1) % cap;
        out
    }
    pub(crate) fn is_full(&self) -> bool {
        self.len == self.buf.len()
    }
    pub(crate) fn len(&self) -> usize {
        self.len
    }
    /// Oldest-first iteration.
    pub(crate) fn iter(&self) -> impl Iterator<Item = f64> + '_ {
        let cap = self.buf.len();
        let start = (self.head + cap - self.len) % cap;
        (0..self.len).map(move |i| self.buf[(start + i) % cap])
    }
    /// Element `k` steps back from the newest (0 = newest).
    pub(crate) fn back(&self, k: usize) -> Option<f64> {
        if k >= self.len {
            return None;
        }
        let cap = self.buf.len();
        Some(self.buf[(self.head + cap - 1 - k) % cap])
    }
    pub(crate) fn clear(&mut self) {
        self.head = 0;
        self.len = 0;
    }
    /// True when the newest push wrapped the write position to 0 (used to refresh sums).
    pub(crate) fn wrapped(&self) -> bool {
        self.head == 0
    }
}

/// A ring buffer with a running sum of its contents (refreshed exactly each time the write
/// position wraps, so rounding drift cannot accumulate).
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub(crate) struct RollingSum {
    ring: Ring,
    sum: f64,
}

impl RollingSum {
    pub(crate) fn new(cap: usize) -> Self {
        RollingSum {
            ring: Ring::new(cap),
            sum: 0.0,
        }
    }
    /// Push `x`; returns the sum of the (up to `cap`) newest values.
    pub(crate) fn push(&mut self, x: f64) -> f64 {
        self.sum += x;
        if let Some(old) = self.ring.push(x) {
            self.sum -= old;
        }
        if self.ring.wrapped() {
            self.sum = self.ring.iter().sum();
        }
        self.sum
    }
    pub(crate) fn is_full(&self) -> bool {
        self.ring.is_full()
    }
    pub(crate) fn clear(&mut self) {
        self.ring.clear();
        self.sum = 0.0;
    }
}
