//! Which events a channel has already delivered: a bounded memory, optionally
//! journaled to a file so a restarted notifier still recognises them.
//!
//! Delivery stays at-least-once where nothing can be remembered: a crash between a
//! platform's "ok" and the journal write, or a redelivery that lands on another
//! replica (the memory is per process). Generic webhooks carry the event id in
//! `X-Ferry-Delivery` and mails a stable `Message-ID` for receivers to drop repeats.

use std::collections::{HashSet, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use uuid::Uuid;

pub struct Seen {
    capacity: usize,
    set: HashSet<Uuid>,
    order: VecDeque<Uuid>,
    journal: Option<Journal>,
}

struct Journal {
    path: PathBuf,
    file: File,
    lines: usize,
}

impl Seen {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            set: HashSet::new(),
            order: VecDeque::new(),
            journal: None,
        }
    }

    /// Remember across restarts in `path` (created if missing; read if present).
    pub fn with_journal(capacity: usize, path: PathBuf) -> std::io::Result<Self> {
        let mut seen = Self::new(capacity);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        if let Ok(f) = File::open(&path) {
            for line in BufReader::new(f).lines() {
                if let Ok(id) = line?.trim().parse::<Uuid>() {
                    seen.remember(id);
                }
            }
        }
        let lines = seen.order.len();
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        seen.journal = Some(Journal { path, file, lines });
        seen.compact_if_needed()?;
        Ok(seen)
    }

    pub fn contains(&self, id: &Uuid) -> bool {
        self.set.contains(id)
    }

    fn remember(&mut self, id: Uuid) {
        if self.set.insert(id) {
            self.order.push_back(id);
            if self.order.len() > self.capacity
                && let Some(old) = self.order.pop_front()
            {
                self.set.remove(&old);
            }
        }
    }

    /// Record a delivery. A journal that cannot be written is logged, not fatal: the
    /// message went out, and the memory still holds it.
    pub fn insert(&mut self, id: Uuid) {
        self.remember(id);
        if let Some(j) = &mut self.journal {
            let write = writeln!(j.file, "{id}").and_then(|_| j.file.sync_data());
            match write {
                Ok(()) => j.lines += 1,
                Err(e) => {
                    tracing::warn!(path = %j.path.display(), "cannot journal a delivery: {e}")
                }
            }
        }
        if let Err(e) = self.compact_if_needed() {
            tracing::warn!("cannot compact the delivery journal: {e}");
        }
    }

    /// Rewrite the journal with what is remembered once it holds twice as much.
    fn compact_if_needed(&mut self) -> std::io::Result<()> {
        let Some(j) = &mut self.journal else {
            return Ok(());
        };
        if j.lines <= self.capacity * 2 {
            return Ok(());
        }
        let tmp = j.path.with_extension("tmp");
        let mut f = File::create(&tmp)?;
        for id in &self.order {
            writeln!(f, "{id}")?;
        }
        f.sync_all()?;
        std::fs::rename(&tmp, &j.path)?;
        j.file = OpenOptions::new().append(true).open(&j.path)?;
        j.lines = self.order.len();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_is_forgotten_beyond_capacity() {
        let mut s = Seen::new(2);
        let ids: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
        for id in &ids {
            s.insert(*id);
        }
        assert!(!s.contains(&ids[0]));
        assert!(s.contains(&ids[1]) && s.contains(&ids[2]));
    }

    #[test]
    fn a_journal_survives_a_restart_and_stays_bounded() {
        let dir = std::env::temp_dir().join(format!("ferry-seen-{}", Uuid::new_v4()));
        let path = dir.join("team.delivered");
        let ids: Vec<Uuid> = (0..10).map(|_| Uuid::new_v4()).collect();
        {
            let mut s = Seen::with_journal(3, path.clone()).unwrap();
            for id in &ids {
                s.insert(*id);
            }
        }
        let s = Seen::with_journal(3, path.clone()).unwrap();
        assert!(s.contains(&ids[9]) && s.contains(&ids[7]));
        assert!(!s.contains(&ids[0]));
        let lines = std::fs::read_to_string(&path).unwrap().lines().count();
        assert!(lines <= 6, "journal has {lines} lines");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
