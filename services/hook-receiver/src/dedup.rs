//! Remembers recent deliveries so a redelivered hook returns its original run ids
//! and publishes nothing new. In memory, per replica: see the README for several
//! replicas (run ids are also derived from the delivery id, so a repeat that reaches
//! another replica carries the same ids and later stages recognise it).
//!
//! Checking and recording are one step: the first of two identical deliveries
//! arriving together reserves the delivery, the second waits for its outcome (its run
//! ids once published; a fresh try if publishing failed). Keys are stored hashed, so an
//! entry's size does not depend on what the sender put in its delivery id, and the
//! oldest go first, in O(1), when the bound is reached.

use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use uuid::Uuid;

/// Bound on remembered deliveries; the oldest go first when it is reached.
const MAX_ENTRIES: usize = 100_000;

type Key = [u8; 32];

pub struct Dedup {
    window: Duration,
    max_entries: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    entries: HashMap<Key, Entry>,
    /// (sequence, key) in the order deliveries were reserved.
    order: VecDeque<(u64, Key)>,
    next: u64,
}

struct Entry {
    seq: u64,
    at: Instant,
    run_ids: Vec<Uuid>,
    /// True once the delivery's events are published.
    published: watch::Receiver<bool>,
}

/// What a delivery is, checked and reserved in one step.
pub enum Check<'a> {
    /// Not seen: publish its events, then [`Reservation::published`]. Dropped without
    /// that (publishing failed), the delivery is forgotten and may be tried again.
    New(Reservation<'a>),
    /// Already published: the run ids it started.
    Seen(Vec<Uuid>),
}

pub struct Reservation<'a> {
    dedup: &'a Dedup,
    key: Key,
    seq: u64,
    done: Option<watch::Sender<bool>>,
}

impl Dedup {
    pub fn new(window: Duration) -> Self {
        Self::bounded(window, MAX_ENTRIES)
    }

    fn bounded(window: Duration, max_entries: usize) -> Self {
        Self {
            window,
            max_entries,
            state: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `delivery` was seen within the window, reserving it if not. `run_ids`
    /// are the ids its events carry (answered to repeats).
    pub async fn check_and_reserve(&self, delivery: &str, run_ids: Vec<Uuid>) -> Check<'_> {
        let key: Key = Sha256::digest(delivery.as_bytes()).into();
        loop {
            let mut in_progress = {
                let mut state = self.lock();
                state.expire(self.window);
                match state.entries.get(&key) {
                    Some(e) if *e.published.borrow() => return Check::Seen(e.run_ids.clone()),
                    Some(e) => e.published.clone(),
                    None => {
                        let (done, published) = watch::channel(false);
                        let seq = state.insert(key, run_ids, published, self.max_entries);
                        return Check::New(Reservation {
                            dedup: self,
                            key,
                            seq,
                            done: Some(done),
                        });
                    }
                }
            };
            // The same delivery is being published right now: its outcome is ours. An
            // error means it failed and was forgotten: look again (and try it ourselves).
            let _ = in_progress.wait_for(|published| *published).await;
        }
    }
}

impl Reservation<'_> {
    /// The delivery's events are published: repeats now get its run ids.
    pub fn published(mut self) {
        if let Some(done) = self.done.take() {
            done.send_replace(true);
        }
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if self.done.is_some() {
            let mut state = self.dedup.lock();
            state.forget(self.seq, &self.key);
        }
        // Dropping the sender (after the entry is gone) wakes the waiting repeats.
    }
}

impl State {
    fn insert(
        &mut self,
        key: Key,
        run_ids: Vec<Uuid>,
        published: watch::Receiver<bool>,
        max_entries: usize,
    ) -> u64 {
        self.next += 1;
        let seq = self.next;
        self.entries.insert(
            key,
            Entry {
                seq,
                at: Instant::now(),
                run_ids,
                published,
            },
        );
        self.order.push_back((seq, key));
        while self.order.len() > max_entries {
            if let Some((seq, key)) = self.order.pop_front() {
                self.forget(seq, &key);
            }
        }
        seq
    }

    /// Drop the entries older than the window: they are at the front of `order`.
    fn expire(&mut self, window: Duration) {
        while let Some((seq, key)) = self.order.front().copied() {
            match self.entries.get(&key) {
                Some(e) if e.seq == seq && e.at.elapsed() < window => break,
                Some(e) if e.seq == seq => {
                    self.entries.remove(&key);
                }
                // Forgotten already (a failed publish, or evicted).
                _ => {}
            }
            self.order.pop_front();
        }
    }

    fn forget(&mut self, seq: u64, key: &Key) {
        if self.entries.get(key).is_some_and(|e| e.seq == seq) {
            self.entries.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: u128) -> Vec<Uuid> {
        vec![Uuid::from_u128(n)]
    }

    #[tokio::test]
    async fn a_published_delivery_is_seen_and_a_failed_one_is_not() {
        let d = Dedup::new(Duration::from_secs(60));
        let Check::New(r) = d.check_and_reserve("a", ids(1)).await else {
            panic!("new")
        };
        r.published();
        assert!(matches!(d.check_and_reserve("a", ids(2)).await, Check::Seen(i) if i == ids(1)));
        let Check::New(failed) = d.check_and_reserve("b", ids(3)).await else {
            panic!("new")
        };
        drop(failed);
        assert!(matches!(
            d.check_and_reserve("b", ids(4)).await,
            Check::New(_)
        ));
    }

    #[tokio::test]
    async fn a_repeat_during_publishing_waits_for_its_outcome() {
        let d = std::sync::Arc::new(Dedup::new(Duration::from_secs(60)));
        let Check::New(r) = d.check_and_reserve("a", ids(1)).await else {
            panic!("new")
        };
        let waiting = {
            let d = d.clone();
            tokio::spawn(async move {
                matches!(d.check_and_reserve("a", ids(2)).await, Check::Seen(i) if i == ids(1))
            })
        };
        tokio::task::yield_now().await;
        r.published();
        assert!(waiting.await.unwrap());
    }

    #[tokio::test]
    async fn the_oldest_go_first_at_the_bound() {
        let d = Dedup::bounded(Duration::from_secs(60), 3);
        for k in ["a", "b", "c", "d"] {
            let Check::New(r) = d.check_and_reserve(k, ids(1)).await else {
                panic!("{k} new")
            };
            r.published();
        }
        assert_eq!(d.lock().entries.len(), 3);
        assert!(matches!(
            d.check_and_reserve("d", ids(1)).await,
            Check::Seen(_)
        ));
        assert!(matches!(
            d.check_and_reserve("a", ids(1)).await,
            Check::New(_)
        ));
    }

    #[tokio::test]
    async fn entries_expire_after_the_window() {
        let d = Dedup::new(Duration::from_millis(1));
        let Check::New(r) = d.check_and_reserve("a", ids(1)).await else {
            panic!("new")
        };
        r.published();
        std::thread::sleep(Duration::from_millis(5));
        assert!(matches!(
            d.check_and_reserve("a", ids(2)).await,
            Check::New(_)
        ));
        assert_eq!(d.lock().order.len(), 1);
    }
}
