//! A sliding-window limit: at most `messages` sends in any `window`. It never drops
//! anything; it only says when the next send may go. The window is kept a little
//! longer than configured (2 %, at most 1 s), so that network jitter cannot make the
//! platform, which counts on arrival, see one message too many.

use ferry_shared::notify_config::RateLimit;
use std::collections::VecDeque;
use std::time::Duration;
use tokio::time::Instant;

pub struct Window {
    limit: Option<(usize, Duration)>,
    /// When the sends still inside the window went out, oldest first.
    sent: VecDeque<Instant>,
}

impl Window {
    pub fn new(limit: Option<RateLimit>) -> Self {
        Self {
            limit: limit.map(|l| {
                let margin = (l.window_ms / 50).min(1_000);
                (
                    l.messages.max(1) as usize,
                    Duration::from_millis(l.window_ms + margin),
                )
            }),
            sent: VecDeque::new(),
        }
    }

    fn expire(&mut self, now: Instant) {
        if let Some((_, window)) = self.limit {
            while self
                .sent
                .front()
                .is_some_and(|t| now.duration_since(*t) >= window)
            {
                self.sent.pop_front();
            }
        }
    }

    /// Sends still allowed now (`usize::MAX` without a limit).
    pub fn remaining(&mut self, now: Instant) -> usize {
        self.expire(now);
        match self.limit {
            Some((max, _)) => max.saturating_sub(self.sent.len()),
            None => usize::MAX,
        }
    }

    /// When the next send may go; `None` if now.
    pub fn next_free(&mut self, now: Instant) -> Option<Instant> {
        if self.remaining(now) > 0 {
            return None;
        }
        let (_, window) = self.limit?;
        self.sent.front().map(|t| *t + window)
    }

    pub fn record(&mut self, at: Instant) {
        if self.limit.is_some() {
            self.sent.push_back(at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_n_per_window_then_free_again() {
        let mut w = Window::new(Some(RateLimit {
            messages: 2,
            window_ms: 1000,
        }));
        let t0 = Instant::now();
        assert_eq!(w.next_free(t0), None);
        w.record(t0);
        w.record(t0 + Duration::from_millis(10));
        // 1000 ms plus the 20 ms margin.
        assert_eq!(
            w.next_free(t0 + Duration::from_millis(20)),
            Some(t0 + Duration::from_millis(1020))
        );
        assert_eq!(w.remaining(t0 + Duration::from_millis(1019)), 0);
        assert_eq!(w.remaining(t0 + Duration::from_millis(1020)), 1);
        assert_eq!(w.remaining(t0 + Duration::from_millis(1030)), 2);
    }

    #[test]
    fn without_a_limit_everything_goes() {
        let mut w = Window::new(None);
        let t0 = Instant::now();
        for _ in 0..1000 {
            w.record(t0);
        }
        assert_eq!(w.next_free(t0), None);
    }
}
