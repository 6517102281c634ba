//! Remembers recent deliveries so a redelivered hook returns its original run ids
//! and publishes nothing new. In memory, per replica: see the README for several
//! replicas (run ids are also derived from the delivery id, so a repeat that reaches
//! another replica carries the same ids and later stages recognise it).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Bound on remembered deliveries; the oldest go first when it is reached.
const MAX_ENTRIES: usize = 100_000;

pub struct Dedup {
    window: Duration,
    seen: Mutex<HashMap<String, (Instant, Vec<Uuid>)>>,
}

impl Dedup {
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// The run ids already started for this delivery, if it was seen within the window.
    pub fn get(&self, key: &str) -> Option<Vec<Uuid>> {
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.get(key)
            .filter(|(at, _)| at.elapsed() < self.window)
            .map(|(_, ids)| ids.clone())
    }

    pub fn remember(&self, key: String, run_ids: Vec<Uuid>) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() >= MAX_ENTRIES {
            let window = self.window;
            seen.retain(|_, (at, _)| at.elapsed() < window);
            if seen.len() >= MAX_ENTRIES {
                let oldest = seen
                    .iter()
                    .min_by_key(|(_, (at, _))| *at)
                    .map(|(k, _)| k.clone());
                if let Some(k) = oldest {
                    seen.remove(&k);
                }
            }
        }
        seen.insert(key, (Instant::now(), run_ids));
    }
}
