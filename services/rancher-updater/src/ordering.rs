//! Run order at deploy time: which run is newer is decided by the runs' places (see
//! `ferry_shared::order`), never by run ids or commit dates.
//!
//! What runs records the environment's mark in a label (`ferry_docker::labels::LABEL_ORDER`,
//! read by `ferry_targets`); the recent requests of an environment
//! (`ferry_shared::bus::Latest`) are recorded as `<scale>:<value> <run id>`.

use ferry_shared::order::{OrderMark, RunOrder};
use uuid::Uuid;

/// A request as recorded among the environment's recent ones.
pub fn recorded(order: &RunOrder, run_id: Uuid) -> String {
    format!("{} {run_id}", order.mark())
}

/// The newest recent request that is ahead of `order` on its scale (its run id), if any:
/// then the run that waited for the lock stands down. An explicit run never does.
/// Entries written by an older Ferry (a bare run id) or by anyone else are skipped.
pub fn newer_request(order: &RunOrder, recent: &[String]) -> Option<Uuid> {
    if order.explicit {
        return None;
    }
    recent
        .iter()
        .filter_map(|r| {
            let (mark, run) = r.split_once(' ')?;
            let mark: OrderMark = mark.parse().ok()?;
            Some((mark, Uuid::parse_str(run).ok()?))
        })
        .filter(|(m, _)| m.scale == order.scale && m.value > order.value)
        .max_by_key(|(m, _)| m.value)
        .map(|(_, run)| run)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_shared::order::OrderScale;

    #[test]
    fn only_a_greater_place_on_the_same_scale_makes_a_run_stand_down() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let git = |v| RunOrder::new(OrderScale::Git, v);
        let recent = vec![
            Uuid::now_v7().to_string(), // an older Ferry's entry
            recorded(&git(5), a),
            recorded(&git(9), b),
            recorded(&RunOrder::new(OrderScale::Received, u64::MAX), a),
            "junk".into(),
        ];
        assert_eq!(newer_request(&git(4), &recent), Some(b));
        assert_eq!(newer_request(&git(9), &recent), None);
        let explicit = RunOrder {
            explicit: true,
            ..git(1)
        };
        assert_eq!(newer_request(&explicit, &recent), None);
    }
}
