//! `GET /live`: server-sent events, one `run` event (its id) whenever a run the
//! operator may see records an event. Pages reload what they show from it.

use super::Signed;
use crate::App;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use ferry_shared::config::operators::Action;
use futures_util::Stream;
use std::convert::Infallible;
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;

/// What the history follower announces for each event it records.
#[derive(Clone, Debug)]
pub struct Moved {
    pub run_id: uuid::Uuid,
    pub project: String,
}

pub async fn stream(
    State(app): State<Arc<App>>,
    signed: Signed,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = app.live.subscribe();
    let access = signed.session.access;
    let expires = signed.session.expires;
    let stream = futures_util::stream::unfold(rx, move |mut rx| {
        let access = access.clone();
        async move {
            loop {
                // A session that ends ends its stream too.
                if expires <= chrono::Utc::now().timestamp().cast_unsigned() {
                    return None;
                }
                let data = match rx.recv().await {
                    Ok(moved) if access.allow(Action::View, &moved.project, None).is_ok() => {
                        moved.run_id.to_string()
                    }
                    Ok(_) => continue,
                    // Fell behind: the page reloads anyway, so say "something moved".
                    Err(RecvError::Lagged(_)) => "*".to_owned(),
                    Err(RecvError::Closed) => return None,
                };
                return Some((Ok(Event::default().event("run").data(data)), rx));
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}
